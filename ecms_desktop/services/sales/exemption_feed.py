"""Exemption status for the ERP: an outbox of status changes and the connectors that deliver it.

Every change of a customer's exempt status in a state - approval, expiry, suspension, archive,
revocation - is written as an :class:`ExemptionStatusEvent` **in the same transaction** as the change
(:func:`record_status_change`, :func:`record_review_change`; expiries and suspensions found by date
through :func:`emit_expiries`). Connectors then deliver the events in order, at least once:

* **HTTP webhook**: one JSON event per ``POST``; headers ``Idempotency-Key`` (the event's key, the
  same on every retry), ``X-ECMS-Event-Id``, ``X-ECMS-Timestamp`` and ``X-ECMS-Signature:
  sha256=<hex>``, the HMAC-SHA256 of ``"<timestamp>.<body>"`` with the endpoint's secret (kept in
  the OS keyring). Only a 2xx answer delivers an event. A redirect is never followed (it would turn
  the POST into a body-less GET): it is a failure that names the new location. Transient failures
  (no connection, a time-out, 408, 429, 5xx) are retried with exponential back-off and jitter, or
  after the server's ``Retry-After``; after the last try the endpoint waits (back-off across runs)
  and the next run starts again from the first undelivered event. Any other answer (a redirect, a
  4xx) is permanent: the endpoint stops at that event - events go out in order - and is listed by
  :func:`feed_problems` until the user retries it (:func:`release_webhook`, after correcting the
  URL or the ERP) or skips the event (:func:`skip_held_event`, audited).
* **Feed folder**: the events of a run as ``exemption-status-<first>-<last>.csv`` and ``.json``,
  each written to a temporary file in the folder and moved into place with ``os.replace``, so the
  ERP never reads a half-written file (a repeated run rewrites the same names with the same content).

:func:`customer_status` answers "is this customer exempt in this state on this date (for this
product)?" with the same engine that decides sales.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import hashlib
import hmac
import http.client
import io
import json
import logging
import os
import random
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecms_desktop.models import Certificate, CoverageLine, Customer, ReviewState, utcnow
from ecms_desktop.models.transactions import DeliveryAttempt, ExemptionStatusEvent, FeedFolder, WebhookEndpoint
from ecms_desktop.services.core import audit, people
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import NotFoundError, ValidationError
from ecms_desktop.services.core.people import Permission
from ecms_desktop.services.customers.service import find_customer
from ecms_desktop.services.exports.safe_export import CsvWriter
from ecms_desktop.services.sales.candidates import load_candidates
from ecms_desktop.services.sales.determination import SaleLine, default_refusals, determine
from ecms_desktop.services.sales.sales_history import LapseFinder, load_sales_histories

log = logging.getLogger(__name__)

EXEMPT = "exempt"
NOT_EXEMPT = "not_exempt"
REASONS = ("approval", "expiry", "suspension", "archive", "revocation", "reinstatement", "amendment", "lapse")
KEYRING_SERVICE = "ecms-desktop-webhook"
CSV_COLUMNS = ("event_id", "idempotency_key", "customer_number", "state", "certificate_id", "certificate_number",
               "reason", "old_status", "new_status", "customer_exempt", "effective_date", "created_at")


# -- recording ----------------------------------------------------------------------------------------


def _line_exempt(review_state: str, line: CoverageLine, on: dt.date, effective: dt.date | None, form_code: str,
                 reason: str) -> bool:
    """Whether one coverage line makes the customer exempt on ``on``: what the determination engine
    decides for a sale of that day (approved, the state accepts the form for the reason, in force)."""
    if review_state != ReviewState.APPROVED:
        return False
    if default_refusals()(line.state, form_code, reason):
        return False
    if effective is not None and on < effective:
        return False
    if line.expiry_date is not None and on > line.expiry_date:
        return False
    return not (line.suspended_at is not None and on >= line.suspended_at.date())


def customer_exempt_in(session: Session, customer_id: int, state: str, on: dt.date) -> bool:
    """Whether any approved certificate line of the customer makes it exempt in ``state`` on ``on``."""
    session.flush()
    rows = session.execute(
        select(Certificate.review_state, Certificate.effective_date, Certificate.signed_date, Certificate.form_code,
               Certificate.exempt_reason, CoverageLine)
        .join(CoverageLine, CoverageLine.certificate_id == Certificate.id)
        .where(Certificate.customer_id == customer_id, CoverageLine.state == state,
               Certificate.review_state == ReviewState.APPROVED.value)).all()
    return any(_line_exempt(r.review_state, r.CoverageLine, on, r.effective_date or r.signed_date, r.form_code,
                            r.exempt_reason) for r in rows)


def record_status_change(session: Session, certificate: Certificate, state: str, old: str, new: str,
                         reason: str, *, effective: dt.date | None = None) -> ExemptionStatusEvent:
    """Write one outbox event in the caller's transaction: the certificate's exempt status in ``state``
    went from ``old`` to ``new`` (``exempt`` / ``not_exempt``) because of ``reason`` (approval, expiry,
    suspension, archive, revocation, reinstatement). ``effective`` defaults to today."""
    if reason not in REASONS:
        raise ValueError(f"unknown status-change reason {reason!r}")
    on = effective or dt.date.today()
    customer = session.get(Customer, certificate.customer_id)
    if customer is None:  # pragma: no cover - a certificate always has its customer
        raise NotFoundError(f"Certificate {certificate.id} has no customer.")
    still = customer_exempt_in(session, customer.id, state, on)
    key = uuid.uuid4().hex
    now = utcnow()
    event = ExemptionStatusEvent(
        idempotency_key=key, company_id=certificate.company_id, customer_id=customer.id,
        customer_number=customer.number, state=state, certificate_id=certificate.id,
        certificate_number=certificate.certificate_number or "", reason=reason, old_status=old, new_status=new,
        customer_exempt=still, effective_date=on, created_at=now, payload={})
    session.add(event)
    session.flush()
    event.payload = event_payload(event)
    return event


def event_payload(event: ExemptionStatusEvent) -> dict[str, Any]:
    """The JSON the ERP receives for one event."""
    return {
        "type": "exemption_status.changed", "event_id": event.id, "idempotency_key": event.idempotency_key,
        "company_id": event.company_id, "customer_number": event.customer_number, "state": event.state,
        "certificate_id": event.certificate_id, "certificate_number": event.certificate_number,
        "reason": event.reason, "old_status": event.old_status, "new_status": event.new_status,
        "customer_exempt": event.customer_exempt, "effective_date": event.effective_date.isoformat(),
        "created_at": audit.jsonable(event.created_at),
    }


def record_review_change(session: Session, certificate: Certificate, old_review_state: str,
                         new_review_state: str, *, as_of: dt.date | None = None) -> list[ExemptionStatusEvent]:
    """Outbox events for a review decision (approve, reject, archive, unarchive): one per coverage
    line whose exempt status actually changes on ``as_of``. Call it in the same transaction, after
    the certificate's review state was changed."""
    on = as_of or dt.date.today()
    start = certificate.effective_date or certificate.signed_date
    if new_review_state == ReviewState.APPROVED:
        reason = "reinstatement" if old_review_state == ReviewState.ARCHIVED else "approval"
    elif new_review_state == ReviewState.ARCHIVED:
        reason = "archive"
    else:
        reason = "revocation"
    events = []
    form, exempt_reason = certificate.form_code, certificate.exempt_reason
    for line in certificate.lines:
        before = _line_exempt(old_review_state, line, on, start, form, exempt_reason)
        after = _line_exempt(new_review_state, line, on, start, form, exempt_reason)
        if before != after:
            events.append(record_status_change(session, certificate, line.state, EXEMPT if before else NOT_EXEMPT,
                                               EXEMPT if after else NOT_EXEMPT, reason, effective=on))
    return events


