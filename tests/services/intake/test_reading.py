"""Reading an arriving document end to end in the sandbox: the real TX-01-339 form filled in here by
drawing values at its field positions, read through its text layer and as a scan made from it (200 dpi,
slightly skewed, and sideways); a blank page and a damaged file read as "nothing could be read"."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.documents.sandbox import DocumentSandbox
from ecms_desktop.services.intake.reading import NOTHING_READ, DocumentReading, read_document
from tests.factories import image_bytes
from tests.helpers.real_forms import PURCHASER, TX_FORM, filled_tx_form
from tests.helpers.scans import scan

pymupdf = pytest.importorskip("pymupdf")

needs_form = pytest.mark.skipif(
    not TX_FORM.is_file(), reason=f"needs the real blank form {TX_FORM} (../shared is not part of the project)")
needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None,
    reason="Tesseract is not installed (./scripts/bootstrap.sh installs tesseract-ocr as root on Debian/Ubuntu)")

RULES = load_rules_pack()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[DocumentSandbox]:
    box = DocumentSandbox()
    yield box
    box.close()


def check_tx(reading: DocumentReading) -> None:
    assert reading.form_code.value == "TX-01-339", reading.notes
    assert reading.state.value == "TX" and reading.form_code.confidence >= 0.6


@needs_form
def test_a_text_layer_form_is_identified_and_its_purchaser_read(sandbox: DocumentSandbox) -> None:
    pdf, rect = filled_tx_form()
    reading = read_document(pdf, "tx.pdf", RULES, sandbox=sandbox)
    assert (reading.method, reading.engine) == ("text_layer", "pymupdf") and reading.engine_version
    check_tx(reading)
    name = reading.fields["purchaser_name"]
    assert name.value == PURCHASER and name.page == 1 and 0 < name.confidence <= 1
    x0, y0, x1, y1 = name.box
    assert rect.x0 - 5 <= x0 < x1 <= rect.x1 + 5 and rect.y0 - 5 <= y0 < y1 <= rect.y1 + 5
    assert reading.fields["purchaser_tax_id"].value == "32012345678"
    assert reading.seconds > 0
    assert reading.notes == ("registered to TX-01-339.pdf (Rev. 4-13/8) page 1: 21 anchors, 0.0 pt",
                             "registered to TX-01-339.pdf (Rev. 4-13/8) page 2: 15 anchors, 0.0 pt")
    shown = reading.to_json()
    assert set(shown) == {"method", "form_code", "state", "fields", "engine", "engine_version", "seconds", "notes"}
    assert shown["form_code"] == {"value": "TX-01-339", "confidence": round(reading.form_code.confidence, 4)}
    assert shown["fields"]["purchaser_name"]["value"] == PURCHASER
    assert set(shown["fields"]["purchaser_name"]) == {"value", "confidence", "page", "box"}
    assert len(shown["fields"]["purchaser_name"]["box"]) == 4


@needs_form
@needs_tesseract
@pytest.mark.parametrize("turn", [0, 90])
def test_a_scan_of_the_form_is_read_by_ocr_and_identified(sandbox: DocumentSandbox, turn: int) -> None:
    pdf, rect = filled_tx_form()
    scanned = scan(pdf, dpi=200, skew=1.5, turn=turn, noise=0.05, quality=85)
    reading = read_document(scanned.data, "tx-scan.jpg", RULES, sandbox=sandbox)
    assert (reading.method, reading.engine) == ("ocr", "tesseract") and reading.engine_version
    check_tx(reading)
    name = reading.fields.get("purchaser_name")
    assert name is not None and "Harbor Lights" in name.value, reading.fields
    assert 0 < name.confidence <= 1 and name.page == 1
    if not turn:  # the box is where the name is on the scanned page (a skew of 1.5 degrees moves it a little)
        centre = ((name.box[0] + name.box[2]) / 2, (name.box[1] + name.box[3]) / 2)
        assert rect.x0 - 15 <= centre[0] <= rect.x1 + 15 and rect.y0 - 15 <= centre[1] <= rect.y1 + 15, name.box


def test_a_blank_page_reads_as_nothing_read(sandbox: DocumentSandbox) -> None:
    blank = pymupdf.open()
    blank.new_page()
    reading = read_document(blank.tobytes(), "blank.pdf", RULES, sandbox=sandbox)
    assert reading.method == "none" and NOTHING_READ in reading.notes
    assert reading.form_code.value == "" and reading.state.value == "" and reading.fields == {}
    assert reading.to_json()["notes"][-1] == "nothing could be read"


def test_a_blank_scan_and_a_damaged_file_read_as_nothing_read(sandbox: DocumentSandbox) -> None:
    reading = read_document(image_bytes(850, 1100, rgb=(255, 255, 255)), "white.png", RULES, sandbox=sandbox)
    assert reading.method == "none" and reading.notes[-1] == NOTHING_READ
    damaged = read_document(b"%PDF-1.7\nnot really a pdf", "broken.pdf", RULES, sandbox=sandbox)
    assert damaged.method == "none" and damaged.notes[-1] == NOTHING_READ
    assert any("broken.pdf" in note for note in damaged.notes)
