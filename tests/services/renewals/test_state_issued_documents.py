"""Renewal and first requests for a document the state issues: the customer cannot fill one in, so the
e-mail asks for a copy of its current document and says where it gets it (from the rules pack's
``state_document``) instead of attaching a fill-in form. The e-mails are read back with Python's ``email``
package from the outbox.

Sources of the cases: Florida's annual resale certificate (DR-13) is issued every year by the Florida
Department of Revenue (floridarevenue.com annual resale certificate page); Maryland's exemption certificate
is a card the Comptroller issues (marylandtaxes.gov tax exemptions page); Texas 01-339 is a form the
purchaser fills in (printed form, Rev. 4-13/8).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from email.message import EmailMessage

import pymupdf
import pytest
from sqlalchemy import select

from ecms_desktop.models import Customer
from ecms_desktop.models.renewal import OutboxMessage
from ecms_desktop.services.certificates.service import create_certificate
from ecms_desktop.services.core.certificate_records import CertificateInput, LineInput
from ecms_desktop.services.renewals.first_request import open_first_request
from ecms_desktop.services.renewals.service import RenewalService
from tests.factories import DAY0, RULES, import_sales, make_expiring_certificate


def _certificate(db, company_id: int, number: str, *, state: str, form: str, reason: str, tax_id: str) -> int:
    """An approved certificate of a new customer ``number`` for ``state`` that expires 10 days after DAY0."""
    with db.transaction() as s:
        cust = Customer(company_id=company_id, number=number, number_key=number.casefold(),
                        legal_name=f"Customer {number}", email=f"{number.lower()}@buyer.example",
                        owner_email="owner@acme.example", bill_to_line1="5 Elm Rd", bill_to_city="Dallas",
                        bill_to_state="TX", bill_to_zip="75201")
        s.add(cust)
        s.flush()
        return create_certificate(s, RULES, CertificateInput(
            company_id=company_id, customer_id=cust.id, form_code=form, exempt_reason=reason,
            lines=(LineInput(state, tax_id),), purchaser_name=cust.legal_name,
            expiry_override=DAY0 + dt.timedelta(days=10), expiry_override_reason="test calendar"),
            origin="manual", review_state="approved").id


def _sent(db) -> list[EmailMessage]:
    with db.reader() as s:
        raws = s.execute(select(OutboxMessage.raw).order_by(OutboxMessage.id)).scalars().all()
    return [email.message_from_bytes(raw, policy=email.policy.default) for raw in raws]


def _bodies(msg: EmailMessage) -> tuple[str, str]:
    return (msg.get_body(preferencelist=("plain",)).get_content(),
            msg.get_body(preferencelist=("html",)).get_content())


#: (state, form, reason, number, what the request names, who issues it, where to get it) - from the pack's
#: state_document, whose sources are the states' pages named in the module docstring.
CASES = [
    ("FL", "FL-DR-13", "resale", "1234567890123", "Annual Resale Certificate for Sales Tax (DR-13)",
     "Florida Department of Revenue", "http://floridarevenue.com/taxes/taxesfees/Pages/annual_resale_certificate_sut.aspx"),
    ("MD", "MD-EXEMPTION-CARD", "nonprofit", "12345678", "sales and use tax exemption certificate (card)",
     "Comptroller of Maryland", "https://www.marylandtaxes.gov/MDTaxConnect"),
]


@pytest.mark.parametrize(("state", "form", "reason", "number", "document", "issuer", "url"), CASES)
def test_a_renewal_request_for_a_state_issued_document_asks_for_a_copy_and_attaches_no_form(
        db, company_id, state, form, reason, number, document, issuer, url):
    cert_id = _certificate(db, company_id, "C-S", state=state, form=form, reason=reason, tax_id=number)
    RenewalService(db, RULES).run(company_id, DAY0, send=False)

    [msg] = _sent(db)
    names = [p.get_filename() for p in msg.iter_attachments()]
    assert len(names) == 1 and names[0].startswith("Renewal-request-"), names  # the letter alone
    text, html = _bodies(msg)
    for body in (text, html):
        assert document in body and issuer in body and url in body
        assert "no form to fill in" in body
        assert "complete the attached form" not in body
    assert f'href="{url}"' in html
    letter = next(msg.iter_attachments()).get_content()
    page = " ".join(pymupdf.open(stream=letter)[0].get_text().split())
    assert "no form to fill in" in page and issuer in page
    assert str(cert_id) in page


def test_a_fill_in_form_is_still_attached_for_a_form_the_customer_completes(db, company_id):
    # Texas 01-339 is filled in and signed by the purchaser (printed form): the request attaches it.
    make_expiring_certificate(db, company_id, "C-T", DAY0 + dt.timedelta(days=10))
    RenewalService(db, RULES).run(company_id, DAY0, send=False)
    [msg] = _sent(db)
    names = [p.get_filename() for p in msg.iter_attachments()]
    assert any(n.startswith("TX-01-339") for n in names), names
    text, _html = _bodies(msg)
    assert "complete the attached form" in text and "no form to fill in" not in text


def test_a_first_request_in_florida_asks_for_the_annual_resale_certificate(db, company_id, tmp_path):
    # FL takes its own DR-13 for resale, which the Department issues: the first request asks for a copy.
    make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=300))
    import_sales(db, company_id, tmp_path, "I1,1,2025-12-01,C-1,FL,40,0,yes")
    with db.reader() as s:
        customer_id = s.execute(select(Customer.id).where(Customer.number == "C-1")).scalar_one()
    open_first_request(RenewalService(db, RULES), customer_id, "FL", as_of=DAY0, send=False)
    [msg] = _sent(db)
    [letter] = list(msg.iter_attachments())
    assert letter.get_filename().startswith("Certificate-request-")
    text, _html = _bodies(msg)
    assert "Annual Resale Certificate for Sales Tax (DR-13)" in text and "Florida Department of Revenue" in text
