"""Suggestions from a certificate's documents' readings: each value normalised to what its field stores,
with its confidence and place, and whether the record already holds it."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.core.certificate_records import CertificateInput, LineInput
from ecms_desktop.services.documents.storage import check_file
from ecms_desktop.services.intake.reading import read_document
from ecms_desktop.services.intake.suggestions import (
    normalise,
    parse_read_date,
    same_value,
    suggestions_for,
    suggestions_from_reading,
)
from tests.factories import DESK_CASES, make_desk_certificate, text_pdf

AS_OF = dt.date(2026, 6, 1)


@pytest.fixture(scope="module")
def rules():
    return load_rules_pack()


def reading(**fields: tuple[str, float]) -> dict:
    """A stored reading of a TX-01-339 with ``fields`` (name -> (value, confidence)), each on page 1."""
    return {"method": "ocr", "form_code": {"value": "TX-01-339", "confidence": 0.97},
            "state": {"value": "TX", "confidence": 0.97},
            "fields": {name: {"value": v, "confidence": c, "page": 1, "box": [100.0, 200.0, 300.0, 215.5]}
                       for name, (v, c) in fields.items()},
            "engine": "tesseract", "engine_version": "5.3", "seconds": 1.2, "notes": []}


def record(**values) -> CertificateInput:
    return CertificateInput(company_id=1, customer_id=1, form_code="TX-01-339", lines=(LineInput("TX", ""),),
                            exempt_reason="resale", **values)


@pytest.mark.parametrize(("text", "expected"), [
    ("03/15/2026", dt.date(2026, 3, 15)), ("3/5/26", dt.date(2026, 3, 5)), ("2026-03-15", dt.date(2026, 3, 15)),
    ("03.15.2026", dt.date(2026, 3, 15)), ("March 15, 2026", dt.date(2026, 3, 15)),
    ("Mar. 15 2026", dt.date(2026, 3, 15)), ("15 March 2026", dt.date(2026, 3, 15)), ("", None),
])
def test_dates_as_scans_print_them(text, expected):
    assert parse_read_date(text) == expected


def test_a_date_that_is_not_one_is_named():
    with pytest.raises(ValueError, match="'O3/l5/2O26' could not be read as a date"):
        parse_read_date("O3/l5/2O26")


@pytest.mark.parametrize(("field", "text", "value", "noted"), [
    ("signed_date", "03/15/2026", "2026-03-15", False),
    ("signed_date", "O3/l5/2O26", "O3/l5/2O26", True),
    ("expiry_override", "12/31/2027", "2027-12-31", False),
    ("exempt_reason", "resale", "resale", False),
    ("exempt_reason", "Nonprofit", "nonprofit", False),
    ("exempt_reason", "Agricultural production", "agricultural", False),
    ("exempt_reason", "Feeding the cat", "Feeding the cat", True),
    ("certificate_type", "single", "single_use", False),
    ("certificate_type", "Blanket", "blanket", False),
    ("certificate_type", "sometimes", "sometimes", True),
    ("states", "tx, ok", "TX, OK", False),
    ("states", "TX, ZZ", "TX, ZZ", True),
    ("form_code", "tx-01-339", "TX-01-339", False),
    ("form_code", "XX-999", "XX-999", True),
    ("purchaser_name", "  Harbor   Lights Trading LLC ", "Harbor Lights Trading LLC", False),
])
def test_normalise(rules, field, text, value, noted):
    got, note = normalise(field, text, rules)
    assert got == value
    assert bool(note) is noted


def test_same_value_ignores_case_spacing_and_number_separators():
    assert same_value("purchaser_name", "Harbor  Lights LLC", "harbor lights llc")
    assert same_value("purchaser_ein", "12-3456789", "123456789")
    assert same_value("signed_date", "2026-03-15", "03/15/2026")
    assert same_value("states", "TX, OK", "tx ok")
    assert not same_value("purchaser_tax_id", "32012345678", "32012345679")


def test_suggestions_from_a_reading(rules):
    data = record(purchaser_name="Harbor Lights Trading LLC", signed_date=dt.date(2026, 1, 2))
    got = suggestions_from_reading(reading(
        purchaser_name=("Harbor Lights Trading LLC", 0.95), purchaser_tax_id=("32012345678", 0.82),
        signed_date=("03/15/2026", 0.55), signer_title=("Owner", 0.7), seller_name=("Lone Star Supply", 0.9),
        states=("TX", 0.92), exempt_reason=("resale", 0.87), expiry_date=("not a date", 0.4),
    ), 7, data, rules)
    assert list(got) == ["states", "form_code", "exempt_reason", "purchaser_name", "purchaser_tax_id",
                         "signer_title", "signed_date", "expiry_override"]  # the form's order; no seller
    name = got["purchaser_name"]
    assert name.matches and not name.offered  # the record holds it: "matches the scan"
    tax = got["purchaser_tax_id"]
    assert (tax.value, tax.percent, tax.level, tax.offered) == ("32012345678", 82, "normal", True)
    assert (tax.document_id, tax.page, tax.box) == (7, 1, (100.0, 200.0, 300.0, 215.5))
    signed = got["signed_date"]
    assert (signed.value, signed.read, signed.level, signed.offered) == ("2026-03-15", "03/15/2026", "weak", True)
    assert got["states"].matches and got["form_code"].matches and got["exempt_reason"].matches
    assert got["form_code"].box is None and got["form_code"].level == "strong"
    expiry = got["expiry_override"]
    assert not expiry.normalised and expiry.value == "not a date" and "could not be read as a date" in expiry.note


def test_the_forms_state_is_suggested_when_no_states_were_read(rules):
    data = replace(record(), lines=())
    got = suggestions_from_reading(reading(), 1, data, rules)
    assert got["states"].value == "TX" and got["states"].offered and got["states"].box is None


def test_a_certificate_with_nothing_known_gets_every_value_offered(rules):
    data = replace(record(), form_code="", lines=(), exempt_reason="", certificate_type="")
    got = suggestions_from_reading(reading(certificate_type=("blanket", 0.9), exempt_reason=("resale", 0.9)),
                                   1, data, rules)
    assert all(s.offered for s in got.values())
    assert {f: s.value for f, s in got.items()} == {"states": "TX", "form_code": "TX-01-339",
                                                    "exempt_reason": "resale", "certificate_type": "blanket"}


def test_suggestions_of_a_stored_certificate_pick_the_surest_reading(db, company_id, rules, tmp_path):
    from ecms_desktop.models import Document

    detail = make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["TX"])
    service = CertificateService(db, rules)
    ids = []
    for n, (name, conf) in enumerate((("Harbor Lights Trading", 0.6), ("Harbor Lights Trading LLC", 0.93))):
        path = tmp_path / f"scan{n}.pdf"
        path.write_bytes(text_pdf(f"scan {n}"))
        current = service.get(detail.id, AS_OF)
        doc_id = service.attach_document(check_file(path), certificate_id=detail.id, expected_version=current.version)
        with db.transaction() as s:
            s.get(Document, doc_id).extraction = reading(purchaser_name=(name, conf))
        ids.append(doc_id)
    detail = service.get(detail.id, AS_OF)
    got = suggestions_for(detail, rules)
    assert got["purchaser_name"].value == "Harbor Lights Trading LLC"
    assert got["purchaser_name"].document_id == ids[1]
    assert got["purchaser_name"].offered  # the record says Lone Star Hardware LLC


def test_suggestions_from_the_real_tx_form_read(shared_dir, rules):
    from tests.helpers.real_forms import PURCHASER, filled_tx_form

    pdf, rect = filled_tx_form()
    stored = read_document(pdf, "tx.pdf", rules).to_json()
    data = replace(record(), form_code="", lines=(), exempt_reason="")
    got = suggestions_from_reading(stored, 3, data, rules)
    assert got["form_code"].value == "TX-01-339" and got["states"].value == "TX"
    assert got["purchaser_name"].value == PURCHASER and got["purchaser_name"].offered
    assert got["signed_date"].value == "2026-03-15"
    box = got["purchaser_name"].box
    assert box is not None and abs(box[1] - rect.y0) < 20  # read where the purchaser's field is
