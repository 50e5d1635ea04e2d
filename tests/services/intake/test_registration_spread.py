"""Registration to a blank form needs anchors that agree across the page: one printed sentence of the form
found on a document of another layout (the same certification text, at another size) must not register it,
and what a weak registration reads never blocks an approval by itself."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

import pymupdf
import pytest

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.demo.documents import CertificateDrawing, certification_text, draw_certificate_pdf
from ecms_desktop.services.intake.extraction import Page
from ecms_desktop.services.intake.templates import CAPS, read_fields, register, registrations
from ecms_desktop.services.validation.engine import DOCUMENT_SURE_READ
from tests.helpers.read_pages import pages_of
from tests.helpers.real_forms import REAL_FORMS, TX_FORM, draw_fields

RULES = load_rules_pack()
TX = RULES.form("TX-01-339")
needs_forms = pytest.mark.skipif(
    not REAL_FORMS.is_dir(),
    reason=f"needs the real blank forms at {REAL_FORMS} (../shared is not part of the project)")

#: The first printed line of the TX-01-339's certification (its second page), as the blank form has it.
TX_CERTIFICATION_LINE = ("I, the purchaser named above, claim an exemption from payment of sales and use taxes "
                         "(for the purchase of taxable")


def _one_line_page(size: float) -> list[Page]:
    """A letter page of another layout: a heading, a name, and the TX form's first certification line
    printed on one line at ``size`` points, lower down the page than on the form."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((40, 80), "Statement of exemption", fontsize=16)
    page.insert_text((40, 120), "Purchaser: Schaefer Marine & Outdoor Inc.", fontsize=11)
    page.insert_text((40, 500), TX_CERTIFICATION_LINE, fontsize=size)
    return pages_of(doc, 0.99)


@needs_forms
@pytest.mark.parametrize("size", [7.0, 8.0, 9.5])
def test_one_printed_line_of_the_form_on_another_layout_does_not_register(size: float) -> None:
    assert TX.identification is not None
    template = TX.identification.templates[0]
    certification_page = next(p for p in template.pages if p.page == 2)
    pages = _one_line_page(size)
    # Four or more of the form's anchors are read on that line, spaced along it as on the form, so that a fit
    # along the line agrees with them all; they say nothing about the rest of the page.
    assert register(pages[0], template, certification_page) is None
    assert registrations(pages, TX) == []
    _fields, notes = read_fields(pages, TX, RULES)
    assert any("could not be registered" in n for n in notes), notes


@needs_forms
def test_the_blank_form_itself_still_registers_on_both_pages() -> None:
    """The spread asked of agreeing anchors is far less than a real form's (its anchors cover the page)."""
    pages = pages_of(pymupdf.open(TX_FORM), 0.99)
    found = registrations(pages, TX)
    assert [reg.page.page for _p, reg in found] == [1, 2]
    assert all(reg.anchors >= 10 and reg.residual < 1.0 for _p, reg in found)


def _demo_tx_document(purchaser: str) -> bytes:
    """A TX-01-339 as the demo draws it (its own layout, the form's certification text), with ``purchaser``."""
    assert TX.identification is not None
    label = TX.identification.labels["purchaser_name"][0]
    drawing = CertificateDrawing(
        form_code=TX.code, form_number=TX.number or TX.code, form_title="Texas Sales and Use Tax Resale Certificate",
        issuer="Texas - Department of Revenue / Taxation", revision="4-13/8",
        seller_name="Northwind Industrial Supply, Inc.",
        seller_address=("4100 Lakeside Parkway, Suite 300", "Columbus, OH 43215"), seller_permit="80843539492",
        purchaser_name=purchaser, purchaser_address=("676 Riverside Dr", "Minneapolis, MN 55431"),
        purchaser_phone="(612) 555-0183", permit_label="Texas sales and use tax permit number",
        permit_number="6636120", business_description="Marine and outdoor equipment retailer",
        property_description="Boat parts, outdoor gear and accessories for resale",
        reasons=(("Resale", False), ("Government", True), ("Nonprofit / charitable", False)),
        exemption_detail="Government entity; purchases paid with agency funds (agency no. TX-344323)",
        signer_name="Thomas Reyes", signer_title="Purchasing Manager", signed_date=dt.date(2026, 10, 27),
        certificate_number="EC-2026-000004", certification_text=certification_text("exemption", ["Texas"]),
        purchaser_label=label.text, purchaser_label_beside=label.position == "right")
    return draw_certificate_pdf(drawing, random.Random(4))


def test_a_demo_tx_document_names_its_purchaser_not_a_printed_label() -> None:
    purchaser = "Schaefer Marine & Outdoor Inc."
    pages = pages_of(pymupdf.open(stream=_demo_tx_document(purchaser), filetype="pdf"), 1.0)
    fields, notes = read_fields(pages, TX, RULES)
    assert not any(n.startswith("registered to ") for n in notes), notes
    assert fields["purchaser_name"].value == purchaser
    address = fields.get("purchaser_address")
    assert address is None or "certificate" not in address.value.lower()
    # the number under "Seller's permit / registration number" is the seller's, not the purchaser's
    permit = fields.get("purchaser_tax_id")
    assert permit is None or permit.value != "80843539492"
    # "Seller: keep this certificate with your records ..." in the instructions is no seller's name
    seller = fields.get("seller_name")
    assert seller is None or "certificate" not in seller.value or seller.confidence <= 0.5


def test_a_reading_capped_for_weak_evidence_can_only_warn() -> None:
    """A value trusted no more than a cap allows stays below the confidence from which a document that
    disagrees with its record blocks approval."""
    weak = ("few_anchors", "loose_fit", "format", "label_text", "neighbour", "empty_zone", "incomplete", "disagree")
    assert all(CAPS[cap] < DOCUMENT_SURE_READ for cap in weak), {cap: CAPS[cap] for cap in weak}


@needs_forms
def test_a_weak_registration_yields_to_the_printed_label_when_they_disagree() -> None:
    """Seven anchors (the top of the page only): the registration is weak. A stamp word low in the
    purchaser's zone is read with the name by the zone, not by the label (it is not on the name's line):
    the label's value is kept, and not as sure."""
    doc = pymupdf.open(TX_FORM)
    draw_fields(doc, {"Purchaser": "Copper Creek Hardware LLC"}, keep_filled=False)
    doc[0].insert_text((300, 111.5), "RECEIVED", fontsize=6)
    top = [dataclasses.replace(p, words=tuple(w for w in p.words if w.box[3] < 250)) for p in pages_of(doc, 0.99)[:1]]
    [(_page, reg)] = registrations(top, TX)
    assert 4 <= reg.anchors < 8
    fields, _notes = read_fields(top, TX, RULES)
    assert fields["purchaser_name"].value == "Copper Creek Hardware LLC"
    assert fields["purchaser_name"].confidence <= CAPS["disagree"] < DOCUMENT_SURE_READ
