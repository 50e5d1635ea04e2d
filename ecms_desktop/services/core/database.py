"""Opening the database: a local SQLite file by default or a shared PostgreSQL, schema by Alembic.

A database is refused with a clear message when it cannot be reached, does not exist, is damaged,
is not an ECMS database, or when a newer program has upgraded it. Only :meth:`Database.upgrade`
(``ecms init``, File > New database) creates one. An SQLite file is looked at read-only (SQLite's
``immutable`` or ``mode=ro``) before anything else, so a file that is refused is never written to:
no journal-mode switch, no ``-wal``/``-shm`` files.

The write sessions keep the audit trail's tamper evidence: the state digests of every record a unit
of work changed (:mod:`~ecms_desktop.services.core.state_digest`) and the chain's head in the anchors file
(:mod:`~ecms_desktop.services.core.anchors`) around every commit that wrote events.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
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

import ecms_desktop
from ecms_desktop import paths
from ecms_desktop.services.core import (
    anchors,
    audit,
    notify,
    people,
    rules_in_force,
    state_digest,
    team_sql,
    user_files,
)
from ecms_desktop.services.core.errors import (
    DatabaseBusyError,
    DatabaseDamagedError,
    DatabaseError,
    DatabaseMissingError,
)

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(ecms_desktop.__file__).resolve().parent / "migrations"

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
    #: An SQLite file that does not exist (yet).
    MISSING = "missing"
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


def known_revisions() -> frozenset[str]:
    """Every schema revision this program knows."""
    return frozenset(rev.revision for rev in ScriptDirectory.from_config(_alembic_config()).walk_revisions())


def revisions_include(revisions: tuple[str, ...], wanted: str) -> bool:
    """Whether a database at ``revisions`` has had the migration ``wanted`` applied."""
    script = ScriptDirectory.from_config(_alembic_config())
    for rev in revisions:
        for ancestor in script.iterate_revisions(rev, "base"):
            if ancestor is not None and ancestor.revision == wanted:
                return True
    return False


class Database:
    """A connection pool to one ECMS database and the factory for its sessions.

    Use :meth:`transaction` for a unit of work that writes and :meth:`reader` for reads. One session
    per thread; sessions never cross threads.
    """

    def __init__(self, url: str | None = None, *, echo: bool = False,
                 lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S, keep_anchors: bool = True) -> None:
        self.url = normalize_url(url or paths.default_database_url())
        #: Seconds a unit of work waits for another writer before :class:`DatabaseBusyError`.
        self.lock_timeout = lock_timeout
        self.display_url = display_url(self.url)
        try:
            sa_url = make_url(self.url)
        except ArgumentError as exc:
            raise DatabaseError(f"Not a database URL: {self.url!r} ({exc}).") from exc
        self.dialect = sa_url.get_backend_name()
        #: The SQLite file (None for a server or an in-memory database).
        self.path: Path | None = None
        #: This database's name in the anchors file; None: no anchors are kept (a scratch copy).
        self.anchor_key: str | None = anchors.database_key(self.url) if keep_anchors else None
        kwargs: dict[str, Any] = {"echo": echo}
        if self.dialect == "sqlite":
            database = sa_url.database or ""
            if database and database != ":memory:":
                self.path = Path(database).expanduser().resolve()
                parent = self.path.parent
                if not parent.exists():
                    raise DatabaseError(f"Cannot open {self.display_url}: the folder {parent} does not exist.")
                # Nothing but SQLite may open its files in this process (POSIX locks: see user_files).
                user_files.protect_database_file(self, self.path)
            else:
                self.anchor_key = None  # an in-memory database lives and dies with this object
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
        #: Who this program acts as on this database (see :mod:`~ecms_desktop.services.core.people`).
        self.actor_box = people.ActorBox(self.dialect, anchors.database_key(self.url))
        self._sessions = sessionmaker(self.engine, expire_on_commit=False,
                                      info={people.ACTOR_KEY: self.actor_box})
        self._write_engine = (
            self.engine.execution_options(ecms_write=True) if self.dialect == "sqlite" else self.engine
        )
        # The anchor key travels in each session's info: the listeners hold no reference to this
        # object, which is freed like any other once its owner lets it go.
        self._write_sessions = sessionmaker(self._write_engine, expire_on_commit=False,
                                            info={_ANCHOR_KEY: self.anchor_key, people.ACTOR_KEY: self.actor_box})
        state_digest.install(self._write_sessions)
        if self.anchor_key is not None:
            event.listen(self._write_sessions, "before_commit", _anchor_before_commit)
            event.listen(self._write_sessions, "after_commit", _anchor_after_commit)
            event.listen(self._write_sessions, "after_rollback", _anchor_after_rollback)

    # -- schema -----------------------------------------------------------------------------------

    def schema_info(self) -> SchemaInfo:
        """What is in the database compared with what this program expects. An SQLite file is read
        without writing anything to it; one that is not a database or is damaged is refused here."""
        heads = program_heads()
        if self.path is not None:
            found = _probe_sqlite_file(self.path, self.display_url)
            if found is None:
                return SchemaInfo(SchemaState.MISSING, (), heads, ())
            tables, revs = found
            if not tables:
                return SchemaInfo(SchemaState.EMPTY, (), heads, tables)
            if "alembic_version" not in tables or "certificate" not in tables:
                return SchemaInfo(SchemaState.FOREIGN, (), heads, tables)
        else:
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
        """Create the schema in a new or empty database or upgrade an older ECMS one to this program's
        (``ecms init`` and File > New database call it through
        :func:`~ecms_desktop.services.core.database_setup.initialize_database`, which audits it)."""
        info = self.schema_info()
        self._refuse(info, allow_outdated=True)
        if info.state in (SchemaState.MISSING, SchemaState.EMPTY, SchemaState.OUTDATED):
            self._refuse_read_only(creating=info.state is SchemaState.MISSING)
            with self._connect() as conn:
                command.upgrade(_alembic_config(conn), "heads")
                conn.commit()
        if self.dialect == "postgresql":
            # What the database enforces for a team (roles, the audit actor) and the notification other
            # desks learn of each commit by (services/core/changes.py): brought up to date each time.
            with self._connect() as conn:
                team_sql.install(conn)
                notify.install_notify(conn)
                conn.commit()
        with self.reader() as s:
            rules_in_force.activate(s)
        return self.schema_info()

    def ensure_ready(self) -> SchemaInfo:
        """Check the database before use: anything but an ECMS database with this program's schema
        (a missing file, an empty or foreign database, an older or newer schema) is refused with a
        message saying what to do. Nothing is created or written here. The database's rules pack is made
        the one in force (:func:`~ecms_desktop.services.core.rules_in_force.activate`)."""
        info = self.schema_info()
        self._refuse(info, allow_outdated=False)
        self._refuse_read_only(creating=False)
        with self.reader() as s:
            rules_in_force.activate(s)
        return info

    def _refuse_read_only(self, *, creating: bool) -> None:
        if self.path is None:
            return
        folder_ok = os.access(self.path.parent, os.W_OK)
        if creating and not folder_ok:
            raise DatabaseError(f"Cannot create {self.display_url}: the folder {self.path.parent} is read-only.")
        if not creating and not (os.access(self.path, os.W_OK) and folder_ok):
            raise DatabaseError(
                f"{self.display_url} is read-only (the file or its folder): ECMS Desktop writes to its "
                "database, since every action goes into the audit trail. Make it writable, or open a copy.")

    def _refuse(self, info: SchemaInfo, *, allow_outdated: bool) -> None:
        if info.state is SchemaState.MISSING and not allow_outdated:
            raise DatabaseMissingError(
                f"{self.display_url} does not exist. Check the path (a mistyped name would be a new, empty "
                "database); `ecms init` (or File > New database) creates a new database.")
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
            raise DatabaseError(f"{self.display_url} is an empty database, not an ECMS one: run `ecms init` "
                                "to create the ECMS schema in it.")
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
            self._raise_if_damaged(exc)
            raise DatabaseError(f"Cannot reach {self.display_url}: {_first_line(exc)}") from exc
        except SADatabaseError as exc:
            self._raise_if_damaged(exc)
            raise

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Session]:
        """A unit of work that writes: committed at the end, rolled back on any error."""
        session = self._write_sessions()
        try:
            with session.begin():
                # Who acts is settled first: an unknown login or a disabled person is told so, not refused
                # a table by the database halfway through.
                people.actor_of(session)
                yield session
        except OperationalError as exc:
            self._raise_if_busy(exc)
            self._raise_if_damaged(exc)
            raise DatabaseError(f"The database {self.display_url} failed: {_first_line(exc)}") from exc
        except SADatabaseError as exc:
            self._raise_if_damaged(exc)
            _raise_if_refused(exc)
            raise
        finally:
            session.close()

    def actor(self) -> people.Actor:
        """The person this program acts as here (raises :class:`~ecms_desktop.services.core.people.
        PermissionDeniedError` when the login or profile is not an active person)."""
        with self.reader() as s:
            return people.actor_of(s)

    def act_as(self, profile: str | None) -> people.Actor:
        """Act as the local profile ``profile`` from now on (SQLite; on PostgreSQL the login decides and
        this only checks it): the person, or :class:`PermissionDeniedError` naming the profiles."""
        self.actor_box.choose(profile if self.dialect == "sqlite" else None)
        return self.actor()

    @contextlib.contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """One connection for a long job that commits in several units of work (``with conn.begin():``,
        each begun IMMEDIATE on SQLite) and keeps something between them, such as temporary tables."""
        try:
            with self._write_engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            self._raise_if_busy(exc)
            self._raise_if_damaged(exc)
            raise DatabaseError(f"The database {self.display_url} failed: {_first_line(exc)}") from exc
        except SADatabaseError as exc:
            self._raise_if_damaged(exc)
            _raise_if_refused(exc)
            raise

    @contextlib.contextmanager
    def reader(self) -> Iterator[Session]:
        """A read-only session; whatever happens, nothing is committed."""
        session = self._sessions()
        try:
            yield session
        except OperationalError as exc:
            self._raise_if_busy(exc)
            self._raise_if_damaged(exc)
            raise DatabaseError(f"The database {self.display_url} failed: {_first_line(exc)}") from exc
        except SADatabaseError as exc:
            self._raise_if_damaged(exc)
            raise
        finally:
            with contextlib.suppress(SADatabaseError):
                session.rollback()
            session.close()

    def _raise_if_damaged(self, exc: BaseException) -> None:
        if is_damage_error(exc):
            raise DatabaseDamagedError(damaged_message(self.display_url, _first_line(exc))) from exc

    def _raise_if_busy(self, exc: OperationalError) -> None:
        if is_busy_error(exc):
            raise DatabaseBusyError(
                f"The database {self.display_url} is busy: another program or desk has been writing to it "
                f"for more than {self.lock_timeout:g} s. Nothing was saved; try again in a moment."
            ) from exc

    def dispose(self) -> None:
        self.engine.dispose()


_ANCHOR_KEY = "ecms_anchor_key"
_PENDING = "ecms_pending_anchor"


def _anchor_before_commit(session: Session) -> None:
    """Write this unit of work's head to the anchors file as pending, just before its commit."""
    if session.in_nested_transaction():
        return
    head = audit.last_event_of(session)
    key = session.info.get(_ANCHOR_KEY)
    if head is not None and key is not None:
        session.info[_PENDING] = head
        anchors.AnchorBook().add(key, head[0], head[1], "write", pending=True)