def exempt_by_state(certificate: Certificate, on: dt.date) -> dict[str, bool]:
    """Whether each of the certificate's lines makes the customer exempt on ``on``."""
    start = certificate.effective_date or certificate.signed_date
    return {line.state: _line_exempt(certificate.review_state, line, on, start, certificate.form_code,
                                     certificate.exempt_reason) for line in certificate.lines}


def record_amendment(session: Session, certificate: Certificate, before: dict[str, bool], *,
                     as_of: dt.date) -> list[ExemptionStatusEvent]:
    """Outbox events for an edit of a certificate (states added or removed, dates changed): one per
    state whose exempt status on ``as_of`` differs from ``before`` (see :func:`exempt_by_state`)."""
    after = exempt_by_state(certificate, as_of)
    events = []
    for state in sorted(set(before) | set(after)):
        old, new = before.get(state, False), after.get(state, False)
        if old != new:
            events.append(record_status_change(session, certificate, state, EXEMPT if old else NOT_EXEMPT,
                                               EXEMPT if new else NOT_EXEMPT, "amendment", effective=as_of))
    return events


def emit_expiries(db: Database, as_of: dt.date, *, company_id: int | None = None) -> int:
    """Record the expiries and suspensions found by date that have no event yet (a daily sweep; run
    it again and nothing is recorded twice). Returns how many events were recorded."""
    count = 0
    with db.transaction() as s:
        done = {(c, st, r) for c, st, r in s.execute(
            select(ExemptionStatusEvent.certificate_id, ExemptionStatusEvent.state, ExemptionStatusEvent.reason)
            .where(ExemptionStatusEvent.reason.in_(("expiry", "suspension"))))}
        stmt = (select(Certificate, CoverageLine).join(CoverageLine, CoverageLine.certificate_id == Certificate.id)
                .where(Certificate.review_state == ReviewState.APPROVED.value)
                .where((CoverageLine.expiry_date < as_of) | CoverageLine.suspended_at.is_not(None))
                .order_by(Certificate.id, CoverageLine.state))
        if company_id is not None:
            stmt = stmt.where(Certificate.company_id == company_id)
        refusals = default_refusals()
        for cert, line in s.execute(stmt).all():
            if refusals(line.state, cert.form_code, cert.exempt_reason):
                continue  # never made the customer exempt there: nothing to withdraw
            expired = line.expiry_date is not None and line.expiry_date < as_of
            if expired and line.expiry_date is not None and (cert.id, line.state, "expiry") not in done:
                record_status_change(s, cert, line.state, EXEMPT, NOT_EXEMPT, "expiry",
                                     effective=line.expiry_date + dt.timedelta(days=1))
                done.add((cert.id, line.state, "expiry"))
                count += 1
            suspended = line.suspended_at
            if (suspended is not None and suspended.date() <= as_of
                    and (cert.id, line.state, "suspension") not in done
                    and (cert.id, line.state, "expiry") not in done):
                record_status_change(s, cert, line.state, EXEMPT, NOT_EXEMPT, "suspension",
                                     effective=suspended.date())
                done.add((cert.id, line.state, "suspension"))
                count += 1
        count += _emit_lapses(s, as_of, company_id)
        if count:
            audit.record(s, "exemption_feed.sweep", "exemption_status_event", "sweep", company_id=company_id,
                         details={"as_of": as_of.isoformat(), "events": count})
    return count


