"""The worker process's main loop and its operations on one open document (probe, render, form
fields, e-mail, the audit pack's book, reading pages); see :mod:`ecms_desktop.services.documents.worker`.

Protocol (both directions, over the worker's stdin / a private duplicate of its stdout): each frame
is ``struct.pack("!II", len(header), len(blob)) + header + blob`` where ``header`` is UTF-8 JSON and
``blob`` raw bytes (the document on the way in, a PNG on the way out). The parent never unpickles
anything that comes from the worker.

Requests: ``{"op": "probe" | "render" | "fields" | "email" | "book" | "read" | "ping" | "quit", "sha": ...,
"media_type": ..., "password": ..., ...}``. ``fields`` reads a PDF's form fields, metadata keywords
and (when it has no text fields) its text; ``email`` parses an e-mail message and hands back its
sender, date, subject and attachments; both answer with a JSON document in the blob. ``book`` makes
the document's pages for the audit pack's PDF book, each stamped with the label it is given, and
answers with that new PDF in the blob (see :meth:`Worker._book`). ``read`` reads the words of the
pages with their boxes (filled form fields, else the text layer, else OCR; see :meth:`Worker._read`
and :mod:`~ecms_desktop.services.documents.worker.reading`) and answers with a JSON document in the
blob. If the request has no blob and the worker no longer holds that document, it answers
``{"ok": false, "kind": "need_data"}`` and the parent resends it with the bytes.

Replies: ``{"ok": true, ...}`` or ``{"ok": false, "kind": <failure kind>, "detail": <text>,
"restart": <bool>}``; the parent turns the kind into an accountant-readable message.
"""


from __future__ import annotations

import contextlib
import json
import math
import os
import re
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ecms_desktop.services.documents.worker.pictures import (
    encode_png,
    image_pixel_size,
    page_pixmap,
    page_ranges,
    password_variants,
    short_text,
    stamp_page,
)
from ecms_desktop.services.documents.worker.protocol import (
    MAX_FIELD_TEXT,
    MAX_FIELDS,
    MEMORY_RE,
    Failure,
    read_frame,
    write_frame,
)
from ecms_desktop.services.documents.worker.reading import OpenDoc, PageReader, read_failure

#: The open-file type MuPDF is told to use, by sniffed media type. The type is never guessed from a
#: file name, and MuPDF is never allowed to guess it from the content by itself.
MUPDF_FILETYPES = {
    "application/pdf": "pdf",
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/tiff": "tiff",
    "image/jp2": "jp2",
    "image/gif": "gif",
    "image/bmp": "bmp",
}

_JS_RE = re.compile(rb"/S\s*/JavaScript\b|/JS\s*[(<\d]|/JavaScript\s*\d+\s+\d+\s+R", re.IGNORECASE)
_LAUNCH_RE = re.compile(rb"/S\s*/Launch\b", re.IGNORECASE)
_EMBEDDED_RE = re.compile(rb"/Type\s*/EmbeddedFile\b|/Subtype\s*/FileAttachment\b|/EmbeddedFiles\b")

#: Field types that hold text; a PDF without any is a scan or a printout, whose text is read instead.
TEXT_FIELD_TYPES = frozenset({"Text", "ComboBox", "ListBox"})
#: Bounds on an ``email`` answer.
MAX_ATTACHMENTS = 200
MAX_HEADER_TEXT = 2000


# ----------------------------------------------------------------------------------- the worker




@dataclass
class _Entry:
    data: bytes
    docs: dict[str, OpenDoc] = field(default_factory=dict)


