"""Form identification and field extraction on the real blank forms of ``../shared/real-forms``, filled in
here by drawing values at their field positions, then read back through the page's text layer."""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.intake.extraction import Page, Word, extract_fields, identify_form
from tests.conftest import SHARED
from tests.helpers.read_pages import pages_of

pymupdf = pytest.importorskip("pymupdf")

REAL_FORMS = SHARED / "real-forms"
needs_forms = pytest.mark.skipif(
    not REAL_FORMS.is_dir(),
    reason=f"needs the real blank forms at {REAL_FORMS} (../shared is not part of the project)")

RULES = load_rules_pack()

# A value drawn into the widget ``name`` (``index``: which of its widgets) or at ``at`` = (page, x, y);
# ``field`` is what extraction must read it as (None: drawn only, e.g. a check mark read through a choice).
Draw = tuple[str | tuple[int, float, float], int, str]

PURCHASER = "Harbor Lights Trading LLC"

FILLS: dict[str, dict[str, Any]] = {
    "TX-01-339.pdf": {
        "form": "TX-01-339", "state": "TX", "revision": "Rev. 4-13/8",
        "draw": [("Purchaser", 0, PURCHASER), ("Purchaser address", 0, "1200 Congress Ave"),
                 ("Purchaser city, state, ZIP", 0, "Austin, TX 78701"), ("Permit number", 0, "32012345678"),
                 ("Seller", 0, "Lone Star Supply Co"), ("Purchaser title", 0, "Owner"),
                 ("Purchaser sig date", 0, "03/15/2026")],
        "expect": {"purchaser_name": PURCHASER, "purchaser_address": "1200 Congress Ave, Austin, TX 78701",
                   "purchaser_tax_id": "32012345678", "seller_name": "Lone Star Supply Co",
                   "signer_title": "Owner", "signed_date": "03/15/2026", "states": "TX"},
    },
    "NY-ST-120.pdf": {
        "form": "NY-ST-120", "state": "NY", "revision": "6/18",
        "draw": [("purchaser's name", 0, PURCHASER), ("purchaser's address", 0, "77 State St"),
                 ("purchaser city", 0, "Albany"), ("purchaser state", 0, "NY"), ("purchaser zip code", 0, "12207"),
                 ("single-use certificate", 1, "X"), ("print signer's name", 0, "Dana Reyes"),
                 ("date signed", 0, "04/02/2026")],
        "expect": {"purchaser_name": PURCHASER, "purchaser_address": "77 State St, Albany, NY, 12207",
                   "seller_name": "CROWN FINDINGS CO., INC.", "certificate_type": "blanket",
                   "signer_name": "Dana Reyes", "signed_date": "04/02/2026", "exempt_reason": "resale",
                   "states": "NY"},
    },
    "NY-ST-120-rev-2010.pdf": {
        "form": "NY-ST-120", "state": "NY", "revision": "4/10",
        "draw": [("sellers name", 0, "Empire Wholesale Inc"), ("purchaser's name", 0, PURCHASER),
                 ("single-use certificate", 0, "X"), ("date signed", 0, "2026-01-09")],
        "expect": {"purchaser_name": PURCHASER, "seller_name": "Empire Wholesale Inc", "certificate_type": "single",
                   "signed_date": "2026-01-09"},
    },
    "NY-ST-120.1.pdf": {
        "form": "NY-ST-120.1", "state": "NY", "revision": "4/10",
        "draw": [("name of vendor", 0, "Empire Wholesale Inc"), ("name of purchasing contractor", 0, PURCHASER),
                 ("street address2", 0, "9 Erie Blvd"), ("city2", 0, "Syracuse"), ("state2", 0, "NY"),
                 ("zip code 2", 0, "13202"), ("type or print name and title of owner", 0, "Dana Reyes"),
                 ("date prepared", 0, "05/20/2026")],
        "expect": {"purchaser_name": PURCHASER, "seller_name": "Empire Wholesale Inc",
                   "purchaser_address": "9 Erie Blvd, Syracuse, NY, 13202", "signer_name": "Dana Reyes",
                   "signed_date": "05/20/2026"},
    },
    "NY-ST-121.pdf": {
        "form": "NY-ST-121", "state": "NY", "revision": "3/10",
        "draw": [("name of seller", 0, "Empire Wholesale Inc"), ("name of purchaser", 0, PURCHASER),
                 ("street address2", 0, "9 Erie Blvd"), ("city2", 0, "Syracuse"), ("state2", 0, "NY"),
                 ("zip2", 0, "13202"), ("check one", 1, "X")],
        "expect": {"purchaser_name": PURCHASER, "seller_name": "Empire Wholesale Inc",
                   "purchaser_address": "9 Erie Blvd, Syracuse, NY, 13202", "certificate_type": "blanket"},
    },
    "PA-REV-1220.pdf": {
        "form": "PA-REV-1220", "state": "PA", "revision": "(TR) 03-22",
        "draw": [("Name of Seller or Lessor", 0, "Keystone Paper Goods"), ("Name of Purchaser or Lessee", 0, PURCHASER),
                 ("EIN (2)", 0, "12-3456789"), ("Date (2)", 0, "06/01/2026"), ("Street (2)", 0, "5 Market St"),
                 ("City (2)", 0, "Harrisburg"), ("State (2)", 0, "PA"), ("Zip Code (2)", 0, "17101"),
                 ("License Number", 0, "12345678"), ("3. Check corresponding block below", 0, "X"),
                 ("Check one- PA", 1, "X")],
        "expect": {"purchaser_name": PURCHASER, "seller_name": "Keystone Paper Goods", "purchaser_ein": "12-3456789",
                   "signed_date": "06/01/2026", "purchaser_address": "5 Market St, Harrisburg, PA 17101",
                   "purchaser_tax_id": "12345678", "exempt_reason": "resale", "certificate_type": "blanket"},
    },
    "MI-3372.pdf": {
        "form": "MI-3372", "state": "MI", "revision": "Rev. 03-16",
        "draw": [("purchaser", 0, PURCHASER), ("business.address.2", 0, "400 Woodward Ave"),
                 ("city", 0, "Detroit, MI 48226"), ("Name_typed", 0, "Dana Reyes"), ("date.signed", 0, "07/04/2026"),
                 ("use_registration_no", 0, "MI-55512"), ("retail", 1, "X"), ("a", 1, "X"),
                 ("return.date", 0, "07/03/2030")],
        "expect": {"purchaser_name": PURCHASER, "purchaser_address": "400 Woodward Ave, Detroit, MI 48226",
                   "signer_name": "Dana Reyes", "signed_date": "07/04/2026", "purchaser_tax_id": "MI-55512",
                   "exempt_reason": "resale", "certificate_type": "blanket", "expiry_date": "07/03/2030",
                   "seller_name": "Spoontiques, Inc. 111 Island St, Stoughton, MA 02072"},
    },
    "MA-ST-4.pdf": {
        "form": "MA-ST-4", "state": "MA", "revision": "Rev. 8/16",
        "draw": [("Text1", 0, PURCHASER), ("Text1", 1, "04-1234567"), ("Text1", 2, "1 Beacon St"),
                 ("Text1", 3, "Boston"), ("Text1", 4, "MA"), ("Text1", 5, "02108")],
        "expect": {"purchaser_name": PURCHASER, "purchaser_tax_id": "04-1234567",
                   "purchaser_address": "1 Beacon St, Boston, MA, 02108", "seller_name": "Spoontiques, Inc.",
                   "exempt_reason": "resale"},
    },
    "IN-ST-105.pdf": {
        "form": "IN-ST-105", "state": "IN", "revision": "",
        "draw": [("Name of Purchaser", 0, PURCHASER), ("Business  Address", 0, "10 Meridian St"),
                 ("City", 0, "Indianapolis"), ("State", 0, "IN"), ("ZIP Code", 0, "46204"), ("TID", 0, "0123456789"),
                 ("Printed Name", 0, "Dana Reyes"), ("Title", 0, "Treasurer"), ("Date", 0, "08/08/2026"),
                 ("Type of Request", 0, "X"), ("Type of Exemption", 0, "X")],
        "expect": {"purchaser_name": PURCHASER, "purchaser_address": "10 Meridian St, Indianapolis, IN, 46204",
                   "purchaser_tax_id": "0123456789", "signer_name": "Dana Reyes", "signer_title": "Treasurer",
                   "signed_date": "08/08/2026", "certificate_type": "blanket", "exempt_reason": "resale"},
    },
    "DC-OTR-368-2012.pdf": {
        "form": "DC-OTR-368", "state": "DC", "revision": "",
        "draw": [("PURCHASER", 0, PURCHASER), ("PURCHASER'S ADDRESS", 0, "1100 4th St SW"),
                 ("CITY, STATE, ZIP 2", 0, "Washington, DC 20024"), ("DC CERT OF REGISTRATION #", 0, "DC-778899"),
                 ("TITLE", 0, "Manager"), ("DATE", 0, "09/09/2026")],
        "expect": {"purchaser_name": PURCHASER, "purchaser_address": "1100 4th St SW, Washington, DC 20024",
                   "purchaser_tax_id": "DC-778899", "signer_title": "Manager", "signed_date": "09/09/2026",
                   "seller_name": "SPOONTIQUES, INC.", "exempt_reason": "resale", "states": "DC"},
    },
    "CT-resale-certificate.pdf": {
        "form": "CT-RESALE", "state": "CT", "revision": "",
        "draw": [("purchaser_name", 0, PURCHASER), ("purchaser_address", 0, "280 Trumbull St"),
                 ("purchaser_city_state_zip", 0, "Hartford CT 06103"), ("vendor_name", 0, "Nutmeg Supply"),
                 ("signers_title", 0, "Owner"), ("signed_date", 0, "10/10/2026")],
        "expect": {"purchaser_name": PURCHASER, "purchaser_address": "280 Trumbull St, Hartford CT 06103",
                   "seller_name": "Nutmeg Supply", "signer_title": "Owner", "signed_date": "10/10/2026"},
    },
    "WI-S-211.pdf": {
        "form": "WI-S-211", "state": "WI", "revision": "R. 11-14",
        "draw": [((0, 42, 95), 0, PURCHASER), ((0, 276, 95), 0, "200 Main St, Madison, WI 53703"),
                 ((0, 42, 293), 0, "Badger Distributors")],
        "expect": {"purchaser_name": PURCHASER, "purchaser_address": "200 Main St, Madison, WI 53703",
                   "seller_name": "Badger Distributors", "states": "WI"},
    },
    "MTC-Uniform-Sales-Use-Cert-2016-spoontiques.pdf": {
        "form": "MTC-UNIFORM", "state": None, "revision": "5/18/2016",
        "draw": [("Name of Firm Buyer", 0, PURCHASER), ("Address_2", 0, "55 Harbor Way, Oakland CA 94607"),
                 ("State Registration Sellers Permit or ID Number of PurchaserCA3", 0, "123-456789"),
                 ("State Registration Sellers Permit or ID Number of PurchaserTX25", 0, "32012345678"),
                 ("Title", 0, "President"), ("Date", 0, "12/01/2026")],
        "expect": {"purchaser_name": PURCHASER, "purchaser_address": "55 Harbor Way, Oakland CA 94607",
                   "seller_name": "Spoontiques, Inc.", "signer_title": "President", "signed_date": "12/01/2026",
                   "states": "CA, TX", "exempt_reason": "resale"},
    },
}


