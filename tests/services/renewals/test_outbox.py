"""Sending exactly what was chosen: messages queued earlier wait for an explicit "send queued", a send
that cannot start (no mail server, server down) creates nothing, and the outbox lists, retries and
sends queued messages - against a real SMTP server on loopback."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from ecms_desktop.models.renewal import OutboxMessage, RenewalRequest, RenewalStep
from ecms_desktop.services.core.audit import list_events
from ecms_desktop.services.core.errors import ExternalServiceError, NotFoundError, ValidationError
from ecms_desktop.services.renewals.email_service import EmailService
from ecms_desktop.services.renewals.service import Action, RenewalService
from tests.factories import DAY0, RULES, make_expiring_certificate, use_local_smtp
from tests.helpers.smtp_server import closed_port


def _counts(db) -> tuple[int, int, int]:
    with db.reader() as s:
        return tuple(s.execute(select(func.count()).select_from(t)).scalar_one()  # type: ignore[return-value]
                     for t in (RenewalRequest, RenewalStep, OutboxMessage))


def _request_key(svc: RenewalService, company_id: int, cert_id: int) -> str:
    plan = svc.plan(company_id, DAY0)
    return next(i.key for i in plan.items if i.certificate_id == cert_id and i.action is Action.REQUEST)


def test_send_sends_only_the_chosen_steps_not_messages_queued_earlier(db, company_id, smtp):
    use_local_smtp(db, company_id, smtp.port)
    svc = RenewalService(db, RULES)
    first = make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=20))
    svc.run(company_id, DAY0, keys=[_request_key(svc, company_id, first)], send=False)  # queued, not sent
    second = make_expiring_certificate(db, company_id, "C-2", DAY0 + dt.timedelta(days=20))

    result = svc.run(company_id, DAY0, keys=[_request_key(svc, company_id, second)])

    assert [m.rcpt_tos for m in smtp.messages] == [["c-2@buyer.example"]]
    assert result.delivery is not None and result.delivery.sent == 1 and result.queued_earlier == 1
    assert "1 message queued earlier is not sent" in result.summary()
    [queued] = svc.email.outbox(company_id, status="queued")
    assert queued.to_address == "c-1@buyer.example" and queued.state == "pending"

    # only when the user says so
    report = svc.email.send_queued(company_id)
    assert report.sent == 1 and sorted(m.rcpt_tos[0] for m in smtp.messages) == ["c-1@buyer.example",
                                                                                 "c-2@buyer.example"]
    assert svc.email.outbox(company_id, status="queued") == []


def test_send_with_the_server_down_creates_nothing(db, company_id):
    use_local_smtp(db, company_id, closed_port())
    svc = RenewalService(db, RULES)
    make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=20))
    make_expiring_certificate(db, company_id, "C-2", DAY0 - dt.timedelta(days=2))  # due and suspended too
    with db.reader() as s:
        events_before = len(list_events(s))
    with pytest.raises(ExternalServiceError, match="Cannot reach the SMTP server"):
        svc.run(company_id, DAY0)
    assert _counts(db) == (0, 0, 0)
    with db.reader() as s:
        assert len(list_events(s)) == events_before
    assert svc.plan(company_id, DAY0).counts() == {"request": 2, "reminder": 0, "escalation": 0, "suspend": 1}


def test_send_without_a_mail_server_creates_nothing(db, company_id):
    svc = RenewalService(db, RULES)
    make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=20))
    with pytest.raises(NotFoundError, match="Settings > E-mail"):
        svc.run(company_id, DAY0)
    assert _counts(db) == (0, 0, 0)


def test_suspensions_alone_need_no_mail_server(db, company_id):
    svc = RenewalService(db, RULES)
    cert = make_expiring_certificate(db, company_id, "C-1", DAY0 - dt.timedelta(days=2))
    key = next(i.key for i in svc.plan(company_id, DAY0).items
               if i.certificate_id == cert and i.action is Action.SUSPEND)
    result = svc.run(company_id, DAY0, keys=[key])
    assert result.suspended == 1 and result.requests_opened == 0 and result.delivery is None


def test_a_chosen_step_no_longer_due_is_refused(db, company_id, smtp):
    use_local_smtp(db, company_id, smtp.port)
    svc = RenewalService(db, RULES)
    cert = make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=20))
    key = _request_key(svc, company_id, cert)
    svc.run(company_id, DAY0, keys=[key])
    with pytest.raises(ValidationError, match="no longer due"):
        svc.run(company_id, DAY0, keys=[key])
    assert len(smtp.messages) == 1


def test_outbox_lists_and_retries_a_failed_message(db, company_id, smtp):
    use_local_smtp(db, company_id, smtp.port)
    svc = RenewalService(db, RULES)
    make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=20))
    make_expiring_certificate(db, company_id, "C-2", DAY0 + dt.timedelta(days=21), email="bad@buyer.example")
    smtp.refuse_recipient("bad@buyer.example", 550)
    svc.run(company_id, DAY0)
    entries = svc.email.outbox(company_id)
    assert {e.state for e in entries} == {"sent", "failed"}
    [failed] = svc.email.outbox(company_id, status="failed")
    assert failed.customer_name == "Customer C-2" and "550" in failed.reason and failed.subject
    [sent] = svc.email.outbox(company_id, status="sent")
    assert sent.sent_at is not None and sent.reason == ""
    with pytest.raises(ValidationError, match="is sent"):
        svc.email.retry(company_id, sent.outbox_id)

    smtp.refused.clear()  # the customer's mailbox exists now
    report = svc.email.retry(company_id, failed.outbox_id)
    assert report.sent == 1 and [m.rcpt_tos[0] for m in smtp.messages][-1] == "bad@buyer.example"
    assert svc.email.outbox(company_id, status="failed") == []
    with db.reader() as s:
        assert [e.entity_id for e in list_events(s) if e.action == "email.retry_requested"] == [
            str(failed.outbox_id)]


def test_retry_with_the_server_down_keeps_the_message_failed(db, company_id, smtp):
    use_local_smtp(db, company_id, smtp.port)
    svc = RenewalService(db, RULES)
    make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=20), email="bad@buyer.example")
    smtp.refuse_recipient("bad@buyer.example", 550)
    svc.run(company_id, DAY0)
    [failed] = svc.email.outbox(company_id, status="failed")
    use_local_smtp(db, company_id, closed_port())
    with pytest.raises(ExternalServiceError):
        svc.email.retry(company_id, failed.outbox_id)
    assert [e.outbox_id for e in svc.email.outbox(company_id, status="failed")] == [failed.outbox_id]


def test_unknown_status_is_refused(db, company_id):
    with pytest.raises(ValidationError, match="queued, sent, failed"):
        EmailService(db).outbox(company_id, status="lost")


def test_a_password_without_a_user_is_refused(db, company_id):
    with pytest.raises(ValidationError, match="password was given without a user name"):
        EmailService(db).set_profile(company_id, host="127.0.0.1", port=25, security="none",
                                     from_address="tax@acme.example", password="secret")
    assert EmailService(db).get_profile(company_id) is None
