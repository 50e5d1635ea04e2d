"""Opening databases: migrations on empty databases, refusal of foreign and newer ones, clear messages."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from ecms_desktop.models import Base
from ecms_desktop.services.core.database import (
    Database,
    SchemaState,
    display_url,
    normalize_url,
    open_database,
    program_heads,
)
from ecms_desktop.services.core.errors import DatabaseError
from tests.conftest import PG_URL


def test_migrations_create_exactly_the_models_schema(db) -> None:  # type: ignore[no-untyped-def]
    """The fixture database was built by running every Alembic migration; it must match the models."""
    assert db.schema_info().state is SchemaState.CURRENT
    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diffs == []


def test_empty_sqlite_file_is_created_and_reported_current(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.sqlite'}"
    db = Database(url)
    assert db.schema_info().state is SchemaState.MISSING
    with pytest.raises(DatabaseError, match="ecms init"):
        db.ensure_ready()
    info = db.upgrade()
    assert info.state is SchemaState.CURRENT
    assert set(info.database_revisions) == set(program_heads())
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    db.dispose()


def test_a_database_of_another_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    con.commit()
    con.close()
    with pytest.raises(DatabaseError, match=r"not an ECMS Desktop database.*invoices"):
        open_database(f"sqlite:///{path}")
    with pytest.raises(DatabaseError, match="not an ECMS Desktop database"):
        Database(f"sqlite:///{path}").upgrade()
    # nothing was added to the foreign database
    con = sqlite3.connect(path)
    assert [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")] == ["invoices"]
    con.close()


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"This is a text file, not SQLite. " * 100)
    with pytest.raises(DatabaseError, match="not a database file"):
        open_database(f"sqlite:///{path}")


def test_a_database_from_a_newer_program_is_refused(db_url: str) -> None:
    db = Database(db_url)
    with db.engine.begin() as conn:
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('9999_from_the_future')"))
    with pytest.raises(DatabaseError, match=r"newer version of ECMS Desktop.*9999_from_the_future"):
        db.ensure_ready()
    with pytest.raises(DatabaseError, match="newer version"):
        db.upgrade()
    db.dispose()


def test_an_older_schema_must_be_upgraded_explicitly(tmp_path: Path) -> None:
    from alembic import command

    from ecms_desktop.services.core.database import _alembic_config

    db = Database(f"sqlite:///{tmp_path / 'old.sqlite'}")
    with db.engine.connect() as conn:
        command.upgrade(_alembic_config(conn), "0001")
        conn.commit()
    if set(program_heads()) == {"0001"}:
        assert db.schema_info().state is SchemaState.CURRENT
    else:
        assert db.schema_info().state is SchemaState.OUTDATED
        with pytest.raises(DatabaseError, match=r"older ECMS schema.*ecms init"):
            db.ensure_ready()
        assert db.upgrade().state is SchemaState.CURRENT
    db.dispose()


def test_missing_folder_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DatabaseError, match="does not exist"):
        Database(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'x.sqlite'}")


def test_unreachable_postgresql_names_the_url_without_its_password() -> None:
    url = "postgresql+psycopg://ecms:s3cret-pw@127.0.0.1:1/ecms"
    with pytest.raises(DatabaseError) as info:
        open_database(url)
    message = str(info.value)
    assert "Cannot reach" in message and "127.0.0.1:1" in message
    assert "s3cret-pw" not in message and "***" in message


def test_urls_are_normalised_and_displayed_safely(tmp_path: Path) -> None:
    assert normalize_url(str(tmp_path / "a.sqlite")).startswith("sqlite:///")
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert "pw" not in display_url("postgresql+psycopg://u:pw@h/db")


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL run: set ECMS_TEST_DATABASE_URL to run this test")
def test_migrations_run_on_an_empty_postgresql_schema() -> None:
    import uuid

    from tests.conftest import _pg_schema_url

    schema = f"m_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        db = Database(_pg_schema_url(schema))
        assert db.schema_info().state is SchemaState.EMPTY
        assert db.upgrade().state is SchemaState.CURRENT
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                    Base.metadata) == []
        db.dispose()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_expression_indexes_for_the_grid_exist(db) -> None:  # type: ignore[no-untyped-def]
    """Alembic cannot compare expression indexes on SQLite, so check them by name on both backends."""
    from sqlalchemy import inspect

    with db.engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            names = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")}
        else:
            names = {ix["name"] for t in ("customer", "certificate") for ix in inspect(conn).get_indexes(t)}
    assert {"ix_customer_company_sort_name", "ix_certificate_company_numbers", "ix_certificate_company_status",
            "ix_certificate_customer_company"} <= names


def test_a_writer_waiting_on_another_writers_lock_gives_up_with_a_busy_error(db_url: str) -> None:
    """Every lock wait is bounded: a unit of work that cannot get the write lock (SQLite) or the audit
    head's row lock (PostgreSQL) within ``lock_timeout`` says the database is busy, and writes nothing."""
    from ecms_desktop.services.core import audit
    from ecms_desktop.services.core.database import Database
    from ecms_desktop.services.core.errors import DatabaseBusyError

    holder = Database(db_url)
    waiter = Database(db_url, lock_timeout=0.5)
    try:
        with holder.transaction() as session:
            audit.record(session, "test.holding", "test", 1)  # holds the write lock / the head row
            with pytest.raises(DatabaseBusyError, match=r"busy.*try again"), waiter.transaction() as other:
                audit.record(other, "test.waiting", "test", 2)
        with waiter.reader() as session:
            assert [e.action for e in audit.list_events(session)] == ["test.holding"]
    finally:
        holder.dispose()
        waiter.dispose()
