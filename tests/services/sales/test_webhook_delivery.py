"""ERP webhook delivery against a real HTTP server on 127.0.0.1: only a 2xx answer delivers an event; a
redirect is never followed (urllib would re-send the POST as a body-less GET) and, like any other 4xx,
stops the endpoint at that event for good, listed until the user retries or skips it; connection
errors, time-outs, 408, 429 and 5xx are retried with jitter and Retry-After on an injected clock."""

from __future__ import annotations

import datetime as dt
import email.utils
import io
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from ecms_desktop.cli import main
from ecms_desktop.models.transactions import DeliveryAttempt, WebhookEndpoint
from ecms_desktop.services.sales import exemption_feed as feed
from tests.factories import WEBHOOK_SECRET, approve_with_feed_event, make_signed_certificate
from tests.helpers.erp_server import ErpHandler, ErpServer

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
AS_OF = NOW.date()


@pytest.fixture
def erp() -> Iterator[tuple[type[ErpHandler], str]]:
    handler = type("Erp", (ErpHandler,), {"plan": [], "posts": [], "gets": []})
    server = ErpServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def _one_event(db, company_id, url: str) -> int:  # type: ignore[no-untyped-def]
    cert = make_signed_certificate(db, company_id, as_of=AS_OF, states=("TX",), certificate_number="TX-1")
    [event] = approve_with_feed_event(db, cert.id, as_of=AS_OF)
    feed.add_webhook(db, company_id, "erp", url)
    return event


def _hook(db) -> WebhookEndpoint:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        hook = s.execute(select(WebhookEndpoint)).scalar_one()
        s.expunge(hook)
        return hook


def _attempts(db) -> list[tuple[bool, int | None, bool]]:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return [tuple(r) for r in s.execute(select(DeliveryAttempt.ok, DeliveryAttempt.http_status,
                                                   DeliveryAttempt.permanent).order_by(DeliveryAttempt.id))]


def _deliver(db, **kw: Any) -> feed.DeliveryReport:  # type: ignore[no-untyped-def]
    waits: list[float] = kw.pop("waits", [])
    return feed.deliver(db, secret=lambda hook: WEBHOOK_SECRET, backoff=1.0, sleep=waits.append, clock=lambda: NOW,
                        rand=lambda: 0.5, timeout=5, **kw)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed_and_the_event_is_not_counted_delivered(db, company_id, erp, status):
    handler, url = erp
    event = _one_event(db, company_id, url)
    handler.plan = [(status, {"Location": "/moved-here"}, 0.0)]
    report = feed.deliver(db, secret=lambda hook: WEBHOOK_SECRET, backoff=0, sleep=lambda _s: None)
    assert report.delivered.get("webhook erp", 0) == 0
    failure = report.failed["webhook erp"]
    assert f"HTTP {status}" in failure and "/moved-here" in failure and f"event {event}" in failure
    assert len(handler.posts) == 1 and handler.gets == []  # one POST, no body-less GET after it
    assert _hook(db).delivered_through == 0
    assert _attempts(db) == [(False, status, True)]


