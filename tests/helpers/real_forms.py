"""The real forms of ``../shared/real-forms`` filled in by drawing values at their fields' positions (as
printed text, the fill-in fields removed): certificates whose layout is a real state's. :func:`draw_fields`
fills any of them; :func:`filled_tx_form` is the TX-01-339 the reading tests use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pymupdf

from tests.conftest import SHARED

REAL_FORMS = SHARED / "real-forms"
TX_FORM = REAL_FORMS / "TX-01-339.pdf"
PURCHASER = "Harbor Lights Trading LLC"
DRAW = (("Purchaser", PURCHASER), ("Purchaser address", "1200 Congress Ave"),
        ("Purchaser city, state, ZIP", "Austin, TX 78701"), ("Permit number", "32012345678"),
        ("Seller", "Lone Star Supply Co"), ("Purchaser title", "Owner"), ("Purchaser sig date", "03/15/2026"))

#: What a field of :func:`draw_fields` holds: a text, or one text per widget of a name several share.
FieldText = str | Sequence[str]


def _write(page: pymupdf.Page, rect: pymupdf.Rect, text: str, fontname: str, largest: float) -> None:
    """``text`` printed on one line in ``rect``, at most ``largest`` points and small enough to fit."""
    size = min(largest, rect.height * 0.8)
    while size > 5 and pymupdf.get_text_length(text, fontname=fontname, fontsize=size) > rect.width - 3:
        size -= 0.5
    page.insert_text((rect.x0 + 2, rect.y1 - (rect.height - size) / 2 - 1.5), text, fontsize=size,
                     fontname=fontname)


def _mark(page: pymupdf.Page, rect: pymupdf.Rect, fontname: str) -> None:
    """A typed "X" in the middle of the check box ``rect``."""
    size = max(6.0, min(rect.height, rect.width) * 0.95)
    width = pymupdf.get_text_length("X", fontname=fontname, fontsize=size)
    page.insert_text(((rect.x0 + rect.x1 - width) / 2, (rect.y0 + rect.y1) / 2 + size * 0.35), "X",
                     fontsize=size, fontname=fontname)


def draw_fields(doc: pymupdf.Document, values: Mapping[str, FieldText], *, fontname: str = "helv",
                largest: float = 9.0, keep_filled: bool = True) -> dict[str, pymupdf.Rect]:
    """Fill ``doc``'s fields by printing on its pages, then remove every field (the page then reads like a
    printed and filled form: its text layer holds the values). ``values`` maps a field name to its text
    (a text field) or to the "on" state to mark with an X (a check box or radio button; a group's widget
    whose on state it names is marked). A name several text widgets share takes a sequence, one text per
    widget in page order. With ``keep_filled`` a field already filled in the file and not in ``values``
    (a seller's prefilled name) is printed as it is. Returns the rectangle of each drawn field's first
    widget (points, top-left origin)."""
    rects: dict[str, pymupdf.Rect] = {}
    seen: dict[str, int] = {}
    for page in doc:
        for widget in list(page.widgets()):
            name, rect = widget.field_name, pymupdf.Rect(widget.rect)
            kind = widget.field_type
            value = values.get(name)
            if value is None and keep_filled:
                current = widget.field_value
                value = current.strip() if isinstance(current, str) and current.strip() not in ("", "Off") else None
            if kind in (pymupdf.PDF_WIDGET_TYPE_CHECKBOX, pymupdf.PDF_WIDGET_TYPE_RADIOBUTTON):
                if value is not None and value.replace("#20", " ") == str(widget.on_state()).replace("#20", " "):
                    _mark(page, rect, fontname)
                    rects.setdefault(name, rect)
            elif kind == pymupdf.PDF_WIDGET_TYPE_TEXT and value is not None:
                if not isinstance(value, str):
                    index = seen.get(name, 0)
                    seen[name] = index + 1
                    value = value[index] if index < len(value) else ""
                if value:
                    _write(page, rect, value, fontname, largest)
                    rects.setdefault(name, rect)
            page.delete_widget(widget)
    return rects


def filled_tx_form() -> tuple[bytes, pymupdf.Rect]:
    """The blank TX-01-339 with the values drawn as printed text at their fields (the fields themselves
    removed, so that the page is read through its text layer); the purchaser field's rectangle."""
    doc = pymupdf.open(TX_FORM)
    rects = draw_fields(doc, dict(DRAW))
    return doc.tobytes(), rects["Purchaser"]
