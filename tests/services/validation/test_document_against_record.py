"""A certificate's documents against its record: what was read from a document (purchaser name, state,
form) that says something else than the record is a finding with both values; confident reads block
approval, weak ones are warnings to acknowledge."""

from __future__ import annotations

import dataclasses
import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select

from ecms_desktop.models import Document
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.core.certificate_records import CertificateInput, LineInput
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.documents.storage import check_bytes, store_checked
from ecms_desktop.services.validation.engine import (
    DOCUMENT_SURE_READ,
    ValidationEngine,
    document_findings,
    subject_of,
)
from ecms_desktop.services.validation.service import ValidationService
from tests.factories import make_customer, text_pdf

AS_OF = dt.date(2026, 11, 20)
RECORD_NAME = "Harbor Light Supply Inc"


def record(**changes: Any) -> CertificateInput:
    """A complete, valid Texas resale certificate whose purchaser is :data:`RECORD_NAME`."""
    base = CertificateInput(
        company_id=1, customer_id=1, form_code="TX-01-339", lines=(LineInput("TX"),), exempt_reason="resale",
        certificate_number="TX-1001", purchaser_name=RECORD_NAME, purchaser_address="1 Elm St, Austin TX 78701",
        purchaser_tax_id="32012345678", property_description="Hardware for resale",
        business_description="Hardware store", signed=True, signer_name="Pat Doe", signer_title="Owner",
        signed_date=dt.date(2026, 3, 1))
    return dataclasses.replace(base, **changes)


def reading(*, name: str | None = None, name_confidence: float = 0.95, state: str = "", state_confidence: float = 0.9,
            form: str = "", form_confidence: float = 0.9) -> dict[str, Any]:
    """A stored reading (``Document.extraction``) in the reader's JSON shape."""
    fields: dict[str, Any] = {}
    if name is not None:
        fields["purchaser_name"] = {"value": name, "confidence": name_confidence, "page": 1,
                                    "box": [40.0, 90.0, 300.0, 104.0]}
    return {"method": "ocr", "form_code": {"value": form, "confidence": form_confidence},
            "state": {"value": state, "confidence": state_confidence}, "fields": fields,
            "engine": "tesseract", "engine_version": "5", "seconds": 1.0, "notes": []}


def findings(data: CertificateInput, *docs: tuple[str, dict[str, Any] | None]) -> list[Any]:
    documents = [SimpleNamespace(original_name=n, extraction=x) for n, x in docs]
    subject = subject_of(data, customer_name=data.purchaser_name, documents=documents)
    return [f for f in ValidationEngine(load_rules_pack()).evaluate(subject, AS_OF) if f.rule.startswith("document.")]


def test_another_purchaser_on_the_document_is_an_error_with_both_names():
    [f] = findings(record(), ("scan.pdf", reading(name="Harbor Lights Trading LLC", name_confidence=0.91)))
    assert (f.rule, f.severity, f.field, f.state) == ("document.purchaser_differs", "error", "purchaser_name", "")
    assert f.message.startswith("The document (scan.pdf, page 1) names the purchaser 'Harbor Lights Trading LLC' "
                                "(read with 91% confidence); the record says 'Harbor Light Supply Inc'.")


def test_a_state_not_among_the_coverage_lines_is_a_finding_with_both_values():
    [f] = findings(record(), ("ok.pdf", reading(state="ok", state_confidence=0.85)))
    assert (f.rule, f.severity, f.field) == ("document.state_differs", "error", "states")
    assert "The document (ok.pdf) is for OK" in f.message and "the record says TX" in f.message
    multistate = record(form_code="SST-F0003", lines=(LineInput("OH", "1"), LineInput("MI", "2")),
                        purchaser_tax_id="")
    assert findings(multistate, ("sst.pdf", reading(state="MI"))) == []


def test_another_form_is_a_finding_and_not_a_known_form_is_no_disagreement():
    [f] = findings(record(), ("form.pdf", reading(form="OK-13-16-A", form_confidence=0.92)))
    assert (f.rule, f.severity, f.field) == ("document.form_differs", "error", "form_code")
    assert "is the form OK-13-16-A (read with 92% confidence); the record says TX-01-339" in f.message
    assert findings(record(), ("letter.pdf", reading(form="", form_confidence=0.95))) == []


