"""Open, check and display customer documents (certificate PDFs and scans) without risking the app.

Certificates arrive from customers as PDFs and images, and some are broken or hostile: a page that
renders forever, a 1 KB JPEG that needs 2.7 GB to display, a page count of 9,999,999,999. This
module is the one place where such files are parsed. Everything that touches the file runs in a
separate **worker process** that has an address-space limit and that the app kills when a call takes
too long, runs out of memory, or the user cancels. A thread cannot be stopped; a process can.

For the accountant this means: a bad file produces a clear message naming the file and what is
wrong with it ("claims-100-pages-has-2.pdf: the file is damaged (...)"), and the program itself
never freezes or crashes because of it.

Public API (no Qt here; the views turn :attr:`RenderedPage.png` into a ``QImage``):

- :func:`sniff_media_type` -- cheap, in-process, magic bytes only.
- :func:`probe_document` -- what the file is, how many pages, whether it is protected or carries
  scripts; refuses unusable files with :class:`~ecms_desktop.services.core.errors.DocumentError`.
- :func:`render_page` / :func:`render_thumbnail` -- a page as PNG bytes.
- :func:`read_form_fields` -- a PDF's fill-in fields, metadata keywords and (without fields) text.
- :func:`read_email` -- an e-mail's sender, date, subject and attachments.
- :meth:`DocumentSandbox.book_pages` -- a document's pages for the audit pack's book, stamped, as a
  new PDF written by the worker (the caller only copies pages from it).
- :class:`DocumentSandbox` -- owns one long-lived worker; the module functions share a default one.

Embedded JavaScript, launch actions and attachments are never run, opened or extracted; their
presence is only reported.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import hashlib
import json
import os
import queue
import subprocess
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ecms_desktop.services.core.errors import Cancelled, DocumentError
from ecms_desktop.services.documents._document_worker import (
    FRAME_HEADER,
    MAX_HEADER_BYTES,
    _read_exact,
    write_frame,
)

__all__ = [
    "DEFAULT_MAX_IMAGE_PIXELS",
    "DEFAULT_MAX_PAGES",
    "DEFAULT_MEMORY_LIMIT",
    "BookPages",
    "DocumentSandbox",
    "EmailAttachment",
    "EmailContent",
    "FormField",
    "FormFields",
    "PasswordRequired",
    "ProbeResult",
    "RenderedPage",
    "WrongPassword",
    "close",
    "default_sandbox",
    "probe_document",
    "read_email",
    "read_form_fields",
    "render_page",
    "render_thumbnail",
    "sniff_media_type",
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

_WORKER_SCRIPT = Path(__file__).with_name("_document_worker.py")
#: First argument that makes a frozen ECMS executable act as the document worker.
WORKER_FLAG = "--document-worker"
_FRAME_LIMIT = 512 * 1024 * 1024


class PasswordRequired(DocumentError):
    """The file is locked with a password; ask the user for it and try again."""


class WrongPassword(PasswordRequired):
    """The password given does not open the file; ask again."""


@dataclass(frozen=True)
class ProbeResult:
    """What a document is, checked safely before it is stored or shown.

    ``media_type`` is taken from the file's content, never its name. ``kind`` is ``"pdf"`` or
    ``"image"``. ``page_count`` is the number of pages that were each checked to load (a file whose
    pages cannot all be read is refused rather than half-imported). ``encrypted`` means the file
    carries PDF encryption, even if it opens without a password (an owner password that only
    restricts printing or copying); ``needs_password`` is True only when a password is required to
    see the content and none was supplied (this object is then not returned: :class:`PasswordRequired`
    is raised instead, so it is always False here). ``has_javascript``, ``has_launch_action`` and
    ``has_embedded_files`` report active or attached content that this program never runs or opens;
    ``warnings`` says so in plain words, together with repairs, XFA forms and a misleading file
    extension. ``first_page_size`` is the first page's (width, height) in points (1/72 inch).
    ``technical_notes`` keeps MuPDF's own warnings for support; they are not for the accountant.
    """

    media_type: str
    kind: str
    page_count: int
    encrypted: bool
    needs_password: bool
    has_javascript: bool
    has_launch_action: bool
    has_embedded_files: bool
    first_page_size: tuple[float, float] | None
    warnings: tuple[str, ...]
    has_xfa: bool = False
    repaired: bool = False
    technical_notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class RenderedPage:
    """One page as a PNG picture, ready to show on screen.

    ``width``/``height`` are in pixels (after rotation); ``page_count`` is the document's page count
    so a viewer can size its page control from the same call. ``scaled_down`` is True when the page
    was so large that it was rendered at a lower resolution (``dpi``) than asked, to stay within the
    pixel budget; what is shown is complete, just less sharp.
    """

    png: bytes
    width: int
    height: int
    page_count: int
    scaled_down: bool = False
    dpi: float = 0.0


@dataclass(frozen=True)
class BookPages:
    """A stored document's pages as they go into the audit pack's book: ``pdf`` is a new PDF the worker
    wrote (MuPDF's own serialisation, garbage-collected) holding only the pages, each stamped with its
    label, with form fields and annotations flattened and nothing else of the original file (no
    scripts, actions, attachments or links); an image is one page per frame with the image on it."""

    pdf: bytes
    page_count: int


@dataclass(frozen=True)
class FormField:
    """One fill-in field of a PDF form: 0-based page, field name, type (``Text``, ``ComboBox``,
    ``ListBox``, ``CheckBox``, ``RadioButton``, ``Button``, ``Signature``) and its text value (None
    for fields whose value is not text)."""

    page: int
    name: str
    type: str
    value: str | None


@dataclass(frozen=True)
class FormFields:
    """What a PDF says as data: its fields, its metadata keywords and, when it has no fields, its
    text (cut at the limit asked for). ``truncated`` is True when the form had more fields than
    are read back."""

    fields: tuple[FormField, ...]
    keywords: str
    text: str
    truncated: bool = False


@dataclass(frozen=True)
class EmailAttachment:
    """One attached part of an e-mail: its file name (as the sender named it), content type and bytes."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class EmailContent:
    """An e-mail read in the sandbox: the sender's address (lower case), its Date header (None when
    absent or not a date), the subject and the attachments."""

    sender: str
    sent_at: dt.datetime | None
    subject: str
    attachments: tuple[EmailAttachment, ...]


# --------------------------------------------------------------------------------- sniffing


def sniff_media_type(data: bytes) -> str | None:
    """The media type from the first bytes of ``data`` (magic numbers only), or None if unknown.

    Cheap and in-process; it does not parse the file. A PDF may have a little junk before its
    ``%PDF-`` marker (MuPDF tolerates up to about 1 KB), so that is searched for too.
    """
    head = bytes(data[:1024])
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "image/tiff"
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return "image/jp2"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head.startswith(b"BM") and len(head) >= 26:
        return "image/bmp"
    if b"%PDF-" in head:
        return "application/pdf"
    return None


_EXTENSIONS = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "image/tiff": (".tif", ".tiff"),
    "image/jp2": (".jp2", ".j2k", ".jpf", ".jpx"),
    "image/gif": (".gif",),
    "image/bmp": (".bmp", ".dib"),
}
_TYPE_NAMES = {
    "application/pdf": "PDF",
    "image/png": "PNG image",
    "image/jpeg": "JPEG image",
    "image/tiff": "TIFF image",
    "image/jp2": "JPEG 2000 image",
    "image/gif": "GIF image",
    "image/bmp": "BMP image",
    "message/rfc822": "e-mail",
}


