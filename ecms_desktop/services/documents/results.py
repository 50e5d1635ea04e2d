"""What the document sandbox hands back, and how the worker's replies become it: the results of a probe,
a rendered page, the audit pack's book pages, a PDF's form fields, the words read from a document's
pages (form fields, text layer or OCR) and an e-mail's content; the
password errors; and each kind of failure the worker reports turned into a message an accountant can
act on, naming the file.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from ecms_desktop.services.core.errors import DocumentError
from ecms_desktop.services.documents.media_types import TYPE_NAMES

__all__ = [
    "OCR_UNAVAILABLE",
    "BookPages",
    "DocumentText",
    "EmailAttachment",
    "EmailContent",
    "FormField",
    "FormFields",
    "PageText",
    "PasswordRequired",
    "ProbeResult",
    "RenderedPage",
    "Word",
    "WrongPassword",
    "document_text",
    "failure_to_error",
    "json_body",
]

#: What a page that needed OCR says when Tesseract is not installed.
OCR_UNAVAILABLE = "OCR is unavailable: install tesseract-ocr"


class PasswordRequired(DocumentError):
    """The file is locked with a password; ask the user for it and try again."""


class WrongPassword(PasswordRequired):
    """The password given does not open the file; ask again."""


def turn_box(box: tuple[float, float, float, float], width: float, height: float,
             turn: int) -> tuple[float, float, float, float]:
    """``box`` (``x0, y0, x1, y1`` from the top left) of a ``width`` x ``height`` page, on that page turned
    ``turn`` degrees clockwise (0, 90, 180 or 270; a PDF's /Rotate and a view's rotation both turn so)."""
    x0, y0, x1, y1 = box
    turn %= 360
    if turn == 90:
        return (height - y1, x0, height - y0, x1)
    if turn == 180:
        return (width - x1, height - y1, width - x0, height - y0)
    if turn == 270:
        return (y0, width - x1, y1, width - x0)
    return box


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
    pixel budget; what is shown is complete, just less sharp. ``page_rotation`` is the page's own
    /Rotate (applied in the picture before the rotation asked), so that a place given in the page's own
    coordinates can be found on the picture (:func:`turn_box`).
    """

    png: bytes
    width: int
    height: int
    page_count: int
    scaled_down: bool = False
    dpi: float = 0.0
    page_rotation: int = 0


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
class Word:
    """One word read from a page: its text, how sure the reader is of it (0..1; 1.0 for a form field or
    a text layer), its box ``(x0, y0, x1, y1)`` in points in the page's own coordinates (the page before
    any rotation: the PDF's /Rotate, or the turn OCR needed, is not applied; origin top left), and the
    block and line it belongs to (lines numbered through the page). ``field`` is the name of the form
    field the value was typed into, empty for printed or scanned text."""

    text: str
    confidence: float
    box: tuple[float, float, float, float]
    block: int
    line: int
    field: str = ""


