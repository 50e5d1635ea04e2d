"""The generated set of scans (tests/helpers/scan_set.py) that bench/bench_scans.py measures reading on:
it is the same on every run, large and varied enough (every real form, documents that are no form, every
kind of scan), every value it expects is printed on its filled document, and a few of its scans read
right through the same path as ``ecms intake``."""

from __future__ import annotations

import io
import shutil
from collections import Counter
from collections.abc import Iterator

import pytest
from PIL import Image

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.documents.sandbox import DocumentSandbox
from ecms_desktop.services.intake.reading import DocumentReading, read_document
from tests.helpers.real_forms import REAL_FORMS
from tests.helpers.scan_set import FIELDS, ScanItem, parse_date, same_value, scan_set

pymupdf = pytest.importorskip("pymupdf")

needs_forms = pytest.mark.skipif(
    not REAL_FORMS.is_dir(),
    reason=f"needs the real blank forms in {REAL_FORMS} (../shared is not part of the project)")
needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None,
    reason="Tesseract is not installed (./scripts/bootstrap.sh installs tesseract-ocr as root on Debian/Ubuntu)")

#: Fields that are marks or follow from the form rather than printed words.
_NOT_WORDS = {"states", "exempt_reason", "certificate_type"}


def test_the_set_is_the_same_on_every_run_and_follows_its_seed() -> None:
    first, again = scan_set(), scan_set()
    assert first == again
    other = scan_set(seed=14)
    assert [i.expected for i in other] != [i.expected for i in first]
    assert [i.form_code for i in other] == [i.form_code for i in first]  # which form comes where is fixed


@needs_forms
def test_a_scan_is_the_same_bytes_on_every_run() -> None:
    item = min((i for i in scan_set() if i.name.endswith(".jpg")), key=lambda i: i.dpi)
    assert item.scan() == item.scan()
    assert item.filled() == item.filled()


def test_the_set_has_every_kind_of_document_and_scan() -> None:
    items = scan_set()
    assert len(items) >= 30
    kinds = Counter(i.kind for i in items)
    assert kinds["form"] >= 24 and kinds["letter"] >= 2 and kinds["own certificate"] >= 2
    forms = {i.form_code for i in items if i.kind == "form"}
    assert {"TX-01-339", "NY-ST-120", "NY-ST-121", "NY-ST-120.1", "PA-REV-1220", "MI-3372", "IN-ST-105",
            "MA-ST-4", "CT-RESALE", "DC-OTR-368", "MTC-UNIFORM"} <= forms
    for item in items:
        assert ("purchaser_name" in item.expected), item.name
        assert (item.form_code is None) == (item.kind != "form"), item.name
    assert {i.name.rsplit(".", 1)[1] for i in items} == {"jpg", "png", "tif", "pdf"}
    assert {i.turn for i in items} == {0, 90, 180, 270}
    assert min(i.dpi for i in items) == 150 and max(i.dpi for i in items) == 300
    assert any(i.paper for i in items) and any(not i.paper for i in items)
    assert any(i.lighting for i in items) and any(abs(i.skew) > 2 for i in items)
    assert any(len(i.pages) > 1 for i in items)
    fields = Counter(name for i in items for name in i.expected)
    for name in ("purchaser_address", "purchaser_tax_id", "purchaser_ein", "states", "exempt_reason",
                 "certificate_type", "signer_name", "signer_title", "signed_date", "expiry_date", "seller_name",
                 "seller_address"):
        assert fields[name] >= 1, name


@needs_forms
def test_every_expected_value_is_printed_on_the_filled_document() -> None:
    for item in scan_set():
        doc = pymupdf.open(stream=item.filled(), filetype="pdf")
        text = " ".join(" ".join(doc[p].get_text().split()) for p in item.pages)
        for name, value in item.expected.items():
            if item.kind == "form" and name in _NOT_WORDS and name != "states":
                continue
            parts = value.split(", ") if name in ("purchaser_address", "seller_address", "states") else [value]
            for part in parts:
                assert part in text, (item.name, name, part)


@needs_forms
def test_the_scans_are_images_at_their_resolution_without_text() -> None:
    for item in scan_set()[:12]:
        data = item.scan()
        if item.name.endswith(".pdf"):
            doc = pymupdf.open(stream=data, filetype="pdf")
            assert len(doc) == len(item.pages) and not doc[0].get_text().strip(), item.name
            assert doc[0].get_images(), item.name
        else:
            image = Image.open(io.BytesIO(data))
            assert round(image.info["dpi"][0]) == item.dpi, item.name
            frames = getattr(image, "n_frames", 1)
            assert frames == len(item.pages), item.name
            portrait = image.height > image.width
            assert portrait == (item.turn in (0, 180)), item.name


def test_values_are_compared_without_case_punctuation_and_date_format() -> None:
    assert same_value("purchaser_name", "Harbor Lights Trading, LLC", "HARBOR LIGHTS TRADING LLC")
    assert not same_value("purchaser_name", "Harbor Lights Trading LLC", "Harbor Lights Trading")
    assert same_value("signed_date", "March 4, 2026", "03/04/2026")
    assert not same_value("signed_date", "03/04/2026", "04/03/2026")
    assert same_value("states", "CA, TX", "TX,CA") and not same_value("states", "CA, TX", "CA")
    assert same_value("purchaser_tax_id", "12-3456789", "123456789")
    assert parse_date("04-01-2026") == parse_date("April 1, 2026") is not None


# --------------------------------------------------------------------------- reading a few of the scans


def _sample() -> list[ScanItem]:
    """The items read here, chosen by rule (not by result): the first one-page upright scan of each of the
    first three forms that have one, and the first document that is no form; about 3 s of OCR each."""
    items = scan_set()
    firsts: dict[str | None, ScanItem] = {}
    for item in items:
        if item.kind == "form" and len(item.pages) == 1 and item.turn == 0:
            firsts.setdefault(item.form_code, item)
    return [*list(firsts.values())[:3], next(i for i in items if i.kind != "form")]


@pytest.fixture(scope="module")
def readings() -> Iterator[list[tuple[ScanItem, DocumentReading]]]:
    with DocumentSandbox() as sandbox:
        rules = load_rules_pack()
        yield [(item, read_document(item.scan(), item.name, rules, sandbox=sandbox)) for item in _sample()]


@needs_forms
@needs_tesseract
def test_a_few_scans_are_identified_and_their_purchaser_read(
        readings: list[tuple[ScanItem, DocumentReading]]) -> None:
    for item, reading in readings:
        assert reading.method == "ocr", (item.name, reading.notes)
        assert (reading.form_code.value or None) == item.form_code, (item.name, reading.notes)
        if item.state:
            assert reading.state.value == item.state, item.name
        read = reading.fields.get("purchaser_name")
        assert read is not None and same_value("purchaser_name", item.expected["purchaser_name"], read.value), (
            item.name, read)


@needs_forms
@needs_tesseract
def test_no_value_read_at_0_9_or_more_is_wrong_on_a_few_scans(
        readings: list[tuple[ScanItem, DocumentReading]]) -> None:
    wrong = []
    for item, reading in readings:
        expected = item.expected
        for name, read in reading.fields.items():
            if name not in FIELDS or read.confidence < 0.9:
                continue
            if name in expected and not same_value(name, expected[name], read.value):
                wrong.append((item.name, name, read.value, expected[name]))
            elif name not in expected and item.kind == "form":
                wrong.append((item.name, name, read.value, None))
    assert not wrong
