"""The code that runs inside the document worker process (see :mod:`ecms_desktop.services.documents.sandbox`).

This file is started as a *script* (``python -I _document_worker.py``) by
:class:`ecms_desktop.services.documents.sandbox.DocumentSandbox`. It imports nothing from
``ecms_desktop`` on purpose: the worker is the only place where untrusted customer files are parsed
and rendered, so it is kept small, imports only the standard library and PyMuPDF, and can be killed
at any moment without losing anything; to read scans it runs the ``tesseract`` program as a child
process that dies with it. It is one file on purpose too: ``-I`` leaves even the script's
own folder off ``sys.path``, so the worker could not import a module beside it.

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
pages with their boxes (filled form fields, else the text layer, else OCR; see :meth:`Worker._read`)
and answers with a JSON document in the blob. If the
request has no blob and the worker no longer holds that document, it answers
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
import struct
import subprocess
import sys
import time
import unicodedata
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import IO, Any

FRAME_HEADER = struct.Struct("!II")
MAX_HEADER_BYTES = 1 << 20

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
_MEMORY_RE = re.compile(r"malloc|out of memory|cannot allocate|memory", re.IGNORECASE)

#: Bounds on what a ``fields`` answer carries back (a crafted form with a million fields or a
#: megabyte-long value must not make the answer itself a problem).
MAX_FIELDS = 5000
MAX_FIELD_TEXT = 4000
#: Field types that hold text; a PDF without any is a scan or a printout, whose text is read instead.
TEXT_FIELD_TYPES = frozenset({"Text", "ComboBox", "ListBox"})
#: Bounds on an ``email`` answer.
MAX_ATTACHMENTS = 200
MAX_HEADER_TEXT = 2000


class Failure(Exception):
    """A reason the document cannot be used; ``kind`` is mapped to a message by the parent."""

    def __init__(self, kind: str, detail: str = "", *, restart: bool = False) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.restart = restart


# --------------------------------------------------------------------------------------------- I/O


def read_frame(stream: IO[bytes]) -> tuple[dict[str, Any], bytes] | None:
    """Read one frame; ``None`` at end of file (the parent went away)."""
    head = _read_exact(stream, FRAME_HEADER.size)
    if head is None:
        return None
    hlen, blen = FRAME_HEADER.unpack(head)
    if hlen > MAX_HEADER_BYTES:
        raise ValueError("frame header too large")
    header = _read_exact(stream, hlen)
    blob = _read_exact(stream, blen) if blen else b""
    if header is None or blob is None:
        return None
    return json.loads(header.decode("utf-8")), blob


def write_frame(stream: IO[bytes], header: dict[str, Any], blob: bytes = b"") -> None:
    """Write one frame and flush it."""
    encoded = json.dumps(header).encode("utf-8")
    stream.write(FRAME_HEADER.pack(len(encoded), len(blob)) + encoded)
    if blob:
        stream.write(blob)
    stream.flush()


def _read_exact(stream: IO[bytes], n: int) -> bytes | None:
    chunks = []
    while n > 0:
        chunk = stream.read(n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------------------- pure helpers


def encode_png(width: int, height: int, n: int, stride: int, samples: memoryview | bytes) -> bytes:
    """Encode 8-bit grey (n=1), RGB (n=3) or RGBA (n=4) samples as PNG.

    MuPDF's own PNG writer uses zlib level 6, which costs ~70 ms on a 150-dpi page; level 1 costs
    ~20 ms and makes files ~10 % bigger, which is the better trade for an on-screen preview.
    """
    colour_type = {1: 0, 3: 2, 4: 6}[n]
    rowlen = width * n
    raw = bytearray((rowlen + 1) * height)
    view = memoryview(raw)
    src = memoryview(samples)
    for y in range(height):
        out = y * (rowlen + 1) + 1
        view[out : out + rowlen] = src[y * stride : y * stride + rowlen]
    level = 1 if width * height > 1_000_000 else 6
    compressed = zlib.compress(bytes(raw), level)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", compressed) + chunk(b"IEND", b"")


def image_pixel_size(data: bytes, media_type: str) -> tuple[int, int] | None:
    """Width and height in pixels from the header of a PNG, JPEG, GIF or BMP (None if unknown).

    Read before MuPDF decodes anything, so that a 1 KB JPEG claiming 49069 x 6528 pixels is refused
    without allocating gigabytes.
    """
    try:
        if media_type == "image/png" and len(data) >= 24:
            w, h = struct.unpack(">II", data[16:24])
            return w, h
        if media_type == "image/gif" and len(data) >= 10:
            w, h = struct.unpack("<HH", data[6:10])
            return w, h
        if media_type == "image/bmp" and len(data) >= 26:
            w, h = struct.unpack("<ii", data[18:26])
            return abs(w), abs(h)
        if media_type == "image/jpeg":
            return _jpeg_size(data)
    except struct.error:
        return None
    return None


_SOF_MARKERS = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    # Largest SOF frame found (a file with two SOI markers may carry several).
    best: tuple[int, int] | None = None
    i = 2
    n = len(data)
    steps = 0
    while i + 4 <= n and steps < 100_000:
        steps += 1
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        if marker == 0xD9:
            i += 2
            continue
        (seglen,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _SOF_MARKERS and i + 9 <= n:
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            if best is None or w * h > best[0] * best[1]:
                best = (w, h)
        if seglen < 2:
            i += 2
            continue
        i += 2 + seglen
    return best


def password_variants(password: str) -> list[str]:
    """The password as typed, then its SASLprep (RFC 4013) and NFKC forms.

    PDF 2.0 (AES-256, revision 6) requires SASLprep; MuPDF does not apply it itself, so a password
    with a soft hyphen or a feminine ordinal only works after normalising it here.
    """
    import stringprep

    mapped = []
    for ch in password:
        if stringprep.in_table_b1(ch):
            continue
        mapped.append(" " if stringprep.in_table_c12(ch) else ch)
    variants = [
        password,
        unicodedata.normalize("NFKC", "".join(mapped)),
        unicodedata.normalize("NFKC", password),
    ]
    variants.append(unicodedata.normalize("NFC", password))
    seen: list[str] = []
    for v in variants:
        if v not in seen:
            seen.append(v)
    return seen


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    text = re.sub(r"^code=\d+:\s*", "", text)
    return text.splitlines()[0][:200].rstrip(".") if text else type(exc).__name__


#: Font size of the page label ("Certificate N - Page X of Y") of the audit pack's book.
STAMP_FONT_SIZE = 7.5
_CHAR_WIDTHS: dict[str, float] = {}


def stamp_page(page: Any, text: str, own: bool) -> None:
    """Print ``text`` (a page label of the audit pack's book) on ``page`` through PyMuPDF's own drawing
    API, which wraps the existing content (whatever form its /Contents takes) in a balanced graphics
    state before adding to it.

    ``own``: a page the program drew (centred grey line at the foot); otherwise a certificate's page
    (a small label on a white backing in the bottom-right margin, upright whatever its /Rotate).
    Used by the worker for customer pages and by the book's writer for its own pages."""
    import pymupdf

    fs = STAMP_FONT_SIZE
    width = _stamp_width(text)
    visible = page.rect  # the page as shown (rotated), origin top-left
    to_page = page.derotation_matrix  # shown -> unrotated page coordinates, which the API takes
    shape = page.new_shape()
    if own:
        origin = pymupdf.Point((visible.width - width) / 2, visible.height - 22)
        gray = 0.35
    else:
        x0, y1 = visible.width - width - 14, visible.height - 4
        shape.draw_rect(pymupdf.Rect(x0 - 3, y1 - fs - 3, x0 + width + 3, y1 + 1) * to_page)
        shape.finish(color=None, fill=(1, 1, 1), fill_opacity=0.85)
        origin = pymupdf.Point(x0, y1 - 2)
        gray = 0.25
    shape.insert_text(origin * to_page, text, fontsize=fs, fontname="helv", color=(gray, gray, gray),
                      rotate=page.rotation)
    shape.commit(overlay=True)


def _stamp_width(text: str) -> float:
    """The label's width in Helvetica (per-character widths cached: measuring a whole string makes
    PyMuPDF load the font each time)."""
    import pymupdf

    for ch in text:
        if ch not in _CHAR_WIDTHS:
            _CHAR_WIDTHS[ch] = pymupdf.get_text_length(ch, fontname="helv", fontsize=1)
    return sum(_CHAR_WIDTHS[ch] for ch in text) * STAMP_FONT_SIZE


def _page_ranges(pages: list[int]) -> str:
    parts: list[str] = []
    start = prev = pages[0]
    for p in [*pages[1:], -10]:
        if p == prev + 1:
            prev = p
            continue
        parts.append(f"{start + 1}" if start == prev else f"{start + 1}-{prev + 1}")
        start = prev = p
    return ", ".join(parts)


# ------------------------------------------------------------------------- reading a page's text

#: Resolution a PDF page is rendered at for OCR; an image is read at its own pixels, its longer side
#: brought within OCR_MIN_SIDE..OCR_MAX_SIDE (a letter page at 200-400 dpi).
OCR_DPI = 300
OCR_MIN_SIDE = 2200
OCR_MAX_SIDE = 4400
#: Longer side, in pixels, of the small picture the skew is measured on; largest number of ink runs used.
SKEW_SIDE = 900
SKEW_POINTS = 5000
#: Skews up to this many degrees are measured and corrected; less than SKEW_MIN is left alone.
SKEW_MAX = 8
SKEW_MIN = 0.3
#: A text layer with fewer letters and digits than this, on a page mostly covered by an image, is a
#: scan's stamp or fax header rather than the page's text: the page is OCRed instead.
TEXT_LAYER_MIN_CHARS = 40
#: A page read with a mean word confidence below this is read again turned half round (it may be upside
#: down, or sideways the other way), and the better reading kept.
OCR_RETRY_BELOW = 0.6
#: Bounds on a ``read`` answer.
MAX_WORDS_PER_PAGE = 20_000
MAX_WORD_TEXT = 400
_RUN_RE = re.compile(b"\x01+")
_TESS_VERSION_RE = re.compile(r"tesseract\s+v?(\d[\w.\-]*)", re.IGNORECASE)


def otsu_threshold(histogram: list[int]) -> int:
    """The grey level that best separates ink from paper in ``histogram`` (256 counts; Otsu's method)."""
    total = sum(histogram)
    weighted = sum(i * h for i, h in enumerate(histogram))
    below = below_sum = 0
    best_level, best = 128, -1.0
    for level in range(256):
        below += histogram[level]
        if below == 0:
            continue
        above = total - below
        if above == 0:
            break
        below_sum += level * histogram[level]
        spread = below * above * (below_sum / below - (weighted - below_sum) / above) ** 2
        if spread > best:
            best_level, best = level, spread
    return best_level


def ink_runs(samples: bytes, width: int, height: int, stride: int,
             limit: int = SKEW_POINTS) -> list[tuple[float, int, int]]:
    """The horizontal runs of ink of an 8-bit grey picture as (middle x, y, length), at most ``limit``
    of them (evenly spaced through the page when there are more)."""
    histogram = [0] * 256
    for level in set(samples):
        histogram[level] = samples.count(level)
    if sum(histogram[:128]) * 2000 < width * height:
        return []  # (nearly) no ink: a blank page
    threshold = otsu_threshold(histogram)
    table = bytes(1 if v <= threshold else 0 for v in range(256))
    runs: list[tuple[float, int, int]] = []
    for y in range(height):
        row = samples[y * stride:y * stride + width].translate(table)
        runs.extend(((m.start() + m.end()) / 2, y, m.end() - m.start()) for m in _RUN_RE.finditer(row))
    if len(runs) > limit:
        step = len(runs) / limit
        runs = [runs[int(i * step)] for i in range(limit)]
    return runs


def _profile_score(runs: list[tuple[float, int, int]], angle: float, vertical: bool) -> int:
    """How sharply the ink falls into lines when projected at ``angle`` degrees (sum of squared bins)."""
    tan = math.tan(math.radians(angle))
    bins: dict[int, int] = {}
    if vertical:
        for x, y, w in runs:
            k = int(x - y * tan)
            bins[k] = bins.get(k, 0) + w
    else:
        for x, y, w in runs:
            k = int(y + x * tan)
            bins[k] = bins.get(k, 0) + w
    return sum(v * v for v in bins.values())


def estimate_skew(runs: list[tuple[float, int, int]]) -> tuple[float, bool]:
    """The page's skew in degrees (positive: the text is turned anticlockwise) and whether its lines run
    down the page (a page scanned sideways), measured by the projection profile of its ink in whole
    degrees up to ``SKEW_MAX``, across and down the page, and then in tenths."""
    if len(runs) < 50:
        return 0.0, False
    best = max((_profile_score(runs, a, vertical), a, vertical)
               for vertical in (False, True) for a in range(-SKEW_MAX, SKEW_MAX + 1))
    _, coarse, vertical = best
    fine = max((_profile_score(runs, coarse + i / 10, vertical), coarse + i / 10) for i in range(-9, 10))
    angle = round(fine[1], 1)
    return (0.0 if abs(angle) < SKEW_MIN or abs(angle) >= SKEW_MAX else angle), vertical


def pgm_bytes(width: int, height: int, stride: int, samples: bytes) -> bytes:
    """An 8-bit grey picture as a binary PGM file (what Tesseract reads fastest from a pipe)."""
    if stride == width:
        body = samples[:width * height]
    else:
        body = b"".join(samples[y * stride:y * stride + width] for y in range(height))
    return b"P5\n%d %d\n255\n" % (width, height) + bytes(body)


def parse_tesseract_tsv(tsv: str) -> list[tuple[str, float, tuple[int, int, int, int], int, int]]:
    """The words of Tesseract's TSV output: (text, confidence 0..1, (left, top, width, height) in
    pixels, block number, line number within the page); lines are numbered through the page."""
    words: list[tuple[str, float, tuple[int, int, int, int], int, int]] = []
    lines: dict[tuple[int, int, int], int] = {}
    for row in tsv.splitlines()[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":
            continue
        text = cols[11].strip()
        try:
            conf = float(cols[10])
            block, par, line = int(cols[2]), int(cols[3]), int(cols[4])
            box = (int(cols[6]), int(cols[7]), int(cols[8]), int(cols[9]))
        except ValueError:
            continue
        if not text or conf < 0:
            continue
        line_no = lines.setdefault((block, par, line), len(lines))
        words.append((text[:MAX_WORD_TEXT], max(0.0, min(1.0, conf / 100.0)), box, block, line_no))
    return words


def _mean_confidence(words: list[list[Any]]) -> float:
    """The mean confidence of the words of a reading (0 when it has none)."""
    return sum(w[1] for w in words) / len(words) if words else 0.0


def _tesseract_env() -> dict[str, str]:
    """Tesseract's environment: one thread (OpenMP's threads make a page several times slower on a
    busy machine; see bench/README.md, "OCR")."""
    return {**os.environ, "OMP_THREAD_LIMIT": "1"}


_LINUX = sys.platform.startswith("linux")


def _die_with_parent() -> None:
    """In a child process before it starts (Linux): be killed when this worker dies, so that a worker
    killed for taking too long does not leave Tesseract running."""
    import ctypes
    import signal

    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG


# ----------------------------------------------------------------------------------- the worker


@dataclass
class _OpenDoc:
    doc: Any
    page_count: int
    media_type: str
    validated: bool = False
    probe: dict[str, Any] | None = None


@dataclass
class _Entry:
    data: bytes
    docs: dict[str, _OpenDoc] = field(default_factory=dict)


class Worker:
    """Holds the last few documents (by SHA-256) and answers requests one at a time."""

    def __init__(self, pymupdf: Any, cache_size: int = 4) -> None:
        self.pymupdf = pymupdf
        self.cache_size = max(1, cache_size)
        self.entries: OrderedDict[str, _Entry] = OrderedDict()
        #: Tesseract's version, by the path of the program (asked once).
        self.engine_versions: dict[str, str] = {}

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
            detail = _short(exc)
            if _MEMORY_RE.search(detail):
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

    def _open(self, entry: _Entry, req: dict[str, Any]) -> _OpenDoc:
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
            raise Failure("bad_page_count", _short(exc)) from None
        max_pages = int(req.get("max_pages", 5000))
        if count > max_pages:
            _close(doc)
            raise Failure("too_many_pages", f"{count}\x00{max_pages}")
        if count <= 0:
            repaired = bool(getattr(doc, "is_repaired", False))
            _close(doc)
            raise Failure("no_pages", "repaired" if repaired else "")
        od = _OpenDoc(doc, count, media_type)
        entry.docs[key] = od
        return od

    def _open_raw(self, data: bytes, filetype: str) -> Any:
        try:
            return self.pymupdf.open(stream=data, filetype=filetype)
        except MemoryError:
            raise
        except Exception as exc:
            warnings = self._warnings()
            detail = warnings[0] if warnings else _short(exc)
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
                first_error = first_error or _short(exc)
        if bad:
            raise Failure("bad_pages", f"{od.page_count}\x00{_page_ranges(bad)}\x00{first_error}")
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
                raise _read_failure(index, exc) from None
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
                    raise _read_failure(index, exc) from None
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
        pix, zoom, scaled_down = self._pixmap(od, req)
        png = encode_png(pix.width, pix.height, pix.n, pix.stride, pix.samples_mv)
        header = {
            "ok": True,
            "width": pix.width,
            "height": pix.height,
            "page_count": od.page_count,
            "scaled_down": scaled_down,
            "dpi": zoom * 72.0,
            "mupdf_warnings": self._warnings()[:20],
        }
        return header, png

    def _pixmap(self, od: _OpenDoc, req: dict[str, Any]) -> tuple[Any, float, bool]:
        """Page ``page_index`` of ``od`` as an RGB pixmap without alpha (``dpi`` or, for a thumbnail,
        ``max_side``; within ``max_pixels``): the pixmap, its zoom and whether it was scaled down."""
        pymupdf = self.pymupdf
        index = int(req["page_index"])
        if not 0 <= index < od.page_count:
            raise Failure("no_such_page", f"{index + 1}\x00{od.page_count}")
        try:
            page = od.doc.load_page(index)
        except MemoryError:
            raise
        except Exception as exc:
            raise Failure("bad_page", f"{index + 1}\x00{_short(exc)}") from None
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
        try:
            pix = page.get_pixmap(matrix=matrix, colorspace=pymupdf.csRGB, alpha=False, annots=True)
        except MemoryError:
            raise
        except Exception as exc:
            detail = _short(exc)
            if _MEMORY_RE.search(detail):
                raise Failure("memory", detail, restart=True) from None
            raise Failure("bad_page", f"{index + 1}\x00{detail}") from None
        if target is not None and (pix.width > target[0] or pix.height > target[1]):
            pix = pymupdf.Pixmap(pix, target[0], target[1], None)
        if pix.alpha:
            pix = pymupdf.Pixmap(pix, 0)
        return pix, zoom, scaled_down

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
                raise _read_failure(index, exc) from None
            result = None
            if od.doc.is_pdf:
                result = self._form_page(page, index) or self._text_page(page, index)
            if result is None:
                result = self._ocr_page(od, page, index, tesseract, deadline)
            rect = page.rect * page.derotation_matrix
            result.update(index=index, width=abs(rect.width), height=abs(rect.height),
                          page_rotation=int(page.rotation) % 360,
                          seconds=round(time.perf_counter() - started, 3))
            pages.append(result)
        body = json.dumps({"pages": pages, "page_count": od.page_count})
        header = {"ok": True, "mupdf_warnings": self._warnings()[:20]}
        return header, body.encode("utf-8")

    def _pymupdf_page(self, method: str, words: list[list[Any]]) -> dict[str, Any]:
        return {"method": method, "rotation": 0, "skew": 0.0, "words": words[:MAX_WORDS_PER_PAGE],
                "engine": "pymupdf", "engine_version": str(self.pymupdf.VersionBind), "note": ""}

    def _form_page(self, page: Any, index: int) -> dict[str, Any] | None:
        """The page's filled form fields (a text value, or the chosen state of a check box or radio
        button) as words named by their field, followed by the page's printed text; None when no
        field of the page is filled."""
        try:
            widgets = list(page.widgets())
        except MemoryError:
            raise
        except Exception as exc:
            raise _read_failure(index, exc) from None
        filled: list[tuple[str, str, Any]] = []
        for widget in widgets[:MAX_FIELDS]:
            value = widget.field_value
            kind = str(widget.field_type_string or "")
            if kind in ("CheckBox", "RadioButton"):
                text = str(value) if value not in (None, False, "", "Off") else ""
            else:
                text = value.strip() if isinstance(value, str) else ""
            if text:
                filled.append((str(widget.field_name or ""), text, widget.rect))
        if not filled:
            return None
        printed = self._layer_words(page, index)
        blocks = 1 + max((w[6] for w in printed), default=-1)
        words = [[text[:MAX_WORD_TEXT], 1.0, r.x0, r.y0, r.x1, r.y1, blocks + i, 0, name[:MAX_WORD_TEXT]]
                 for i, (name, text, r) in enumerate(filled)]
        return self._pymupdf_page("form_fields", words + printed)

    def _layer_words(self, page: Any, index: int) -> list[list[Any]]:
        try:
            raw = page.get_text("words", sort=True)
        except MemoryError:
            raise
        except Exception as exc:
            raise _read_failure(index, exc) from None
        lines: dict[tuple[int, int], int] = {}
        words: list[list[Any]] = []
        for x0, y0, x1, y1, text, block, line, _word in raw:
            line_no = lines.setdefault((int(block), int(line)), len(lines))
            words.append([str(text)[:MAX_WORD_TEXT], 1.0, x0, y0, x1, y1, int(block), line_no, ""])
        return words

    def _text_page(self, page: Any, index: int) -> dict[str, Any] | None:
        """The page's text layer, or None when it has none worth the name: no text, text that does not
        decode (a font without a Unicode map), or a few words over a page-sized picture (a scan's stamp)."""
        words = self._layer_words(page, index)
        text = "".join(w[0] for w in words)
        if not text:
            return None
        letters = sum(ch.isalnum() for ch in text)
        if text.count("\ufffd") * 10 > len(text) or letters * 2 < len(text):
            return None
        if letters < TEXT_LAYER_MIN_CHARS:
            area = abs(page.rect)
            try:
                covered = sum(abs(self.pymupdf.Rect(info["bbox"]) & page.rect) for info in page.get_image_info())
            except MemoryError:
                raise
            except Exception:
                covered = 0.0
            if area and covered >= area / 2:
                return None
        return self._pymupdf_page("text_layer", words)

    def _ocr_page(self, od: _OpenDoc, page: Any, index: int, tesseract: str, deadline: float) -> dict[str, Any]:
        """OCR of the page: rendered in grey (``OCR_DPI``, an image at its own pixels), its skew measured
        on a small rendering and corrected, turned a quarter when its lines run down the page, and read
        by Tesseract; a reading with a low mean confidence is tried again turned half round (upside
        down), keeping the better one. Word boxes are brought back to the page's own coordinates."""
        empty = {"method": "ocr", "rotation": 0, "skew": 0.0, "words": [], "engine": "tesseract",
                 "engine_version": "", "note": ""}
        if not tesseract:
            return {**empty, "method": "none", "engine": "", "note": "ocr_unavailable"}
        pymupdf = self.pymupdf
        rect = page.rect
        if not (rect.width > 0 and rect.height > 0):
            raise Failure("bad_page", f"{index + 1}\x00the page has no size")
        long_pt = max(rect.width, rect.height)
        zoom = OCR_DPI / 72.0
        if od.media_type.startswith("image/"):
            try:
                info = page.get_image_info()
            except MemoryError:
                raise
            except Exception:
                info = []
            if info and info[0].get("width") and info[0].get("height"):
                zoom = max(int(info[0]["width"]), int(info[0]["height"])) / long_pt
            long_px = long_pt * zoom
            zoom *= min(OCR_MAX_SIDE, max(OCR_MIN_SIDE, long_px)) / long_px
            dpi = max(100, min(600, round(long_pt * zoom / 11)))
        else:
            zoom = min(zoom, OCR_MAX_SIDE / long_pt)
            dpi = max(70, round(zoom * 72))
        small_zoom = min(zoom, SKEW_SIDE / long_pt)
        small = self._grey(page, pymupdf.Matrix(small_zoom, small_zoom), index)
        runs = ink_runs(bytes(small.samples_mv), small.width, small.height, small.stride)
        del small
        skew, vertical = estimate_skew(runs)
        rotation = 90 if vertical else 0
        words = self._ocr_turned(page, index, tesseract, deadline, zoom, dpi, rotation, skew)
        if runs and _mean_confidence(words) < OCR_RETRY_BELOW:
            other = self._ocr_turned(page, index, tesseract, deadline, zoom, dpi, rotation + 180, skew)
            if _mean_confidence(other) > _mean_confidence(words):
                words, rotation = other, rotation + 180
        return {**empty, "rotation": rotation % 360, "skew": skew, "words": words,
                "engine_version": self._tesseract_version(tesseract, deadline)}

    def _ocr_turned(self, page: Any, index: int, tesseract: str, deadline: float, zoom: float, dpi: int,
                    rotation: int, skew: float) -> list[list[Any]]:
        """The words Tesseract reads on the page rendered at ``zoom``, turned ``rotation`` degrees clockwise
        and straightened by ``skew``, with their boxes in the page's own coordinates."""
        pymupdf = self.pymupdf
        matrix = pymupdf.Matrix(zoom, zoom).prerotate(rotation + skew)
        pix = self._grey(page, matrix, index)
        picture = pgm_bytes(pix.width, pix.height, pix.stride, pix.samples_mv)
        origin_x, origin_y = pix.x, pix.y
        del pix
        found = parse_tesseract_tsv(self._tesseract(tesseract, picture, dpi, index, deadline))
        del picture
        to_page = ~matrix * page.derotation_matrix
        words: list[list[Any]] = []
        for text, conf, (left, top, width, height), block, line in found[:MAX_WORDS_PER_PAGE]:
            x0, y0 = left + origin_x, top + origin_y
            corners = [pymupdf.Point(x, y) * to_page for x in (x0, x0 + width) for y in (y0, y0 + height)]
            box = [min(p.x for p in corners), min(p.y for p in corners),
                   max(p.x for p in corners), max(p.y for p in corners)]
            words.append([text, round(conf, 3), *(round(v, 2) for v in box), block, line, ""])
        return words

    def _grey(self, page: Any, matrix: Any, index: int) -> Any:
        try:
            return page.get_pixmap(matrix=matrix, colorspace=self.pymupdf.csGRAY, alpha=False, annots=True)
        except MemoryError:
            raise
        except Exception as exc:
            detail = _short(exc)
            if _MEMORY_RE.search(detail):
                raise Failure("memory", detail, restart=True) from None
            raise Failure("bad_page", f"{index + 1}\x00{detail}") from None

    def _tesseract(self, program: str, picture: bytes, dpi: int, index: int, deadline: float) -> str:
        """Tesseract's TSV for ``picture`` (a PGM), run as a child process that dies with this worker."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure("ocr_timeout", str(index + 1))
        command = [program, "stdin", "stdout", "--psm", "3", "--dpi", str(dpi), "-l", "eng", "tsv"]
        try:
            done = subprocess.run(command, input=picture, capture_output=True, timeout=left, check=False,
                                  env=_tesseract_env(), preexec_fn=_die_with_parent if _LINUX else None)
        except subprocess.TimeoutExpired:
            raise Failure("ocr_timeout", str(index + 1)) from None
        except OSError as exc:
            raise Failure("ocr_failed", f"{index + 1}\x00{_short(exc)}") from None
        if done.returncode != 0:
            why = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise Failure("ocr_failed", f"{index + 1}\x00{(why[-1] if why else f'exit code {done.returncode}')[:200]}")
        return done.stdout.decode("utf-8", "replace")

    def _tesseract_version(self, program: str, deadline: float) -> str:
        if program not in self.engine_versions:
            version = ""
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                done = subprocess.run([program, "--version"], capture_output=True, env=_tesseract_env(),
                                      timeout=max(1.0, min(10.0, deadline - time.monotonic())), check=False)
                found = _TESS_VERSION_RE.search(done.stdout.decode("utf-8", "replace")
                                                + done.stderr.decode("utf-8", "replace"))
                version = found.group(1) if found else ""
            self.engine_versions[program] = version
        return self.engine_versions[program]

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
                    pix, _zoom, _scaled = self._pixmap(od, {**req, "page_index": index, "dpi": dpi})
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


def _read_failure(index: int, exc: Exception) -> Failure:
    """A page whose fields or text cannot be read: out of memory (the worker restarts), or damaged."""
    detail = _short(exc)
    if _MEMORY_RE.search(detail) or re.search(r"\b(?:c|m|re)alloc\b", detail):
        return Failure("memory", detail, restart=True)
    return Failure("unreadable_page", f"{index + 1}\x00{detail}")


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
            pass
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