def _emit_lapses(s: Session, as_of: dt.date, company_id: int | None) -> int:
    """Events ``lapse`` for the approved lines without expiry whose SST recurring relationship has lapsed by
    ``as_of`` (no purchase for more than 12 months: see
    :mod:`~ecms_desktop.services.sales.recurring`), effective the day of the lapse, once per line; whether
    the customer is still exempt in the state is the engine's answer for a sale on that day."""
    rules = default_refusals().rules
    ruled = {code for code, st in rules.states.items() if st.sst.recurring_relationship is not None}
    done = {(c, st) for c, st in s.execute(
        select(ExemptionStatusEvent.certificate_id, ExemptionStatusEvent.state)
        .where(ExemptionStatusEvent.reason == "lapse"))}
    stmt = (select(Certificate, CoverageLine.state, Customer.number_key)
            .join(CoverageLine, CoverageLine.certificate_id == Certificate.id)
            .join(Customer, Customer.id == Certificate.customer_id)
            .where(Certificate.review_state == ReviewState.APPROVED.value, CoverageLine.expiry_date.is_(None),
                   CoverageLine.suspended_at.is_(None), CoverageLine.state.in_(ruled))
            .order_by(Certificate.id, CoverageLine.state))
    if company_id is not None:
        stmt = stmt.where(Certificate.company_id == company_id)
    find = LapseFinder(s, rules, as_of)
    count = 0
    for cert, state, key in s.execute(stmt).all():
        if (cert.id, state) in done or default_refusals()(state, cert.form_code, cert.exempt_reason):
            continue
        lapse = find(cert.company_id, key, cert.form_code, cert.certificate_type,
                     cert.effective_date or cert.signed_date, (state,)).get(state)
        if lapse is None:
            continue
        index = load_candidates(s, cert.company_id, key)
        probe = SaleLine("", 0, lapse.on, key, state, Decimal(100), product_code=None, commodity_code=None,
                         currency=None, po_number=None, sales=find.history(cert.company_id, key))
        still = determine(probe, index.get((key, state), ()), policy_binds=True).exempt
        event = record_status_change(s, cert, state, EXEMPT, NOT_EXEMPT, "lapse", effective=lapse.on)
        event.customer_exempt = still
        event.payload = event_payload(event)
        done.add((cert.id, state))
        count += 1
    return count