@dataclass(frozen=True)
class PageText:
    """What was read from one page (0-based ``index``) and how.

    ``method``: ``"form_fields"`` (the values of its filled form fields, as words named by their field,
    followed by its printed text), ``"text_layer"`` (the text the PDF carries), ``"ocr"`` (the rendered
    page read by Tesseract) or ``"none"`` (it needed OCR and ``note`` says why there was none).
    ``rotation`` is the turn (degrees clockwise: 0, 90, 180, 270) the page needed to be read upright and
    ``skew`` the small correction (degrees, positive anticlockwise text) applied before OCR; the boxes
    are in the unturned page all the same. ``width``/``height`` are the page's own size in points and
    ``page_rotation`` the PDF's /Rotate, with which :meth:`shown_box` maps a box onto the page as it is
    displayed. ``engine`` is ``"pymupdf"`` or ``"tesseract"`` with its ``engine_version``; ``seconds`` is
    the time the page took."""

    index: int
    method: str
    rotation: int
    skew: float
    width: float
    height: float
    page_rotation: int
    words: tuple[Word, ...]
    engine: str
    engine_version: str
    seconds: float
    note: str = ""

    @property
    def text(self) -> str:
        """The page's words as text, one line of the page per line."""
        lines: list[str] = []
        current: int | None = None
        for word in self.words:
            if word.line != current or word.field:
                lines.append(word.text)
                current = None if word.field else word.line
            else:
                lines[-1] += " " + word.text
        return "\n".join(lines)

    def shown_box(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """``box`` (in the page's own coordinates) on the page as a viewer shows it (the PDF's /Rotate
        applied, as :meth:`~ecms_desktop.services.documents.sandbox.DocumentSandbox.render_page` draws it
        with ``rotation=0``), in points from its top left."""
        return turn_box(box, self.width, self.height, self.page_rotation)


@dataclass(frozen=True)
class DocumentText:
    """The words read from a document's first pages (:class:`PageText` each). ``page_count`` is the
    document's number of pages (more than ``len(pages)`` when only the first ones were read) and
    ``ocr_available`` whether Tesseract could be used; ``notes`` says in plain words what could not be
    done (OCR unavailable)."""

    pages: tuple[PageText, ...]
    page_count: int
    ocr_available: bool
    seconds: float
    notes: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """All the pages' text, pages separated by a blank line."""
        return "\n\n".join(page.text for page in self.pages)


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


def json_body(blob: bytes, name: str) -> dict[str, Any]:
    """The JSON document the worker sent in ``blob``; :class:`DocumentError` naming ``name`` when it is not one."""
    try:
        body = json.loads(bytes(blob).decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        body = None
    if not isinstance(body, dict):
        raise DocumentError(f"{name}: the document reader gave an answer this program does not understand.")
    return body


def document_text(body: dict[str, Any], *, ocr_available: bool, seconds: float) -> DocumentText:
    """The :class:`DocumentText` of a ``read`` answer (its JSON document ``body``)."""
    pages: list[PageText] = []
    for page in body.get("pages", ()):
        words = tuple(
            Word(str(w[0]), float(w[1]), (float(w[2]), float(w[3]), float(w[4]), float(w[5])), int(w[6]), int(w[7]),
                 str(w[8]))
            for w in page.get("words", ())
        )
        note = str(page.get("note", ""))
        pages.append(PageText(
            index=int(page["index"]), method=str(page["method"]), rotation=int(page.get("rotation", 0)),
            skew=float(page.get("skew", 0.0)), width=float(page["width"]), height=float(page["height"]),
            page_rotation=int(page.get("page_rotation", 0)), words=words, engine=str(page.get("engine", "")),
            engine_version=str(page.get("engine_version", "")), seconds=float(page.get("seconds", 0.0)),
            note=OCR_UNAVAILABLE if note == "ocr_unavailable" else note,
        ))
    notes = (OCR_UNAVAILABLE,) if any(p.note == OCR_UNAVAILABLE for p in pages) else ()
    return DocumentText(tuple(pages), int(body.get("page_count", len(pages))), ocr_available, seconds, notes)


def failure_to_error(header: dict[str, Any], name: str, media_type: str) -> DocumentError:
    """The error for a failed reply (``{"ok": false, "kind": ..., "detail": ...}``) about the file ``name``."""
    kind = str(header.get("kind", ""))
    detail = str(header.get("detail", "") or "")
    type_name = TYPE_NAMES.get(media_type, "file")
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
    if kind == "ocr_timeout":
        return DocumentError(f"{name}: reading the text of page {detail} took longer than allowed; the scan may "
                             "be damaged or too large.")
    if kind == "ocr_failed":
        page, why = ([*detail.split("\x00"), "", ""])[:2]
        return DocumentError(f"{name}: Tesseract could not read page {page} ({why}).")
    if kind == "memory":
        return DocumentError(
            f"{name}: the file needs more memory to read than is allowed; it may be damaged."
        )
    if kind == "unsupported":
        return DocumentError(f"{name}: this kind of file ({detail}) is not supported.")
    more = f" ({detail})" if detail else ""
    return DocumentError(f"{name}: the file is damaged{more}.")