def _fill(name: str) -> tuple[Any, dict[str, tuple[int, Any]]]:
    """The blank form with the test's values drawn at their field positions; where each value was drawn."""
    doc = pymupdf.open(REAL_FORMS / name)
    drawn: dict[str, tuple[int, Any]] = {}
    for target, index, text in FILLS[name]["draw"]:
        if isinstance(target, tuple):
            page_no, x, y = target
            page = doc[page_no]
            page.insert_text((x, y), text, fontsize=9, fontname="helv")
            drawn[text] = (page_no + 1, pymupdf.Rect(x, y - 9, x + pymupdf.get_text_length(text, "helv", 9), y + 2))
            continue
        widgets = [(p, w) for p in doc for w in p.widgets() if w.field_name == target]
        page, widget = widgets[index]
        rect = widget.rect
        size = min(9.0, rect.height * 0.8)
        page.insert_text((rect.x0 + 2, rect.y1 - (rect.height - size) / 2 - 1.5), text, fontsize=size, fontname="helv")
        drawn[text] = (page.number + 1, rect)
    return doc, drawn


def _same(a: str, b: str) -> bool:
    return re.sub(r"\s+", " ", a).strip() == re.sub(r"\s+", " ", b).strip()


@needs_forms
@pytest.mark.parametrize("name", sorted(FILLS))
def test_each_real_form_is_identified_and_its_drawn_values_are_read(name: str) -> None:
    spec = FILLS[name]
    doc, drawn = _fill(name)
    pages = pages_of(doc)
    guess = identify_form(pages, RULES)
    assert guess.form_code == spec["form"], guess.reason
    assert guess.state == spec["state"]
    assert guess.revision == spec["revision"]
    assert guess.confidence >= 0.6, guess.reason  # CT-RESALE has no printed number: title and state only
    fields = extract_fields(pages, RULES.form(guess.form_code), RULES, form_confidence=guess.confidence)
    for field_name, expected in spec["expect"].items():
        assert field_name in fields, f"{field_name} not read; read: {fields}"
        got = fields[field_name]
        assert _same(got.value, expected), f"{field_name}: {got.value!r} != {expected!r}"
        assert 0.6 <= got.confidence <= 1.0, f"{field_name}: {got}"
        if expected in drawn:  # a value drawn here: its box is where it was drawn
            page_no, rect = drawn[expected]
            assert got.page == page_no
            assert pymupdf.Rect(got.box).intersects(rect), f"{field_name}: {got.box} not at {rect}"