def list_events(db: Database, *, company_id: int | None = None, after_id: int = 0,
                limit: int | None = None) -> list[dict[str, Any]]:
    """Outbox events (their JSON payloads) in delivery order."""
    with db.reader() as s:
        stmt = select(ExemptionStatusEvent).where(ExemptionStatusEvent.id > after_id).order_by(ExemptionStatusEvent.id)
        if company_id is not None:
            stmt = stmt.where(ExemptionStatusEvent.company_id == company_id)
        if limit:
            stmt = stmt.limit(limit)
        return [dict(e.payload) for e in s.execute(stmt).scalars()]


# -- status question ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StateStatus:
    """Whether a customer is exempt in one state on a date, and on what evidence."""

    state: str
    exempt: bool
    certificate_id: int | None
    certificate_number: str | None
    certificate_version: int | None
    expiry_date: dt.date | None
    exempt_percent: Decimal | None
    exempt_amount: Decimal | None
    limits: tuple[str, ...]
    also_eligible: tuple[int, ...]
    explanation: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return audit.jsonable(self.__dict__)


def customer_status(db: Database, company_id: int, customer: str, *, as_of: dt.date, state: str | None = None,
                    product: str | None = None) -> list[StateStatus]:
    """Is the customer exempt here on this date (for this product)? One answer per state it has a
    certificate for, or for the one state asked."""
    with db.reader() as s:
        key = find_customer(s, company_id, customer).number_key
        index = load_candidates(s, company_id, key)
        sales = load_sales_histories(s, company_id, key)[key]
    states = [state.upper()] if state else sorted({st for _, st in index})
    out = []
    for st in states:
        probe = SaleLine("", 0, as_of, key, st, Decimal(100), product_code=product,
                         commodity_code=None, currency=None, po_number=None, sales=sales)
        # A new sale: our renewal policy's expiry ends exempt status here, as the renewal loop wants.
        result = determine(probe, index.get((key, st), ()), policy_binds=True)
        cert = result.certificate
        out.append(StateStatus(st, result.exempt, cert.certificate_id if cert else None,
                               (cert.certificate_number or None) if cert else None, cert.version if cert else None,
                               result.coverage.expiry_date if result.coverage and cert else None,
                               cert.exempt_percent if cert else None, cert.exempt_amount if cert else None,
                               result.notes, result.also_eligible, result.explanation()))
    return out


# -- connectors -----------------------------------------------------------------------------------------


def add_webhook(db: Database, company_id: int, name: str, url: str, *, secret_ref: str = "") -> int:
    """Register an ERP webhook (the secret goes into the keyring under ``secret_ref``, default the name)."""
    if not (url.startswith("http://") or url.startswith("https://")):
        raise ValidationError(f"{url!r} is not an http(s) URL.")
    with db.transaction() as s:
        people.require(s, Permission.ADMINISTER, "add a webhook for the ERP")
        hook = WebhookEndpoint(company_id=company_id, name=name.strip(), url=url.strip(),
                               secret_ref=secret_ref or f"company-{company_id}:{name.strip()}")
        s.add(hook)
        s.flush()
        audit.record(s, "exemption_feed.webhook_added", "webhook_endpoint", hook.id, company_id=company_id,
                     after={"name": hook.name, "url": hook.url, "secret_ref": hook.secret_ref})
        return hook.id


