"""Request packets: official forms (TX-01-339, NY-ST-120, PA-REV-1220) filled and read back after a
simulated customer fills the purchaser part; the generated fill-in form round-trips for every state."""

from __future__ import annotations

import datetime as dt

import pymupdf
import pytest

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.renewals.request_packet import (
    TOKEN_FIELD,
    Address,
    PacketData,
    build_packet,
    generated_fields,
    read_form,
)
from ecms_desktop.services.renewals.service import form_for_line
from tests.factories import customer_fills

RULES = load_rules_pack()
TOKEN = "RQ-ABCDEFGHJK"


def packet_data(form_code: str, state: str) -> PacketData:
    return PacketData(
        token=TOKEN, form_code=form_code, state=state, state_name=RULES.state(state).name, exempt_reason="resale",
        kind="request", company_name="Acme", company_legal_name="Acme Supply Company LLC",
        company_address=Address("100 Main St", "Austin", "TX", "78701"), company_registration="32012345678",
        company_reply_to="tax@acme.example", brand_color="#1F4E79", customer_name="Blue Widgets Inc",
        customer_number="C-1001", purchaser_address=Address("5 Elm Rd", "Albany", "NY", "12207"),
        certificate_id=7, expiry=dt.date(2026, 3, 1), as_of=dt.date(2026, 1, 15),
        known={"purchaser_tax_id": "123456789"})


def widget_values(pdf: bytes) -> dict[str, str]:
    doc = pymupdf.open(stream=pdf, filetype="pdf")
    return {w.field_name: w.field_value for page in doc for w in page.widgets()}


# PDF field -> what the customer types, and the certificate field it must come back as.
CUSTOMER_PARTS = {
    "TX-01-339": ({"Items description": "Jewelry findings for resale", "Business activity": "Jewelry retail",
                   "Purchaser title": "Owner", "Purchaser sig date": "02/10/2026"},
                  {"property_description": "Jewelry findings for resale", "business_description": "Jewelry retail",
                   "signer_title": "Owner", "signed_date": "02/10/2026"}),
    "NY-ST-120": ({"i am engaged in the business of": "Retail jewelry", "print signer's name": "Pat Buyer",
                   "date signed": "2026-02-10"},
                  {"business_description": "Retail jewelry", "signer_name": "Pat Buyer", "signed_date": "2026-02-10"}),
    "PA-REV-1220": ({"EIN (2)": "12-3456789", "Date (2)": "2/10/2026", "Other": "Resale of findings"},
                    {"purchaser_ein": "12-3456789", "signed_date": "2/10/2026",
                     "exemption_detail": "Resale of findings"}),
}
FILES = {"TX-01-339": ("TX-01-339.pdf", "TX"), "NY-ST-120": ("NY-ST-120.pdf", "NY"),
         "PA-REV-1220": ("PA-REV-1220.pdf", "PA")}


@pytest.mark.parametrize("code", sorted(FILES))
def test_official_form_filled_then_read_back(shared_dir, code):
    filename, state = FILES[code]
    official = (shared_dir / "real-forms" / filename).read_bytes()
    packet = build_packet(packet_data(code, state), RULES, official)
    assert packet.form_source == "official"
    form = RULES.form(code)
    values = widget_values(packet.form_file.data)
    assert values[TOKEN_FIELD] == TOKEN
    assert TOKEN in pymupdf.open(stream=packet.form_file.data).metadata["keywords"]
    seller_boxes = [n for n, f in form.pdf_field_map.items() if f == "seller_name" and n in values]
    assert seller_boxes and all(values[n] == "Acme Supply Company LLC" for n in seller_boxes)
    buyer_boxes = [n for n, f in form.pdf_field_map.items() if f == "purchaser_name" and n in values]
    assert buyer_boxes and all(values[n] == "Blue Widgets Inc" for n in buyer_boxes)
    # Customer's part is empty to start with (e.g. NY's signer box held "PHONE: EMAIL:")
    for name, target in form.pdf_field_map.items():
        if target in ("signer_name", "signed_date", "signer_title") and name in values:
            assert values[name] == "", name

    typed, expected = CUSTOMER_PARTS[code]
    returned = customer_fills(packet.form_file.data, typed)
    back = read_form(returned, RULES)
    assert back.token == TOKEN and back.form_code == code
    for cert_field, value in expected.items():
        assert back.values[cert_field] == value
    assert back.values["purchaser_name"] == "Blue Widgets Inc"
    assert back.values["purchaser_address"] == "5 Elm Rd, Albany, NY 12207"
    assert back.values["seller_address"] == "100 Main St, Austin, TX 78701"


def test_cover_letter_names_token_customer_and_form():
    packet = build_packet(packet_data("TX-01-339", "TX"), RULES, None)
    cover = pymupdf.open(stream=packet.files[0].data)
    text = cover[0].get_text()
    assert TOKEN in text and "Blue Widgets Inc" in text and "TX-01-339" in text and "2026-03-01" in text
    assert TOKEN in cover.metadata["keywords"]


SALES_TAX_STATES = sorted(code for code, st in RULES.states.items() if st.has_sales_tax)


@pytest.mark.parametrize("state", SALES_TAX_STATES)
def test_generated_form_round_trips_for_every_state(state):
    # The state's first form the customer fills in (a document the state issues has none: see
    # test_state_issued_documents.py).
    own = [f for f in RULES.state(state).forms if not f.is_state_issued]
    code = form_for_line(RULES, own[0].code if own else "MTC-UNIFORM", state, "resale")
    packet = build_packet(packet_data(code, state), RULES, None)
    if RULES.form(code).is_state_issued:  # DC: only its state-issued OTR-368 is taken for resale
        assert packet.form_source == "state_issued" and packet.form_file is None
        return
    assert packet.form_source == "generated"
    names = generated_fields(RULES, code, state, "resale")
    required = set(RULES.form(code).fields_for("resale")) & set(RULES.field_names)
    assert required <= set(names)
    values = widget_values(packet.form_file.data)
    assert values[TOKEN_FIELD] == TOKEN
    empty = {n: f"{n} for {state}" for n in names if not values.get(n)}
    assert "signer_name" in empty and "signed_date" in empty
    back = read_form(customer_fills(packet.form_file.data, empty), RULES)
    assert back.token == TOKEN and back.form_code == code
    for name in names:
        assert back.values[name] == (empty.get(name) or values[name]), name
    assert back.values["seller_name"] == "Acme Supply Company LLC"
    assert back.values["exempt_reason"] == "resale"
