"""Returned forms read back: token, sender and .eml matching, pending certificate with mapped fields,
request closed, duplicates recognised, unmatched files kept."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import email.utils
from email.message import EmailMessage

import pymupdf
from sqlalchemy import select

from ecms_desktop.models import Certificate, Document
from ecms_desktop.models.renewal import IntakeRecord, OutboxMessage, RenewalRequest
from ecms_desktop.services.core.audit import list_events
from ecms_desktop.services.renewals.returned_forms import ReturnedFormsService
from ecms_desktop.services.renewals.service import RenewalService
from tests.services.renewals.test_renewal_plan import DAY0, RULES, make_cert
from tests.services.renewals.test_request_packet import customer_fills


def _sent_form(db, cert_id: int) -> tuple[str, bytes, str]:
    """(token, form PDF bytes, to address) from the outbox message of the certificate's request."""
    with db.reader() as s:
        req = s.execute(select(RenewalRequest).where(RenewalRequest.certificate_id == cert_id)).scalar_one()
        row = s.execute(select(OutboxMessage).where(OutboxMessage.request_id == req.id)).scalar_one()
        msg = email.message_from_bytes(row.raw, policy=email.policy.default)
        token, to = req.token, row.to_address
    form = next(p for p in msg.iter_attachments() if not p.get_filename().startswith("Renewal-request"))
    return token, form.get_content(), to


def test_official_tx_form_returned_creates_pending_certificate(db, company_id, shared_dir, tmp_path):
    svc = RenewalService(db, RULES)
    info = svc.add_form(company_id, "tx 01-339", shared_dir / "real-forms" / "TX-01-339.pdf")
    assert info["form_code"] == "TX-01-339" and info["mapped_fields"]
    cert_id = make_cert(db, company_id, "C-TX", DAY0 + dt.timedelta(days=20))
    svc.run(company_id, DAY0, send=False)
    token, form, _to = _sent_form(db, cert_id)
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


def _eml(sender: str, subject: str, attachments: list[tuple[str, bytes, str]], date: dt.datetime) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, "tax@acme.example", subject
    msg["Date"] = email.utils.format_datetime(date)
    msg.set_content("Here it is.")
    for name, data, ctype in attachments:
        main, sub = ctype.split("/")
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return msg.as_bytes()


def _plain_pdf(text: str) -> bytes:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), text)
    return doc.tobytes()


def _png() -> bytes:
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 40, 30), 0)
    pix.clear_with(200)
    return pix.tobytes("png")


def test_eml_with_generated_form_and_cover_letter(db, company_id, tmp_path):
    svc = RenewalService(db, RULES)
    cert_id = make_cert(db, company_id, "C-G", DAY0 + dt.timedelta(days=20))
    svc.run(company_id, DAY0, send=False)
    token, form, to = _sent_form(db, cert_id)
    filled = customer_fills(form, {"signer_name": "Dana Buyer", "signer_title": "Owner", "signed_date": "2026-01-20",
                                   "signature": "/s/ Dana Buyer", "property_description": "Tools"})
    date = dt.datetime(2026, 1, 20, 15, 30, tzinfo=dt.UTC)
    raw = _eml(to, f"Re: renewal [{token}]", [("photo.png", _png(), "image/png"),
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


def test_match_by_sender_when_no_token_and_unmatched_kept(db, company_id, tmp_path):
    svc = RenewalService(db, RULES)
    cert_id = make_cert(db, company_id, "C-S", DAY0 + dt.timedelta(days=20))
    svc.run(company_id, DAY0, send=False)
    _token, _form, to = _sent_form(db, cert_id)
    by_sender = tmp_path / "by-sender.eml"
    by_sender.write_bytes(_eml(to.upper(), "our certificate", [("scan.pdf", _plain_pdf("signed certificate"),
                                                                  "application/pdf")],
                               dt.datetime(2026, 1, 9, tzinfo=dt.UTC)))
    stranger = tmp_path / "stranger.eml"
    stranger.write_bytes(_eml("nobody@else.example", "hello", [("x.pdf", _plain_pdf("x"), "application/pdf")],
                              dt.datetime(2026, 1, 9, tzinfo=dt.UTC)))
    loose = tmp_path / "loose.pdf"
    loose.write_bytes(_plain_pdf("no token here"))
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 this is not a pdf")
    items = ReturnedFormsService(db, RULES).intake([by_sender, stranger, loose, broken], company_id)
    assert [(i.outcome, i.matched_by) for i in items] == [("answered", "sender"), ("unmatched", "none"),
                                                         ("unmatched", "none"), ("refused", "none")]
    assert "no open request for nobody@else.example" in items[1].message
    with db.reader() as s:
        assert s.get(Document, items[1].document_id).certificate_id is None  # stored as evidence
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
    cert_id = make_cert(db, company_id, "C-V", DAY0 + dt.timedelta(days=20))
    svc.run(company_id, DAY0, send=False)
    _token, form, _to = _sent_form(db, cert_id)
    path = tmp_path / "f.pdf"
    path.write_bytes(form)
    [item] = ReturnedFormsService(db, RULES).intake([path], company_id)
    assert item.outcome == "answered" and item.validation == "validation failed: engine broke"
