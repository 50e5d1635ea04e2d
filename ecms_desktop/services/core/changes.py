"""What other desks changed: the audit events written since this desk last looked, as they are committed.

Every change in ECMS writes an audit event in the same transaction (:mod:`~ecms_desktop.services.core.audit`),
numbered 1, 2, 3 ... so "what changed since I looked" is the events after the last number seen: who did
what (``actor``, ``action``), when (``occurred_at``) and to which certificate, company or record. A
:class:`ChangeWatcher` waits for new events and hands them over in :class:`ChangeBatch` es:

* PostgreSQL: a connection of its own (taken out of the pool, never returned to it) listens on the
  :data:`CHANNEL` channel. An ``AFTER INSERT ... FOR EACH STATEMENT`` trigger on ``audit_event``
  (:mod:`~ecms_desktop.services.core.notify`, installed by ``Database.upgrade``) notifies with the
  table's schema as payload; PostgreSQL delivers it when the writer commits. Several ECMS schemas
  may share one database, so notifications of other schemas are ignored. A dropped
  connection is opened again and the events missed meanwhile are read then. Without the trigger (a
  database not upgraded by this program yet) the head of the audit trail is polled instead.
* SQLite: ``PRAGMA data_version`` on one connection kept open for the watcher's life changes when
  another connection (of this process or another program) commits; it is read every
  ``poll_interval`` seconds, and the new events are read when it changed. The connection comes from the
  Database's engine: only SQLite opens the database file (see :mod:`~ecms_desktop.services.core.user_files`).

A batch lists at most ``limit`` events; after a larger change (an import of thousands of
certificates) it says it is incomplete, and whoever shows data reads everything again.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ecms_desktop.models import AuditEvent
from ecms_desktop.services.core import audit
from ecms_desktop.services.core.errors import DatabaseError
from ecms_desktop.services.core.notify import CHANNEL, TRIGGER

if TYPE_CHECKING:
    from ecms_desktop.services.core.database import Database

log = logging.getLogger(__name__)

#: The most events one batch lists; more than that and the batch is incomplete ("read everything again").
DEFAULT_LIMIT = 500


@dataclass(frozen=True)
class Change:
    """One committed change, as its audit event tells it (without the values before and after)."""

    seq: int
    occurred_at: dt.datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    company_id: int | None
    certificate_id: int | None


@dataclass(frozen=True)
class ChangeBatch:
    """The changes committed since the last batch, oldest first. ``complete``: False when more
    happened than ``changes`` lists (everything shown may be out of date); ``last_seq``: the audit
    trail's last event covered (the next batch starts after it)."""

    changes: tuple[Change, ...]
    last_seq: int
    complete: bool = True

    @property
    def certificate_ids(self) -> frozenset[int]:
        return frozenset(c.certificate_id for c in self.changes if c.certificate_id is not None)

    @property
    def entity_types(self) -> frozenset[str]:
        return frozenset(c.entity_type for c in self.changes)

    def touches(self, company_id: int | None) -> bool:
        """Whether anything of ``company_id`` (or of every company, for None) may have changed."""
        if not self.complete or company_id is None:
            return True
        return any(c.company_id in (None, company_id) for c in self.changes)

    def latest_for(self, certificate_id: int) -> Change | None:
        """The last change of ``certificate_id`` in this batch (who changed it last, and when)."""
        return next((c for c in reversed(self.changes) if c.certificate_id == certificate_id), None)

    def changed_by(self, certificate_id: int) -> tuple[str, dt.datetime]:
        """Who changed ``certificate_id`` last and when (UTC); for an incomplete batch that does not list
        it, "another desk" and now."""
        change = self.latest_for(certificate_id)
        return (change.actor, change.occurred_at) if change is not None else ("another desk", dt.datetime.now(dt.UTC))


def listener_name(schema: str) -> str:
    """The PostgreSQL ``application_name`` of the watcher listening for the ECMS schema ``schema``."""
    return f"ecms-desktop changes {schema}"[:63]


def head_seq(db: Database) -> int:
    """The number of the audit trail's last event (0 when it is empty)."""
    with db.reader() as s:
        return audit.head_seq(s)


def read_changes(db: Database, after_seq: int, *, limit: int = DEFAULT_LIMIT) -> ChangeBatch | None:
    """The changes committed after event ``after_seq`` (None: nothing new). Reads at most ``limit``
    events; a larger change gives an incomplete batch that ends at the trail's head."""
    cols = AuditEvent.__table__.c
    with db.reader() as s:
        rows = s.execute(
            select(cols.seq, cols.occurred_at, cols.actor, cols.action, cols.entity_type, cols.entity_id,
                   cols.company_id, cols.certificate_id)
            .where(cols.seq > after_seq).order_by(cols.seq).limit(limit + 1)).all()
        if not rows:
            return None
        if len(rows) <= limit:
            return ChangeBatch(tuple(Change(*row) for row in rows), rows[-1].seq)
        head = audit.head_seq(s)
    return ChangeBatch(tuple(Change(*row) for row in rows[:limit]), max(head, rows[limit - 1].seq), complete=False)