def add_feed_folder(db: Database, company_id: int, name: str, path: Path, *, formats: str = "csv,json") -> int:
    """Register a folder the ERP reads exemption-status files from."""
    wanted = {f.strip() for f in formats.split(",") if f.strip()}
    if not wanted or not wanted <= {"csv", "json"}:
        raise ValidationError("Feed formats are csv, json or both (csv,json).")
    if not path.is_dir():
        raise ValidationError(f"The feed folder {path} does not exist.")
    with db.transaction() as s:
        people.require(s, Permission.ADMINISTER, "add a feed folder for the ERP")
        folder = FeedFolder(company_id=company_id, name=name.strip(), path=str(path.resolve()),
                            formats=",".join(sorted(wanted)))
        s.add(folder)
        s.flush()
        audit.record(s, "exemption_feed.folder_added", "feed_folder", folder.id, company_id=company_id,
                     after={"name": folder.name, "path": folder.path, "formats": folder.formats})
        return folder.id


def keyring_secret(hook: WebhookEndpoint) -> str | None:
    """The endpoint's HMAC secret from the OS keyring (``ECMS_WEBHOOK_SECRET`` when there is none)."""
    try:
        import keyring

        value = keyring.get_password(KEYRING_SERVICE, hook.secret_ref)
    except Exception:
        value = None
    return value or os.environ.get("ECMS_WEBHOOK_SECRET")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``"<timestamp>.<body>"``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass
class DeliveryReport:
    """What one delivery run did, per connector."""

    delivered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


#: HTTP answers worth trying again: the request timed out, too many requests, and server errors.
TRANSIENT_STATUSES: frozenset[int] = frozenset({408, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How a webhook delivery is retried within one run.

    The wait before try ``n + 1`` is drawn from ``[d/2, d]`` with ``d = min(cap, base * 2**(n-1))``
    ("equal jitter": many desks retrying at once do not hit the ERP in step), or the server's
    ``Retry-After`` when that is longer. A wait longer than ``max_wait`` ends the run for the
    endpoint instead of sleeping: it waits across runs (``next_attempt_at``)."""

    max_attempts: int = 5
    base: float = 1.0
    cap: float = 30.0
    max_wait: float = 60.0

    def backoff(self, attempt: int, rand: Callable[[], float]) -> float:
        """Seconds to wait after failed try number ``attempt`` (1-based), with jitter."""
        if self.base <= 0:
            return 0.0
        full = min(self.cap, self.base * 2 ** (attempt - 1))
        return full / 2 + rand() * full / 2


def retry_after_seconds(value: str | None, now: dt.datetime) -> float | None:
    """The ``Retry-After`` header as seconds from ``now``: delta-seconds or an HTTP-date (RFC 9110);
    None when absent or unreadable, 0 for a date in the past."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True)
class _Answer:
    """How one POST went."""

    ok: bool
    transient: bool
    status: int | None
    error: str
    retry_after: float | None = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Never follow a redirect: urllib would re-send a 301/302/303 as a GET without the event."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _post(url: str, body: bytes, headers: dict[str, str], timeout: float, now: dt.datetime) -> _Answer:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = int(exc.code)
        reason = f"HTTP {status} {exc.reason}".strip()
        if 300 <= status < 400:
            where = exc.headers.get("Location") if exc.headers is not None else None
            to = f" to {where}" if where else " (no new location given)"
            return _Answer(False, False, status, f"{reason}: the endpoint redirects{to}; a delivery never follows "
                           "a redirect (the event would be lost): correct the webhook's URL")
        if status in TRANSIENT_STATUSES or status >= 500:
            after = retry_after_seconds(exc.headers.get("Retry-After") if exc.headers is not None else None, now)
            return _Answer(False, True, status, reason, after)
        return _Answer(False, False, status, f"{reason}: the ERP refused the event")
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        why = getattr(exc, "reason", exc) or type(exc).__name__
        return _Answer(False, True, None, f"cannot reach {url}: {why}")
    if 200 <= status < 300:
        return _Answer(True, False, status, "")
    # 1xx as a final answer or 3xx that urllib did not raise: never a delivery.
    return _Answer(False, False, status, f"HTTP {status}: not a success answer")


def _attempt(db: Database, kind: str, connector_id: int, first: int, last: int, n: int, ok: bool,
             status: int | None = None, error: str = "", files: list[str] | None = None,
             permanent: bool = False) -> None:
    with db.transaction() as s:
        s.add(DeliveryAttempt(connector_kind=kind, connector_id=connector_id, first_event_id=first,
                              last_event_id=last, attempt=n, ok=ok, http_status=status, error=error[:2000],
                              files=files or [], permanent=permanent))


def deliver(db: Database, *, company_id: int | None = None,
            secret: Callable[[WebhookEndpoint], str | None] = keyring_secret, max_attempts: int = 5,
            backoff: float = 1.0, timeout: float = 10.0, batch: int = 500,
            sleep: Callable[[float], None] = time.sleep, clock: Callable[[], dt.datetime] = utcnow,
            rand: Callable[[], float] = random.random) -> DeliveryReport:
    """Deliver undelivered events through every enabled connector, in event order, at least once.
    ``clock`` (aware UTC), ``rand`` (0..1) and ``sleep`` make the retry schedule reproducible."""
    report = DeliveryReport()
    policy = RetryPolicy(max_attempts=max(1, max_attempts), base=backoff)
    with db.reader() as s:
        stmt_h = select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True)).order_by(WebhookEndpoint.id)
        stmt_f = select(FeedFolder).where(FeedFolder.enabled.is_(True)).order_by(FeedFolder.id)
        if company_id is not None:
            stmt_h = stmt_h.where(WebhookEndpoint.company_id == company_id)
            stmt_f = stmt_f.where(FeedFolder.company_id == company_id)
        hooks = s.execute(stmt_h).scalars().all()
        folders = s.execute(stmt_f).scalars().all()
        s.expunge_all()  # plain snapshots: the reader's rollback must not expire them
    for hook in hooks:
        _deliver_webhook(db, hook, secret, policy, timeout, batch, sleep, clock, rand, report)
    for folder in folders:
        _deliver_folder(db, folder, batch, report)
    return report