@needs_forms
def test_a_read_permit_number_that_does_not_fit_its_state_is_weak() -> None:
    doc, _drawn = _fill("TX-01-339.pdf")
    page = doc[0]
    widget = next(w for w in page.widgets() if w.field_name == "Permit number")
    page.add_redact_annot(widget.rect)
    page.apply_redactions()
    page.insert_text((widget.rect.x0 + 2, widget.rect.y1 - 4), "3201234", fontsize=9, fontname="helv")
    fields = extract_fields(pages_of(doc), RULES.form("TX-01-339"), RULES)
    assert fields["purchaser_tax_id"].value == "3201234"
    assert fields["purchaser_tax_id"].confidence < 0.5


@needs_forms
def test_the_rasterised_form_has_no_text_to_identify_it_by() -> None:
    """The ST-120 flattened to images has no text layer: identification says nothing could be read (its
    words come from OCR, which is not this module's part)."""
    doc = pymupdf.open(REAL_FORMS / "NY-ST-120-rasterized-jspdf.pdf")
    guess = identify_form(pages_of(doc), RULES)
    assert not guess.known and "nothing could be read" in guess.reason


def _letter() -> Any:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    text = ("Harbor Lights Trading LLC\n55 Harbor Way\nOakland, CA 94607\n\nMarch 3, 2026\n\nDear Sir or Madam,\n\n"
            "Please find enclosed our resale certificate for your records. We purchase for resale\n"
            "and hold a California seller's permit. Contact us with any questions about the certificate.\n\n"
            "Sincerely,\nDana Reyes\nPresident")
    page.insert_text((72, 90), text, fontsize=11, fontname="helv")
    return doc


