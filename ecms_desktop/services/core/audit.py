"""The audit trail: append events in the caller's transaction, verify the hash chain, read history.

Each event's hash is SHA-256 over the previous event's hash and this event's canonical content
(sequence number, time, actor, action, entity, before/after values, and the hash of the state
digests its unit of work left, see :mod:`ecms_desktop.services.core.state_digest`). Changing, deleting
or reordering any stored event or digest breaks the chain from there on, and :func:`verify_chain`
names the first event that no longer fits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ecms_desktop.models import AuditDigest, AuditEvent, AuditHead, utcnow
from ecms_desktop.services.core import json_text, people
from ecms_desktop.services.core.bulk import BulkInsert

GENESIS_HASH = "0" * 64
#: ``session.info`` key: the last event this unit of work appended (seq, previous hash, payload), which
#: carries the unit of work's state digests (see :func:`seal_last_event`).
LAST_EVENT_KEY = "ecms_audit_last_event"


_PLAIN = (str, int, bool, type(None))


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of ``value`` (dates as ISO text, decimals as text), stable for hashing."""
    if type(value) in _PLAIN or value is None or isinstance(value, bool | int | str):
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
        return {str(k): v if type(v) in _PLAIN else jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    return str(value)


def _payload(event: Any) -> dict[str, Any]:
    """The hashed content of an event (an :class:`AuditEvent` or a row of its table)."""
    return _payload_of({name: getattr(event, name) for name in _HASHED})


_HASHED = ("seq", "occurred_at", "actor", "action", "entity_type", "entity_id", "company_id", "certificate_id",
           "before", "after", "details", "state_sha256")


def _payload_of(event: Mapping[str, Any]) -> dict[str, Any]:
    """The hashed content of an event given as a mapping of its column values."""
    payload = {
        "seq": event["seq"],
        "occurred_at": event["occurred_at"].astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": event["actor"],
        "action": event["action"],
        "entity_type": event["entity_type"],
        "entity_id": event["entity_id"],
        "company_id": event["company_id"],
        "certificate_id": event["certificate_id"],
        "before": event["before"],
        "after": event["after"],
        "details": event["details"],
    }
    if event["state_sha256"] is not None:  # events written before state digests existed hash as they did
        payload["state"] = event["state_sha256"]
    return payload


def _hash_payload(prev_hash: str, payload: Mapping[str, Any]) -> str:
    canonical = json_text.canonical(payload).encode()
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical).hexdigest()


def event_hash(prev_hash: str, event: Any) -> str:
    """The hash of an event (an :class:`AuditEvent` or a row of its table) after ``prev_hash``."""
    return _hash_payload(prev_hash, _payload(event))


def state_line(entity_type: str, entity_key: str, digest: str | None) -> bytes:
    """One digest as it enters an event's ``state_sha256`` (in the digests' ``n`` order)."""
    return f"{entity_type}\t{entity_key}\t{digest or '-'}\n".encode()


def seal_last_event(session: Session, state_sha256: str) -> AuditEvent | None:
    """Put the state hash of this unit of work's digests on its last event and hash that event again
    (it is the chain's head: the head row stays locked until the commit)."""
    last = session.info.get(LAST_EVENT_KEY)
    if last is None:
        raise RuntimeError("no audit event was written in this unit of work to carry the state digests")
    seq, prev, payload = last
    payload = {**payload, "state": state_sha256}
    new_hash = _hash_payload(prev, payload)
    session.execute(update(AuditEvent).where(AuditEvent.seq == seq)
                    .values(state_sha256=state_sha256, hash=new_hash)
                    .execution_options(synchronize_session=False))
    session.execute(update(AuditHead).where(AuditHead.id == 1, AuditHead.last_seq == seq)
                    .values(last_hash=new_hash).execution_options(synchronize_session=False))
    session.info[LAST_EVENT_KEY] = (seq, prev, payload)
    # Keep objects still in the session in step with the rows (later events chain from the head).
    event = session.identity_map.get((AuditEvent, (seq,), None))
    if event is not None:
        set_committed_value(event, "state_sha256", state_sha256)
        set_committed_value(event, "hash", new_hash)
    head = session.identity_map.get((AuditHead, (1,), None))
    if head is not None and head.last_seq == seq:
        set_committed_value(head, "last_hash", new_hash)
    return event


