"""The hash-chained audit trail: written with each change, and tampering is found."""

from __future__ import annotations

from sqlalchemy import delete, select, text, update

from ecms_desktop.models import AuditEvent, AuditHead
from ecms_desktop.services.core import audit


def _write_events(db, n: int = 5) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        with db.transaction() as s:
            audit.record(s, "test.event", "thing", i, before={"value": i}, after={"value": i + 1},
                         details={"note": f"event {i}"})


def _verify(db) -> audit.ChainReport:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return audit.verify_chain(s)


def test_an_untouched_chain_verifies(db) -> None:  # type: ignore[no-untyped-def]
    _write_events(db)
    report = _verify(db)
    assert report.ok and report.events == 5 and report.head_seq == 5
    with db.reader() as s:
        events = audit.list_events(s)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[1].before == {"value": 1} and events[1].actor == "tester"


def _as_owner_without_triggers(conn) -> None:  # type: ignore[no-untyped-def]
    """Tamper as the database's owner or superuser would: PostgreSQL refuses rewriting an event (team mode's
    trigger) until they switch the triggers off, which they can; the chain must still tell."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL session_replication_role = replica"))


def test_postgresql_refuses_rewriting_an_event(db) -> None:  # type: ignore[no-untyped-def]
    import pytest
    from sqlalchemy.exc import DBAPIError

    if db.dialect != "postgresql":
        pytest.skip("the trigger is PostgreSQL's; on SQLite whoever has the file can write it (the chain tells)")
    _write_events(db)
    with pytest.raises(DBAPIError, match="audit event 3 cannot be rewritten"), db.engine.begin() as conn:
        conn.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(actor="mallory"))


def test_an_edited_event_is_named(db) -> None:  # type: ignore[no-untyped-def]
    _write_events(db)
    with db.engine.begin() as conn:
        _as_owner_without_triggers(conn)
        conn.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(actor="mallory"))
    report = _verify(db)
    assert not report.ok and report.first_bad_seq == 3 and "altered" in report.problem


def test_an_edited_json_value_is_named(db) -> None:  # type: ignore[no-untyped-def]
    _write_events(db)
    with db.engine.begin() as conn:
        conn.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(after={"value": 999}))
    report = _verify(db)
    assert not report.ok and report.first_bad_seq == 2


def test_a_deleted_event_is_named(db) -> None:  # type: ignore[no-untyped-def]
    _write_events(db)
    with db.engine.begin() as conn:
        conn.execute(delete(AuditEvent).where(AuditEvent.seq == 3))
    report = _verify(db)
    assert not report.ok and report.first_bad_seq == 3 and "missing" in report.problem


def test_a_deleted_last_event_is_found_through_the_head(db) -> None:  # type: ignore[no-untyped-def]
    _write_events(db)
    with db.engine.begin() as conn:
        conn.execute(delete(AuditEvent).where(AuditEvent.seq == 5))
    report = _verify(db)
    assert not report.ok and "removed" in report.problem and report.first_bad_seq == 5


def test_reordered_events_are_named(db) -> None:  # type: ignore[no-untyped-def]
    _write_events(db)
    with db.engine.begin() as conn:  # swap the contents of events 2 and 4, keeping their numbers
        _as_owner_without_triggers(conn)
        conn.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(seq=-2))
        conn.execute(update(AuditEvent).where(AuditEvent.seq == 4).values(seq=2))
        conn.execute(update(AuditEvent).where(AuditEvent.seq == -2).values(seq=4))
    report = _verify(db)
    assert not report.ok and report.first_bad_seq == 2


def test_a_rewritten_chain_tail_still_fails_against_the_head(db) -> None:  # type: ignore[no-untyped-def]
    """Someone who recomputes the hashes of an edited last event still has to forge the head row."""
    _write_events(db, 3)
    with db.transaction() as s:
        _as_owner_without_triggers(s.connection())
        last = s.execute(select(AuditEvent).where(AuditEvent.seq == 3)).scalar_one()
        last.actor = "mallory"
        last.hash = audit.event_hash(last.prev_hash, last)
    report = _verify(db)
    assert not report.ok and "head" in report.problem


def test_an_event_rolls_back_with_its_change(db) -> None:  # type: ignore[no-untyped-def]
    _write_events(db, 2)
    try:
        with db.transaction() as s:
            audit.record(s, "test.event", "thing", 99)
            raise RuntimeError("the change failed")
    except RuntimeError:
        pass
    report = _verify(db)
    assert report.ok and report.events == 2
    with db.reader() as s:
        assert s.get(AuditHead, 1).last_seq == 2


def test_values_are_stored_json_safe(db) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt
    from decimal import Decimal

    with db.transaction() as s:
        audit.record(s, "test.types", "thing", 1,
                     after={"d": dt.date(2026, 3, 15), "m": Decimal("12.50"), "l": ("a", "b"), "n": None})
    with db.reader() as s:
        (event,) = audit.list_events(s)
        assert event.after == {"d": "2026-03-15", "m": "12.50", "l": ["a", "b"], "n": None}
        assert s.execute(text("SELECT count(*) FROM audit_event")).scalar() == 1
    assert _verify(db).ok


def test_a_prepared_event_hashes_as_the_same_event_recorded_one_by_one(db) -> None:  # type: ignore[no-untyped-def]
    """Bulk writes prepare events before the head is locked; their canonical text must be the one
    ``record`` hashes, whatever the values hold (quotes, control characters, non-Latin text, nesting)."""
    import datetime as dt
    import hashlib

    from ecms_desktop.services.core.audit import GENESIS_HASH, NewEvent, event_hash, prepare_event

    at = dt.datetime(2026, 12, 6, 5, 1, 2, 345678, tzinfo=dt.UTC)
    for after in ({"name": 'Zenith "Holdings"\t\\ LP\u2028', "lines": [{"state": "TX", "n": 1}], "none": None},
                  {"name": "شركة الرياض — 北京贸易 — חברה", "ok": True, "amount": "12.5000", "ctl": "\x01\x1f"},
                  None):
        new = NewEvent("certificate.created", "certificate", 7, before={"x": [1, "two"]} if after else None,
                       after=after, details={"origin": "import"}, company_id=3, certificate_id=7)
        prepared = prepare_event(new, actor="Pat Doe", at=at)
        row = {**prepared.row, "seq": 41, "state_sha256": None}
        canonical = prepared.body + b',"seq":41}'
        got = hashlib.sha256(GENESIS_HASH.encode() + b"\n" + canonical).hexdigest()

        class Row:
            pass
        stored = Row()
        stored.__dict__.update(row)
        assert got == event_hash(GENESIS_HASH, stored)