def _pending(db: Database, company_id: int, after: int, batch: int) -> list[ExemptionStatusEvent]:
    with db.reader() as s:
        events = list(s.execute(select(ExemptionStatusEvent).where(
            ExemptionStatusEvent.company_id == company_id, ExemptionStatusEvent.id > after)
            .order_by(ExemptionStatusEvent.id).limit(batch)).scalars())
        s.expunge_all()
        return events


def held_message(hook: WebhookEndpoint) -> str:
    """What the user reads about an endpoint stopped at a permanently refused event."""
    since = f" since {hook.held_at:%Y-%m-%d %H:%M} UTC" if hook.held_at else ""
    return (f"stopped at event {hook.held_event_id}{since}: {hook.last_error}. It is not retried: correct the "
            f"endpoint, then `ecms exemptions retry {hook.name}` (--url for a new address), or skip the event "
            f"with `ecms exemptions skip {hook.name} --reason ...`")


def _deliver_webhook(db: Database, hook: WebhookEndpoint, secret: Callable[[WebhookEndpoint], str | None],
                     policy: RetryPolicy, timeout: float, batch: int, sleep: Callable[[float], None],
                     clock: Callable[[], dt.datetime], rand: Callable[[], float], report: DeliveryReport) -> None:
    label = f"webhook {hook.name}"
    if hook.held_event_id is not None:
        report.failed[label] = held_message(hook)
        report.delivered[label] = 0
        return
    if hook.next_attempt_at is not None and hook.next_attempt_at > clock():
        report.failed[label] = f"waiting after failures until {hook.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC"
        return
    key = secret(hook)
    if not key:
        report.failed[label] = (f"no HMAC secret for {hook.secret_ref!r} in the keyring "
                                "(store it, or set ECMS_WEBHOOK_SECRET)")
        return
    delivered = 0
    after = hook.delivered_through
    while True:
        events = _pending(db, hook.company_id, after, batch)
        if not events:
            break
        for event in events:
            body = json.dumps(event.payload, sort_keys=True, separators=(",", ":")).encode()
            answer = _Answer(False, True, None, "not tried")
            wait_across_runs: float | None = None
            n = 0
            for n in range(1, policy.max_attempts + 1):
                stamp = str(int(clock().timestamp()))
                answer = _post(hook.url, body, {
                    "Content-Type": "application/json", "Idempotency-Key": event.idempotency_key,
                    "X-ECMS-Event-Id": str(event.id), "X-ECMS-Timestamp": stamp,
                    "X-ECMS-Signature": sign(key, stamp, body), "User-Agent": "ecms-desktop"}, timeout, clock())
                _attempt(db, "webhook", hook.id, event.id, event.id, n, answer.ok, answer.status, answer.error,
                         permanent=not answer.ok and not answer.transient)
                if answer.ok or not answer.transient:
                    break
                wait = max(policy.backoff(n, rand), answer.retry_after or 0.0)
                if wait > policy.max_wait:
                    wait_across_runs = wait  # the server asked for a long pause: end this run
                    break
                if n < policy.max_attempts:
                    sleep(wait)
            if not answer.ok:
                _webhook_failed(db, hook, event, answer, n, wait_across_runs, clock, label, report)
                report.delivered[label] = delivered
                return
            with db.transaction() as s:
                row = s.get(WebhookEndpoint, hook.id)
                assert row is not None
                row.delivered_through = event.id
                row.consecutive_failures = 0
                row.next_attempt_at = None
                row.last_error = ""
            after = event.id
            delivered += 1
    report.delivered[label] = delivered


