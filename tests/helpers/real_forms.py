"""The real TX-01-339 form of ``../shared/real-forms`` filled in by drawing values at its field positions
(as printed text, its fill-in fields removed): a certificate whose layout is a real state's."""

from __future__ import annotations

import pymupdf

from tests.conftest import SHARED

TX_FORM = SHARED / "real-forms" / "TX-01-339.pdf"
PURCHASER = "Harbor Lights Trading LLC"
DRAW = (("Purchaser", PURCHASER), ("Purchaser address", "1200 Congress Ave"),
        ("Purchaser city, state, ZIP", "Austin, TX 78701"), ("Permit number", "32012345678"),
        ("Seller", "Lone Star Supply Co"), ("Purchaser title", "Owner"), ("Purchaser sig date", "03/15/2026"))


def filled_tx_form() -> tuple[bytes, pymupdf.Rect]:
    """The blank TX-01-339 with the values drawn as printed text at their fields (the fields themselves
    removed, so that the page is read through its text layer); the purchaser field's rectangle."""
    doc = pymupdf.open(TX_FORM)
    purchaser_rect = None
    for page in doc:
        for widget in list(page.widgets()):
            value = dict(DRAW).get(widget.field_name)
            rect = pymupdf.Rect(widget.rect)
            if value is not None:
                size = min(9.0, rect.height * 0.8)
                page.insert_text((rect.x0 + 2, rect.y1 - (rect.height - size) / 2 - 1.5), value, fontsize=size,
                                 fontname="helv")
                if widget.field_name == "Purchaser" and purchaser_rect is None:
                    purchaser_rect = rect
            page.delete_widget(widget)
    assert purchaser_rect is not None
    return doc.tobytes(), purchaser_rect


