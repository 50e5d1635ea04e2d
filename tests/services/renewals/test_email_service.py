"""Renewal e-mail against a real SMTP server on loopback (aiosmtpd): delivery, retries, permanent
refusals, dry run, and a sending process killed with SIGKILL mid-batch then re-run."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from ecms_desktop.models.renewal import OutboxMessage, RenewalRequest
from ecms_desktop.services.core.audit import list_events
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.renewals.email_service import EmailService
from ecms_desktop.services.renewals.service import RenewalService
from tests.factories import DAY0, RULES, make_expiring_certificate, use_local_smtp

REPO = Path(__file__).resolve().parents[3]


class FakeTime:
    """Injectable clock and sleep: records the waits, never waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds



def _setup(db, company_id, server, customers: int = 3, *, rate: int = 0) -> RenewalService:
    use_local_smtp(db, company_id, server.port, rate=rate)
    for n in range(customers):
        make_expiring_certificate(db, company_id, f"C-{n + 1}", DAY0 + dt.timedelta(days=30 + n))
    return RenewalService(db, RULES)


def test_requests_arrive_with_recipients_subject_token_and_packet(db, company_id, smtp):
    svc = _setup(db, company_id, smtp, 3)
    result = svc.run(company_id, DAY0)
    assert result.requests_opened == 3 and result.delivery is not None and result.delivery.sent == 3
    assert len(smtp.messages) == 3
    with db.reader() as s:
        requests = {r.customer_id: r.token for r in s.execute(select(RenewalRequest)).scalars()}
        outbox = s.execute(select(OutboxMessage.to_address, OutboxMessage.customer_id, OutboxMessage.message_id,
                                  OutboxMessage.state)).all()
    assert {o.state for o in outbox} == {"sent"}
    by_to = {m.rcpt_tos[0]: m for m in smtp.messages}
    assert set(by_to) == {"c-1@buyer.example", "c-2@buyer.example", "c-3@buyer.example"}
    for row in outbox:
        got = by_to[row.to_address]
        msg = got.message
        token = requests[row.customer_id]
        assert token in str(msg["Subject"]) and msg["X-ECMS-Request-Token"] == token
        assert msg["Message-ID"] == row.message_id
        assert got.mail_from == "tax@acme.example"
        names = [p.get_filename() for p in msg.iter_attachments()]
        assert names[0] == f"Renewal-request-{token}.pdf" and names[1].startswith("TX-01-339-TX-")
        import pymupdf

        form = next(p for p in msg.iter_attachments() if "fill-in" in p.get_filename())
        doc = pymupdf.open(stream=form.get_content(), filetype="pdf")
        assert token in doc.metadata["keywords"]
        assert {w.field_name: w.field_value for w in doc[0].widgets()}["ecms_request_token"] == token
        html = msg.get_body(preferencelist=("html",)).get_content()
        assert "Texas" in html and token in html
    # Re-running the same day sends nothing more (effectively once).
    again = svc.run(company_id, DAY0)
    assert again.requests_opened == 0 and len(smtp.messages) == 3


def test_html_template_escapes_customer_values(db, company_id, smtp):
    svc = _setup(db, company_id, smtp, 0)
    make_expiring_certificate(db, company_id, "C-<b>", DAY0 + dt.timedelta(days=10))
    svc.run(company_id, DAY0)
    html = smtp.messages[0].message.get_body(preferencelist=("html",)).get_content()
    assert "Customer C-&lt;b&gt;" in html and "Customer C-<b>" not in html


def test_transient_refusals_are_retried_with_backoff(db, company_id, smtp):
    svc = _setup(db, company_id, smtp, 2)
    fake = FakeTime()
    svc.email = EmailService(db, sleep=fake.sleep, clock=fake.clock, backoff=1.5)
    smtp.fail_next(451, times=2)
    result = svc.run(company_id, DAY0)
    assert result.delivery.sent == 2 and result.delivery.retries == 2 and not result.delivery.failed
    assert fake.sleeps == [1.5, 3.0]
    assert smtp.refusals == 2 and len(smtp.messages) == 2


def test_transient_refusals_exhausted_leave_message_queued_until_sent_on_request(db, company_id, smtp):
    svc = _setup(db, company_id, smtp, 1)
    fake = FakeTime()
    svc.email = EmailService(db, sleep=fake.sleep, clock=fake.clock, max_attempts=3, backoff=1)
    smtp.fail_next(421, times=3)
    result = svc.run(company_id, DAY0)
    assert result.delivery.sent == 0 and len(result.delivery.deferred) == 1
    with db.reader() as s:
        row = s.execute(select(OutboxMessage)).scalar_one()
        assert row.state == "pending" and row.last_code == 421
    later = svc.run(company_id, DAY0 + dt.timedelta(days=1))  # the next run does not send it by itself
    assert later.delivery is None and later.queued_earlier == 1 and smtp.messages == []
    assert svc.email.send_queued(company_id).sent == 1 and len(smtp.messages) == 1


