"""Other desks' changes reach a desk: the change watcher on both backends (another connection, another
process), PostgreSQL's notification reaching a second connection, a dropped listening connection, and a
change too large to list."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from ecms_desktop.services.core import changes
from ecms_desktop.services.core.changes import ChangeBatch, ChangeWatcher
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.customers.service import upsert_customer
from tests.factories import make_company, make_customer

REPO = Path(__file__).resolve().parents[3]
#: Generous: a bound on waiting, never a claim about speed.
WAIT_S = 20.0


class Running:
    """A watcher on its own thread, its batches in a queue."""

    def __init__(self, watcher: ChangeWatcher) -> None:
        self.watcher = watcher
        self.batches: queue.Queue[ChangeBatch] = queue.Queue()
        self.thread = threading.Thread(target=changes.run_watcher, args=(watcher, self.batches.put), daemon=True)
        self.thread.start()
        assert watcher.ready.wait(WAIT_S), "the watcher never started listening"

    def next_batch(self) -> ChangeBatch:
        return self.batches.get(timeout=WAIT_S)

    def until(self, wanted: str) -> list[changes.Change]:
        """The changes seen until one with action ``wanted`` arrived."""
        seen: list[changes.Change] = []
        while not any(c.action == wanted for c in seen):
            seen += self.next_batch().changes
        return seen

    def stop(self) -> None:
        self.watcher.stop()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()


@pytest.fixture
def watching(db: Database) -> Iterator[Running]:
    running = Running(ChangeWatcher(db, poll_interval=0.1))
    yield running
    running.stop()


def test_a_commit_on_another_connection_reaches_the_watcher(db: Database, watching: Running) -> None:
    colleague = Database(db.url)
    try:
        company_id = make_company(colleague, "Pat's Company")
        make_customer(colleague, company_id, "C-7", "Seen Elsewhere LLC")
    finally:
        colleague.dispose()
    seen = watching.until("customer.created")
    assert {c.company_id for c in seen if c.action == "customer.created"} == {company_id}
    assert all(c.actor == "tester" and c.occurred_at.tzinfo is not None for c in seen)
    assert [c.seq for c in seen] == sorted(c.seq for c in seen)
    assert watching.watcher.after_seq == seen[-1].seq == changes.head_seq(db)


def test_nothing_is_read_twice_and_nothing_before_the_start(db: Database) -> None:
    company_id = make_company(db)
    running = Running(ChangeWatcher(db, poll_interval=0.1))
    try:
        make_customer(db, company_id, "C-1", "First")
        first = running.until("customer.created")
        make_customer(db, company_id, "C-2", "Second")
        second = running.until("customer.created")
    finally:
        running.stop()
    assert "company.created" not in {c.action for c in first + second}  # written before watching started
    assert not {c.seq for c in first} & {c.seq for c in second}


def test_a_commit_by_another_program_reaches_the_watcher(db: Database, watching: Running, tmp_path: Path) -> None:
    """Another process (the ``ecms`` tool, another desk) commits: SQLite's data_version sees it."""
    company_id = make_company(db)
    script = ("import sys\nfrom ecms_desktop.services.core.database import Database\n"
              "from tests.factories import make_customer\n"
              "db = Database(sys.argv[1])\nmake_customer(db, int(sys.argv[2]), 'C-9', 'Other Program LLC')\n"
              "db.dispose()\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "ECMS_USER": "pat"}
    subprocess.run([sys.executable, "-c", script, db.url, str(company_id)], check=True, env=env, cwd=REPO,
                   timeout=120)
    seen = watching.until("customer.created")
    assert [c.actor for c in seen if c.action == "customer.created"] == ["pat"]


def test_a_change_too_large_to_list_says_so(db: Database) -> None:
    company_id = make_company(db)
    running = Running(ChangeWatcher(db, poll_interval=0.1, limit=2))
    try:
        with db.transaction() as s:
            for n in range(5):
                upsert_customer(s, company_id, f"C-{n}", legal_name=f"Bulk {n}")
        batch = running.next_batch()
    finally:
        running.stop()
    assert not batch.complete and len(batch.changes) == 2
    assert batch.last_seq == changes.head_seq(db)
    assert batch.touches(company_id + 1)  # anything may have changed: everyone reads again


def test_batch_says_what_it_touches() -> None:
    import datetime as dt

    at = dt.datetime(2026, 12, 6, 10, 42, tzinfo=dt.UTC)
    batch = ChangeBatch((changes.Change(7, at, "pat", "certificate.saved", "certificate", "3", 1, 3),
                         changes.Change(8, at, "lee", "certificate.approved", "certificate", "3", 1, 3)), 8)
    assert batch.certificate_ids == {3} and batch.touches(1) and not batch.touches(2)
    latest = batch.latest_for(3)
    assert latest is not None and latest.actor == "lee"
    assert batch.latest_for(4) is None


# -- PostgreSQL


def _schema(db: Database) -> str:
    with db.reader() as s:
        return str(s.execute(text("SELECT current_schema()")).scalar_one())


def test_postgresql_notification_reaches_a_second_connection(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL's LISTEN/NOTIFY")
    schema = _schema(db)
    url = db.engine.url.set(drivername="postgresql", query={})
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as listener:
        listener.execute(f"LISTEN {changes.CHANNEL}")
        company_id = make_company(db)  # several commits: their notifications are not the ones looked at
        list(listener.notifies(timeout=1.0))
        with db.transaction() as s:  # an event written and rolled back notifies nobody
            upsert_customer(s, company_id, "C-1", legal_name="Kept")
        # Other tests' schemas in the same database notify on the same channel: only this schema's count.
        got = []
        for n in listener.notifies(timeout=WAIT_S):
            got.append(n.payload)
            if n.payload == schema:
                break
        assert schema in got
        with pytest.raises(RuntimeError), db.transaction() as s:
            upsert_customer(s, 1, "C-2", legal_name="Rolled back")
            s.flush()
            raise RuntimeError("rolled back")
        assert [n.payload for n in listener.notifies(timeout=1.0) if n.payload == schema] == []


def test_postgresql_install_notify_is_idempotent(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL's trigger")
    db.upgrade()
    db.upgrade()
    with db.reader() as s:
        triggers = s.execute(text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_event'::regclass "
                                  "AND NOT tgisinternal ORDER BY tgname")).scalars().all()
    # The notification's, and team mode's two (the actor and the sealed events), once each.
    assert triggers == ["ecms_audit_event_notify", "ecms_audit_events", "ecms_audit_sealed"], triggers


def test_postgresql_watcher_reconnects_after_its_connection_dropped(db: Database, watching: Running) -> None:
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL's listening connection")
    name = changes.listener_name(_schema(db))
    with db.reader() as s:
        killed = s.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE application_name = :name"), {"name": name}).scalar_one()
    assert killed == 1
    company_id = make_company(db)  # committed while the watcher has no connection, or after it listens again
    seen = watching.until("company.created")
    assert [c.company_id for c in seen if c.action == "company.created"] == [company_id]

