"""Pages as a reader gives them to extraction, made from a PDF's text layer: PyMuPDF's words with their
boxes, block and line numbers, each with the confidence an OCR reading would give it."""

from __future__ import annotations

from typing import Any

from ecms_desktop.services.intake.extraction import Page, Word


def pages_of(doc: Any, confidence: float = 0.97) -> list[Page]:
    """The pages of the open PyMuPDF document ``doc`` as extraction's input."""
    return [Page(i + 1, p.rect.width, p.rect.height,
                 tuple(Word(w[4], confidence, (w[0], w[1], w[2], w[3]), w[5], w[6]) for w in p.get_text("words")))
            for i, p in enumerate(doc)]
