"""Opening the database: a local SQLite file by default or a shared PostgreSQL, schema by Alembic.

A database is refused with a clear message when it cannot be reached, when it is not an ECMS
database, or when a newer program has upgraded it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.exc import DatabaseError as SADatabaseError
from sqlalchemy.orm import Session, sessionmaker

from ecms_desktop import paths
from ecms_desktop.errors import DatabaseBusyError, DatabaseError
from ecms_desktop.services import user_files

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

#: How long a unit of work waits for another writer's lock before it gives up with
#: :class:`DatabaseBusyError` (SQLite's busy timeout; PostgreSQL's ``lock_timeout``). Writers hold
#: locks for short transactions only, so a wait this long means something else is wrong.
DEFAULT_LOCK_TIMEOUT_S = 20.0


def display_url(url: str) -> str:
    """The URL with any password hidden, for messages and window titles."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def normalize_url(url: str) -> str:
    """Accept a plain file path or ``postgresql://`` and return a full SQLAlchemy URL."""
    if "://" not in url:
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


class SchemaState(StrEnum):
    EMPTY = "empty"
    CURRENT = "current"
    OUTDATED = "outdated"
    NEWER = "newer"
    FOREIGN = "foreign"


@dataclass(frozen=True)
class SchemaInfo:
    state: SchemaState
    database_revisions: tuple[str, ...]
    program_heads: tuple[str, ...]
    tables: tuple[str, ...]


def _alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def program_heads() -> tuple[str, ...]:
    """The schema revisions this program knows as newest."""
    return tuple(sorted(ScriptDirectory.from_config(_alembic_config()).get_heads()))