class Worker:
    """Holds the last few documents (by SHA-256) and answers requests one at a time."""

    def __init__(self, pymupdf: Any, cache_size: int = 4) -> None:
        self.pymupdf = pymupdf
        self.cache_size = max(1, cache_size)
        self.entries: OrderedDict[str, _Entry] = OrderedDict()
        self.reader = PageReader(pymupdf)

    # -- request dispatch

    def handle(self, req: dict[str, Any], blob: bytes) -> tuple[dict[str, Any], bytes]:
        op = req.get("op")
        if op == "ping":
            return {"ok": True}, b""
        self.pymupdf.TOOLS.mupdf_warnings(reset=True)
        try:
            entry = self._entry(req, blob)
            if entry is None:
                return {"ok": False, "kind": "need_data"}, b""
            if op == "probe":
                return self._probe(entry, req), b""
            if op == "render":
                return self._render(entry, req)
            if op == "fields":
                return self._fields(entry, req)
            if op == "email":
                return _parse_email(entry.data)
            if op == "book":
                return self._book(entry, req)
            if op == "read":
                return self._read(entry, req)
            raise Failure("protocol", f"unknown operation {op!r}")
        except Failure as f:
            return {"ok": False, "kind": f.kind, "detail": f.detail, "restart": f.restart}, b""
        except MemoryError:
            self.entries.clear()
            return {"ok": False, "kind": "memory", "detail": "out of memory", "restart": True}, b""
        except Exception as exc:  # MuPDF raises RuntimeError, ValueError, FzErrorBase, ...
            detail = short_text(exc)
            if MEMORY_RE.search(detail):
                self.entries.clear()
                return {"ok": False, "kind": "memory", "detail": detail, "restart": True}, b""
            return {"ok": False, "kind": "damaged", "detail": detail}, b""

    def _entry(self, req: dict[str, Any], blob: bytes) -> _Entry | None:
        sha = str(req["sha"])
        entry = self.entries.get(sha)
        if entry is None:
            if not blob:
                return None
            entry = _Entry(blob)
            self.entries[sha] = entry
            while len(self.entries) > self.cache_size:
                _, old = self.entries.popitem(last=False)
                for od in old.docs.values():
                    _close(od.doc)
        self.entries.move_to_end(sha)
        return entry

    # -- opening

    @staticmethod
    def _key(req: dict[str, Any]) -> str:
        password = req.get("password")
        return f"{req['media_type']}\x00{password if password is not None else ''}"

    def _open(self, entry: _Entry, req: dict[str, Any]) -> OpenDoc:
        media_type = str(req["media_type"])
        password = req.get("password")
        key = self._key(req)
        od = entry.docs.get(key)
        if od is not None:
            return od
        filetype = MUPDF_FILETYPES.get(media_type)
        if filetype is None:
            raise Failure("unsupported", media_type)
        if media_type.startswith("image/"):
            size = image_pixel_size(entry.data, media_type)
            limit = int(req.get("max_image_pixels", 100_000_000))
            if size is not None and size[0] * size[1] > limit:
                raise Failure("image_too_large", f"{size[0]}x{size[1]}x{limit}")
        doc = self._open_raw(entry.data, filetype)
        if media_type == "application/pdf" and not doc.is_pdf:
            _close(doc)
            raise Failure("damaged", "it is not a PDF inside")
        if doc.needs_pass:
            # Authenticate BEFORE touching page_count or pages: reading them first makes MuPDF
            # parse object streams with the wrong key and lose every page (SOURCES.md trap).
            if not password:
                _close(doc)
                raise Failure("password_required")
            _close(doc)
            doc = None
            for variant in password_variants(str(password)):
                candidate = self._open_raw(entry.data, filetype)
                if candidate.authenticate(variant):
                    doc = candidate
                    break
                _close(candidate)
            if doc is None:
                raise Failure("wrong_password")
        try:
            count = int(doc.page_count)
        except Exception as exc:
            _close(doc)
            raise Failure("bad_page_count", short_text(exc)) from None
        max_pages = int(req.get("max_pages", 5000))
        if count > max_pages:
            _close(doc)
            raise Failure("too_many_pages", f"{count}\x00{max_pages}")
        if count <= 0:
            repaired = bool(getattr(doc, "is_repaired", False))
            _close(doc)
            raise Failure("no_pages", "repaired" if repaired else "")
        od = OpenDoc(doc, count, media_type)
        entry.docs[key] = od
        return od

    def _open_raw(self, data: bytes, filetype: str) -> Any:
        try:
            return self.pymupdf.open(stream=data, filetype=filetype)
        except MemoryError:
            raise
        except Exception as exc:
            warnings = self._warnings()
            detail = warnings[0] if warnings else short_text(exc)
            if "Failed to open" in detail or "Cannot open" in detail:
                detail = ""
            detail = detail.rstrip(".")
            raise Failure("cannot_open", detail) from None

    def _warnings(self) -> list[str]:
        text = self.pymupdf.TOOLS.mupdf_warnings(reset=False) or ""
        lines: list[str] = []
        for line in text.splitlines():
            line = line.strip()
            if line and line not in lines:
                lines.append(line[:200])
        return lines

    # -- probe

    def _probe(self, entry: _Entry, req: dict[str, Any]) -> dict[str, Any]:
        od = self._open(entry, req)
        if od.probe is not None:
            return od.probe
        doc = od.doc
        bad: list[int] = []
        first_size: list[float] | None = None
        first_error = ""
        for i in range(od.page_count):
            try:
                page = doc.load_page(i)
                if i == 0:
                    r = page.rect
                    first_size = [float(r.width), float(r.height)]
            except MemoryError:
                raise
            except Exception as exc:
                bad.append(i)
                first_error = first_error or short_text(exc)
        if bad:
            raise Failure("bad_pages", f"{od.page_count}\x00{page_ranges(bad)}\x00{first_error}")
        if first_size is None or first_size[0] <= 0 or first_size[1] <= 0:
            raise Failure("damaged", "the first page has no size")
        od.validated = True
        result: dict[str, Any] = {
            "ok": True,
            "page_count": od.page_count,
            "first_page_size": first_size,
            "encrypted": False,
            "needs_password": False,
            "has_javascript": False,
            "has_launch_action": False,
            "has_embedded_files": False,
            "has_xfa": False,
            "repaired": False,
            "encryption": "",
        }
        if doc.is_pdf:
            self._scan_pdf(doc, result)
        result["mupdf_warnings"] = self._warnings()[:20]
        od.probe = result
        return result

    def _scan_pdf(self, doc: Any, result: dict[str, Any]) -> None:
        meta = doc.metadata or {}
        encryption = meta.get("encryption") or ""
        result["encryption"] = encryption
        result["encrypted"] = bool(encryption) or bool(doc.is_encrypted)
        result["needs_password"] = False  # we only get here once it is open (and authenticated)
        result["repaired"] = bool(getattr(doc, "is_repaired", False))
        try:
            xfa = doc.xref_get_key(doc.pdf_catalog(), "AcroForm/XFA")
            result["has_xfa"] = xfa[0] not in ("null", "")
        except Exception:
            pass
        with contextlib.suppress(Exception):
            result["has_embedded_files"] = doc.embfile_count() > 0
        try:
            names_js = doc.xref_get_key(doc.pdf_catalog(), "Names/JavaScript")
            if names_js[0] not in ("null", ""):
                result["has_javascript"] = True
        except Exception:
            pass
        # Scan every object's dictionary (never stream contents) for actions. Nothing is executed:
        # this only reads the text of the objects.
        try:
            n = min(int(doc.xref_length()), 500_000)
        except Exception:
            n = 0
        for xref in range(1, n):
            try:
                text = doc.xref_object(xref, compressed=True).encode("latin-1", "replace")
            except Exception:
                continue
            if not result["has_javascript"] and _JS_RE.search(text):
                result["has_javascript"] = True
            if not result["has_launch_action"] and _LAUNCH_RE.search(text):
                result["has_launch_action"] = True
            if not result["has_embedded_files"] and _EMBEDDED_RE.search(text):
                result["has_embedded_files"] = True

    # -- form fields

    def _fields(self, entry: _Entry, req: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """Every form field (page, name, type, value), the metadata keywords and, for a PDF without
        text fields, its text up to ``text_limit`` characters."""
        od = self._open(entry, req)
        if not od.doc.is_pdf:
            raise Failure("unsupported", od.media_type)
        doc = od.doc
        fields: list[list[Any]] = []
        truncated = False
        for index in range(od.page_count):
            try:
                page = doc.load_page(index)
                widgets = list(page.widgets())
            except MemoryError:
                raise
            except Exception as exc:
                raise read_failure(index, exc) from None
            for widget in widgets:
                if len(fields) >= MAX_FIELDS:
                    truncated = True
                    break
                value = widget.field_value
                fields.append([index, str(widget.field_name or "")[:MAX_FIELD_TEXT],
                               str(widget.field_type_string or ""),
                               value[:MAX_FIELD_TEXT] if isinstance(value, str) else None])
        text = ""
        limit = int(req.get("text_limit", 0))
        if limit > 0 and not any(f[2] in TEXT_FIELD_TYPES for f in fields):
            parts: list[str] = []
            size = 0
            for index in range(od.page_count):
                if size >= limit:
                    break
                try:
                    chunk = doc.load_page(index).get_text()
                except MemoryError:
                    raise
                except Exception as exc:
                    raise read_failure(index, exc) from None
                parts.append(chunk)
                size += len(chunk)
            text = "".join(parts)[:limit]
        keywords = str((doc.metadata or {}).get("keywords") or "")[:MAX_FIELD_TEXT]
        body = json.dumps({"keywords": keywords, "fields": fields, "text": text, "truncated": truncated})
        header = {"ok": True, "page_count": od.page_count, "mupdf_warnings": self._warnings()[:20]}
        return header, body.encode("utf-8")

    # -- render

    def _render(self, entry: _Entry, req: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        od = self._open(entry, req)
        pix, zoom, scaled_down, page_rotation = self._pixmap(od, req)
        png = encode_png(pix.width, pix.height, pix.n, pix.stride, pix.samples_mv)
        header = {
            "ok": True,
            "width": pix.width,
            "height": pix.height,
            "page_count": od.page_count,
            "scaled_down": scaled_down,
            "dpi": zoom * 72.0,
            "page_rotation": page_rotation,
            "mupdf_warnings": self._warnings()[:20],
        }
        return header, png

    def _pixmap(self, od: OpenDoc, req: dict[str, Any]) -> tuple[Any, float, bool, int]:
        """Page ``page_index`` of ``od`` as an RGB pixmap without alpha (``dpi`` or, for a thumbnail,
        ``max_side``; within ``max_pixels``): the pixmap, its zoom, whether it was scaled down and the
        page's own /Rotate (turned in the pixmap before the ``rotation`` asked)."""
        pymupdf = self.pymupdf
        index = int(req["page_index"])
        if not 0 <= index < od.page_count:
            raise Failure("no_such_page", f"{index + 1}\x00{od.page_count}")
        try:
            page = od.doc.load_page(index)
        except MemoryError:
            raise
        except Exception as exc:
            raise Failure("bad_page", f"{index + 1}\x00{short_text(exc)}") from None
        rect = page.rect
        w, h = float(rect.width), float(rect.height)
        if not (w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h)):
            raise Failure("bad_page", f"{index + 1}\x00the page has no size")
        max_pixels = max(1, int(req.get("max_pixels", 40_000_000)))
        rotation = int(req.get("rotation", 0)) % 360
        max_side = req.get("max_side")
        scaled_down = False
        target: tuple[int, int] | None = None
        if max_side:
            # Thumbnail. Some pages are pathologically slow at 30-50 dpi but fast at 72 dpi and up
            # (slow-thumbnail-page3.pdf: 62 s at 50 dpi, 8 ms at 72 dpi), so render at >= 72 dpi
            # and shrink the pixmap, which costs a few milliseconds.
            want = float(max_side) / max(w, h)
            zoom = max(want, 1.0)
            tw = max(1, round(w * want))
            th = max(1, round(h * want))
            target = (th, tw) if rotation in (90, 270) else (tw, th)
        else:
            zoom = float(req.get("dpi", 150)) / 72.0
        if w * zoom * h * zoom > max_pixels:
            zoom = math.sqrt(max_pixels / (w * h)) * 0.999
            scaled_down = target is None
        matrix = pymupdf.Matrix(zoom, zoom).prerotate(rotation)
        pix = page_pixmap(page, index, matrix=matrix, colorspace=pymupdf.csRGB, alpha=False, annots=True)
        if target is not None and (pix.width > target[0] or pix.height > target[1]):
            pix = pymupdf.Pixmap(pix, target[0], target[1], None)
        if pix.alpha:
            pix = pymupdf.Pixmap(pix, 0)
        return pix, zoom, scaled_down, int(page.rotation) % 360

    # -- reading the text of the pages

    def _read(self, entry: _Entry, req: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """The words of the first ``read_pages`` pages, each page read the best way it allows: the
        values of its filled form fields, else its text layer, else OCR (``tesseract``: the path of
        the program, empty when it is not installed). Tesseract is given until ``deadline_seconds``
        from now for the whole document."""
        od = self._open(entry, req)
        deadline = time.monotonic() + float(req.get("deadline_seconds", 60.0))
        tesseract = str(req.get("tesseract") or "")
        count = min(od.page_count, max(1, int(req.get("read_pages", 10))))
        pages: list[dict[str, Any]] = []
        for index in range(count):
            started = time.perf_counter()
            try:
                page = od.doc.load_page(index)
            except MemoryError:
                raise
            except Exception as exc:
                raise read_failure(index, exc) from None
            result = None
            if od.doc.is_pdf:
                result = self.reader.form_page(page, index) or self.reader.text_page(page, index)
            if result is None:
                result = self.reader.ocr_page(od, page, index, tesseract, deadline)
            rect = page.rect * page.derotation_matrix
            result.update(index=index, width=abs(rect.width), height=abs(rect.height),
                          page_rotation=int(page.rotation) % 360,
                          seconds=round(time.perf_counter() - started, 3))
            pages.append(result)
        body = json.dumps({"pages": pages, "page_count": od.page_count})
        header = {"ok": True, "mupdf_warnings": self._warnings()[:20]}
        return header, body.encode("utf-8")


    # -- the audit pack's book

    def _book(self, entry: _Entry, req: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
        """The document's pages for the audit pack's PDF book, as a new PDF written here.

        A PDF's pages have their form fields and annotations flattened into the page content and are
        copied alone into a new document (no catalog, scripts, actions, attachments, links, outlines
        or form of the original), then written by MuPDF with garbage collection: what the parent gets
        is MuPDF's own serialisation, which it only copies pages from. An image becomes one page of
        ``page_size`` points per frame, rendered at ``dpi`` (within ``max_pixels``) and centred within
        ``margin``, at most at its natural size. Page ``i`` is stamped with ``stamps[i]``; the stamps
        must be as many as the pages (the parent laid out the book with the probed page count)."""
        pymupdf = self.pymupdf
        stamps = [str(text) for text in req.get("stamps", ())]
        od = self._open(entry, req)
        if len(stamps) != od.page_count:
            raise Failure("page_count_changed", f"{od.page_count}\x00{len(stamps)}")
        out = pymupdf.open()
        try:
            if od.doc.is_pdf:
                # baked and stamped in place, so the document leaves the cache (closed below)
                entry.docs.pop(self._key(req), None)
                try:
                    src = od.doc
                    src.bake(annots=True, widgets=True)
                    for index, text in enumerate(stamps):
                        stamp_page(src[index], text, own=False)
                    out.insert_pdf(src, links=False, annots=False, widgets=False)
                finally:
                    _close(od.doc)
            else:
                pw, ph = (float(x) for x in req.get("page_size", (612.0, 792.0)))
                margin = float(req.get("margin", 36.0))
                dpi = float(req.get("dpi", 150.0))
                for index, text in enumerate(stamps):
                    pix, _zoom, _scaled, _turn = self._pixmap(od, {**req, "page_index": index, "dpi": dpi})
                    scale = min((pw - 2 * margin) / pix.width, (ph - 2 * margin) / pix.height, 72 / dpi)
                    w, h = pix.width * scale, pix.height * scale
                    page = out.new_page(width=pw, height=ph)
                    x0, y0 = (pw - w) / 2, (ph - h) / 2
                    page.insert_image(pymupdf.Rect(x0, y0, x0 + w, y0 + h), pixmap=pix)
                    stamp_page(page, text, own=False)
            if out.page_count != len(stamps):
                raise Failure("page_count_changed", f"{out.page_count}\x00{len(stamps)}")
            pdf = out.tobytes(garbage=1, no_new_id=True)
        finally:
            _close(out)
        return {"ok": True, "page_count": len(stamps), "mupdf_warnings": self._warnings()[:20]}, pdf



def _parse_email(raw: bytes) -> tuple[dict[str, Any], bytes]:
    """Sender address, Date (ISO 8601, or "" when absent or not a date), subject and every attached
    part of an e-mail. The attachments travel in the blob, one after the other, with their names,
    content types and lengths in the JSON document that precedes them (its length is in the header)."""
    import email
    import email.policy
    import email.utils

    msg = email.message_from_bytes(raw, policy=email.policy.default)
    sender = email.utils.parseaddr(str(msg.get("From", ""))[:MAX_HEADER_TEXT])[1].strip().lower()
    sent_at = ""
    date = msg.get("Date")
    if date:
        try:
            when = email.utils.parsedate_to_datetime(str(date)[:MAX_HEADER_TEXT])
            sent_at = when.isoformat()
        except (TypeError, ValueError, IndexError, OverflowError):
            sent_at = ""
    subject = str(msg.get("Subject", ""))[:MAX_HEADER_TEXT]
    parts: list[list[Any]] = []
    blobs: list[bytes] = []
    truncated = False
    iter_attachments = getattr(msg, "iter_attachments", None)
    for att in iter_attachments() if iter_attachments is not None else ():
        if len(parts) >= MAX_ATTACHMENTS:
            truncated = True
            break
        payload = att.get_payload(decode=True)
        if not isinstance(payload, bytes):
            payload = b""
        parts.append([str(att.get_filename() or "")[:255], att.get_content_type(), len(payload)])
        blobs.append(payload)
    meta = json.dumps({"sender": sender, "sent_at": sent_at, "subject": subject, "parts": parts,
                       "truncated": truncated}).encode("utf-8")
    return {"ok": True, "meta_length": len(meta)}, meta + b"".join(blobs)


def _close(doc: Any) -> None:
    with contextlib.suppress(Exception):
        doc.close()


# ------------------------------------------------------------------------------------------ main


def _limit_resources(memory_limit: int) -> None:
    """Cap the address space (Linux/macOS) and die with the parent (Linux)."""
    if memory_limit > 0:
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
        except (ImportError, ValueError, OSError):
            pass  # Windows has no ``resource`` module; the parent's time limits still bound the worker
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
        except Exception:
            pass


def main(argv: list[str]) -> int:
    """Serve requests until stdin closes or a ``quit`` request arrives."""
    # Keep a private copy of stdout for the protocol and point fd 1 at stderr, so that nothing
    # MuPDF or Python prints can corrupt a frame.
    proto_out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    proto_in = os.fdopen(os.dup(0), "rb", buffering=0)
    memory_limit = 0
    cache_size = 4
    parent_pid = 0
    args = iter(argv)
    for arg in args:
        if arg == "--memory-limit":
            memory_limit = int(next(args))
        elif arg == "--cache-size":
            cache_size = int(next(args))
        elif arg == "--parent-pid":
            parent_pid = int(next(args))
    _limit_resources(memory_limit)
    if parent_pid and os.getppid() != parent_pid:
        return 0  # the parent died before we could register for its death
    import pymupdf

    pymupdf.TOOLS.mupdf_display_errors(False)
    pymupdf.TOOLS.mupdf_display_warnings(False)
    worker = Worker(pymupdf, cache_size)
    write_frame(proto_out, {"ok": True, "ready": True, "pymupdf": pymupdf.VersionBind})
    while True:
        frame = read_frame(proto_in)
        if frame is None:
            return 0
        req, blob = frame
        if req.get("op") == "quit":
            write_frame(proto_out, {"ok": True})
            return 0
        header, out = worker.handle(req, blob)
        del blob
        write_frame(proto_out, header, out)
        if header.get("restart"):
            return 3  # after memory exhaustion, start from a clean process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
