"""Reading the official forms by their layout: the templates' data (zones inside their pages), scans of
each official form filled in here, skewed and noisy, read from the zones at the right page and box; a
page that cannot be registered read by its labels; and confidence that stays below 0.9 where the
evidence is weak."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pymupdf
import pytest

from ecms_desktop.rules import FieldZone, FormRule, RulesPackError, default_rules_dir, load_rules_pack
from ecms_desktop.services.documents.sandbox import DocumentSandbox
from ecms_desktop.services.intake.extraction import Page
from ecms_desktop.services.intake.reading import read_document
from ecms_desktop.services.intake.templates import CAPS, read_fields, register, registrations
from tests.helpers.read_pages import pages_of
from tests.helpers.real_forms import REAL_FORMS, draw_fields
from tests.helpers.scans import scan

RULES = load_rules_pack()
TEMPLATED = sorted(code for code, form in RULES.forms.items()
                   if form.identification is not None and form.identification.templates)
needs_forms = pytest.mark.skipif(
    not REAL_FORMS.is_dir(),
    reason=f"needs the real blank forms at {REAL_FORMS} (../shared is not part of the project)")
needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None,
    reason="Tesseract is not installed (./scripts/bootstrap.sh installs tesseract-ocr as root on Debian/Ubuntu)")

NAME = "Copper Creek Hardware LLC"
DATE = "04/22/2026"
#: A permit number per form that fits its state's pattern (the multistate form's are read by label).
PERMITS = {"TX-01-339": "32098765432", "NY-ST-120": "123456789", "NY-ST-120.1": "987654321",
           "NY-ST-121": "112233445", "PA-REV-1220": "12345678", "MI-3372": "12345678", "IN-ST-105": "0012345678",
           "MA-ST-4": "12345678", "CT-RESALE": "1234567890", "DC-OTR-368": "12345678901"}
#: Forms whose number is written one digit per printed box: the box strokes read as letters, so the number
#: may not be read right, but then never confidently.
DIGIT_BOXES = {("DC-OTR-368", "purchaser_tax_id")}


def _first_zone(form: FormRule, field: str) -> tuple[int, FieldZone] | None:
    assert form.identification is not None
    template = form.identification.templates[0]
    for tpage in template.pages:
        for zone in tpage.zones:
            if zone.field == field:
                return tpage.page, zone
    return None


# --------------------------------------------------------------------------- the data


def test_every_official_form_of_the_shared_folder_has_a_template() -> None:
    assert TEMPLATED == ["CT-RESALE", "DC-OTR-368", "IN-ST-105", "MA-ST-4", "MI-3372", "MTC-UNIFORM", "NY-ST-120",
                         "NY-ST-120.1", "NY-ST-121", "PA-REV-1220", "TX-01-339"]
    assert [t.revision for t in RULES.form("NY-ST-120").identification.templates] == ["6/18", "4/10"]


@pytest.mark.parametrize("code", TEMPLATED)
def test_zone_data_loads_and_every_zone_lies_inside_its_page(code: str) -> None:
    form = RULES.form(code)
    assert form.identification is not None
    for template in form.identification.templates:
        assert len(template.sha256) == 64 and template.origin and template.file.endswith(".pdf")
        for tpage in template.pages:
            assert len(tpage.anchors) >= 8
            for item in (*tpage.anchors, *tpage.zones):
                x0, y0, x1, y1 = item.box
                assert 0 <= x0 < x1 <= tpage.width and 0 <= y0 < y1 <= tpage.height, (code, item)
            assert all(z.field in RULES.field_names for z in tpage.zones)
    assert _first_zone(form, "purchaser_name") is not None


def test_a_zone_outside_its_page_is_refused_naming_the_file_and_place(tmp_path: Path) -> None:
    root = tmp_path / "rules"
    shutil.copytree(str(default_rules_dir()), root)
    path = root / "zones" / "DC-OTR-368.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["templates"][0]["pages"][0]["zones"][1]["box"] = [300, 700, 700, 720]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(RulesPackError, match=r"zones/DC-OTR-368\.json: \$\.templates\[0\]\.pages\[0\]\.zones\[1\]"
                                             r"\.box: .* not a box inside the 612 x 792 page"):
        load_rules_pack(root)


@needs_forms
def test_the_templates_are_what_the_script_makes_from_the_blank_forms(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[3] / "scripts" / "make_form_zones.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True, capture_output=True)
    for made in tmp_path.glob("*.json"):
        packed = Path(str(default_rules_dir().joinpath("zones", made.name)))
        assert json.loads(made.read_text(encoding="utf-8")) == json.loads(packed.read_text(encoding="utf-8")), made.name


# --------------------------------------------------------------------------- scans read by zones


@pytest.fixture(scope="module")
def sandbox() -> Iterator[DocumentSandbox]:
    box = DocumentSandbox()
    yield box
    box.close()


def _filled(code: str) -> tuple[bytes, dict[str, tuple[int, FieldZone, str]]]:
    """The form's blank copy with a purchaser name, permit number and date drawn in their zones' widgets
    (those on the purchaser's page), and field -> (page, zone, value) of what was drawn."""
    form = RULES.form(code)
    assert form.identification is not None
    template = form.identification.templates[0]
    wanted = {"purchaser_name": NAME, "signed_date": DATE}
    if code in PERMITS:
        wanted["purchaser_tax_id"] = PERMITS[code]
    drawn: dict[str, tuple[int, FieldZone, str]] = {}
    values: dict[str, str | list[str]] = {}
    name_page = _first_zone(form, "purchaser_name")
    assert name_page is not None
    for field, value in wanted.items():
        found = _first_zone(form, field)
        if found is None or found[0] != name_page[0]:
            continue  # only the purchaser's page is scanned
        page, zone = found
        drawn[field] = (page, zone, value)
        if code == "MA-ST-4":  # one field name for all seven boxes: one text per box, in order
            texts = values.setdefault("Text1", [""] * len(template.pages[0].zones))
            assert isinstance(texts, list)
            texts[template.pages[0].zones.index(zone)] = value
        else:
            values[zone.widget] = value
    doc = pymupdf.open(REAL_FORMS / template.file)
    draw_fields(doc, values, keep_filled=False)
    keep = sorted({page - 1 for page, _z, _v in drawn.values()})
    doc.select(keep)
    return doc.tobytes(), {f: (keep.index(p - 1) + 1, z, v) for f, (p, z, v) in drawn.items()}


@needs_forms
@needs_tesseract
@pytest.mark.parametrize("code", TEMPLATED)
def test_a_scanned_official_form_is_read_from_its_zones(sandbox: DocumentSandbox, code: str) -> None:
    pdf, drawn = _filled(code)
    made = scan(pdf, dpi=200, skew=-2.0 if len(code) % 2 else 2.5, noise=0.08, quality=75, seed=7)
    reading = read_document(made.data, f"{code}.jpg", RULES, sandbox=sandbox)
    assert reading.form_code.value == code, reading.notes
    assert any(n.startswith("registered to ") for n in reading.notes), reading.notes
    assert {"purchaser_name", "purchaser_tax_id", "signed_date"} & set(drawn)
    for field, (page, zone, value) in drawn.items():
        got = reading.fields.get(field)
        assert got is not None, (field, reading.fields)
        if (code, field) in DIGIT_BOXES and got.value.replace(" ", "") != value:
            assert got.confidence < 0.5, got
            continue
        assert got.value.replace(" ", "") == value.replace(" ", ""), (field, got)
        assert got.page == page
        # the box read lies where the zone landed on the scan
        corners = [made.where(x, y) for x in (zone.box[0], zone.box[2]) for y in (zone.box[1], zone.box[3])]
        x0, y0 = min(c[0] for c in corners) - 6, min(c[1] for c in corners) - 6
        x1, y1 = max(c[0] for c in corners) + 6, max(c[1] for c in corners) + 6
        assert x0 <= got.box[0] < got.box[2] <= x1 and y0 <= got.box[1] < got.box[3] <= y1, (field, got, zone)


# --------------------------------------------------------------------------- fallback and calibration


def _tx_pages(values: dict[str, str], confidence: float = 0.97) -> list[Page]:
    doc = pymupdf.open(REAL_FORMS / "TX-01-339.pdf")
    draw_fields(doc, values, keep_filled=False)
    return pages_of(doc, confidence)


@needs_forms
def test_a_page_that_does_not_register_is_read_by_its_labels() -> None:
    pages = _tx_pages({"Purchaser": NAME, "Purchaser sig date": DATE})
    form = RULES.form("TX-01-339")
    assert registrations(pages, form)
    # Keep only the words of the top quarter of the page: too few printed phrases to register by.
    cut = [dataclasses.replace(p, words=tuple(w for w in p.words if w.box[3] < 200)) for p in pages[:1]]
    assert form.identification is not None
    assert register(cut[0], form.identification.templates[0], form.identification.templates[0].pages[0]) is None
    fields, notes = read_fields(cut, form, RULES)
    assert any("could not be registered" in n for n in notes), notes
    assert fields["purchaser_name"].value == NAME  # found under its printed label


@needs_forms
@pytest.mark.parametrize(("field", "widget", "value"), [
    ("purchaser_tax_id", "Permit number", "3209876543X"),
    ("purchaser_tax_id", "Permit number", "320987654"),
    ("signed_date", "Purchaser sig date", "next Tuesday"),
    ("signed_date", "Purchaser sig date", "93/15/2026"),
])
def test_a_value_that_does_not_fit_its_format_never_gets_0_9(field: str, widget: str, value: str) -> None:
    pages = _tx_pages({"Purchaser": NAME, widget: value}, confidence=0.99)
    form = RULES.form("TX-01-339")
    fields, notes = read_fields(pages, form, RULES)
    assert any(n.startswith("registered to TX-01-339.pdf") for n in notes), notes
    assert fields[field].value == value
    assert fields[field].confidence <= CAPS["format"]
    assert fields["purchaser_name"].confidence >= 0.9  # a clean name on a clean registration is trusted


@needs_forms
def test_label_text_in_a_zone_is_not_a_confident_value() -> None:
    pages = _tx_pages({"Purchaser": "Name of purchaser firm or agency"}, confidence=0.99)
    fields, _notes = read_fields(pages, RULES.form("TX-01-339"), RULES)
    assert fields["purchaser_name"].confidence <= CAPS["label_text"]


@needs_forms
def test_a_value_found_by_its_label_on_a_scan_stays_below_0_9() -> None:
    pages = _tx_pages({"Purchaser": NAME}, confidence=0.97)
    cut = [dataclasses.replace(p, words=tuple(w for w in p.words if w.box[3] < 200)) for p in pages[:1]]
    fields, _notes = read_fields(cut, RULES.form("TX-01-339"), RULES)
    assert fields["purchaser_name"].value == NAME
    assert fields["purchaser_name"].confidence <= CAPS["label_on_scan"]


@needs_forms
def test_an_address_with_a_part_not_read_is_not_confident() -> None:
    whole = _tx_pages({"Purchaser": NAME, "Purchaser address": "1200 Congress Ave",
                       "Purchaser city, state, ZIP": "Austin, TX 78701"}, confidence=0.99)
    street = _tx_pages({"Purchaser": NAME, "Purchaser address": "1200 Congress Ave"}, confidence=0.99)
    form = RULES.form("TX-01-339")
    full, _notes = read_fields(whole, form, RULES)
    part, _notes = read_fields(street, form, RULES)
    assert full["purchaser_address"].value == "1200 Congress Ave, Austin, TX 78701"
    assert full["purchaser_address"].confidence >= 0.9
    assert part["purchaser_address"].value == "1200 Congress Ave"
    assert part["purchaser_address"].confidence <= CAPS["incomplete"]


def test_the_quick_anchor_filter_never_drops_a_phrase_that_matches() -> None:
    """The two upper bounds checked before the full comparison only ever skip texts that are less like the
    anchor than the ratio wanted (registration found the same anchors with and without them)."""
    import difflib
    import random
    from collections import Counter

    from ecms_desktop.services.intake import templates

    rng = random.Random(5)
    for _ in range(3000):
        target = "".join(rng.choice("abcde ") for _ in range(rng.randint(1, 14))).strip() or "a"
        text = "".join(rng.choice("abcdef ") for _ in range(rng.randint(1, 16))).strip() or "b"
        if difflib.SequenceMatcher(None, target, text).ratio() >= templates._ANCHOR_RATIO:
            assert templates._may_match(target, Counter(target), text), (target, text)