def last_event_of(session: Session) -> tuple[int, str] | None:
    """(seq, hash) of the last event this unit of work appended, if any."""
    last = session.info.get(LAST_EVENT_KEY)
    if last is None:
        return None
    seq, prev, payload = last
    return seq, _hash_payload(prev, payload)


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
    who = actor or people.actor_name(session)
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
            state_sha256=None,
            prev_hash=prev,
        )
        payload = _payload(event)
        event.hash = _hash_payload(prev, payload)
        session.info[LAST_EVENT_KEY] = (seq, prev, payload)
        prev = event.hash
        written.append(event)
    session.add_all(written)
    head.last_seq, head.last_hash = seq, prev
    session.flush()
    return written


@dataclass
class PreparedEvent:
    """An event decided before the chain head is locked: every column but its number and hashes, and
    the canonical text of its hashed content without its number (``seq`` sorts last among the keys of
    the content, so the text is completed by appending it). Preparing 200,000 events of an import
    takes seconds; chaining them under the lock (:func:`append_encoded`) then costs one SHA-256 each.
    ``json``: the JSON text of its ``before``, ``after`` and ``details`` (what the columns store)."""

    row: dict[str, Any]
    body: bytes
    json: dict[str, str]


def prepare_event(new: NewEvent, *, actor: str, at: dt.datetime, json_safe: bool = False) -> PreparedEvent:
    """An event to append later with :func:`append_encoded`, as it will be stored (``at``: its time).
    ``json_safe``: the event's values are already what :func:`jsonable` makes of them (built from
    JSON-safe values by the caller), so they are stored and hashed as given."""
    def safe(value: Mapping[str, Any] | None) -> Any:
        if value is None:
            return None
        return value if json_safe else jsonable(dict(value))

    row = {"occurred_at": at, "actor": actor, "action": new.action, "entity_type": new.entity_type,
           "entity_id": str(new.entity_id), "company_id": new.company_id, "certificate_id": new.certificate_id,
           "before": safe(new.before), "after": safe(new.after), "details": safe(new.details),
           "state_sha256": None}
    texts = {name: json_text.canonical(row[name]) for name in ("before", "after", "details")}
    # The canonical text of the content (as :func:`_hash_payload` writes it: keys sorted, no spaces),
    # built from its parts so that the JSON values are serialised once, for the hash and the columns.
    dump = json_text.canonical
    body = (f'{{"action":{dump(new.action)},"actor":{dump(actor)},"after":{texts["after"]},'
            f'"before":{texts["before"]},"certificate_id":{dump(new.certificate_id)},'
            f'"company_id":{dump(new.company_id)},"details":{texts["details"]},"entity_id":{dump(row["entity_id"])},'
            f'"entity_type":{dump(new.entity_type)},'
            f'"occurred_at":{dump(at.astimezone(dt.UTC).isoformat(timespec="microseconds"))}')
    return PreparedEvent(row, body.encode(), texts)


#: The columns of an event row encoded ahead of its chaining (see :func:`append_encoded`).
ENCODED_EVENT_COLUMNS = tuple(c.name for c in AuditEvent.__table__.columns
                              if c.name not in ("seq", "prev_hash", "hash"))


