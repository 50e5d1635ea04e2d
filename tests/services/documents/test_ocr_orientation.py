"""Tests for how the worker finds a scan's orientation before reading it: the balance of ink over and
under its text lines (:func:`line_balance`), and an upside-down page read by one Tesseract pass, not
two."""

from __future__ import annotations

import shutil
import time
from typing import Any

import pymupdf
import pytest

from ecms_desktop.services.documents.worker.reading import OpenDoc, PageReader, line_balance
from tests.helpers.scans import PURCHASER, certificate_page, scan

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None,
    reason="Tesseract is not installed (./scripts/bootstrap.sh installs tesseract-ocr as root on Debian/Ubuntu)",
)


def _grey(pdf: bytes, turn: int) -> tuple[bytes, int, int]:
    page = pymupdf.open(stream=pdf, filetype="pdf")[0]
    pix = page.get_pixmap(matrix=pymupdf.Matrix(300 / 72, 300 / 72).prerotate(turn), colorspace=pymupdf.csGRAY,
                          alpha=False)
    return bytes(pix.samples_mv), pix.width, pix.height


@pytest.mark.parametrize("turn", [0, 180])
def test_text_lines_tell_upright_from_upside_down(turn: int) -> None:
    pdf, _ = certificate_page()
    samples, width, height = _grey(pdf, turn)
    balance, lines = line_balance(samples, width, height, width)
    assert lines >= 10
    assert (balance > 0.2) if turn == 0 else (balance < -0.2), balance


def test_a_blank_page_has_no_lines_to_tell_by() -> None:
    doc = pymupdf.open()
    doc.new_page(width=612, height=792)
    samples, width, height = _grey(doc.tobytes(), 0)
    assert line_balance(samples, width, height, width) == (0.0, 0)


@needs_tesseract
@pytest.mark.parametrize(("skew", "turn", "rotation"), [(1.5, 180, 180), (-2.0, 90, 90), (2.0, 270, 270)])
def test_a_turned_scan_is_read_by_one_tesseract_pass(monkeypatch: pytest.MonkeyPatch, skew: float, turn: int,
                                                     rotation: int) -> None:
    pdf, _ = certificate_page()
    made = scan(pdf, dpi=300, skew=skew, turn=turn)
    runs: list[int] = []
    reader = PageReader(pymupdf)
    original = PageReader._tesseract

    def counted(self: PageReader, *args: Any) -> str:
        runs.append(1)
        return original(self, *args)

    monkeypatch.setattr(PageReader, "_tesseract", counted)
    doc = pymupdf.open(stream=made.data, filetype="jpg")
    result = reader.ocr_page(OpenDoc(doc, 1, "image/jpeg"), doc[0], 0, shutil.which("tesseract") or "",
                             time.monotonic() + 60)
    assert result["rotation"] == rotation
    assert PURCHASER in " ".join(w[0] for w in result["words"])
    assert len(runs) == 1
