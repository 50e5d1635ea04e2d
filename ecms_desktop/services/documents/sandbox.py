"""Open, check and display customer documents (certificate PDFs and scans) without risking the app.

Certificates arrive from customers as PDFs and images, and some are broken or hostile: a page that
renders forever, a 1 KB JPEG that needs 2.7 GB to display, a page count of 9,999,999,999. This
package parses such files in one place only. Everything that touches the file runs in a
separate **worker process** that has an address-space limit and that the app kills when a call takes
too long, runs out of memory, or the user cancels. A thread cannot be stopped; a process can.

For the accountant this means: a bad file produces a clear message naming the file and what is
wrong with it ("claims-100-pages-has-2.pdf: the file is damaged (...)"), and the program itself
never freezes or crashes because of it.

Here is :class:`DocumentSandbox`, which owns one long-lived worker
(:mod:`~ecms_desktop.services.documents.worker_process`) and sends it the calls: probe, render a page
or a thumbnail, read a PDF's form fields, read the words of the pages (:meth:`DocumentSandbox.read_pages`:
form fields, text layer or OCR with Tesseract), read an e-mail, and :meth:`DocumentSandbox.book_pages` -- a
document's pages for the audit pack's book, stamped, as a new PDF written by the worker (the caller
only copies pages from it). Around it (no Qt anywhere; the views turn
:attr:`~ecms_desktop.services.documents.results.RenderedPage.png` into a ``QImage``):

- :mod:`~ecms_desktop.services.documents.shared_sandbox` -- the sandbox the program shares and the
  functions that use it: ``probe_document`` (what the file is, how many pages, whether it is protected
  or carries scripts; refuses unusable files with :class:`~ecms_desktop.services.core.errors.DocumentError`),
  ``render_page`` / ``render_thumbnail`` (a page as PNG bytes), ``read_form_fields`` (a PDF's fill-in
  fields, metadata keywords and, without fields, text), ``read_pages`` (the words of the pages with
  their boxes and confidence) and ``read_email`` (an e-mail's sender, date, subject and attachments).
- :mod:`~ecms_desktop.services.documents.results` -- what the calls answer, the password errors, and
  the messages for the worker's failures.
- :mod:`~ecms_desktop.services.documents.media_types` -- ``sniff_media_type``: cheap, in-process, magic
  bytes only.
- :mod:`~ecms_desktop.services.documents.worker` -- the code that runs inside the worker.

Embedded JavaScript, launch actions and attachments are never run, opened or extracted; their
presence is only reported.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import hashlib
import os
import shutil
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ecms_desktop.services.core.errors import Cancelled, DocumentError
from ecms_desktop.services.documents.media_types import EXTENSIONS, TYPE_NAMES, sniff_media_type
from ecms_desktop.services.documents.results import (
    BookPages,
    DocumentText,
    EmailAttachment,
    EmailContent,
    FormField,
    FormFields,
    ProbeResult,
    RenderedPage,
    document_text,
    failure_to_error,
    json_body,
)
from ecms_desktop.services.documents.worker_process import (
    WORKER_FLAG,
    WORKER_MODULE,
    WorkerGone,
    WorkerProcess,
    WorkerTimeout,
)

__all__ = [
    "DEFAULT_MAX_IMAGE_PIXELS",
    "DEFAULT_MAX_PAGES",
    "DEFAULT_MEMORY_LIMIT",
    "DocumentSandbox",
]

#: Address-space cap of the worker process. MuPDF plus Python need ~100 MB of it; the rest is for
#: decoding images and pixmaps. A file that needs more is refused, not allowed to swap the machine.
DEFAULT_MEMORY_LIMIT = 1536 * 1024 * 1024
#: A certificate has a handful of pages; a file claiming more than this is refused as bogus.
DEFAULT_MAX_PAGES = 5000
#: Image files larger than this (in pixels, from the file header) are refused before decoding.
#: 100 MP is a letter-size page scanned at ~1000 dpi.
DEFAULT_MAX_IMAGE_PIXELS = 100_000_000
#: Largest file accepted at all.
MAX_FILE_BYTES = 256 * 1024 * 1024

_ALL_SANDBOXES: weakref.WeakSet[DocumentSandbox] = weakref.WeakSet()


class DocumentSandbox:
    """Owns one long-lived worker process that opens and renders untrusted documents.

    The worker is started lazily on the first call (about 0.3 s) and reused: it keeps the last
    ``cache_size`` documents by SHA-256, so the file bytes cross the pipe once per document and
    page 2 does not re-parse the file. Each call has a wall-clock ``timeout``; when it expires, the
    worker dies, or :meth:`cancel` is called, the worker is killed (SIGKILL) and a fresh one is
    started on the next call. The worker's address space is capped at ``memory_limit`` bytes
    (``RLIMIT_AS``; POSIX only -- on Windows only the pixel budgets and timeouts apply).

    Thread-safe: calls from several threads are served one at a time. :meth:`cancel` may be called
    from any thread. ``worker_command`` overrides how the worker is started (needed in a frozen
    build, where ``sys.executable`` is not a Python interpreter).
    """

    def __init__(
        self,
        *,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        cache_size: int = 4,
        max_pages: int = DEFAULT_MAX_PAGES,
        max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
        startup_timeout: float = 30.0,
        worker_command: Sequence[str] | None = None,
    ) -> None:
        self.memory_limit = memory_limit
        self.cache_size = cache_size
        self.max_pages = max_pages
        self.max_image_pixels = max_image_pixels
        self.startup_timeout = startup_timeout
        self._worker_command = list(worker_command) if worker_command else None
        self._call_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._worker: WorkerProcess | None = None
        self._in_flight = False
        self._cancelled = False
        self.restarts = 0  #: how many workers were killed (timeouts, crashes, cancels); for tests/logs
        _ALL_SANDBOXES.add(self)

    # -- lifecycle

    def __enter__(self) -> DocumentSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def command(self) -> list[str]:
        """The command line that starts a worker."""
        if self._worker_command:
            return [*self._worker_command, "--memory-limit", str(self.memory_limit)]
        if getattr(sys, "frozen", False):
            # A frozen build (PyInstaller) has no Python interpreter: the program itself serves as
            # the worker when started with --document-worker (see ecms_desktop/app.py and cli).
            start = [sys.executable, WORKER_FLAG]
        else:
            start = [sys.executable, "-I", "-m", WORKER_MODULE]
        return [
            *start,
            "--memory-limit",
            str(self.memory_limit),
            "--cache-size",
            str(self.cache_size),
            "--parent-pid",
            str(os.getpid()),
        ]

    def start(self) -> None:
        """Start the worker now (optional: calls start it lazily) so the first render is fast."""
        with self._call_lock:
            self._begin()
            try:
                self._ensure_worker()
            except (WorkerTimeout, WorkerGone):
                self._drop_worker()
                raise DocumentError("The document reader could not be started.") from None
            finally:
                self._end()

    def close(self) -> None:
        """Stop the worker cleanly. The sandbox stays usable: the next call starts a new worker."""
        self.cancel()
        with self._call_lock:
            with self._state_lock:
                worker, self._worker = self._worker, None
            if worker is not None:
                worker.shutdown()

    def cancel(self) -> bool:
        """Stop the call in flight, if any (from any thread); that call raises :class:`Cancelled`.

        Returns True if a call was cancelled. The worker is killed and restarted on the next call.
        """
        with self._state_lock:
            if not self._in_flight:
                return False
            self._cancelled = True
            if self._worker is not None:
                self._worker.kill()
            return True

    @property
    def worker_pid(self) -> int | None:
        """The worker's process id, or None when no worker is running."""
        with self._state_lock:
            w = self._worker
            return w.proc.pid if w is not None and w.alive() else None

    # -- public calls

    def probe(
        self,
        data: bytes,
        *,
        filename: str = "",
        password: str | None = None,
        timeout: float = 15.0,
        sha256: str | None = None,
    ) -> ProbeResult:
        """Check what ``data`` is and whether it can be used; see
        :func:`~ecms_desktop.services.documents.shared_sandbox.probe_document`."""
        name = filename or "The document"
        media_type = self._check_bytes(data, name)
        header, _ = self._call(
            {"op": "probe"},
            data,
            media_type=media_type,
            password=password,
            timeout=timeout,
            name=name,
            sha256=sha256,
            what=f"took longer than {timeout:g} s to read; it may be damaged",
        )
        warnings: list[str] = []
        kind = "pdf" if media_type == "application/pdf" else "image"
        suffix = Path(filename).suffix.lower()
        if suffix and suffix not in EXTENSIONS.get(media_type, ()):
            warnings.append(
                f"The file is named {suffix} but is really a {TYPE_NAMES[media_type]}; "
                "it is handled as what it really is."
            )
        if header.get("repaired"):
            warnings.append(
                "The file was damaged and has been repaired to open it; check that every page is there."
            )
        if header.get("encryption"):
            warnings.append(
                "The file is protected by its author (it may restrict printing or copying); "
                "it can still be viewed."
            )
        if header.get("has_javascript"):
            warnings.append("The file contains JavaScript. It is never run by this program.")
        if header.get("has_launch_action"):
            warnings.append(
                "The file contains actions that try to open other files or programs. "
                "They are never run by this program."
            )
        if header.get("has_embedded_files"):
            warnings.append("The file carries attached files. They are not opened or extracted.")
        if header.get("has_xfa"):
            warnings.append(
                "The file is an XFA form: its filled-in content may not be shown, only the static "
                "page (sometimes a 'requires Adobe Reader' notice). Ask the customer for a flattened "
                "or printed-to-PDF copy."
            )
        notes = tuple(str(n) for n in header.get("mupdf_warnings", ()))
        if kind == "image" and any("error" in n.lower() for n in notes):
            warnings.append("The image is damaged: it may be incomplete when shown.")
        size = header.get("first_page_size")
        return ProbeResult(
            media_type=media_type,
            kind=kind,
            page_count=int(header["page_count"]),
            encrypted=bool(header.get("encrypted")),
            needs_password=bool(header.get("needs_password")),
            has_javascript=bool(header.get("has_javascript")),
            has_launch_action=bool(header.get("has_launch_action")),
            has_embedded_files=bool(header.get("has_embedded_files")),
            first_page_size=(float(size[0]), float(size[1])) if size else None,
            warnings=tuple(warnings),
            has_xfa=bool(header.get("has_xfa")),
            repaired=bool(header.get("repaired")),
            technical_notes=notes,
        )

    def render_page(
        self,
        data: bytes,
        page_index: int,
        *,
        dpi: float = 150,
        rotation: int = 0,
        password: str | None = None,
        max_pixels: int = 40_000_000,
        timeout: float = 15.0,
        filename: str = "",
        sha256: str | None = None,
    ) -> RenderedPage:
        """Render one page (0-based ``page_index``) as PNG; see
        :func:`~ecms_desktop.services.documents.shared_sandbox.render_page`."""
        if rotation % 90:
            raise ValueError(f"rotation must be a multiple of 90 degrees, not {rotation}")
        if not dpi > 0:
            raise ValueError(f"dpi must be positive, not {dpi}")
        return self._render(
            data,
            page_index,
            {"dpi": float(dpi), "rotation": rotation % 360, "max_pixels": int(max_pixels)},
            password=password,
            timeout=timeout,
            filename=filename,
            sha256=sha256,
        )

    def render_thumbnail(
        self,
        data: bytes,
        page_index: int = 0,
        *,
        max_side: int = 160,
        rotation: int = 0,
        password: str | None = None,
        timeout: float = 15.0,
        filename: str = "",
        sha256: str | None = None,
    ) -> RenderedPage:
        """Render a page with its longer side at most ``max_side`` pixels; see
        :func:`~ecms_desktop.services.documents.shared_sandbox.render_thumbnail`."""
        if rotation % 90:
            raise ValueError(f"rotation must be a multiple of 90 degrees, not {rotation}")
        if max_side < 1:
            raise ValueError("max_side must be at least 1")
        return self._render(
            data,
            page_index,
            {"max_side": int(max_side), "rotation": rotation % 360, "max_pixels": 4_000_000},
            password=password,
            timeout=timeout,
            filename=filename,
            sha256=sha256,
        )

    def read_form_fields(
        self,
        data: bytes,
        *,
        filename: str = "",
        password: str | None = None,
        text_limit: int = 20_000,
        timeout: float = 15.0,
        sha256: str | None = None,
    ) -> FormFields:
        """Read a PDF's fill-in fields; see :func:`~ecms_desktop.services.documents.shared_sandbox.read_form_fields`."""
        name = filename or "The document"
        media_type = self._check_bytes(data, name)
        if media_type != "application/pdf":
            raise DocumentError(f"{name}: is a {TYPE_NAMES[media_type]}, not a PDF form.")
        _, blob = self._call(
            {"op": "fields", "text_limit": int(text_limit)},
            data,
            media_type=media_type,
            password=password,
            timeout=timeout,
            name=name,
            sha256=sha256,
            what=f"its form fields and text took longer than {timeout:g} s to read; it may be damaged",
        )
        body = json_body(blob, name)
        fields = tuple(
            FormField(int(f[0]), str(f[1]), str(f[2]), f[3] if isinstance(f[3], str) else None)
            for f in body.get("fields", ())
        )
        return FormFields(fields, str(body.get("keywords", "")), str(body.get("text", "")),
                          bool(body.get("truncated")))

    def read_pages(
        self,
        data: bytes,
        *,
        filename: str = "",
        password: str | None = None,
        max_pages: int = 10,
        timeout: float = 120.0,
        sha256: str | None = None,
    ) -> DocumentText:
        """Read the words of a document's first ``max_pages`` pages; see
        :func:`~ecms_desktop.services.documents.shared_sandbox.read_pages`."""
        name = filename or "The document"
        media_type = self._check_bytes(data, name)
        if max_pages < 1:
            raise ValueError("max_pages must be at least 1")
        tesseract = shutil.which("tesseract") or ""
        started = time.perf_counter()
        _, blob = self._call(
            {"op": "read", "read_pages": int(max_pages), "tesseract": tesseract,
             "deadline_seconds": max(1.0, float(timeout) - 2.0)},
            data,
            media_type=media_type,
            password=password,
            timeout=timeout,
            name=name,
            sha256=sha256,
            what=f"reading its text took longer than {timeout:g} s; it may be damaged or too large",
        )
        return document_text(json_body(blob, name), ocr_available=bool(tesseract),
                             seconds=time.perf_counter() - started)

    def book_pages(
        self,
        data: bytes,
        stamps: Sequence[str],
        *,
        page_size: tuple[float, float] = (612.0, 792.0),
        margin: float = 36.0,
        dpi: float = 150.0,
        max_pixels: int = 12_000_000,
        filename: str = "",
        timeout: float = 30.0,
        sha256: str | None = None,
    ) -> BookPages:
        """The pages of a stored document for the audit pack's PDF book, made in the worker (see
        :class:`BookPages`): page ``i`` carries ``stamps[i]``, so ``stamps`` has one label per page of
        the document as probed. An image is rendered at ``dpi`` (within ``max_pixels``) and centred on
        a page of ``page_size`` points within ``margin``. Raises
        :class:`~ecms_desktop.services.core.errors.DocumentError` naming ``filename`` when the document cannot be
        copied (damaged, a different page count than ``stamps``, too slow or too large)."""
        name = filename or "The document"
        media_type = self._check_bytes(data, name)
        if not stamps:
            raise ValueError("stamps must hold one label per page")
        header, pdf = self._call(
            {"op": "book", "stamps": [str(text) for text in stamps], "page_size": [float(x) for x in page_size],
             "margin": float(margin), "dpi": float(dpi), "max_pixels": int(max_pixels)},
            data,
            media_type=media_type,
            password=None,
            timeout=timeout,
            name=name,
            sha256=sha256,
            what=f"took longer than {timeout:g} s to copy into the book; it may be damaged",
        )
        if not pdf.startswith(b"%PDF-") or int(header.get("page_count", -1)) != len(stamps):
            raise DocumentError(f"{name}: the document reader gave an answer this program does not understand.")
        return BookPages(pdf, len(stamps))

    def read_email(self, data: bytes, *, filename: str = "", timeout: float = 15.0) -> EmailContent:
        """Parse an e-mail message; see :func:`~ecms_desktop.services.documents.shared_sandbox.read_email`."""
        name = filename or "The e-mail"
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("data must be bytes")
        if len(data) == 0:
            raise DocumentError(f"{name}: the file is empty (0 bytes).")
        if len(data) > MAX_FILE_BYTES:
            raise DocumentError(
                f"{name}: the file is too large ({len(data) / 1e6:.0f} MB; the limit is "
                f"{MAX_FILE_BYTES / 1e6:.0f} MB)."
            )
        header, blob = self._call(
            {"op": "email"},
            data,
            media_type="message/rfc822",
            password=None,
            timeout=timeout,
            name=name,
            sha256=None,
            what=f"took longer than {timeout:g} s to read; it may be damaged",
        )
        meta_length = int(header.get("meta_length", 0))
        body = json_body(blob[:meta_length], name)
        attachments: list[EmailAttachment] = []
        offset = meta_length
        for filename_, content_type, length in body.get("parts", ()):
            attachments.append(EmailAttachment(str(filename_), str(content_type),
                                               bytes(blob[offset:offset + int(length)])))
            offset += int(length)
        sent_at = None
        if body.get("sent_at"):
            with contextlib.suppress(ValueError):
                sent_at = dt.datetime.fromisoformat(str(body["sent_at"]))
                if sent_at.tzinfo is None:
                    sent_at = sent_at.replace(tzinfo=dt.UTC)
        return EmailContent(str(body.get("sender", "")), sent_at, str(body.get("subject", "")),
                            tuple(attachments))

    # -- internals

    def _render(
        self,
        data: bytes,
        page_index: int,
        params: dict[str, Any],
        *,
        password: str | None,
        timeout: float,
        filename: str,
        sha256: str | None,
    ) -> RenderedPage:
        name = filename or "The document"
        media_type = self._check_bytes(data, name)
        if page_index < 0:
            raise DocumentError(f"{name}: there is no page {page_index + 1}.")
        header, png = self._call(
            {"op": "render", "page_index": int(page_index), **params},
            data,
            media_type=media_type,
            password=password,
            timeout=timeout,
            name=name,
            sha256=sha256,
            what=f"page {page_index + 1} took longer than {timeout:g} s to display; it may be damaged",
        )
        if not png.startswith(b"\x89PNG\r\n\x1a\n"):
            raise DocumentError(f"{name}: page {page_index + 1} could not be displayed.")
        return RenderedPage(
            png=png,
            width=int(header["width"]),
            height=int(header["height"]),
            page_count=int(header["page_count"]),
            scaled_down=bool(header.get("scaled_down")),
            dpi=float(header.get("dpi", 0.0)),
            page_rotation=int(header.get("page_rotation", 0)) % 360,
        )

    @staticmethod
    def _check_bytes(data: bytes, name: str) -> str:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("data must be bytes")
        if len(data) == 0:
            raise DocumentError(f"{name}: the file is empty (0 bytes).")
        if len(data) > MAX_FILE_BYTES:
            raise DocumentError(
                f"{name}: the file is too large ({len(data) / 1e6:.0f} MB; the limit is "
                f"{MAX_FILE_BYTES / 1e6:.0f} MB)."
            )
        media_type = sniff_media_type(bytes(data[:1024]))
        if media_type is None:
            raise DocumentError(
                f"{name}: this is not a PDF or a supported image (PNG, JPEG, TIFF, GIF, BMP, JPEG 2000)."
            )
        return media_type

    def _begin(self) -> None:
        with self._state_lock:
            self._in_flight = True
            self._cancelled = False

    def _end(self) -> None:
        with self._state_lock:
            self._in_flight = False

    def _ensure_worker(self) -> WorkerProcess:
        with self._state_lock:
            worker = self._worker
            if worker is not None and not worker.alive():
                self._worker = None
                worker.reap()
                worker = None
            if worker is None:
                try:
                    worker = WorkerProcess(self.command())
                except OSError as exc:
                    raise DocumentError(f"The document reader could not be started ({exc}).") from None
                self._worker = worker
                if self._cancelled:
                    worker.kill()
        if not worker.ready:
            header, _ = worker.receive(self.startup_timeout)
            if not header.get("ready"):
                raise WorkerGone()
            worker.ready = True
        return worker

    def _drop_worker(self) -> None:
        with self._state_lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            self.restarts += 1
            worker.reap()

    def _call(
        self,
        request: dict[str, Any],
        data: bytes,
        *,
        media_type: str,
        password: str | None,
        timeout: float,
        name: str,
        sha256: str | None,
        what: str,
    ) -> tuple[dict[str, Any], bytes]:
        sha = sha256 or hashlib.sha256(data).hexdigest()
        request = {
            **request,
            "sha": sha,
            "media_type": media_type,
            "password": password,
            "max_pages": self.max_pages,
            "max_image_pixels": self.max_image_pixels,
        }
        with self._call_lock:
            self._begin()
            try:
                try:
                    worker = self._ensure_worker()
                    send_data = sha not in worker.known
                    worker.send(request, bytes(data) if send_data else b"")
                    header, blob = worker.receive(timeout)
                    if header.get("kind") == "need_data":
                        worker.send(request, bytes(data))
                        header, blob = worker.receive(timeout)
                except WorkerTimeout:
                    self._drop_worker()
                    if self._cancelled:
                        raise Cancelled() from None
                    raise DocumentError(f"{name}: {what}.") from None
                except WorkerGone:
                    self._drop_worker()
                    if self._cancelled:
                        raise Cancelled() from None
                    raise DocumentError(
                        f"{name}: the document reader stopped while reading this file; the file may "
                        "be damaged or need more memory than is allowed."
                    ) from None
                worker.known[sha] = None
                worker.known.move_to_end(sha)
                while len(worker.known) > self.cache_size:
                    worker.known.popitem(last=False)
                if header.get("restart"):
                    self._drop_worker()
                if self._cancelled:
                    # cancel() arrived after the answer: honour it anyway, the caller asked to stop.
                    self._drop_worker()
                    raise Cancelled()
            finally:
                self._end()
        if not header.get("ok"):
            raise failure_to_error(header, name, media_type)
        return header, blob


@atexit.register
def _shutdown_all() -> None:
    for sandbox in list(_ALL_SANDBOXES):
        try:
            with sandbox._state_lock:
                worker, sandbox._worker = sandbox._worker, None
            if worker is not None:
                worker.shutdown(grace=0.5)
        except Exception:
            pass