# ----------------------------------------------------------------------------- worker handle


class _WorkerGone(Exception):
    pass


class _Timeout(Exception):
    pass


class _Spawner:
    """Starts the worker processes, all from one thread that lives as long as the program.

    A worker asks Linux to kill it when its parent goes away (``PR_SET_PDEATHSIG``, so that no worker
    outlives a crashed program), and for Linux the parent is the *thread* that started it: a worker
    started from a short-lived thread (the audit pack's probe thread, a view's loader) would be killed
    when that thread ends, in the middle of another thread's call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._requests: queue.Queue[tuple[list[str], queue.Queue[subprocess.Popen[bytes] | BaseException]]] = (
            queue.Queue())

    def popen(self, command: list[str]) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._serve, name="document-worker-spawner", daemon=True)
                self._thread.start()
        answer: queue.Queue[subprocess.Popen[bytes] | BaseException] = queue.Queue(maxsize=1)
        self._requests.put((command, answer))
        started = answer.get()
        if isinstance(started, BaseException):
            raise started
        return started

    def _serve(self) -> None:
        while True:
            command, answer = self._requests.get()
            try:
                creationflags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if os.name == "nt" else 0
                answer.put(subprocess.Popen(
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    close_fds=True,
                    creationflags=creationflags,
                ))
            except BaseException as exc:  # handed to the thread that asked
                answer.put(exc)


_spawner = _Spawner()


class _Worker:
    """One worker process, its pipes, and a reader thread that queues the replies."""

    def __init__(self, command: Sequence[str]) -> None:
        self.proc = _spawner.popen(list(command))
        self.replies: queue.Queue[tuple[dict[str, Any], bytes] | None] = queue.Queue()
        #: sha256 of documents the worker holds (a hint; the worker says "need_data" if not).
        self.known: OrderedDict[str, None] = OrderedDict()
        self.ready = False
        assert self.proc.stdout is not None
        self._reader = threading.Thread(
            target=self._read_loop, args=(self.proc.stdout,), name="document-worker-reader", daemon=True
        )
        self._reader.start()

    def _read_loop(self, stream: IO[bytes]) -> None:
        try:
            while True:
                head = _read_exact(stream, FRAME_HEADER.size)
                if head is None:
                    break
                hlen, blen = FRAME_HEADER.unpack(head)
                if hlen > MAX_HEADER_BYTES or blen > _FRAME_LIMIT:
                    break  # the worker is not speaking our protocol any more
                header = _read_exact(stream, hlen)
                blob = _read_exact(stream, blen) if blen else b""
                if header is None or blob is None:
                    break
                decoded = json.loads(header.decode("utf-8"))
                if not isinstance(decoded, dict):
                    break
                self.replies.put((decoded, blob))
        except Exception:
            pass
        finally:
            self.replies.put(None)

    def send(self, header: dict[str, Any], blob: bytes = b"") -> None:
        stdin = self.proc.stdin
        if stdin is None:
            raise _WorkerGone()
        try:
            write_frame(stdin, header, blob)
        except (OSError, ValueError):
            raise _WorkerGone() from None

    def receive(self, timeout: float) -> tuple[dict[str, Any], bytes]:
        try:
            item = self.replies.get(timeout=max(0.0, timeout))
        except queue.Empty:
            raise _Timeout() from None
        if item is None:
            self.replies.put(None)  # stay "gone" for anyone asking again
            raise _WorkerGone()
        return item

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()

    def reap(self) -> None:
        """Kill if needed, wait for the process (no zombie) and close the pipes."""
        self.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    def shutdown(self, grace: float = 1.0) -> None:
        """Ask the worker to quit; kill it if it does not within ``grace`` seconds."""
        if self.alive():
            try:
                self.send({"op": "quit"})
                self.proc.wait(timeout=grace)
            except (_WorkerGone, subprocess.TimeoutExpired):
                pass
        self.reap()


# ------------------------------------------------------------------------------------ sandbox

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
        self._worker: _Worker | None = None
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
            start = [sys.executable, "-I", str(_WORKER_SCRIPT)]
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
            except (_Timeout, _WorkerGone):
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
        """Check what ``data`` is and whether it can be used; see :func:`probe_document`."""
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
        if suffix and suffix not in _EXTENSIONS.get(media_type, ()):
            warnings.append(
                f"The file is named {suffix} but is really a {_TYPE_NAMES[media_type]}; "
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
        """Render one page (0-based ``page_index``) as PNG; see :func:`render_page`."""
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
        """Render a page with its longer side at most ``max_side`` pixels; see :func:`render_thumbnail`."""
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
        """Read a PDF's fill-in fields; see :func:`read_form_fields`."""
        name = filename or "The document"
        media_type = self._check_bytes(data, name)
        if media_type != "application/pdf":
            raise DocumentError(f"{name}: is a {_TYPE_NAMES[media_type]}, not a PDF form.")
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
        body = _json_body(blob, name)
        fields = tuple(
            FormField(int(f[0]), str(f[1]), str(f[2]), f[3] if isinstance(f[3], str) else None)
            for f in body.get("fields", ())
        )
        return FormFields(fields, str(body.get("keywords", "")), str(body.get("text", "")),
                          bool(body.get("truncated")))

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
        """Parse an e-mail message; see :func:`read_email`."""
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
        body = _json_body(blob[:meta_length], name)
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

    def _ensure_worker(self) -> _Worker:
        with self._state_lock:
            worker = self._worker
            if worker is not None and not worker.alive():
                self._worker = None
                worker.reap()
                worker = None
            if worker is None:
                try:
                    worker = _Worker(self.command())
                except OSError as exc:
                    raise DocumentError(f"The document reader could not be started ({exc}).") from None
                self._worker = worker
                if self._cancelled:
                    worker.kill()
        if not worker.ready:
            header, _ = worker.receive(self.startup_timeout)
            if not header.get("ready"):
                raise _WorkerGone()
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
                except _Timeout:
                    self._drop_worker()
                    if self._cancelled:
                        raise Cancelled() from None
                    raise DocumentError(f"{name}: {what}.") from None
                except _WorkerGone:
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
            raise _failure_to_error(header, name, media_type)
        return header, blob


