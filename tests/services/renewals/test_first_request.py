"""A first request for a state where the customer buys but no certificate covers it: e-mailed with the
state's form through a real SMTP server on loopback, tracked by the renewal ladder (reminder, escalation,
never a suspension), answered by the returned form (a pending certificate); refused, creating nothing,
when the state is covered, a request is open or the mail server is down; migration 0012 up and down."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest
from alembic import command
from sqlalchemy import func, select, text

from ecms_desktop.models import Certificate
from ecms_desktop.models.renewal import OutboxMessage, RenewalRequest, RenewalStep
from ecms_desktop.services.core.audit import list_events
from ecms_desktop.services.core.database import _alembic_config
from ecms_desktop.services.core.errors import ExternalServiceError, NotFoundError, ValidationError
from ecms_desktop.services.customers.matrix import Coverage, ExemptionMatrixService, NextAction
from ecms_desktop.services.renewals.customer_steps import take_renewal_step
from ecms_desktop.services.renewals.first_request import open_first_request
from ecms_desktop.services.renewals.returned_forms import ReturnedFormsService
from ecms_desktop.services.renewals.service import Action, RenewalService
from ecms_desktop.services.renewals.state_forms import first_request_form
from tests.factories import (
    DAY0,
    RULES,
    customer_fills,
    import_sales,
    make_customer,
    make_expiring_certificate,
    use_local_smtp,
)
from tests.helpers.smtp_server import closed_port


def _customer(db, company_id, tmp_path) -> int:
    """C-1: an approved TX certificate valid all year; exempt sales shipped to OK (no certificate there)."""
    make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=300))
    import_sales(db, company_id, tmp_path, "I1,1,2025-12-01,C-1,OK,40,0,yes")
    return make_customer(db, company_id, "C-1")


def _counts(db) -> tuple[int, int, int]:
    with db.reader() as s:
        return tuple(s.execute(select(func.count()).select_from(t)).scalar_one()  # type: ignore[return-value]
                     for t in (RenewalRequest, RenewalStep, OutboxMessage))


def test_a_first_request_sends_the_state_form_and_the_ladder_follows_it_up(db, company_id, tmp_path, smtp):
    use_local_smtp(db, company_id, smtp.port)
    svc = RenewalService(db, RULES)
    customer_id = _customer(db, company_id, tmp_path)
    assert ExemptionMatrixService(db).matrix(customer_id, as_of=DAY0).row("OK").next_action is NextAction.REQUEST

    result = open_first_request(svc, customer_id, "ok", as_of=DAY0)

    assert result.requests_opened == 1 and result.delivery is not None and result.delivery.sent == 1
    [sent] = smtp.messages
    msg = sent.message
    with db.reader() as s:
        req = s.execute(select(RenewalRequest)).scalar_one()
        assert (req.certificate_id, req.coverage_line_id, req.state, req.status) == (None, None, "OK", "open")
        assert req.form_code == "OK-RESALE" and req.requested_on == DAY0
        assert req.requested_by == "tester"  # the person who sent it
        [step] = s.execute(select(RenewalStep)).scalars().all()
        assert (step.kind, step.certificate_id, step.request_id) == ("request", None, req.id)
        outbox = s.get(OutboxMessage, step.outbox_id)
        assert outbox is not None and outbox.request_id == req.id and outbox.state == "sent"
        [event] = [e for e in list_events(s) if e.action == "renewal.first_requested"]
        assert event.entity_id == str(req.id) and event.certificate_id is None and event.details["form"] == "OK-RESALE"
        token, request_id = req.token, req.id
    assert sent.rcpt_tos == ["c-1@buyer.example"] and token in str(msg["Subject"])
    assert "please send us your Oklahoma exemption certificate" in str(msg["Subject"])
    body = msg.get_body(preferencelist=("plain",)).get_content()
    assert "no Oklahoma sales tax exemption certificate of yours" in body and "None" not in body
    assert any("OK-RESALE" in (p.get_filename() or "") for p in msg.iter_attachments())
    [listed] = svc.email.outbox(company_id)
    assert listed.subject == str(msg["Subject"])
    row = ExemptionMatrixService(db).matrix(customer_id, as_of=DAY0).row("OK")
    assert (row.next_action, row.request_id, row.other_action) == (NextAction.REMIND, request_id, NextAction.ADD)

    # the ladder: nothing before the first reminder day, then a reminder, then the escalation; no suspension
    assert svc.plan(company_id, DAY0 + dt.timedelta(days=6)).items == ()
    plan = svc.plan(company_id, DAY0 + dt.timedelta(days=7))
    [reminder] = plan.items
    assert (reminder.action, reminder.request_id, reminder.certificate_id, reminder.key) == (
        Action.REMINDER, request_id, None, f"first-{request_id}:reminder")
    preview = svc.preview(company_id, DAY0 + dt.timedelta(days=7), reminder.key)
    assert token in preview.subject and "Until we do, we must charge sales tax" in preview.text
    take_renewal_step(svc, customer_id, "OK", as_of=DAY0 + dt.timedelta(days=7))
    assert len(smtp.messages) == 2 and str(smtp.messages[1].message["Subject"]).startswith("Reminder 1:")
    late = svc.plan(company_id, DAY0 + dt.timedelta(days=30))
    assert sorted(i.action.value for i in late.items) == ["escalation", "reminder"]
    escalation = next(i for i in late.items if i.action is Action.ESCALATION)
    assert escalation.recipient == "owner@acme.example"
    # A company's own template written before first requests existed names the certificate: not "None".
    from ecms_desktop.services.renewals.templates import TemplateSource

    svc.save_template(company_id, TemplateSource("escalation", "Unanswered: certificate {{ certificate_id }}",
                                                 "Certificate {{ certificate_id }} of {{ customer.name }}.",
                                                 "<p>Certificate {{ certificate_id }}</p>", True))
    own = svc.preview(company_id, DAY0 + dt.timedelta(days=30), escalation.key)
    assert "None" not in own.subject + own.text and "certificate (none yet)" in own.subject
    svc.reset_template(company_id, "escalation")
    svc.run(company_id, DAY0 + dt.timedelta(days=30), keys=[escalation.key])
    assert "first certificate" in str(smtp.messages[2].message["Subject"])
    with db.reader() as s:
        req = s.get_one(RenewalRequest, request_id)
        assert req.reminders_sent == 1 and req.escalated_on == DAY0 + dt.timedelta(days=30)


def test_the_ladder_stops_reminding_once_a_certificate_is_added_by_hand(db, company_id, tmp_path):
    svc = RenewalService(db, RULES)
    customer_id = _customer(db, company_id, tmp_path)
    open_first_request(svc, customer_id, "OK", as_of=DAY0, send=False)
    day7 = DAY0 + dt.timedelta(days=7)
    assert [i.action for i in svc.plan(company_id, day7).items] == [Action.REMINDER]
    pending = make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=400), state="OK",
                                        form="SST-F0003", review="pending")
    assert svc.plan(company_id, day7).items == ()  # the paper the accountant added waits for review
    with db.transaction() as s:
        s.get_one(Certificate, pending).review_state = "rejected"
    assert [i.action for i in svc.plan(company_id, day7).items] == [Action.REMINDER]
    make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=400), state="OK", form="SST-F0003")
    assert svc.plan(company_id, day7).items == ()  # an approved certificate covers the state


def _sent_form(db, request_id: int) -> tuple[str, bytes]:
    with db.reader() as s:
        req = s.get_one(RenewalRequest, request_id)
        row = s.execute(select(OutboxMessage).where(OutboxMessage.request_id == request_id)).scalar_one()
        msg = email.message_from_bytes(row.raw, policy=email.policy.default)
        token = req.token
    names = [p.get_filename() for p in msg.iter_attachments()]
    assert names[0] == f"Certificate-request-{token}.pdf"  # the cover letter, then the form
    form = next(p for p in msg.iter_attachments() if p.get_filename().startswith("OK-RESALE"))
    return token, form.get_content()


def test_the_returned_form_answers_the_first_request_with_a_pending_certificate(db, company_id, tmp_path):
    svc = RenewalService(db, RULES)
    customer_id = _customer(db, company_id, tmp_path)
    open_first_request(svc, customer_id, "OK", as_of=DAY0, send=False)
    with db.reader() as s:
        request_id = s.execute(select(RenewalRequest.id)).scalar_one()
    token, form = _sent_form(db, request_id)
    path = tmp_path / "from-customer.pdf"
    path.write_bytes(customer_fills(form, {"signer_name": "Dana Buyer", "signed_date": "2026-01-05",
                                           "signature": "/s/ Dana Buyer"}))

    [item] = ReturnedFormsService(db, RULES).intake([path], company_id, as_of=DAY0 + dt.timedelta(days=4))

    assert item.outcome == "answered" and item.token == token and item.matched_by == "token"
    with db.reader() as s:
        cert = s.get_one(Certificate, item.certificate_id)
        assert cert.customer_id == customer_id and cert.review_state == "pending" and cert.origin == "renewal"
        assert [line.state for line in cert.lines] == ["OK"] and cert.form_code == "OK-RESALE"
        assert cert.exempt_reason == "resale" and cert.purchaser_name == "Customer C-1"
        req = s.get_one(RenewalRequest, request_id)
        assert req.status == "answered" and req.result_certificate_id == cert.id and req.certificate_id is None
        [answered] = [e for e in list_events(s) if e.action == "renewal.answered"]
        assert answered.entity_id == str(request_id) and answered.certificate_id == cert.id  # in its history
    assert ExemptionMatrixService(db).matrix(customer_id, as_of=DAY0).row("OK").coverage is Coverage.PENDING
    assert svc.plan(company_id, DAY0 + dt.timedelta(days=30)).items == ()  # answered: the ladder stops


def test_refused_first_requests_create_nothing(db, company_id, tmp_path, smtp):
    svc = RenewalService(db, RULES)
    customer_id = _customer(db, company_id, tmp_path)
    import_sales(db, company_id, tmp_path, "I2,1,2025-12-02,C-1,WA,10,0,yes", "I3,1,2025-12-03,C-1,DE,10,0,yes")
    use_local_smtp(db, company_id, closed_port())
    with db.reader() as s:
        events = len(list_events(s))
    with pytest.raises(ExternalServiceError, match="Cannot reach the SMTP server"):
        open_first_request(svc, customer_id, "OK", as_of=DAY0)
    assert _counts(db) == (0, 0, 0)
    with pytest.raises(ValidationError, match=r"C-1 Customer C-1, TX: certificate \d+ already covers the state"):
        open_first_request(svc, customer_id, "TX", as_of=DAY0)
    with pytest.raises(ValidationError, match=r"Delaware \(DE\) has no statewide sales tax"):
        open_first_request(svc, customer_id, "DE", as_of=DAY0)
    with pytest.raises(NotFoundError, match="does not buy in NV"):
        open_first_request(svc, customer_id, "NV", as_of=DAY0)
    assert _counts(db) == (0, 0, 0)
    with db.reader() as s:
        assert len(list_events(s)) == events

    use_local_smtp(db, company_id, smtp.port)
    open_first_request(svc, customer_id, "OK", as_of=DAY0)
    with pytest.raises(ValidationError, match=r"OK: a request is already open \(sent on 2026-01-01\)"):
        open_first_request(svc, customer_id, "OK", as_of=DAY0 + dt.timedelta(days=1))
    assert _counts(db) == (1, 1, 1) and len(smtp.messages) == 1


def test_the_form_asked_for_follows_the_customers_exemption():
    assert first_request_form(RULES, "NY", ["nonprofit"]) == ("NY-ST-119.1", "nonprofit")
    assert first_request_form(RULES, "NY", []) == ("NY-ST-120", "resale")
    assert first_request_form(RULES, "CA", ["nonprofit"])[1] == "resale"  # CA's own form is for resale only
    with pytest.raises(ValidationError, match=r"Delaware \(DE\)"):
        first_request_form(RULES, "DE", ["resale"])


def test_migration_0012_lets_a_request_have_no_certificate_and_going_back_refuses_while_one_has_none(
        db, company_id, tmp_path):
    customer_id = _customer(db, company_id, tmp_path)
    open_first_request(RenewalService(db, RULES), customer_id, "OK", as_of=DAY0, send=False)
    with db.engine.connect() as conn, pytest.raises(RuntimeError, match=r"renewal requests RQ-\w+ ask for a first"):
        command.downgrade(_alembic_config(conn), "0011")
    with db.transaction() as s:
        s.execute(text("DELETE FROM renewal_request"))
    with db.engine.connect() as conn:
        command.downgrade(_alembic_config(conn), "0011")
        conn.commit()
        if db.engine.dialect.name == "sqlite":
            for table in ("renewal_request", "renewal_step"):
                sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = :t"), {"t": table}).scalar_one()
                assert "\tcertificate_id INTEGER NOT NULL," in sql
            assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
        else:
            nullable = conn.execute(text(
                "SELECT table_name, is_nullable FROM information_schema.columns WHERE column_name = 'certificate_id' "
                "AND table_name IN ('renewal_request', 'renewal_step') AND table_schema = current_schema()")).all()
            assert sorted(nullable) == [("renewal_request", "NO"), ("renewal_step", "NO")]
        command.upgrade(_alembic_config(conn), "head")
        conn.commit()
    open_first_request(RenewalService(db, RULES), customer_id, "OK", as_of=DAY0, send=False)
    assert _counts(db) == (1, 1, 2)  # the outbox keeps the message of the request deleted above
