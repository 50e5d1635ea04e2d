"""Returned forms read back: token, sender and .eml matching, pending certificate with mapped fields,
request closed, duplicates recognised, unmatched files kept in the intake inbox."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from ecms_desktop.models import Certificate, Document
from ecms_desktop.models.renewal import IntakeRecord, RenewalRequest
from ecms_desktop.services.core.audit import list_events
from ecms_desktop.services.intake.inbox import InboxService
from ecms_desktop.services.renewals.returned_forms import ReturnedFormsService
from ecms_desktop.services.renewals.service import RenewalService
from tests.factories import (
    DAY0,
    RULES,
    customer_fills,
    eml_bytes,
    image_bytes,
    make_expiring_certificate,
    sent_renewal_form,
    text_pdf,
)


def test_official_tx_form_returned_creates_pending_certificate(db, company_id, shared_dir, tmp_path):
    svc = RenewalService(db, RULES)
    info = svc.add_form(company_id, "tx 01-339", shared_dir / "real-forms" / "TX-01-339.pdf")
    assert info["form_code"] == "TX-01-339" and info["mapped_fields"]
    cert_id = make_expiring_certificate(db, company_id, "C-TX", DAY0 + dt.timedelta(days=20))
    svc.run(company_id, DAY0, send=False)
    token, form, _to = sent_renewal_form(db, cert_id)
    returned = customer_fills(form, {"Items description": "Hardware for resale", "Purchaser title": "CFO",
                                     "Purchaser sig date": "02/03/2026", "Permit number": "32011112222"})
    path = tmp_path / "scan-from-customer.pdf"
    path.write_bytes(returned)

    service = ReturnedFormsService(db, RULES)
    [item] = service.intake([path], company_id, as_of=DAY0 + dt.timedelta(days=5))
    assert item.outcome == "answered" and item.matched_by == "token" and item.token == token
    assert item.validation  # the validation engine ran (or said why not)
    with db.reader() as s:
        cert = s.get(Certificate, item.certificate_id)
        assert cert.review_state == "pending" and cert.origin == "renewal" and cert.form_code == "TX-01-339"
        assert cert.property_description == "Hardware for resale" and cert.signer_title == "CFO"
        assert cert.signed_date == dt.date(2026, 2, 3) and cert.purchaser_tax_id == "32011112222"
        assert cert.purchaser_name == "Customer C-TX" and cert.purchaser_address == "5 Elm Rd, Dallas, TX 75201"
        assert [line.state for line in cert.lines] == ["TX"]
        req = s.execute(select(RenewalRequest).where(RenewalRequest.token == token)).scalar_one()
        assert req.status == "answered" and req.result_certificate_id == cert.id
        doc = s.execute(select(Document).where(Document.certificate_id == cert.id)).scalar_one()
        assert doc.received_via == "renewal_return"
        doc_id, doc_sha = doc.id, doc.sha256
        assert any(e.action == "renewal.answered" and e.details["new_certificate_id"] == cert.id
                   for e in list_events(s))
    # the answered request stops the ladder
    assert not [i for i in svc.plan(company_id, DAY0 + dt.timedelta(days=7)).items if i.action != "suspend"]
    # the same file again is a duplicate, not stored twice
    [again] = service.intake([path], company_id)
    assert again.outcome == "duplicate" and again.document_id == doc_id
    with db.reader() as s:
        assert len(s.execute(select(Document.id).where(Document.sha256 == doc_sha)).all()) == 1


def test_eml_with_generated_form_and_cover_letter(db, company_id, tmp_path):
    svc = RenewalService(db, RULES)
    cert_id = make_expiring_certificate(db, company_id, "C-G", DAY0 + dt.timedelta(days=20))
    svc.run(company_id, DAY0, send=False)
    token, form, to = sent_renewal_form(db, cert_id)
    filled = customer_fills(form, {"signer_name": "Dana Buyer", "signer_title": "Owner", "signed_date": "2026-01-20",
                                   "signature": "/s/ Dana Buyer", "property_description": "Tools"})
    date = dt.datetime(2026, 1, 20, 15, 30, tzinfo=dt.UTC)
    raw = eml_bytes(to, f"Re: renewal [{token}]", [("photo.png", image_bytes(40, 30), "image/png"),
                                                   ("form.pdf", filled, "application/pdf")], date)
    path = tmp_path / "reply.eml"
    path.write_bytes(raw)
    items = ReturnedFormsService(db, RULES).intake([path], company_id)
    assert [i.outcome for i in items] == ["answered", "attached"]  # the filled form is read first
    assert items[0].certificate_id == items[1].certificate_id
    with db.reader() as s:
        cert = s.get(Certificate, items[0].certificate_id)
        assert cert.signer_name == "Dana Buyer" and cert.signed and cert.signed_date == dt.date(2026, 1, 20)
        records = s.execute(select(IntakeRecord).order_by(IntakeRecord.id)).scalars().all()
        assert [r.sent_at for r in records] == [date, date] and records[0].sender == to
        docs = s.execute(select(Document).where(Document.certificate_id == cert.id)).scalars().all()
        assert {d.sent_at for d in docs} == {date}


def test_match_by_sender_when_no_token_and_unmatched_kept_in_the_inbox(db, company_id, tmp_path):
    svc = RenewalService(db, RULES)
    cert_id = make_expiring_certificate(db, company_id, "C-S", DAY0 + dt.timedelta(days=20))
    svc.run(company_id, DAY0, send=False)
    _token, _form, to = sent_renewal_form(db, cert_id)
    by_sender = tmp_path / "by-sender.eml"
    by_sender.write_bytes(eml_bytes(to.upper(), "our certificate",
                                    [("scan.pdf", text_pdf("signed certificate"), "application/pdf")],
                                    dt.datetime(2026, 1, 9, tzinfo=dt.UTC)))
    stranger = tmp_path / "stranger.eml"
    stranger.write_bytes(eml_bytes("nobody@else.example", "hello", [("x.pdf", text_pdf("x"), "application/pdf")],
                                   dt.datetime(2026, 1, 9, tzinfo=dt.UTC)))
    loose = tmp_path / "loose.pdf"
    loose.write_bytes(text_pdf("no token here"))
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not a pdf")
    items = ReturnedFormsService(db, RULES).intake([by_sender, stranger, loose, broken], company_id)
    assert [(i.outcome, i.matched_by) for i in items] == [("answered", "sender"), ("inbox", "none"),
                                                         ("inbox", "none"), ("refused", "none")]
    assert "no open request for nobody@else.example" in items[1].message and "intake inbox" in items[1].message
    with db.reader() as s:
        kept = s.get(Document, items[1].document_id)
        assert kept.certificate_id is None and kept.company_id == company_id  # stored, waiting in the inbox
    assert [i.id for i in InboxService(db).list(company_id)] == [items[1].document_id, items[2].document_id]
    with db.reader() as s:
        req = s.execute(select(RenewalRequest)).scalar_one()
        assert req.status == "answered"


def test_validation_called_defensively(db, company_id, tmp_path, monkeypatch):
    import ecms_desktop.services.validation.service as vs

    class Boom:
        def __init__(self, *a, **k):
            pass

        def validate(self, *a, **k):
            raise RuntimeError("engine broke")

    monkeypatch.setattr(vs, "ValidationService", Boom)
    svc = RenewalService(db, RULES)
    cert_id = make_expiring_certificate(db, company_id, "C-V", DAY0 + dt.timedelta(days=20))
    svc.run(company_id, DAY0, send=False)
    _token, form, _to = sent_renewal_form(db, cert_id)
    path = tmp_path / "f.pdf"
    path.write_bytes(form)
    [item] = ReturnedFormsService(db, RULES).intake([path], company_id)
    assert item.outcome == "answered" and item.validation == "validation failed: engine broke"