def test_permanent_refusal_is_recorded_against_the_customer(db, company_id, smtp):
    svc = _setup(db, company_id, smtp, 3)
    smtp.refuse_recipient("c-2@buyer.example", 550)
    result = svc.run(company_id, DAY0)
    assert result.delivery.sent == 2
    [failed] = result.delivery.failed
    assert failed.to_address == "c-2@buyer.example" and failed.code == 550 and failed.customer_name == "Customer C-2"
    assert [f.outbox_id for f in svc.email.failed_messages(company_id)] == [failed.outbox_id]
    with db.reader() as s:
        events = [e for e in list_events(s) if e.action == "email.failed"]
        assert len(events) == 1 and events[0].entity_type == "customer"
        assert events[0].entity_id == str(failed.customer_id) and events[0].details["code"] == 550
    # a failed message is not retried by the next run
    svc.run(company_id, DAY0)
    assert len(smtp.messages) == 2


def test_rate_limit_spaces_messages(db, company_id, smtp):
    svc = _setup(db, company_id, smtp, 3, rate=30)  # 30 a minute = one every 2 s
    fake = FakeTime()
    svc.email = EmailService(db, sleep=fake.sleep, clock=fake.clock)
    svc.run(company_id, DAY0)
    assert fake.sleeps == [2.0, 2.0] and len(smtp.messages) == 3


def test_dry_run_writes_eml_and_changes_nothing(db, company_id, smtp, tmp_path):
    svc = _setup(db, company_id, smtp, 2)
    result = svc.run(company_id, DAY0, dry_run_dir=tmp_path / "out")
    assert len(result.eml_files) == 2 and smtp.messages == []
    msg = email.message_from_bytes(result.eml_files[0].read_bytes(), policy=email.policy.default)
    assert msg["To"].endswith("@buyer.example") and len(list(msg.iter_attachments())) == 2
    with db.reader() as s:
        assert s.execute(select(OutboxMessage)).first() is None
        assert s.execute(select(RenewalRequest)).first() is None
    assert svc.plan(company_id, DAY0).counts()["request"] == 2


def test_login_needs_a_password_when_no_keyring(db, company_id, smtp):
    email_service = EmailService(db)
    saved = email_service.set_profile(company_id, host="127.0.0.1", port=smtp.port, security="none",
                                      from_address="tax@acme.example", username="bob", password="secret")
    assert not saved.keyring.available and not saved.password_stored
    with db.reader() as s:
        event = [e for e in list_events(s) if e.action == "smtp.settings_changed"][-1]
        assert "secret" not in repr(event.after) + repr(event.details)
    make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=5))
    with pytest.raises(ValidationError, match="needs the password of bob"):
        RenewalService(db, RULES, email_service).run(company_id, DAY0)


def _send_subprocess(db_url: str, *command: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ecms_desktop.cli", "--db", db_url, "renewals", *command],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})


@pytest.mark.slow
def test_killed_mid_batch_then_rerun_sends_each_message_once(db, company_id, smtp):
    _setup(db, company_id, smtp, 8)
    smtp.hold_after(4)  # the 4th message reaches the server, which does not answer yet
    proc = _send_subprocess(db.url, "send", "--as-of", DAY0.isoformat())
    try:
        assert smtp.held.wait(120), proc.stderr.read().decode() if proc.poll() is not None else "not reached"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        smtp.release()
    assert proc.returncode == -signal.SIGKILL
    with db.reader() as s:
        states = Counter(s.execute(select(OutboxMessage.state)).scalars())
    assert states == {"sent": 3, "sending": 1, "pending": 4}

    rerun = _send_subprocess(db.url, "send-queued")  # the accountant sends what was left queued
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()
    assert "resent after an interrupted run" in out.decode()

    with db.reader() as s:
        rows = s.execute(select(OutboxMessage.message_id, OutboxMessage.raw, OutboxMessage.state,
                                OutboxMessage.resent_after_interruption)).all()
        raw = {r.message_id: r.raw for r in rows}
        assert {r.state for r in rows} == {"sent"}
        resent = [r for r in rows if r.resent_after_interruption]
        assert len(resent) == 1
        events = [e for e in list_events(s) if e.action == "email.resent_after_interruption"]
        assert [e.details["message_id"] for e in events] == [resent[0].message_id]
    arrived = Counter(m.message_id for m in smtp.messages)
    assert set(arrived) == set(raw)  # every message arrived
    twice = {mid for mid, n in arrived.items() if n > 1}
    assert twice == {resent[0].message_id}  # only the in-flight one, with its same Message-ID
    assert arrived[resent[0].message_id] == 2
    copies = [m.data for m in smtp.messages if m.message_id == resent[0].message_id]
    assert copies[0] == copies[1] == raw[resent[0].message_id]