class Database:
    """A connection pool to one ECMS database and the factory for its sessions.

    Use :meth:`transaction` for a unit of work that writes and :meth:`reader` for reads. One session
    per thread; sessions never cross threads.
    """

    def __init__(self, url: str | None = None, *, echo: bool = False,
                 lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.url = normalize_url(url or paths.default_database_url())
        #: Seconds a unit of work waits for another writer before :class:`DatabaseBusyError`.
        self.lock_timeout = lock_timeout
        self.display_url = display_url(self.url)
        try:
            sa_url = make_url(self.url)
        except ArgumentError as exc:
            raise DatabaseError(f"Not a database URL: {self.url!r} ({exc}).") from exc
        self.dialect = sa_url.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            database = sa_url.database or ""
            if database and database != ":memory:":
                parent = Path(database).expanduser().resolve().parent
                if not parent.exists():
                    raise DatabaseError(f"Cannot open {self.display_url}: the folder {parent} does not exist.")
                # Nothing but SQLite may open its files in this process (POSIX locks: see user_files).
                user_files.protect_database_file(self, Path(database).expanduser().resolve())
            kwargs["connect_args"] = {"timeout": lock_timeout}
            if database in ("", ":memory:"):
                kwargs["poolclass"] = None
        elif self.dialect == "postgresql":
            kwargs["pool_pre_ping"] = True
            # Every lock wait is bounded (row locks, the audit head, table locks); options given in
            # the URL (such as a search_path) are kept.
            options = " ".join(filter(None, [str(sa_url.query.get("options") or ""),
                                             f"-c lock_timeout={max(1, int(lock_timeout * 1000))}"]))
            kwargs["connect_args"] = {"connect_timeout": 10, "application_name": "ecms-desktop", "options": options}
        try:
            self.engine: Engine = create_engine(self.url, **{k: v for k, v in kwargs.items() if v is not None})
        except (ArgumentError, ImportError) as exc:
            raise DatabaseError(f"Cannot use {self.display_url}: {exc}") from exc
        if self.dialect == "sqlite":
            _configure_sqlite(self.engine, lock_timeout)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_engine = (
            self.engine.execution_options(ecms_write=True) if self.dialect == "sqlite" else self.engine
        )
        self._write_sessions = sessionmaker(self._write_engine, expire_on_commit=False)

    # -- schema -----------------------------------------------------------------------------------

    def schema_info(self) -> SchemaInfo:
        """What is in the database compared with what this program expects."""
        heads = program_heads()
        with self._connect() as conn:
            tables = tuple(sorted(inspect(conn).get_table_names()))
            if not tables:
                return SchemaInfo(SchemaState.EMPTY, (), heads, tables)
            if "alembic_version" not in tables or "certificate" not in tables:
                return SchemaInfo(SchemaState.FOREIGN, (), heads, tables)
            revs = tuple(sorted(MigrationContext.configure(conn).get_current_heads()))
        script = ScriptDirectory.from_config(_alembic_config())
        known = {rev.revision for rev in script.walk_revisions()}
        if any(rev not in known for rev in revs):
            return SchemaInfo(SchemaState.NEWER, revs, heads, tables)
        if set(revs) == set(heads):
            return SchemaInfo(SchemaState.CURRENT, revs, heads, tables)
        return SchemaInfo(SchemaState.OUTDATED, revs, heads, tables)

    def upgrade(self) -> SchemaInfo:
        """Create the schema in an empty database or upgrade an older ECMS one to this program's."""
        info = self.schema_info()
        self._refuse(info, allow_outdated=True)
        if info.state in (SchemaState.EMPTY, SchemaState.OUTDATED):
            with self._connect() as conn:
                command.upgrade(_alembic_config(conn), "heads")
                conn.commit()
        return self.schema_info()

    def ensure_ready(self, *, create: bool = True) -> SchemaInfo:
        """Check the schema before use: an empty database is created when ``create`` is true;
        anything but the current schema is refused with a message saying what to do."""
        info = self.schema_info()
        if info.state is SchemaState.EMPTY and create:
            return self.upgrade()
        self._refuse(info, allow_outdated=False)
        return info

    def _refuse(self, info: SchemaInfo, *, allow_outdated: bool) -> None:
        if info.state is SchemaState.FOREIGN:
            shown = ", ".join(info.tables[:6]) + (" ..." if len(info.tables) > 6 else "")
            raise DatabaseError(
                f"{self.display_url} is not an ECMS Desktop database (it holds other tables: {shown}). "
                "Choose another database or an empty one."
            )
        if info.state is SchemaState.NEWER:
            raise DatabaseError(
                f"{self.display_url} was upgraded by a newer version of ECMS Desktop "
                f"(schema {', '.join(info.database_revisions)}; this program knows up to "
                f"{', '.join(info.program_heads)}). Install the newer program to open it."
            )
        if info.state is SchemaState.EMPTY and not allow_outdated:
            raise DatabaseError(f"{self.display_url} is empty: run `ecms init` to create the ECMS schema.")
        if info.state is SchemaState.OUTDATED and not allow_outdated:
            raise DatabaseError(
                f"{self.display_url} has an older ECMS schema ({', '.join(info.database_revisions)}): "
                "run `ecms init` to upgrade it (back it up first)."
            )

    # -- sessions ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            self._raise_if_busy(exc)
            raise DatabaseError(f"Cannot reach {self.display_url}: {_first_line(exc)}") from exc
        except SADatabaseError as exc:
            if "file is not a database" in str(exc):
                raise DatabaseError(f"{self.display_url} is not a database file.") from exc
            raise

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work that writes: committed at the end, rolled back on any error."""
        session = self._write_sessions()
        try:
            with session.begin():
                yield session
        except OperationalError as exc:
            self._raise_if_busy(exc)
            raise DatabaseError(f"The database {self.display_url} failed: {_first_line(exc)}") from exc
        finally:
            session.close()

    @contextlib.contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """One connection for a long job that commits in several units of work (``with conn.begin():``,
        each begun IMMEDIATE on SQLite) and keeps something between them, such as temporary tables."""
        try:
            with self._write_engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            self._raise_if_busy(exc)
            raise DatabaseError(f"The database {self.display_url} failed: {_first_line(exc)}") from exc

    @contextlib.contextmanager
    def reader(self) -> Iterator[Session]:
        """A read-only session; whatever happens, nothing is committed."""
        session = self._sessions()
        try:
            yield session
        except OperationalError as exc:
            self._raise_if_busy(exc)
            raise DatabaseError(f"The database {self.display_url} failed: {_first_line(exc)}") from exc
        finally:
            session.rollback()
            session.close()

    def _raise_if_busy(self, exc: OperationalError) -> None:
        if is_busy_error(exc):
            raise DatabaseBusyError(
                f"The database {self.display_url} is busy: another program or desk has been writing to it "
                f"for more than {self.lock_timeout:g} s. Nothing was saved; try again in a moment."
            ) from exc

    def dispose(self) -> None:
        self.engine.dispose()


def is_busy_error(exc: BaseException) -> bool:
    """True when a database error means "another writer holds the lock" (SQLite ``database is
    locked``/``busy``; PostgreSQL ``lock_not_available`` from ``lock_timeout``)."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlstate", None) == "55P03":
        return True
    text = str(orig).lower()
    return "database is locked" in text or "database is busy" in text or "database table is locked" in text


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", exc) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _configure_sqlite(engine: Engine, lock_timeout: float) -> None:
    """Foreign keys on, WAL journal, and transactions that SQLAlchemy (not pysqlite) begins; a write
    unit of work begins IMMEDIATE so that two writers queue instead of failing half-way."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={max(1, int(lock_timeout * 1000))}")
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        except Exception:
            pass
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get("ecms_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def open_database(url: str | None = None, *, create: bool = True) -> Database:
    """Open and check a database; see :meth:`Database.ensure_ready`."""
    db = Database(url)
    try:
        db.ensure_ready(create=create)
    except Exception:
        db.dispose()
        raise
    return db