def _anchor_after_commit(session: Session) -> None:
    head = session.info.pop(_PENDING, None)
    key = session.info.get(_ANCHOR_KEY)
    if head is not None and key is not None:
        anchors.AnchorBook().confirm(key, head[0], head[1])


def _anchor_after_rollback(session: Session) -> None:
    head = session.info.pop(_PENDING, None)
    key = session.info.get(_ANCHOR_KEY)
    if head is not None and key is not None:
        anchors.AnchorBook().discard(key, head[0], head[1])


def _raise_if_refused(exc: SADatabaseError) -> None:
    """A change the database refused to this login (PostgreSQL ``insufficient_privilege``: a table it may
    not write, or a transition its person's role does not allow, see ``team_sql``) as the user's error."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "42501":
        diag = getattr(orig, "diag", None)
        primary = getattr(diag, "message_primary", None) or _first_line(exc)
        raise people.PermissionDeniedError(f"The database refused this change: {primary.removeprefix('ECMS: ')}") \
            from exc


def is_busy_error(exc: BaseException) -> bool:
    """True when a database error means "another writer holds the lock" (SQLite ``database is
    locked``/``busy``; PostgreSQL ``lock_not_available`` from ``lock_timeout``)."""
    orig = getattr(exc, "orig", exc)
    if getattr(orig, "sqlstate", None) == "55P03":
        return True
    text = str(orig).lower()
    return "database is locked" in text or "database is busy" in text or "database table is locked" in text


_DAMAGE_NAMES = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
#: PostgreSQL: data_corrupted, index_corrupted.
_DAMAGE_STATES = ("XX001", "XX002")


def is_damage_error(exc: BaseException) -> bool:
    """True when a database error means the database itself is damaged (SQLite ``database disk image
    is malformed``, ``file is not a database``; PostgreSQL ``data_corrupted``)."""
    orig = getattr(exc, "orig", None) or exc
    name = str(getattr(orig, "sqlite_errorname", "") or "")
    if name.startswith(_DAMAGE_NAMES):
        return True
    if getattr(orig, "sqlstate", None) in _DAMAGE_STATES:
        return True
    text = str(orig).lower()
    return "database disk image is malformed" in text or "file is not a database" in text


def damaged_message(shown: str, detail: str) -> str:
    return (f"The database {shown} is damaged ({detail}). Nothing more was written to it. Restore it from "
            "your latest backup (`ecms restore BACKUP_FILE`, made with `ecms backup`), or ask whoever looks "
            "after your data; keep the damaged file for them.")


def _probe_sqlite_file(path: Path, shown: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """The tables and Alembic revisions of an SQLite file, read without writing anything to it (None:
    there is no such file). Only SQLite itself opens the file: a plain open and close of a database
    file would drop the POSIX locks other connections of this process hold on it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DatabaseError(f"Cannot open {shown}: {exc.strerror or exc}.") from exc
    if stat.S_ISDIR(st.st_mode):
        raise DatabaseError(f"{shown} is a folder, not a database file.")
    if not stat.S_ISREG(st.st_mode):
        raise DatabaseError(f"{shown} is not a regular file (a device, a pipe or a socket), not a database.")
    if not os.access(path, os.R_OK):
        raise DatabaseError(f"{shown} cannot be read: permission denied.")
    if st.st_size == 0:
        return (), ()
    # While a -wal file exists another program may have the database open (or left it so): read it
    # with mode=ro, which reads the WAL's commits too. Otherwise read the file as immutable: no lock,
    # no journal, no -shm (mode=ro would create -wal and -shm files beside a WAL-mode database).
    live = Path(f"{path}-wal").exists()
    uri = f"{path.as_uri()}?{'mode=ro' if live else 'immutable=1'}"
    try:
        con = sqlite3.connect(uri, uri=True, timeout=DEFAULT_LOCK_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise DatabaseError(f"Cannot open {shown}: {exc}.") from exc
    try:
        tables = tuple(sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")))
        revs: tuple[str, ...] = ()
        if "alembic_version" in tables:
            revs = tuple(sorted(r[0] for r in con.execute("SELECT version_num FROM alembic_version")))
        return tables, revs
    except sqlite3.DatabaseError as exc:
        if is_damage_error(exc) and getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
            raise DatabaseError(f"{shown} is not a database file (ECMS Desktop databases are SQLite files "
                                "or a PostgreSQL server); nothing was written to it.") from exc
        if is_damage_error(exc):
            raise DatabaseDamagedError(damaged_message(shown, str(exc))) from exc
        if is_busy_error(exc):
            raise DatabaseBusyError(f"{shown} is locked by another program; try again in a moment.") from exc
        raise DatabaseError(f"Cannot read {shown}: {exc}.") from exc
    finally:
        con.close()


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


def open_database(url: str | None = None) -> Database:
    """Open and check an existing ECMS database; see :meth:`Database.ensure_ready` (nothing is created:
    :func:`~ecms_desktop.services.core.database_setup.initialize_database` does that)."""
    db = Database(url)
    try:
        db.ensure_ready()
    except Exception:
        db.dispose()
        raise
    return db