@pytest.mark.parametrize("status", [400, 404, 410, 422])
def test_a_4xx_is_a_permanent_failure_not_retried_and_listed(db, company_id, erp, status):
    handler, url = erp
    event = _one_event(db, company_id, url)
    handler.plan = [(status, {}, 0.0)]
    waits: list[float] = []
    report = _deliver(db, waits=waits)
    assert f"HTTP {status}" in report.failed["webhook erp"] and "not retried" in report.failed["webhook erp"]
    assert len(handler.posts) == 1 and waits == []
    hook = _hook(db)
    assert (hook.held_event_id, hook.held_status, hook.delivered_through) == (event, status, 0)
    # the next runs do not try it again ...
    again = _deliver(db)
    assert len(handler.posts) == 1 and f"stopped at event {event}" in again.failed["webhook erp"]
    # ... and it is listed with whose status it was
    [problem] = feed.feed_problems(db, company_id)
    assert (problem.name, problem.permanent, problem.event_id, problem.http_status) == ("erp", True, event, status)
    assert (problem.customer_number, problem.state) == ("C-1", "TX")


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_transient_answers_are_retried_with_jitter_then_delivered(db, company_id, erp, status):
    handler, url = erp
    _one_event(db, company_id, url)
    handler.plan = [(status, {}, 0.0), (status, {}, 0.0)]
    waits: list[float] = []
    report = _deliver(db, waits=waits)
    assert report.delivered == {"webhook erp": 1} and not report.failed
    assert waits == [0.75, 1.5]  # base 1 s doubling, equal jitter with rand() = 0.5: d/2 + 0.5 * d/2
    assert _attempts(db) == [(False, status, False), (False, status, False), (True, 200, False)]
    assert len(set(handler.posts)) == 1  # the same event, byte for byte, on every try


@pytest.mark.parametrize("header", ["7", email.utils.format_datetime(NOW + dt.timedelta(seconds=7), usegmt=True)])
def test_retry_after_in_seconds_or_as_an_http_date_is_honoured(db, company_id, erp, header):
    handler, url = erp
    _one_event(db, company_id, url)
    handler.plan = [(429, {"Retry-After": header}, 0.0), (503, {"Retry-After": header}, 0.0)]
    waits: list[float] = []
    report = _deliver(db, waits=waits)
    assert report.delivered == {"webhook erp": 1}
    assert waits == [7.0, 7.0]  # longer than the back-off (0.75 s, 1.5 s): the server's word counts


def test_a_long_retry_after_ends_the_run_and_waits_across_runs(db, company_id, erp):
    handler, url = erp
    _one_event(db, company_id, url)
    handler.plan = [(503, {"Retry-After": "3600"}, 0.0)]
    waits: list[float] = []
    report = _deliver(db, waits=waits)
    assert waits == [] and len(handler.posts) == 1  # no hour-long sleep in the run
    assert "trying again after 2026-06-01 13:00:00 UTC" in report.failed["webhook erp"]
    assert _hook(db).next_attempt_at == NOW + dt.timedelta(seconds=3600)
    assert "waiting after failures" in _deliver(db).failed["webhook erp"]
    later = feed.deliver(db, secret=lambda hook: WEBHOOK_SECRET, sleep=waits.append, rand=lambda: 0.5,
                         clock=lambda: NOW + dt.timedelta(hours=2))
    assert later.delivered == {"webhook erp": 1}


def test_connection_refused_is_transient_and_kept_for_the_next_run(db, company_id):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _one_event(db, company_id, f"http://127.0.0.1:{port}/hook")
    waits: list[float] = []
    report = _deliver(db, waits=waits, max_attempts=3)
    assert "cannot reach" in report.failed["webhook erp"] and "after 3 tries" in report.failed["webhook erp"]
    assert waits == [0.75, 1.5]
    hook = _hook(db)
    assert hook.held_event_id is None and hook.next_attempt_at == NOW + dt.timedelta(seconds=60)
    assert [p.permanent for p in feed.feed_problems(db, company_id)] == [False]


def test_a_timeout_is_transient(db, company_id, erp):
    handler, url = erp
    _one_event(db, company_id, url)
    handler.plan = [(200, {}, 2.0)]  # answers after the client gave up
    report = feed.deliver(db, secret=lambda hook: WEBHOOK_SECRET, sleep=lambda _s: None, clock=lambda: NOW,
                          rand=lambda: 0.5, timeout=0.3, max_attempts=2)
    assert report.delivered == {"webhook erp": 1}
    assert _attempts(db) == [(False, None, False), (True, 200, False)]  # the timed-out try was not a delivery
    with db.reader() as s:
        first = s.execute(select(DeliveryAttempt.error).order_by(DeliveryAttempt.id)).scalars().first()
    assert "timed out" in first


