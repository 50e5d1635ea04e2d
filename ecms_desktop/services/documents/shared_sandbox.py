"""The one document sandbox the program shares, and the functions that open, check and display a
customer document through it (:func:`probe_document`, :func:`render_page`, :func:`render_thumbnail`,
:func:`read_form_fields`, :func:`read_pages`, :func:`read_email`). Each runs in the sandbox's worker process (see
:mod:`ecms_desktop.services.documents.sandbox`); the worker is started on first use and shut down by
:func:`close` or at exit.
"""

from __future__ import annotations

import threading

from ecms_desktop.services.documents.results import DocumentText, EmailContent, FormFields, ProbeResult, RenderedPage
from ecms_desktop.services.documents.sandbox import DocumentSandbox

__all__ = [
    "close",
    "default_sandbox",
    "probe_document",
    "read_email",
    "read_form_fields",
    "read_pages",
    "render_page",
    "render_thumbnail",
]

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
    A file that needs a password raises :class:`~ecms_desktop.services.documents.results.PasswordRequired`;
    a wrong ``password`` raises :class:`~ecms_desktop.services.documents.results.WrongPassword`. Files with
    only an owner password (print/copy restrictions) open fine and report ``encrypted=True``.
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


def read_pages(
    data: bytes, *, filename: str = "", password: str | None = None, max_pages: int = 10, timeout: float = 120.0
) -> DocumentText:
    """Read the words of a document's first ``max_pages`` pages in the worker process, with for each
    word its confidence and its box on the page. Each page is read the best way it allows: the values
    of its filled form fields (method ``form_fields``), else its text layer (``text_layer``), else OCR
    by Tesseract (``ocr``) after finding which way up it is and straightening a skew of a few degrees;
    images (PNG, JPEG, TIFF with all its pages, ...) are OCRed. Without Tesseract installed such a page
    has no words and says :data:`~ecms_desktop.services.documents.results.OCR_UNAVAILABLE`. Raises
    :class:`~ecms_desktop.services.documents.results.PasswordRequired` for a locked PDF and
    :class:`~ecms_desktop.services.core.errors.DocumentError` naming ``filename`` when the file is damaged
    or takes longer than ``timeout`` seconds or too much memory to read."""
    return default_sandbox().read_pages(
        data, filename=filename, password=password, max_pages=max_pages, timeout=timeout
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
