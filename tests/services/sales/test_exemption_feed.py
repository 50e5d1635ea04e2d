"""Exemption status for the ERP: outbox events, expiry sweep, status question, webhook and feed folder."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from sqlalchemy import select

from ecms_desktop.models import Certificate, CoverageLine
from ecms_desktop.models.transactions import DeliveryAttempt, ExemptionStatusEvent
from ecms_desktop.services.sales import exemption_feed as feed
from tests.factories import WEBHOOK_SECRET, approve_with_feed_event, make_signed_certificate

AS_OF = dt.date(2026, 6, 1)


def test_review_changes_record_one_event_per_state(db, company_id) -> None:  # type: ignore[no-untyped-def]
    cert = make_signed_certificate(db, company_id, as_of=AS_OF, states=("KY", "OH"), certificate_number="SST-1")
    assert len(approve_with_feed_event(db, cert.id, as_of=AS_OF)) == 2
    events = feed.list_events(db)
    assert {(e["state"], e["reason"], e["old_status"], e["new_status"], e["customer_exempt"]) for e in events} == {
        ("KY", "approval", "not_exempt", "exempt", True), ("OH", "approval", "not_exempt", "exempt", True)}
    with db.transaction() as s:
        c = s.get(Certificate, cert.id)
        c.review_state = "archived"
        s.flush()
        feed.record_review_change(s, c, "approved", "archived", as_of=AS_OF)
    reasons = [e["reason"] for e in feed.list_events(db)]
    assert reasons[2:] == ["archive", "archive"]
    assert feed.list_events(db)[-1]["customer_exempt"] is False


def test_event_is_rolled_back_with_the_change(db, company_id) -> None:  # type: ignore[no-untyped-def]
    cert = make_signed_certificate(db, company_id, as_of=AS_OF)
    with pytest.raises(RuntimeError), db.transaction() as s:
        c = s.get(Certificate, cert.id)
        c.review_state = "approved"
        feed.record_review_change(s, c, "pending", "approved", as_of=AS_OF)
        raise RuntimeError("the approval failed")
    assert feed.list_events(db) == []


def test_expiry_sweep_records_expiries_and_suspensions_once(db, company_id) -> None:  # type: ignore[no-untyped-def]
    cert = make_signed_certificate(db, company_id, as_of=AS_OF, states=("KY", "OH"), review="approved")
    with db.transaction() as s:
        lines = {line.state: line for line in s.execute(select(CoverageLine)).scalars()}
        lines["KY"].expiry_date = dt.date(2026, 4, 30)
        lines["OH"].suspended_at = dt.datetime(2026, 5, 10, tzinfo=dt.UTC)
    assert feed.emit_expiries(db, dt.date(2026, 4, 30)) == 0  # KY valid through 30 April, OH not yet suspended
    assert feed.emit_expiries(db, dt.date(2026, 5, 5)) == 1  # KY expired
    assert feed.emit_expiries(db, AS_OF) == 1
    assert feed.emit_expiries(db, AS_OF) == 0
    events = {(e["state"], e["reason"], e["effective_date"]) for e in feed.list_events(db)}
    assert events == {("KY", "expiry", "2026-05-01"), ("OH", "suspension", "2026-05-10")}
    assert cert.id


def test_customer_status_answers_for_a_date_and_product(db, company_id) -> None:  # type: ignore[no-untyped-def]
    make_signed_certificate(db, company_id, as_of=AS_OF, review="approved", certificate_number="TX-5",
                            product_codes=("P1",))
    status = feed.customer_status(db, company_id, "C-1", as_of=AS_OF, state="TX", product="P1")
    assert status[0].exempt and status[0].certificate_number == "TX-5"
    assert not feed.customer_status(db, company_id, "c-1", as_of=AS_OF, state="TX", product="P2")[0].exempt
    general = feed.customer_status(db, company_id, "C-1", as_of=AS_OF)
    assert general[0].exempt and any("only products P1" in x for x in general[0].limits)
    assert not feed.customer_status(db, company_id, "C-1", as_of=dt.date(2025, 1, 1))[0].exempt


class _Receiver(BaseHTTPRequestHandler):
    failures_left = 0
    received: list[tuple[int, Any, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        cls = type(self)
        if cls.failures_left > 0:
            cls.failures_left -= 1
            cls.received.append((500, self.headers, body))
            self.send_response(500)
            self.end_headers()
            return
        cls.received.append((200, self.headers, body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
        pass


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    handler = type("Receiver", (_Receiver,), {"failures_left": 0, "received": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_webhook_fails_then_recovers_with_the_same_idempotency_key(db, company_id, receiver) -> None:  # type: ignore[no-untyped-def]
    handler, url = receiver
    cert = make_signed_certificate(db, company_id, as_of=AS_OF, states=("KY", "OH"))
    approve_with_feed_event(db, cert.id, as_of=AS_OF)
    feed.add_webhook(db, company_id, "erp", url)
    handler.failures_left = 2
    waits: list[float] = []
    report = feed.deliver(db, secret=lambda hook: WEBHOOK_SECRET, max_attempts=4, backoff=0.5, sleep=waits.append,
                          rand=lambda: 1.0)
    assert report.delivered == {"webhook erp": 2} and not report.failed
    assert waits == [0.5, 1.0]  # exponential back-off between tries (the top of its jitter range)
    statuses = [r[0] for r in handler.received]
    assert statuses == [500, 500, 200, 200]
    keys = [r[1]["Idempotency-Key"] for r in handler.received]
    assert keys[0] == keys[1] == keys[2] != keys[3]
    for _status, headers, body in handler.received:
        expected = hmac.new(WEBHOOK_SECRET.encode(), headers["X-ECMS-Timestamp"].encode() + b"." + body,
                            hashlib.sha256).hexdigest()
        assert headers["X-ECMS-Signature"] == f"sha256={expected}"
        assert json.loads(body)["idempotency_key"] == headers["Idempotency-Key"]
    with db.reader() as s:
        attempts = s.execute(select(DeliveryAttempt.ok).order_by(DeliveryAttempt.id)).scalars().all()
    assert attempts == [False, False, True, True]
    assert feed.deliver(db, secret=lambda hook: WEBHOOK_SECRET, sleep=waits.append).delivered == {"webhook erp": 0}


def test_webhook_down_keeps_events_for_the_next_run(db, company_id, receiver) -> None:  # type: ignore[no-untyped-def]
    handler, url = receiver
    cert = make_signed_certificate(db, company_id, as_of=AS_OF)
    approve_with_feed_event(db, cert.id, as_of=AS_OF)
    feed.add_webhook(db, company_id, "erp", url)
    handler.failures_left = 10
    report = feed.deliver(db, secret=lambda hook: WEBHOOK_SECRET, max_attempts=2, backoff=0, sleep=lambda _s: None)
    assert "HTTP 500" in report.failed["webhook erp"]
    again = feed.deliver(db, secret=lambda hook: WEBHOOK_SECRET, max_attempts=2, backoff=0, sleep=lambda _s: None)
    assert "waiting after failures" in again.failed["webhook erp"]  # back-off across runs
    from ecms_desktop.models.transactions import WebhookEndpoint

    with db.transaction() as s:
        s.execute(select(WebhookEndpoint)).scalar_one().next_attempt_at = None
    handler.failures_left = 0
    assert feed.deliver(db, secret=lambda hook: WEBHOOK_SECRET, sleep=lambda _s: None).delivered == {"webhook erp": 1}


def test_feed_folder_writes_csv_and_json_atomically(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert = make_signed_certificate(db, company_id, as_of=AS_OF, states=("KY", "OH"), certificate_number="SST-9")
    approve_with_feed_event(db, cert.id, as_of=AS_OF)
    out = tmp_path / "feed"
    out.mkdir()
    feed.add_feed_folder(db, company_id, "erp-folder", out)
    report = feed.deliver(db)
    assert report.delivered == {"folder erp-folder": 2}
    names = sorted(p.name for p in out.iterdir())
    assert names == ["exemption-status-0000000001-0000000002.csv", "exemption-status-0000000001-0000000002.json"]
    data = json.loads((out / names[1]).read_text())
    assert [d["state"] for d in data] == ["KY", "OH"] and data[0]["certificate_number"] == "SST-9"
    csv_lines = (out / names[0]).read_text().splitlines()
    assert csv_lines[0].startswith("event_id,idempotency_key") and len(csv_lines) == 3
    assert feed.deliver(db).delivered == {"folder erp-folder": 0}
    assert not any(p.name.startswith(".tmp-") for p in out.iterdir())
    with db.reader() as s:
        assert s.execute(select(ExemptionStatusEvent.id)).scalars().all() == [1, 2]