def _webhook_failed(db: Database, hook: WebhookEndpoint, event: ExemptionStatusEvent, answer: _Answer, tries: int,
                    wait_across_runs: float | None, clock: Callable[[], dt.datetime], label: str,
                    report: DeliveryReport) -> None:
    now = clock()
    with db.transaction() as s:
        row = s.get(WebhookEndpoint, hook.id)
        assert row is not None
        row.last_error = answer.error[:2000]
        if not answer.transient:
            # Refused for good: stop at this event (events go out in order) until the user acts.
            row.held_event_id, row.held_at, row.held_status = event.id, now, answer.status
            audit.record(s, "exemption_feed.delivery_refused", "webhook_endpoint", row.id, company_id=row.company_id,
                         details={"event_id": event.id, "http_status": answer.status, "error": answer.error})
            report.failed[label] = held_message(row)
            return
        row.consecutive_failures += 1
        wait = min(3600.0, 60.0 * 2 ** (row.consecutive_failures - 1))
        wait = max(wait, wait_across_runs or 0.0, answer.retry_after or 0.0)
        row.next_attempt_at = now + dt.timedelta(seconds=wait)
        tried = f"after {tries} {'try' if tries == 1 else 'tries'}"
        report.failed[label] = (f"event {event.id}: {answer.error} {tried}; trying again after "
                                f"{row.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC")


@dataclass(frozen=True)
class FeedProblem:
    """A connector that needs the user: stopped at an event refused for good, or failing for now."""

    connector: str
    name: str
    permanent: bool
    message: str
    event_id: int | None = None
    customer_number: str = ""
    state: str = ""
    http_status: int | None = None
    since: dt.datetime | None = None


def feed_problems(db: Database, company_id: int | None = None) -> list[FeedProblem]:
    """Every enabled connector whose deliveries fail: webhooks stopped at a refused event (with the
    event's customer and state), webhooks waiting after transient failures, folders that cannot be
    written. For ``ecms exemptions failed`` and the desk."""
    out: list[FeedProblem] = []
    with db.reader() as s:
        hooks = select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True)).order_by(WebhookEndpoint.id)
        folders = select(FeedFolder).where(FeedFolder.enabled.is_(True), FeedFolder.last_error != "").order_by(
            FeedFolder.id)
        if company_id is not None:
            hooks = hooks.where(WebhookEndpoint.company_id == company_id)
            folders = folders.where(FeedFolder.company_id == company_id)
        for hook in s.execute(hooks).scalars():
            if hook.held_event_id is not None:
                event = s.get(ExemptionStatusEvent, hook.held_event_id)
                out.append(FeedProblem("webhook", hook.name, True, held_message(hook), hook.held_event_id,
                                       event.customer_number if event else "", event.state if event else "",
                                       hook.held_status, hook.held_at))
            elif hook.last_error:
                when = (f"; trying again after {hook.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC"
                        if hook.next_attempt_at else "")
                out.append(FeedProblem("webhook", hook.name, False, f"{hook.last_error}{when}",
                                       since=hook.next_attempt_at))
        for folder in s.execute(folders).scalars():
            out.append(FeedProblem("folder", folder.name, False, folder.last_error))
    return out


