"""The audit trail: append events in the caller's transaction, verify the hash chain, read history.

Each event's hash is SHA-256 over the previous event's hash and this event's canonical content
(sequence number, time, actor, action, entity, before/after values). Changing, deleting or
reordering any stored event breaks the chain from there on, and :func:`verify_chain` names the
first event that no longer fits.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecms_desktop.models import AuditEvent, AuditHead, utcnow

GENESIS_HASH = "0" * 64


def current_actor() -> str:
    """Who is acting: ``ECMS_USER`` if set, else the operating-system user name."""
    name = os.environ.get("ECMS_USER")
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of ``value`` (dates as ISO text, decimals as text), stable for hashing."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    return str(value)


def _canonical(event: AuditEvent) -> bytes:
    payload = {
        "seq": event.seq,
        "occurred_at": event.occurred_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": event.actor,
        "action": event.action,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "company_id": event.company_id,
        "certificate_id": event.certificate_id,
        "before": event.before,
        "after": event.after,
        "details": event.details,
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(prev_hash: str, event: AuditEvent) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + _canonical(event)).hexdigest()


@dataclass(frozen=True)
class NewEvent:
    """An event to append; see :func:`record`."""

    action: str
    entity_type: str
    entity_id: str | int
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    details: Mapping[str, Any] | None = None
    company_id: int | None = None
    certificate_id: int | None = None


def _lock_head(session: Session) -> AuditHead:
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, last_seq=0, last_hash=GENESIS_HASH)
        session.add(head)
        session.flush()
    return head


def head_seq(session: Session, *, lock: bool = False) -> int:
    """The sequence number of the chain's last event (0 for an empty chain).

    With ``lock`` the head is locked first, as :func:`record` does: from here on the caller's unit of
    work is serialised with every other writer of the chain, so it can check again what it read
    before (nothing was written meanwhile when the number is unchanged, since every change is
    audited) and then write without racing anyone."""
    if lock:
        return _lock_head(session).last_seq
    return session.execute(select(AuditHead.last_seq).where(AuditHead.id == 1)).scalar() or 0


def record_many(session: Session, events: Iterable[NewEvent], *, actor: str | None = None,
                at: dt.datetime | None = None) -> list[AuditEvent]:
    """Append events in the caller's transaction, in order, holding the chain head locked."""
    head = _lock_head(session)
    who = actor or current_actor()
    written: list[AuditEvent] = []
    seq, prev = head.last_seq, head.last_hash
    for new in events:
        seq += 1
        occurred = at or utcnow()
        # Stored timestamps keep microseconds on SQLite and PostgreSQL alike.
        event = AuditEvent(
            seq=seq,
            occurred_at=occurred,
            actor=who,
            action=new.action,
            entity_type=new.entity_type,
            entity_id=str(new.entity_id),
            company_id=new.company_id,
            certificate_id=new.certificate_id,
            before=jsonable(dict(new.before)) if new.before is not None else None,
            after=jsonable(dict(new.after)) if new.after is not None else None,
            details=jsonable(dict(new.details)) if new.details is not None else None,
            prev_hash=prev,
        )
        event.hash = event_hash(prev, event)
        prev = event.hash
        written.append(event)
    session.add_all(written)
    head.last_seq, head.last_hash = seq, prev
    session.flush()
    return written


def record(session: Session, action: str, entity_type: str, entity_id: str | int, *,
           before: Mapping[str, Any] | None = None, after: Mapping[str, Any] | None = None,
           details: Mapping[str, Any] | None = None, company_id: int | None = None,
           certificate_id: int | None = None, actor: str | None = None) -> AuditEvent:
    """Append one event to the audit trail in the caller's transaction."""
    return record_many(
        session,
        [NewEvent(action, entity_type, entity_id, before, after, details, company_id, certificate_id)],
        actor=actor,
    )[0]


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields that changed, as (old values, new values)."""
    keys = [k for k in after if jsonable(before.get(k)) != jsonable(after.get(k))]
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


@dataclass(frozen=True)
class ChainReport:
    """Result of checking the audit chain."""

    ok: bool
    events: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    problem: str = ""


def verify_chain(session: Session, *, batch: int = 5000) -> ChainReport:
    """Recompute the whole chain and compare it with the stored hashes and the stored head."""
    expected_seq, prev, count = 1, GENESIS_HASH, 0
    last_id = 0
    while True:
        rows = session.execute(
            select(AuditEvent).where(AuditEvent.seq > last_id).order_by(AuditEvent.seq).limit(batch)
        ).scalars().all()
        if not rows:
            break
        for event in rows:
            if event.seq != expected_seq:
                what = "is missing" if event.seq > expected_seq else "is out of order"
                return ChainReport(False, count, event.seq, prev, expected_seq,
                                   f"event {expected_seq} {what} (found event {event.seq} next)")
            if event.prev_hash != prev:
                return ChainReport(False, count, event.seq, prev, event.seq,
                                   f"event {event.seq} does not follow event {event.seq - 1} "
                                   "(removed, inserted or reordered)")
            if event_hash(prev, event) != event.hash:
                return ChainReport(False, count, event.seq, prev, event.seq,
                                   f"event {event.seq} ({event.action} on {event.entity_type} "
                                   f"{event.entity_id}) was altered after it was written")
            prev = event.hash
            expected_seq += 1
            count += 1
            last_id = event.seq
        session.expunge_all()
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS_HASH)
    if head_seq != count or head_hash != prev:
        return ChainReport(False, count, head_seq, head_hash, count + 1 if head_seq > count else head_seq,
                           f"the chain ends at event {count} but its head records event {head_seq}: "
                           "events at the end were removed or the head was altered")
    return ChainReport(True, count, head_seq, head_hash)


@dataclass(frozen=True)
class AuditEntry:
    """An audit event as shown to a user (History tab, ``ecms audit log``)."""

    seq: int
    occurred_at: dt.datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    certificate_id: int | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    details: dict[str, Any] | None
    hash: str


def _entry(e: AuditEvent) -> AuditEntry:
    return AuditEntry(e.seq, e.occurred_at, e.actor, e.action, e.entity_type, e.entity_id,
                      e.certificate_id, e.before, e.after, e.details, e.hash)


def list_events(session: Session, *, certificate_id: int | None = None, entity_type: str | None = None,
                entity_id: str | None = None, limit: int | None = None) -> list[AuditEntry]:
    """Events oldest first, optionally those of one certificate or one entity."""
    stmt = select(AuditEvent).order_by(AuditEvent.seq)
    if certificate_id is not None:
        stmt = stmt.where(AuditEvent.certificate_id == certificate_id)
    if entity_type is not None:
        stmt = stmt.where(AuditEvent.entity_type == entity_type)
    if entity_id is not None:
        stmt = stmt.where(AuditEvent.entity_id == str(entity_id))
    if limit is not None:
        stmt = stmt.order_by(None).order_by(AuditEvent.seq.desc()).limit(limit)
        return [_entry(e) for e in reversed(session.execute(stmt).scalars().all())]
    return [_entry(e) for e in session.execute(stmt).scalars()]


def count_events(session: Session) -> int:
    return session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
