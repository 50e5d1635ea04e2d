"""Creating and upgrading a database through ``initialize_database``, the one way a database comes to be
(``ecms init`` and File > New database both call it): each is audited."""

from __future__ import annotations

import warnings
from pathlib import Path

from alembic import command

from ecms_desktop.services.core import audit
from ecms_desktop.services.core.database import Database, SchemaState, _alembic_config, program_heads
from ecms_desktop.services.core.database_setup import initialize_database


def test_a_database_created_through_the_service_starts_with_its_creation_event(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'new.sqlite'}")
    try:
        result = initialize_database(db)
        assert result.action == "created" and result.before.state is SchemaState.MISSING
        assert result.after.state is SchemaState.CURRENT
        db.ensure_ready()
        with db.reader() as s:
            events = audit.list_events(s)
            chain = audit.verify_chain(s)
        assert [e.action for e in events] == ["database.created"]
        created = events[0]
        assert (created.entity_type, created.entity_id) == ("database", "schema")
        assert created.before == {"revisions": []}
        assert set(created.after["revisions"]) == set(program_heads())
        assert chain.ok and chain.events == 1
    finally:
        db.dispose()


def test_initializing_a_current_database_again_records_nothing(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'again.sqlite'}")
    try:
        initialize_database(db)
        again = initialize_database(db)
        assert again.action == "current"
        with db.reader() as s:
            assert [e.action for e in audit.list_events(s)] == ["database.created"]
    finally:
        db.dispose()


def test_an_upgrade_is_audited_with_the_revisions_before_and_after(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'old.sqlite'}")
    try:
        with db.engine.connect() as conn:
            command.upgrade(_alembic_config(conn), "0001")
            conn.commit()
        result = initialize_database(db)
        if set(program_heads()) == {"0001"}:
            assert result.action == "current"
            return
        assert result.action == "upgraded"
        with db.reader() as s:
            events = audit.list_events(s)
        assert [e.action for e in events] == ["database.upgraded"]
        assert events[0].before == {"revisions": ["0001"]}
        assert set(events[0].after["revisions"]) == set(program_heads())
    finally:
        db.dispose()


def test_creating_a_database_warns_of_nothing_and_keeps_the_expression_indexes(tmp_path: Path) -> None:
    """The migrations' batch operations on SQLite reflect neighbouring tables, whose lower(...) indexes
    SQLAlchemy cannot reflect: `ecms init` printed that warning to whoever ran it."""
    db = Database(f"sqlite:///{tmp_path / 'quiet.sqlite'}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        initialize_database(db)
    assert [str(w.message) for w in caught] == []
    with db.engine.connect() as conn:
        names = set(conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'").scalars())
    assert {"ix_certificate_company_numbers", "ix_customer_company_sort_name"} <= names
    db.dispose()