def _json_body(blob: bytes, name: str) -> dict[str, Any]:
    try:
        body = json.loads(bytes(blob).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        body = None
    if not isinstance(body, dict):
        raise DocumentError(f"{name}: the document reader gave an answer this program does not understand.")
    return body


def _failure_to_error(header: dict[str, Any], name: str, media_type: str) -> DocumentError:
    kind = str(header.get("kind", ""))
    detail = str(header.get("detail", "") or "")
    type_name = _TYPE_NAMES.get(media_type, "file")
    if kind == "password_required":
        return PasswordRequired(
            f"{name}: the file is protected by a password. Enter the password to open it."
        )
    if kind == "wrong_password":
        return WrongPassword(f"{name}: the password is not correct.")
    if kind == "cannot_open":
        more = f" ({detail})" if detail else ""
        return DocumentError(f"{name}: the file is damaged and cannot be opened as a {type_name}{more}.")
    if kind == "bad_page_count":
        return DocumentError(f"{name}: the file is damaged (its page count is invalid: {detail}).")
    if kind == "too_many_pages":
        count, limit = ([*detail.split("\x00"), "", ""])[:2]
        return DocumentError(
            f"{name}: the file claims {int(count):,} pages; files with more than {int(limit):,} pages "
            "are refused as damaged or not a certificate."
        )
    if kind == "no_pages":
        why = " (it was repaired and no pages survived)" if detail == "repaired" else ""
        return DocumentError(f"{name}: the file is damaged: it has no readable pages{why}.")
    if kind == "bad_pages":
        count, pages, first = ([*detail.split("\x00"), "", "", ""])[:3]
        if pages in ("1", f"1-{count}"):
            return DocumentError(f"{name}: the file is damaged (none of its pages can be read: {first}).")
        return DocumentError(
            f"{name}: the file is damaged (it claims {count} pages but page(s) {pages} cannot be "
            f"read: {first})."
        )
    if kind == "no_such_page":
        page, count = ([*detail.split("\x00"), "", ""])[:2]
        return DocumentError(f"{name}: there is no page {page}; the document has {count} page(s).")
    if kind == "bad_page":
        page, why = ([*detail.split("\x00"), "", ""])[:2]
        return DocumentError(f"{name}: page {page} cannot be displayed; the file is damaged ({why}).")
    if kind == "unreadable_page":
        page, why = ([*detail.split("\x00"), "", ""])[:2]
        return DocumentError(f"{name}: page {page} cannot be read; the file is damaged ({why}).")
    if kind == "page_count_changed":
        found, expected = ([*detail.split("\x00"), "", ""])[:2]
        return DocumentError(f"{name}: the file now reads as {found} page(s), not the {expected} it was checked "
                             "with; it may be damaged.")
    if kind == "image_too_large":
        width, height, pixel_limit = (int(x) for x in detail.split("x")[:3])
        return DocumentError(
            f"{name}: the image is {width:,} x {height:,} pixels ({width * height / 1e6:.0f} megapixels); "
            f"images over {pixel_limit / 1e6:.0f} megapixels are refused because they need too much "
            "memory to show."
        )
    if kind == "memory":
        return DocumentError(
            f"{name}: the file needs more memory to read than is allowed; it may be damaged."
        )
    if kind == "unsupported":
        return DocumentError(f"{name}: this kind of file ({detail}) is not supported.")
    more = f" ({detail})" if detail else ""
    return DocumentError(f"{name}: the file is damaged{more}.")


# ---------------------------------------------------------------------- module-level functions

_default_lock = threading.Lock()
_default: DocumentSandbox | None = None


def default_sandbox() -> DocumentSandbox:
    """The shared sandbox used by the module-level functions (created on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = DocumentSandbox()
        return _default


def probe_document(
    data: bytes, *, filename: str = "", password: str | None = None, timeout: float = 15.0
) -> ProbeResult:
    """Check what a document is and whether it can be used, before it is stored.

    Refuses (raises :class:`~ecms_desktop.services.core.errors.DocumentError`, whose message names ``filename``
    and says what is wrong) empty files, files that are neither a PDF nor a supported image, files
    damaged beyond repair, files with no pages or with pages that cannot be read, absurd page
    counts, and files that take longer than ``timeout`` seconds or too much memory to read.
    A file that needs a password raises :class:`PasswordRequired`; a wrong ``password`` raises
    :class:`WrongPassword`. Files with only an owner password (print/copy restrictions) open fine
    and report ``encrypted=True``.
    """
    return default_sandbox().probe(data, filename=filename, password=password, timeout=timeout)


def render_page(
    data: bytes,
    page_index: int,
    *,
    dpi: float = 150,
    rotation: int = 0,
    password: str | None = None,
    max_pixels: int = 40_000_000,
    timeout: float = 15.0,
    filename: str = "",
) -> RenderedPage:
    """Render page ``page_index`` (0-based) at ``dpi`` as PNG bytes for display.

    ``rotation`` (a multiple of 90, clockwise) is applied to the picture only; the stored file is
    never changed. A page whose picture would exceed ``max_pixels`` is rendered at a lower dpi that
    fits and ``scaled_down`` says so. Raises :class:`~ecms_desktop.services.core.errors.DocumentError` when the
    page cannot be displayed or takes longer than ``timeout`` seconds.
    """
    return default_sandbox().render_page(
        data,
        page_index,
        dpi=dpi,
        rotation=rotation,
        password=password,
        max_pixels=max_pixels,
        timeout=timeout,
        filename=filename,
    )


def render_thumbnail(
    data: bytes,
    page_index: int = 0,
    *,
    max_side: int = 160,
    rotation: int = 0,
    password: str | None = None,
    timeout: float = 15.0,
    filename: str = "",
) -> RenderedPage:
    """Render a small preview of a page whose longer side is at most ``max_side`` pixels."""
    return default_sandbox().render_thumbnail(
        data,
        page_index,
        max_side=max_side,
        rotation=rotation,
        password=password,
        timeout=timeout,
        filename=filename,
    )


def read_form_fields(
    data: bytes, *, filename: str = "", password: str | None = None, text_limit: int = 20_000,
    timeout: float = 15.0
) -> FormFields:
    """Read the fill-in fields of a PDF (a returned form, or a form added to the library) in the
    worker process: page, name, type and value of each field, the metadata keywords and, when the
    PDF has no fields, its text up to ``text_limit`` characters (to find a token printed on a
    scan). Raises :class:`~ecms_desktop.services.core.errors.DocumentError` naming ``filename`` when the file is
    not a PDF, is damaged, or takes longer than ``timeout`` seconds or too much memory to read."""
    return default_sandbox().read_form_fields(
        data, filename=filename, password=password, text_limit=text_limit, timeout=timeout
    )


def read_email(data: bytes, *, filename: str = "", timeout: float = 15.0) -> EmailContent:
    """Parse an e-mail (``.eml``) in the worker process: sender, Date header, subject and every
    attachment. Raises :class:`~ecms_desktop.services.core.errors.DocumentError` naming ``filename`` when the
    message cannot be parsed within ``timeout`` seconds and the memory limit."""
    return default_sandbox().read_email(data, filename=filename, timeout=timeout)


def close() -> None:
    """Shut down the shared sandbox's worker (also done automatically at exit)."""
    with _default_lock:
        sandbox = _default
    if sandbox is not None:
        sandbox.close()


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