class ChangeWatcher:
    """Waits for changes committed by anyone (another desk, the ``ecms`` tool, this desk itself) and
    yields them in batches; see the module's description. One thread runs :meth:`watch`; any thread
    may call :meth:`stop`.

    ``after_seq``: the last event already known (None: the trail's head when watching starts);
    ``poll_interval``: seconds between two looks at SQLite's ``data_version`` (and, on PostgreSQL,
    between two checks whether to stop); ``fallback_interval``: on PostgreSQL, seconds between two
    looks at the trail's head even without a notification (a lost notification is then late, never
    missed)."""

    def __init__(self, db: Database, *, after_seq: int | None = None, poll_interval: float = 0.4,
                 fallback_interval: float = 10.0, limit: int = DEFAULT_LIMIT) -> None:
        self.db = db
        self.after_seq = after_seq
        self.poll_interval = poll_interval
        self.fallback_interval = fallback_interval
        self.limit = limit
        self._stop = threading.Event()
        #: Set once the watcher listens (PostgreSQL) or holds its data_version connection (SQLite):
        #: a change committed from then on is seen.
        self.ready = threading.Event()

    def stop(self) -> None:
        """Ask :meth:`watch` to end (within about ``poll_interval`` seconds)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def watch(self) -> Iterator[ChangeBatch]:
        """Yield each batch of new changes as it is committed, until :meth:`stop`."""
        if self.db.dialect == "postgresql":
            yield from self._watch_postgresql()
        elif self.db.path is not None:
            yield from self._watch_sqlite()
        else:  # an in-memory database: nobody else can write to it
            self.ready.set()
            self._stop.wait()

    def _next(self) -> ChangeBatch | None:
        if self.after_seq is None:
            self.after_seq = head_seq(self.db)
            return None
        batch = read_changes(self.db, self.after_seq, limit=self.limit)
        if batch is not None:
            self.after_seq = batch.last_seq
        return batch

    # -- SQLite

    def _watch_sqlite(self) -> Iterator[ChangeBatch]:
        pooled = self.db.engine.raw_connection()
        conn: Any = pooled.driver_connection
        pooled.detach()  # this connection is the watcher's alone, for its whole life
        try:

            def data_version() -> int:
                return int(conn.execute("PRAGMA data_version").fetchone()[0])

            seen = data_version()
            first = self._next()
            self.ready.set()
            if first is not None:
                yield first
            while not self._stop.wait(self.poll_interval):
                now = data_version()
                if now == seen:
                    continue
                try:
                    batch = self._next()
                except (SQLAlchemyError, DatabaseError) as exc:  # read again at the next look
                    log.warning("change watcher: %s", str(exc).strip())
                    continue
                seen = now
                if batch is not None:
                    yield batch
        finally:
            pooled.close()

    # -- PostgreSQL

    def _watch_postgresql(self) -> Iterator[ChangeBatch]:
        delay = 0.5
        while not self._stop.is_set():
            try:
                yield from self._listen()
            except (SQLAlchemyError, DatabaseError, OSError, psycopg.Error) as exc:
                if self._stop.is_set():
                    return
                log.warning("change watcher: %s; connecting again in %.1f s", str(exc).strip(), delay)
                self.ready.clear()
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, 10.0)
            else:
                return

    def _listen(self) -> Iterator[ChangeBatch]:
        pooled = self.db.engine.raw_connection()
        conn: Any = pooled.driver_connection
        pooled.detach()
        try:
            conn.rollback()
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT n.nspname, EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid "
                            "AND t.tgname = %s) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                            "WHERE c.oid = 'audit_event'::regclass", (TRIGGER,))
                schema, notified = cur.fetchone()
                # Named for whoever looks at the server's connections (pg_stat_activity).
                cur.execute("SELECT set_config('application_name', %s, false)", (listener_name(schema),))
                cur.execute(f"LISTEN {CHANNEL}")
            fallback = self.fallback_interval if notified else self.poll_interval
            if not notified:
                log.warning("change watcher: no notification trigger on %s.audit_event (run `ecms init`); "
                            "polling every %.1f s", schema, fallback)
            first = self._next()  # the events missed while (re)connecting
            self.ready.set()
            if first is not None:
                yield first
            waited = 0.0
            while not self._stop.is_set():
                wait = min(self.poll_interval, fallback)
                ours = any(n.payload == schema for n in conn.notifies(timeout=wait, stop_after=1))
                waited += wait
                if not ours and waited < fallback:
                    continue
                waited = 0.0
                batch = self._next()
                if batch is not None:
                    yield batch
        finally:
            pooled.close()


def run_watcher(watcher: ChangeWatcher, deliver: Callable[[ChangeBatch], None]) -> None:
    """Watch until stopped, handing each batch to ``deliver`` (for a thread's target)."""
    for batch in watcher.watch():
        if watcher.stopped:
            break
        deliver(batch)


__all__ = ["CHANNEL", "Change", "ChangeBatch", "ChangeWatcher", "head_seq", "listener_name",
           "read_changes", "run_watcher"]
