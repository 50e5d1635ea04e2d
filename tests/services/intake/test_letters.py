"""Reading a document that is no form we know: a business letter's purchaser is the name on its
letterhead, trusted more when the letter names it again, never as much as a value read from a form."""

from __future__ import annotations

import pymupdf

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.intake.extraction import extract_fields, identify_form
from tests.helpers.read_pages import pages_of

RULES = load_rules_pack()


def _letter(heading: str, body: str) -> pymupdf.Document:
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.insert_text((72, 70), heading, fontsize=15, fontname="hebo")
    page.insert_text((72, 88), "1200 Main St | Austin, TX 78701 | (512) 555-0100", fontsize=9)
    page.insert_textbox(pymupdf.Rect(72, 120, 540, 740), body, fontsize=11, fontname="tiro")
    return doc


BODY = ("March 3, 2026\n\nAcme Supply Co.\n55 Commerce Way\nHouston, TX 77002\n\nDear Sir or Madam,\n\n"
        "Please accept this letter as notice that {name} buys the merchandise it buys from you for resale in "
        "the regular course of its business.\n\nSincerely,\n\nJane Doe\nController")


def test_a_letters_purchaser_is_its_letterhead() -> None:
    pages = pages_of(_letter("HARBOR LIGHTS TRADING LLC", BODY.format(name="Harbor Lights Trading LLC")))
    assert not identify_form(pages, RULES).known
    name = extract_fields(pages, None, RULES)["purchaser_name"]
    assert name.value == "HARBOR LIGHTS TRADING LLC" and name.page == 1
    assert 0.6 < name.confidence < 0.8  # named again in the letter, still a guess
    alone = extract_fields(pages_of(_letter("HARBOR LIGHTS TRADING LLC", BODY.format(name="our company"))),
                           None, RULES)["purchaser_name"]
    assert alone.confidence < name.confidence


def test_a_heading_that_is_a_title_is_not_a_purchaser() -> None:
    pages = pages_of(_letter("CERTIFICATE OF EXEMPTION", BODY.format(name="our company")))
    assert "purchaser_name" not in extract_fields(pages, None, RULES)
