"""Tests for reading the words of a document's pages in the sandbox: filled form fields, a text layer,
and OCR of scans (made here: skewed, sideways, upside down, noisy, JPEG), blank pages, passwords,
Tesseract missing, and files that take too long."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pymupdf
import pytest

from ecms_desktop.services.core.errors import DocumentError
from ecms_desktop.services.documents.results import OCR_UNAVAILABLE, DocumentText, PageText, PasswordRequired, Word
from ecms_desktop.services.documents.sandbox import DocumentSandbox
from tests.factories import image_bytes, letter_pdf, text_pdf
from tests.helpers.scans import PERMIT, PURCHASER, Scan, certificate_page, multipage_tiff, scan

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None,
    reason="Tesseract is not installed (./scripts/bootstrap.sh installs tesseract-ocr as root on Debian/Ubuntu)",
)
BAD_DIR = (Path(__file__).resolve().parents[3] / ".." / "shared" / "bad-pdfs").resolve()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[DocumentSandbox]:
    box = DocumentSandbox()
    yield box
    box.close()


def find(page: PageText, text: str) -> Word:
    matches = [w for w in page.words if w.text.strip(".,:;") == text]
    assert matches, f"{text!r} not read; the page says:\n{page.text}"
    return matches[0]


def near(box: tuple[float, float, float, float], point: tuple[float, float], tolerance: float = 12.0) -> bool:
    x0, y0, x1, y1 = box
    return x0 - tolerance <= point[0] <= x1 + tolerance and y0 - tolerance <= point[1] <= y1 + tolerance


# ------------------------------------------------------------------------------- text layer, fields


def test_a_text_layer_is_read_with_full_confidence(sandbox: DocumentSandbox) -> None:
    pdf, boxes = certificate_page()
    result = sandbox.read_pages(pdf, filename="cert.pdf")
    assert isinstance(result, DocumentText)
    assert result.page_count == 1 and len(result.pages) == 1
    page = result.pages[0]
    assert (page.method, page.rotation, page.skew, page.engine) == ("text_layer", 0, 0.0, "pymupdf")
    assert page.engine_version and (page.width, page.height) == (612.0, 792.0)
    assert PURCHASER in page.text and PERMIT in page.text
    assert all(w.confidence == 1.0 for w in page.words)
    lone = find(page, "Lone")
    assert lone.box == pytest.approx(tuple(boxes["Lone"]), abs=0.5)
    assert lone.line != find(page, PERMIT).line


def test_a_filled_form_gives_its_field_values(sandbox: DocumentSandbox) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((72, 90), "Name of purchaser", fontsize=10)
    for name, rect, kind, value in (
        ("purchaser_name", pymupdf.Rect(72, 100, 400, 120), pymupdf.PDF_WIDGET_TYPE_TEXT, PURCHASER),
        ("permit", pymupdf.Rect(72, 140, 300, 160), pymupdf.PDF_WIDGET_TYPE_TEXT, ""),
        ("resale", pymupdf.Rect(72, 180, 86, 194), pymupdf.PDF_WIDGET_TYPE_CHECKBOX, True),
    ):
        widget = pymupdf.Widget()
        widget.field_name, widget.field_type, widget.rect, widget.field_value = name, kind, rect, value
        page.add_widget(widget)
    result = sandbox.read_pages(doc.tobytes(), filename="filled.pdf")
    page_text = result.pages[0]
    assert page_text.method == "form_fields"
    fields = {w.field: w for w in page_text.words if w.field}
    assert set(fields) == {"purchaser_name", "resale"}  # the empty field is not a value
    assert fields["purchaser_name"].text == PURCHASER
    assert fields["purchaser_name"].box == (72.0, 100.0, 400.0, 120.0)
    assert fields["purchaser_name"].confidence == 1.0
    assert "Name of purchaser" in page_text.text  # the printed labels come along


def test_an_empty_form_is_read_from_its_text_layer(sandbox: DocumentSandbox) -> None:
    pdf = text_pdf("Texas Sales and Use Tax Resale Certificate, purchaser name and permit number below")
    assert sandbox.read_pages(pdf).pages[0].method == "text_layer"


def test_a_rotated_pdf_page_reports_its_rotation_for_display(sandbox: DocumentSandbox) -> None:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((100, 100), "Purchaser Lone Star Retail LLC holds permit 3-2345-6789-012 for resale", fontsize=11)
    page.set_rotation(90)
    result = sandbox.read_pages(doc.tobytes()).pages[0]
    assert (result.method, result.page_rotation, result.width, result.height) == ("text_layer", 90, 612.0, 792.0)
    lone = find(result, "Lone")
    shown = result.shown_box(lone.box)
    # /Rotate 90 turns the page clockwise: the line near the top of the page is near its right edge
    assert shown[0] > 600 and shown[1] == pytest.approx(lone.box[0])


def test_a_password_protected_pdf_needs_its_password(sandbox: DocumentSandbox) -> None:
    locked = letter_pdf(1, password="secret")
    with pytest.raises(PasswordRequired):
        sandbox.read_pages(locked, filename="locked.pdf")
    assert sandbox.read_pages(locked, password="secret").pages[0].method in ("text_layer", "ocr")


def test_max_pages_reads_only_the_first_pages(sandbox: DocumentSandbox) -> None:
    pdf = letter_pdf(3)
    result = sandbox.read_pages(pdf, max_pages=2)
    assert result.page_count == 3 and [p.index for p in result.pages] == [0, 1]
    with pytest.raises(ValueError):
        sandbox.read_pages(pdf, max_pages=0)


def test_without_tesseract_ocr_is_unavailable(sandbox: DocumentSandbox, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = sandbox.read_pages(scan(certificate_page()[0], dpi=150).data, filename="scan.jpg")
    assert not result.ocr_available and result.notes == (OCR_UNAVAILABLE,)
    page = result.pages[0]
    assert (page.method, page.words, page.note) == ("none", (), OCR_UNAVAILABLE)
    assert OCR_UNAVAILABLE == "OCR is unavailable: install tesseract-ocr"
    # a text layer needs no OCR
    assert sandbox.read_pages(certificate_page()[0]).pages[0].method == "text_layer"


# ------------------------------------------------------------------------------------------- OCR

SCANS = [  # (dpi, skew, turn, expected rotation)
    (300, 0.0, 0, 0),
    (300, 3.0, 0, 0),
    (200, -2.5, 90, 90),
    (300, 1.5, 180, 180),
    (250, 0.0, 270, 270),
]


@needs_tesseract
@pytest.mark.parametrize(("dpi", "skew", "turn", "rotation"), SCANS)
def test_a_scan_is_read_upright(sandbox: DocumentSandbox, dpi: int, skew: float, turn: int, rotation: int) -> None:
    pdf, boxes = certificate_page()
    made = scan(pdf, dpi=dpi, skew=skew, turn=turn)
    result = sandbox.read_pages(made.data, filename="scan.jpg")
    assert result.ocr_available and not result.notes
    page = result.pages[0]
    assert (page.method, page.engine) == ("ocr", "tesseract")
    assert page.engine_version.startswith(("4", "5"))
    assert page.rotation == rotation
    assert page.skew == pytest.approx(skew, abs=0.6)
    assert PURCHASER in page.text
    assert PERMIT in page.text
    for text in ("Lone", PERMIT):
        word = find(page, text)
        assert word.confidence > 0.6
        drawn = boxes[text]
        assert near(word.box, made.where((drawn.x0 + drawn.x1) / 2, (drawn.y0 + drawn.y1) / 2)), (text, word.box)
    assert page.seconds > 0 and result.seconds >= page.seconds


@needs_tesseract
def test_a_scanned_pdf_without_text_is_ocred(sandbox: DocumentSandbox) -> None:
    pdf, _ = certificate_page()
    made = scan(pdf, dpi=200, skew=1.0)
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_image(page.rect, stream=made.data)
    result = sandbox.read_pages(doc.tobytes(), filename="scanned.pdf").pages[0]
    assert result.method == "ocr" and PURCHASER in result.text
    lone = find(result, "Lone")
    assert near(lone.box, made.where(260, 106), tolerance=15)


@needs_tesseract
def test_a_multipage_tiff_is_read_page_by_page(sandbox: DocumentSandbox) -> None:
    pdf, _ = certificate_page()
    tiff = multipage_tiff([scan(pdf, dpi=200, noise=0.05), scan(pdf, dpi=200, turn=180, noise=0.05)])
    result = sandbox.read_pages(tiff, filename="scans.tif")
    assert result.page_count == 2
    assert [(p.method, p.rotation) for p in result.pages] == [("ocr", 0), ("ocr", 180)]
    assert all(PERMIT in p.text for p in result.pages)


@needs_tesseract
def test_blank_pages_give_no_words(sandbox: DocumentSandbox) -> None:
    doc = pymupdf.open()
    doc.new_page(width=612, height=792)
    blank_pdf = sandbox.read_pages(doc.tobytes(), filename="blank.pdf").pages[0]
    assert (blank_pdf.method, blank_pdf.words) == ("ocr", ())
    blank_image = sandbox.read_pages(image_bytes(1700, 2200, rgb=(250, 250, 250)), filename="blank.png").pages[0]
    assert (blank_image.method, blank_image.words, blank_image.rotation, blank_image.skew) == ("ocr", (), 0, 0.0)


@needs_tesseract
def test_ocr_that_takes_too_long_fails_clearly_and_the_sandbox_recovers(sandbox: DocumentSandbox) -> None:
    made = scan(certificate_page()[0], dpi=300)
    with pytest.raises(DocumentError, match=r"slow\.jpg: reading the text of page 1 took longer than allowed"):
        sandbox.read_pages(made.data, filename="slow.jpg", timeout=2.5)
    assert sandbox.read_pages(certificate_page()[0]).pages[0].method == "text_layer"


BAD_FILES = sorted(p for p in BAD_DIR.glob("*") if p.suffix != ".md") if BAD_DIR.is_dir() else []


@pytest.mark.skipif(not BAD_FILES, reason=f"bad-pdfs corpus not found at {BAD_DIR}")
@pytest.mark.parametrize("path", BAD_FILES, ids=lambda p: p.name)
def test_bad_files_are_read_or_refused_in_time(sandbox: DocumentSandbox, path: Path) -> None:
    started = time.monotonic()
    try:
        result = sandbox.read_pages(path.read_bytes(), filename=path.name, max_pages=2, timeout=30)
    except DocumentError as exc:
        assert str(exc).startswith(f"{path.name}: ")
    else:
        assert 1 <= len(result.pages) <= 2
        assert all(p.method in ("form_fields", "text_layer", "ocr", "none") for p in result.pages)
    assert time.monotonic() - started < 40


@pytest.mark.skipif(not BAD_FILES, reason=f"bad-pdfs corpus not found at {BAD_DIR}")
def test_an_image_too_large_is_refused_before_decoding(sandbox: DocumentSandbox) -> None:
    with pytest.raises(DocumentError, match=r"bomb\.jpg: the image is .* pixels"):
        sandbox.read_pages((BAD_DIR / "jpeg-corrupt-49069x6528.jpg").read_bytes(), filename="bomb.jpg")
    assert sandbox.read_pages(certificate_page()[0]).pages[0].method == "text_layer"


def test_scan_helper_maps_points() -> None:
    made = Scan(b"", 72, 0.0, 90, (612, 792))
    assert made.where(612, 396) == pytest.approx((396, 0))