def test_the_retry_schedule_is_computable() -> None:
    policy = feed.RetryPolicy(base=1.0, cap=30.0)
    assert [policy.backoff(n, lambda: 0.0) for n in (1, 2, 3, 6, 9)] == [0.5, 1.0, 2.0, 15.0, 15.0]
    assert [policy.backoff(n, lambda: 1.0) for n in (1, 2, 3, 6, 9)] == [1.0, 2.0, 4.0, 30.0, 30.0]
    assert feed.RetryPolicy(base=0).backoff(3, lambda: 1.0) == 0.0
    assert feed.retry_after_seconds("120", NOW) == 120.0
    assert feed.retry_after_seconds("Mon, 01 Jun 2026 12:00:30 GMT", NOW) == 30.0
    assert feed.retry_after_seconds("Mon, 01 Jun 2026 11:00:00 GMT", NOW) == 0.0  # in the past
    assert feed.retry_after_seconds("soon", NOW) is None and feed.retry_after_seconds(None, NOW) is None


def test_retry_after_correcting_the_url_and_skip_with_a_reason(db, company_id, erp):
    handler, url = erp
    first = _one_event(db, company_id, url.replace("/hook", "/old"))
    cert = make_signed_certificate(db, company_id, as_of=AS_OF, customer="C-2", states=("TX",))
    [second] = approve_with_feed_event(db, cert.id, as_of=AS_OF)
    handler.plan = [(301, {"Location": url}, 0.0)]
    assert "stopped at event" in _deliver(db).failed["webhook erp"]
    assert feed.release_webhook(db, company_id, "erp", url=url) == first
    assert _deliver(db).delivered == {"webhook erp": 2}
    assert _hook(db).delivered_through == second and _hook(db).url == url
    cert3 = make_signed_certificate(db, company_id, as_of=AS_OF, customer="C-3", states=("TX",))
    [third] = approve_with_feed_event(db, cert3.id, as_of=AS_OF)
    handler.plan = [(422, {}, 0.0)]
    _deliver(db)
    from ecms_desktop.services.core.errors import ValidationError

    with pytest.raises(ValidationError, match="Say why"):
        feed.skip_held_event(db, company_id, "erp", reason=" ")
    assert feed.skip_held_event(db, company_id, "erp", reason="ERP has no such customer") == third
    assert _hook(db).delivered_through == third and feed.feed_problems(db, company_id) == []


def test_ecms_exemptions_deliver_failed_retry_show_it_to_the_user(db, company_id, erp, capsys, monkeypatch):
    handler, url = erp
    event = _one_event(db, company_id, url)
    monkeypatch.setenv("ECMS_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    handler.plan = [(302, {"Location": "https://erp.example/new-hook"}, 0.0)]
    assert main(["--db", db.url, "exemptions", "deliver", "--as-of", "2026-06-01"]) == 1
    out, err = capsys.readouterr()
    assert "webhook erp: FAILED" in err and "https://erp.example/new-hook" in err and "Traceback" not in err
    assert "delivered 0 events" in out
    assert main(["--db", db.url, "exemptions", "failed"]) == 0
    out, _ = capsys.readouterr()
    assert f"webhook erp: stopped, not retried at event {event} (customer C-1, TX, HTTP 302)" in out
    assert "https://erp.example/new-hook" in out
    assert main(["--db", db.url, "exemptions", "deliver", "--as-of", "2026-06-01"]) == 1
    capsys.readouterr()
    assert len(handler.posts) == 1  # not retried by the next run
    assert main(["--db", db.url, "exemptions", "retry", "erp", "--url", url]) == 0
    assert main(["--db", db.url, "exemptions", "deliver", "--as-of", "2026-06-01"]) == 0
    out, _ = capsys.readouterr()
    assert "webhook erp: delivered 1 events" in out