def test_no_finding_when_the_document_agrees_or_nothing_was_read():
    agreeing = reading(name="HARBOR LIGHT SUPPLY, INC.", state="TX", form="TX-01-339")
    assert findings(record(), ("scan.pdf", agreeing)) == []
    # suffix variants, punctuation, spacing and case do not count
    assert findings(record(), ("scan.pdf", reading(name="harbor  light supply llc"))) == []
    nothing = {"method": "none", "form_code": {"value": "", "confidence": 0.0},
               "state": {"value": "", "confidence": 0.0}, "fields": {}, "notes": ["nothing could be read"]}
    assert findings(record(), ("blank.pdf", nothing), ("unread.pdf", None)) == []
    assert findings(record()) == []


def test_severity_follows_the_confidence_of_the_read():
    short = record(purchaser_name="Acme Inc")
    # one letter off in a short name, read weakly: a warning to acknowledge, not an error
    [weak] = findings(short, ("fax.pdf", reading(name="Acne Inc", name_confidence=0.55)))
    assert weak.severity == "warning" and "'Acne Inc'" in weak.message and "'Acme Inc'" in weak.message
    [sure] = findings(short, ("fax.pdf", reading(name="Acne Inc", name_confidence=DOCUMENT_SURE_READ)))
    assert sure.severity == "error"
    # one letter off in a long name is the same name
    assert findings(record(), ("fax.pdf", reading(name="Harbor Light Suppiy Inc", name_confidence=0.99))) == []
    [state] = findings(record(), ("x.pdf", reading(state="OK", state_confidence=0.5)))
    assert state.severity == "warning"


def test_each_current_document_counts_and_is_named():
    docs = (("first.pdf", reading(name=RECORD_NAME)), ("second.pdf", reading(name="Bayou Traders LLC")))
    [f] = findings(record(), *docs)
    assert "The document (second.pdf, page 1)" in f.message
    subject = subject_of(record(), documents=[SimpleNamespace(original_name=n, extraction=x) for n, x in docs])
    assert [f.message for f in document_findings(subject)] == [f.message]


def _attach(db, cert_id: int, extraction: dict[str, Any], name: str = "scan.pdf") -> None:
    with db.transaction() as s:
        doc = store_checked(s, check_bytes(text_pdf(f"certificate {cert_id} {name}"), name), received_via="scan",
                            certificate_id=cert_id)
        doc.extraction = extraction


@pytest.fixture
def customer_id(db, company_id) -> int:
    return make_customer(db, company_id, name=RECORD_NAME)


def test_approval_is_blocked_by_a_confident_disagreement_and_validate_reports_it(db, company_id, customer_id):
    certs = CertificateService(db)
    cert_id = certs.create(record(company_id=company_id, customer_id=customer_id), as_of=AS_OF).id
    _attach(db, cert_id, reading(name="Harbor Lights Trading LLC", name_confidence=0.91, state="TX",
                                 form="TX-01-339"))
    stored = ValidationService(db).validate(cert_id, as_of=AS_OF)
    assert [f.rule for f in stored.errors] == ["document.purchaser_differs"] and not stored.can_approve
    detail = certs.get(cert_id, AS_OF)
    assert [f.rule for f in ValidationService(db).evaluate(detail, AS_OF)] == ["document.purchaser_differs"]
    with pytest.raises(ValidationError) as err:
        certs.approve_with_validation(cert_id, expected_version=detail.version, as_of=AS_OF,
                                      acknowledge_warnings=True)
    assert "'Harbor Lights Trading LLC'" in str(err.value) and "'Harbor Light Supply Inc'" in str(err.value)
    assert certs.get(cert_id, AS_OF).review_state == "pending"
    # every certificate validated in batches sees it too
    many = ValidationService(db).validate_many([cert_id], as_of=AS_OF)
    assert many.errors == 1


def test_a_weak_disagreement_is_approved_once_acknowledged(db, company_id, customer_id):
    certs = CertificateService(db)
    cert_id = certs.create(record(company_id=company_id, customer_id=customer_id), as_of=AS_OF).id
    _attach(db, cert_id, reading(name="Harbor Lights Trading LLC", name_confidence=0.6))
    version = certs.get(cert_id, AS_OF).version
    with pytest.raises(ValidationError, match="acknowledge"):
        certs.approve_with_validation(cert_id, expected_version=version, as_of=AS_OF, acknowledge_warnings=False)
    outcome = certs.approve_with_validation(cert_id, expected_version=version, as_of=AS_OF,
                                            acknowledge_warnings=True, note="read wrongly; the scan says Supply")
    assert [f.rule for f in outcome.validation.warnings] == ["document.purchaser_differs"]
    with db.reader() as s:
        assert s.execute(select(Document.id).where(Document.certificate_id == cert_id)).scalar_one()