def append_encoded(session: Session, events: Iterable[tuple[tuple[Any, ...], bytes]], *, batch: int = 20000
                   ) -> int:
    """Append events prepared with :func:`prepare_event` and encoded as driver values (the columns of
    :data:`ENCODED_EVENT_COLUMNS`, see :class:`~ecms_desktop.services.certificates.bulk.RowEncoder`), in
    the caller's transaction, chained from the head (locked) with the numbers and hashes
    :func:`record_many` would give them. Returns the number of the last event appended.

    The unit of work's last event is then not known as a payload: the caller records one more event
    with :func:`record` (an import's own event), which carries the unit of work's record digests."""
    head = _lock_head(session)
    insert_ = BulkInsert(session.connection(), cast(Table, AuditEvent.__table__),
                         ("seq", "prev_hash", "hash", *ENCODED_EVENT_COLUMNS))
    seq, prev = head.last_seq, head.last_hash
    first = seq
    rows: list[tuple[Any, ...]] = []
    sha256 = hashlib.sha256
    for values, body in events:
        seq += 1
        digest = sha256(prev.encode("ascii") + b"\n" + body + b',"seq":' + str(seq).encode() + b"}").hexdigest()
        rows.append((seq, prev, digest, *values))
        prev = digest
        if len(rows) >= batch:
            insert_.execute_processed(rows)
            rows = []
    if rows:
        insert_.execute_processed(rows)
    if seq == first:
        return seq
    session.info.pop(LAST_EVENT_KEY, None)
    session.execute(update(AuditHead).where(AuditHead.id == 1).values(last_seq=seq, last_hash=prev)
                    .execution_options(synchronize_session=False))
    set_committed_value(head, "last_seq", seq)
    set_committed_value(head, "last_hash", prev)
    return seq


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


def verify_chain(session: Session, *, batch: int = 5000,
                 progress: Callable[[int], None] | None = None) -> ChainReport:
    """Recompute the whole chain (each event with its state digests) and compare it with the stored
    hashes and the stored head. Reads in batches: memory does not grow with the trail; ``progress``
    is told how many events each batch held."""
    expected_seq, prev, count = 1, GENESIS_HASH, 0
    last_id = 0
    while True:
        table = AuditEvent.__table__
        rows = session.execute(  # plain rows: no ORM objects to build for a long trail
            select(table).where(table.c.seq > last_id).order_by(table.c.seq).limit(batch)
        ).all()
        if not rows:
            break
        states = _state_hashes(session, rows[0].seq, rows[-1].seq)
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
            if states.pop(event.seq, None) != event.state_sha256:
                return ChainReport(False, count, event.seq, prev, event.seq,
                                   f"the record digests of event {event.seq} ({event.action} on "
                                   f"{event.entity_type} {event.entity_id}) were altered, added or removed "
                                   "after they were written")
            prev = event.hash
            expected_seq += 1
            count += 1
            last_id = event.seq
        if progress is not None:
            progress(len(rows))
    head = session.get(AuditHead, 1)
    head_seq, head_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS_HASH)
    if head_seq != count or head_hash != prev:
        return ChainReport(False, count, head_seq, head_hash, count + 1 if head_seq > count else head_seq,
                           f"the chain ends at event {count} but its head records event {head_seq}: "
                           "events at the end were removed or the head was altered")
    stray = session.execute(select(func.min(AuditDigest.seq)).where(
        (AuditDigest.seq > count) | (AuditDigest.seq < 1))).scalar()
    if stray is not None:
        return ChainReport(False, count, head_seq, head_hash, int(stray),
                           f"record digests are stored for event {stray}, which is not in the chain")
    return ChainReport(True, count, head_seq, head_hash)


def _state_hashes(session: Session, first: int, last: int) -> dict[int, str]:
    """The state hash of the stored digests of each event from ``first`` to ``last``, streamed."""
    hashes: dict[int, Any] = {}
    stmt = (select(AuditDigest.seq, AuditDigest.entity_type, AuditDigest.entity_key, AuditDigest.digest)
            .where(AuditDigest.seq >= first, AuditDigest.seq <= last)
            .order_by(AuditDigest.seq, AuditDigest.n))
    for seq, entity_type, entity_key, digest in session.execute(stmt, execution_options={"yield_per": 20000}):
        h = hashes.get(seq)
        if h is None:
            h = hashes[seq] = hashlib.sha256()
        h.update(state_line(entity_type, entity_key, digest))
    return {seq: h.hexdigest() for seq, h in hashes.items()}


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


def head_of(session: Session) -> tuple[int, str]:
    """The chain's head as stored: (last event number, its hash); (0, genesis) for an empty trail."""
    head = session.get(AuditHead, 1)
    return (head.last_seq, head.last_hash) if head is not None else (0, GENESIS_HASH)


def count_digests(session: Session, seq: int) -> int:
    """How many record digests event ``seq`` carries."""
    return session.execute(select(func.count()).select_from(AuditDigest).where(AuditDigest.seq == seq)).scalar_one()


def count_events(session: Session) -> int:
    return session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