def test_a_letter_is_not_a_form_we_know() -> None:
    guess = identify_form(pages_of(_letter()), RULES)
    assert not guess.known
    assert guess.form_code is None and guess.state is None
    assert guess.reason.startswith("not a form we know")


def test_nothing_read_is_not_a_form_either() -> None:
    guess = identify_form([Page(1, 612, 792, ())], RULES)
    assert not guess.known and "nothing could be read" in guess.reason
    assert extract_fields([Page(1, 612, 792, ())], None, RULES) == {}


def test_a_letter_gives_no_confident_value() -> None:
    fields = extract_fields(pages_of(_letter()), None, RULES)
    assert all(v.confidence < 0.9 for v in fields.values()), fields


def _noisy(pages: list[Page], slips: dict[str, str], confidence: float) -> list[Page]:
    out = []
    for page in pages:
        words = tuple(dataclasses.replace(w, text=slips.get(w.text, w.text), confidence=confidence)
                      for w in page.words)
        out.append(dataclasses.replace(page, words=words))
    return out


@needs_forms
def test_noisy_reading_lowers_confidence_instead_of_giving_a_confident_wrong_value() -> None:
    doc, _drawn = _fill("TX-01-339.pdf")
    clean_pages = pages_of(doc, confidence=0.97)
    clean = extract_fields(clean_pages, RULES.form("TX-01-339"), RULES)
    # OCR slips in the labels ("Purchascr", "Permlt") and in the title, and a weak reading of every word.
    slips = {"purchaser,": "purchascr,", "Permit": "Permlt", "Texas": "Tcxas", "Resale": "Rcsale", "Harbor": "Harb0r"}
    noisy_pages = _noisy(clean_pages, slips, confidence=0.62)
    guess = identify_form(noisy_pages, RULES)
    assert guess.form_code in (None, "TX-01-339")
    assert guess.confidence < identify_form(clean_pages, RULES).confidence or not guess.known
    noisy = extract_fields(noisy_pages, RULES.form("TX-01-339"), RULES, form_confidence=guess.confidence)
    for name, value in noisy.items():
        assert value.confidence < 0.9, (name, value)
        if name in clean:
            assert value.confidence < clean[name].confidence, (name, value, clean[name])
    # What it reads through the slips is still right where it says so with some confidence.
    assert noisy["purchaser_name"].value == "Harb0r Lights Trading LLC"
    assert noisy["purchaser_name"].confidence < 0.7


def test_words_with_underscores_and_misspelled_labels() -> None:
    """A fill-in line glued to its label ("Name of Purchascr:_____") is not part of the value; the
    misspelled label still finds the value but with less confidence than a clean one."""
    def page(label: str) -> Page:
        return Page(1, 612, 792, (
            Word("Name", 0.95, (50, 100, 75, 110), 1, 1), Word("of", 0.95, (78, 100, 88, 110), 1, 1),
            Word(label, 0.95, (91, 100, 300, 110), 1, 1),
            Word("Harbor", 0.9, (150, 99, 180, 111), 2, 1), Word("Lights", 0.9, (183, 99, 212, 111), 2, 1),
        ))
    good = extract_fields([page("Purchaser:______________________________")], None, RULES)
    slip = extract_fields([page("Purchascr:______________________________")], None, RULES)
    assert good["purchaser_name"].value == slip["purchaser_name"].value == "Harbor Lights"
    assert slip["purchaser_name"].confidence < good["purchaser_name"].confidence < 0.9