def _held_hook(s: Session, company_id: int, name: str) -> WebhookEndpoint:
    hook = s.execute(select(WebhookEndpoint).where(WebhookEndpoint.company_id == company_id,
                                                   WebhookEndpoint.name == name.strip())).scalar_one_or_none()
    if hook is None:
        raise NotFoundError(f"There is no webhook named {name!r}.")
    return hook


def release_webhook(db: Database, company_id: int, name: str, *, url: str | None = None) -> int | None:
    """Let a stopped (or waiting) webhook try again at the next delivery, from the event it stopped
    at; ``url`` corrects its address first (audited). Returns the event it will start with."""
    if url is not None and not (url.startswith("http://") or url.startswith("https://")):
        raise ValidationError(f"{url!r} is not an http(s) URL.")
    with db.transaction() as s:
        hook = _held_hook(s, company_id, name)
        before = {"url": hook.url, "held_event_id": hook.held_event_id, "last_error": hook.last_error}
        if url is not None:
            hook.url = url.strip()
        held = hook.held_event_id
        hook.held_event_id = hook.held_at = hook.held_status = None
        hook.next_attempt_at = None
        hook.consecutive_failures = 0
        hook.last_error = ""
        audit.record(s, "exemption_feed.webhook_released", "webhook_endpoint", hook.id, company_id=company_id,
                     before=before, after={"url": hook.url, "held_event_id": None})
        return held


def skip_held_event(db: Database, company_id: int, name: str, *, reason: str) -> int:
    """Give up delivering the event a webhook stopped at (the ERP will not receive it; say why): the
    webhook goes on with the next event at the next delivery. Audited. Returns the skipped event."""
    if not reason.strip():
        raise ValidationError("Say why the event is skipped (--reason): the ERP will never receive it.")
    with db.transaction() as s:
        hook = _held_hook(s, company_id, name)
        if hook.held_event_id is None:
            raise ValidationError(f"The webhook {hook.name!r} is not stopped at an event.")
        skipped = hook.held_event_id
        audit.record(s, "exemption_feed.event_skipped", "webhook_endpoint", hook.id, company_id=company_id,
                     details={"event_id": skipped, "reason": reason.strip(), "error": hook.last_error})
        hook.delivered_through = max(hook.delivered_through, skipped)
        hook.held_event_id = hook.held_at = hook.held_status = None
        hook.last_error = ""
        return skipped


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _deliver_folder(db: Database, folder: FeedFolder, batch: int, report: DeliveryReport) -> None:
    label = f"folder {folder.name}"
    base = Path(folder.path)
    formats = set(folder.formats.split(","))
    delivered = 0
    after = folder.delivered_through
    while True:
        events = _pending(db, folder.company_id, after, batch)
        if not events:
            break
        first, last = events[0].id, events[-1].id
        stem = f"exemption-status-{first:010d}-{last:010d}"
        payloads = [e.payload for e in events]
        written: list[str] = []
        try:
            if not base.is_dir():
                raise OSError(f"the folder {base} does not exist")
            if "json" in formats:
                target = base / f"{stem}.json"
                _write_atomic(target, json.dumps(payloads, indent=2, sort_keys=True).encode())
                written.append(str(target))
            if "csv" in formats:
                buf = io.StringIO()
                writer = CsvWriter(buf)
                writer.writerow(CSV_COLUMNS)
                writer.writerows([p.get(c) for c in CSV_COLUMNS] for p in payloads)
                target = base / f"{stem}.csv"
                _write_atomic(target, buf.getvalue().encode())
                written.append(str(target))
        except OSError as exc:
            _attempt(db, "folder", folder.id, first, last, 1, False, None, str(exc))
            with db.transaction() as s:
                row = s.get(FeedFolder, folder.id)
                assert row is not None
                row.last_error = str(exc)
            report.failed[label] = str(exc)
            report.delivered[label] = delivered
            return
        _attempt(db, "folder", folder.id, first, last, 1, True, files=written)
        with db.transaction() as s:
            row = s.get(FeedFolder, folder.id)
            assert row is not None
            row.delivered_through = last
            row.last_error = ""
        report.files.extend(written)
        delivered += len(events)
        after = last
    report.delivered[label] = delivered
