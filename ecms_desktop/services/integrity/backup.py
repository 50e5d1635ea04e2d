"""Backup and restore (``ecms backup FILE``, ``ecms restore FILE``, File > Back up…).

A copy of a WAL database's file while a program has it open misses the commits still in the WAL, so
a backup is never a file copy:

- **SQLite**: SQLite's online backup API copies the database page by page inside one read
  transaction, so the copy is one consistent moment even while other desks keep writing (they are not
  blocked). The copy is a plain SQLite file in rollback-journal mode with an ``ecms_backup`` table
  saying what it is, from where, when and its audit-chain head.
- **PostgreSQL**: ``pg_dump --format=custom`` of the ECMS schema, in a snapshot this program exports,
  so that the check below reads exactly what was dumped.

Every backup is checked (``ecms check``: the copy for SQLite, the dumped snapshot for PostgreSQL); its
head is written into the anchors file, and the backup itself is audited in the database.

Restore refuses a file that is not an ECMS backup, or comes from a newer program, or fails its check,
and never replaces a database without the caller's confirmation. The database it replaces is kept
(``<name>.before-restore-<time>``). On SQLite the backup is checked as a scratch copy first and then
written into the database with the backup API in one write transaction, so a desk that has the
database open meanwhile simply sees the restored data at its next read (its edits made from the old
data are refused by the usual version check); on PostgreSQL ``pg_restore --single-transaction``
replaces the schema's tables at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import sqlite3
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from ecms_desktop import __version__
from ecms_desktop.services.core import audit, user_files
from ecms_desktop.services.core.anchors import Anchor, AnchorBook
from ecms_desktop.services.core.database import (
    Database,
    SchemaState,
    damaged_message,
    is_busy_error,
    is_damage_error,
    known_revisions,
)
from ecms_desktop.services.core.database_setup import initialize_database
from ecms_desktop.services.core.errors import (
    Cancelled,
    DatabaseBusyError,
    DatabaseError,
    EcmsError,
    Problem,
    ValidationError,
)
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.integrity.backup_format import (
    FORMAT,
    INFO_TABLE,
    BackupFormatError,
    BackupInfo,
    describe_backup,
    pg_tool,
)
from ecms_desktop.services.integrity.check import CheckReport, check_database

#: Pages copied per step of SQLite's backup (progress and Cancel between steps).
_PAGES_PER_STEP = 1024


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    sha256: str
    head_seq: int
    head_hash: str
    check: CheckReport


@dataclass(frozen=True)
class RestoreResult:
    database: str
    backup: BackupInfo
    #: Where the database that was replaced is kept (None: there was none).
    previous: Path | None
    head_seq: int
    check: CheckReport


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_target(db: Database, target: Path, overwrite: bool) -> Path:
    target = target.expanduser().resolve()
    found = user_files.database_file_kind(target)
    if found is not None or (db.path is not None and target in (db.path, Path(f"{db.path}-wal"),
                                                                 Path(f"{db.path}-shm"))):
        what, base = found or ("database file", db.path)
        raise ValidationError(f"{target} is the {what} of the database in use ({base}): choose another file "
                              "for the backup.")
    if target.is_dir():
        raise ValidationError(f"{target} is a folder: give the backup's file name.")
    if not target.parent.is_dir():
        raise ValidationError(f"Cannot write {target}: the folder {target.parent} does not exist.")
    if target.exists() and not overwrite:
        raise ValidationError(f"{target} already exists: choose another name, or allow replacing it "
                              "(`ecms backup FILE --overwrite`).")
    return target


def backup_database(db: Database, target: Path, *, overwrite: bool = False, progress: Progress | None = None,
                    cancel: CancelCheck | None = None) -> BackupResult:
    """Write a consistent, checked backup of ``db`` to ``target`` (see the module docstring)."""
    if db.dialect == "sqlite" and db.path is None:
        raise DatabaseError("An in-memory database cannot be backed up.")
    target = _check_target(db, target, overwrite)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        if db.dialect == "sqlite":
            head, report = _backup_sqlite(db, partial, progress, cancel)
        elif db.dialect == "postgresql":
            head, report = _backup_pg(db, partial, progress, cancel)
        else:
            raise DatabaseError(f"Backups of {db.dialect} databases are not supported.")
        if cancel is not None and cancel():
            raise Cancelled("The backup was cancelled; no file was written.")
        with partial.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    size, sha = target.stat().st_size, _sha256_file(target)
    if db.anchor_key is not None:
        AnchorBook().add(db.anchor_key, head[0], head[1], "backup")
    with db.transaction() as s:
        audit.record(s, "database.backed_up", "database", "backup",
                     after={"file": str(target), "size": size, "sha256": sha},
                     details={"head_seq": head[0], "head_hash": head[1], "check_ok": report.ok,
                              "problems": len(report.problems) + report.unlisted})
    return BackupResult(target, size, sha, head[0], head[1], report)


def _sqlite_connect(path: Path, **kwargs: Any) -> sqlite3.Connection:
    con = sqlite3.connect(str(path), timeout=30, isolation_level=None, **kwargs)
    con.execute("PRAGMA busy_timeout = 30000")
    return con


def _backup_sqlite(db: Database, partial: Path, progress: Progress | None, cancel: CancelCheck | None
                   ) -> tuple[tuple[int, str], CheckReport]:
    assert db.path is not None
    local = AnchorBook().anchors(db.anchor_key) if db.anchor_key else []
    src = _sqlite_connect(db.path)
    try:
        # One read transaction for the whole copy: the backup API then copies this snapshot page by
        # page while other connections go on committing (in WAL mode they are not blocked).
        src.execute("BEGIN")
        head = src.execute("SELECT last_seq, last_hash FROM audit_head WHERE id = 1").fetchone() or (0, "0" * 64)
        dst = sqlite3.connect(str(partial))
        try:
            def step(_status: int, remaining: int, total: int) -> None:
                if cancel is not None and cancel():
                    raise Cancelled("The backup was cancelled; no file was written.")
                if progress is not None:
                    progress(total - remaining, total, f"Copying the database ({total - remaining:,} of "
                             f"{total:,} pages)")

            src.backup(dst, pages=_PAGES_PER_STEP, progress=step)
        finally:
            dst.close()
        src.execute("ROLLBACK")
    except sqlite3.DatabaseError as exc:
        _raise_sqlite(db, exc)
        raise
    finally:
        src.close()
    head = (int(head[0]), str(head[1]))
    # Check the copy itself: it is what a restore would bring back.
    copy = Database(f"sqlite:///{partial}", keep_anchors=False)
    try:
        held = [a for a in local if not a.pending and a.seq <= head[0]]
        report = check_database(copy, anchors=held, progress=progress, cancel=cancel)
    finally:
        copy.dispose()
    info = {"format": FORMAT, "program_version": __version__, "taken_at": dt.datetime.now(dt.UTC).isoformat(
        timespec="seconds"), "source": db.display_url, "head_seq": str(head[0]), "head_hash": head[1],
        "check": "ok" if report.ok else f"{len(report.problems) + report.unlisted} problems"}
    con = sqlite3.connect(str(partial), isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        con.execute(f"CREATE TABLE {INFO_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        con.executemany(f"INSERT INTO {INFO_TABLE} (key, value) VALUES (?, ?)", sorted(info.items()))
    finally:
        con.close()
    return head, report


def _raise_sqlite(db: Database, exc: BaseException) -> None:
    if is_damage_error(exc):
        raise DatabaseError(damaged_message(db.display_url, str(exc))) from exc
    if is_busy_error(exc):
        raise DatabaseBusyError(f"The database {db.display_url} is busy; try the backup again in a moment.") from exc


# -- PostgreSQL ------------------------------------------------------------------------------------


def _pg_env(db: Database) -> dict[str, str]:
    """libpq's environment for the database (the password never goes on a command line)."""
    u = make_url(db.url)
    env = dict(os.environ)
    for key, value in (("PGHOST", u.host), ("PGPORT", u.port), ("PGUSER", u.username), ("PGPASSWORD", u.password),
                       ("PGDATABASE", u.database)):
        if value:
            env[key] = str(value)
    options = str(u.query.get("options") or "")
    env["PGOPTIONS"] = " ".join(filter(None, [options, f"-c lock_timeout={max(1, int(db.lock_timeout * 1000))}"]))
    env["PGCONNECT_TIMEOUT"] = "10"
    return env


def _need_tool(name: str) -> str:
    tool = pg_tool(name)
    if tool is None:
        raise DatabaseError(f"{name} (PostgreSQL's client tools) is not installed here: install the PostgreSQL "
                            f"client of the server's version, or set ECMS_PG_BIN to the folder holding {name}.")
    return tool


@dataclass(frozen=True)
class _PgRun:
    """A PostgreSQL client tool run: the process and the lines of its standard error, read as they come."""

    proc: subprocess.Popen[str]
    errors: list[str]

    def failure(self, name: str) -> str:
        """What went wrong, in the tool's own words (its last error lines)."""
        errors = [line for line in self.errors if "error" in line.lower()] or self.errors[-3:]
        return f"{name} failed (exit status {self.proc.returncode}): " + " / ".join(errors[-3:])


@contextlib.contextmanager
def _pg_process(args: list[str], env: dict[str, str], cancel: CancelCheck | None,
                on_line: Callable[[str], None] | None = None) -> Iterator[_PgRun]:
    proc = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line.rstrip())
            if on_line is not None:
                on_line(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield _PgRun(proc, lines)
        while proc.poll() is None:
            if cancel is not None and cancel():
                proc.terminate()
                proc.wait(30)
                raise Cancelled("Cancelled; nothing was changed.")
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(5)


def _backup_pg(db: Database, partial: Path, progress: Progress | None, cancel: CancelCheck | None
               ) -> tuple[tuple[int, str], CheckReport]:
    tool = _need_tool("pg_dump")
    local = AnchorBook().anchors(db.anchor_key) if db.anchor_key else []
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            # The dump and the check read one snapshot: pg_dump takes the one this transaction exports.
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
            head_row = conn.execute(text("SELECT last_seq, last_hash FROM audit_head WHERE id = 1")).first()
            head = (int(head_row[0]), str(head_row[1])) if head_row else (0, "0" * 64)
            tables = int(conn.exec_driver_sql(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()").scalar_one())
            dumped = [0]

            def line(text_line: str) -> None:
                if "dumping contents of table" in text_line:
                    dumped[0] += 1
                    if progress is not None:
                        progress(dumped[0], tables, f"Dumping table {dumped[0]} of {tables}")

            args = [tool, "--format=custom", f"--file={partial}", f"--schema={schema}", f"--snapshot={snapshot}",
                    "--verbose", "--no-password"]
            with _pg_process(args, _pg_env(db), cancel, line) as run:
                held = [a for a in local if not a.pending and a.seq <= head[0]]
                report = check_database(db, anchors=held, connection=conn, local_anchors=False, cancel=cancel)
            if run.proc.returncode != 0:
                raise DatabaseError(run.failure("pg_dump"))
    return head, report


# -- restore ---------------------------------------------------------------------------------------


def describe_restore(target: Database, source: Path) -> BackupInfo:
    """Check that ``source`` can be restored into ``target`` (an ECMS backup of the same kind, not from a
    newer program) and say what it holds; raises :class:`ValidationError` with the reason otherwise."""
    try:
        info = describe_backup(source)
    except BackupFormatError as exc:
        raise ValidationError(f"{source}: {exc} Nothing was restored.") from exc
    if info.kind != target.dialect:
        raise ValidationError(f"{source} is a {info.kind} backup; it cannot be restored into the {target.dialect} "
                              f"database {target.display_url}.")
    unknown = [r for r in info.revisions if r not in known_revisions()]
    if unknown:
        raise ValidationError(f"{source} was made by a newer version of ECMS Desktop (schema {', '.join(unknown)}): "
                              "install the newer program to restore it. Nothing was restored.")
    return info


def restore_database(target_url: str, source: Path, *, replace: bool = False, progress: Progress | None = None,
                     cancel: CancelCheck | None = None) -> RestoreResult:
    """Restore the backup ``source`` into the database at ``target_url`` (see the module docstring).
    An existing database is replaced only with ``replace`` (the caller has asked the user)."""
    db = Database(target_url)
    try:
        info = describe_restore(db, source)
        if db.dialect == "sqlite":
            return _restore_sqlite(db, source, info, replace, progress, cancel)
        return _restore_pg(db, source, info, replace, progress, cancel)
    finally:
        db.dispose()


def _refuse_without_confirmation(db: Database, replace: bool) -> SchemaState | None:
    """The target's state; refuses a foreign database, and any database without ``replace``."""
    try:
        state = db.schema_info().state
    except EcmsError:
        state = None  # damaged or unreadable: replaced (and kept aside) with confirmation only
    if state is SchemaState.FOREIGN:
        raise ValidationError(f"{db.display_url} holds another program's data: a restore never replaces it. "
                              "Choose another place for the restored database.")
    if state not in (SchemaState.MISSING, SchemaState.EMPTY) and not replace:
        raise ValidationError(f"{db.display_url} exists: restoring replaces it (it is kept aside first). Confirm "
                              "with `ecms restore FILE --yes`. Nothing was restored.")
    return state


def _restore_sqlite(db: Database, source: Path, info: BackupInfo, replace: bool, progress: Progress | None,
                    cancel: CancelCheck | None) -> RestoreResult:
    assert db.path is not None
    target = db.path
    state = _refuse_without_confirmation(db, replace)
    scratch = target.with_name(f".{target.name}.restore-{os.getpid()}.sqlite")
    try:
        # 1. a scratch copy of the backup: made current, checked, and the restore recorded in it
        src = sqlite3.connect(f"{source.resolve().as_uri()}?immutable=1", uri=True)
        try:
            dst = sqlite3.connect(str(scratch))
            try:
                src.backup(dst)
                dst.execute(f"DROP TABLE {INFO_TABLE}")
                dst.commit()
            finally:
                dst.close()
        except sqlite3.DatabaseError as exc:
            raise ValidationError(f"{source}: the backup is damaged ({exc}). Nothing was restored.") from exc
        finally:
            src.close()
        work = Database(f"sqlite:///{scratch}", keep_anchors=False)
        try:
            initialize_database(work)
            if progress is not None:
                progress(0, 0, "Checking the backup")
            report = check_database(work, anchors=[Anchor(info.head_seq, info.head_hash, "backup", info.taken_at,
                                                          where=str(source))], progress=progress, cancel=cancel)
            if not report.ok:
                raise ValidationError(f"{source} fails its check, so it was not restored:",
                                      [Problem(str(p)) for p in report.problems])
            previous_head = _head_of_file(target) if state is not None and state is not SchemaState.MISSING else None
            with work.transaction() as s:
                audit.record(s, "database.restored", "database", "restore",
                             after={"file": str(source), "backup_taken_at": info.taken_at,
                                    "backup_head_seq": info.head_seq, "backup_head_hash": info.head_hash},
                             details={"into": db.display_url, "replaced_head": previous_head})
            with work.reader() as s:
                head = audit.head_of(s)
        finally:
            work.dispose()
        if cancel is not None and cancel():
            raise Cancelled("The restore was cancelled; nothing was changed.")
        # 2. keep the database being replaced, then put the restored one in its place
        previous: Path | None = None
        if state is None or state is not SchemaState.MISSING:
            previous = _keep_previous(target, readable=state is not None)
        if not target.exists():
            os.replace(scratch, target)
        else:
            src = sqlite3.connect(str(scratch))
            dst = _sqlite_connect(target)
            try:
                src.backup(dst)  # one write transaction; other connections see the result at their next read
            except sqlite3.DatabaseError as exc:
                _raise_sqlite(db, exc)
                raise
            finally:
                dst.close()
                src.close()
    finally:
        for leftover in (scratch, Path(f"{scratch}-wal"), Path(f"{scratch}-shm"), Path(f"{scratch}-journal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    if db.anchor_key is not None:
        book = AnchorBook()
        book.supersede(db.anchor_key, f"restored from {source}")
        book.add(db.anchor_key, head[0], head[1], "restore")
    return RestoreResult(db.display_url, info, previous, head[0], report)


def _head_of_file(path: Path) -> int | None:
    try:
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
        try:
            row = con.execute("SELECT last_seq FROM audit_head WHERE id = 1").fetchone()
            return int(row[0]) if row else 0
        finally:
            con.close()
    except sqlite3.Error:
        return None


def _keep_previous(target: Path, *, readable: bool) -> Path:
    """Keep the database about to be replaced beside it: a consistent copy through SQLite when it can be
    read, else the damaged file itself (moved aside with its -wal)."""
    kept = target.with_name(f"{target.name}.before-restore-{_stamp()}")
    if readable:
        src = _sqlite_connect(target)
        dst = sqlite3.connect(str(kept))
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = DELETE")
            return kept
        except sqlite3.DatabaseError:
            pass  # damaged after all: moved aside below
        finally:
            dst.close()
            src.close()
        with contextlib.suppress(FileNotFoundError):
            kept.unlink()
    os.replace(target, kept)
    for suffix in ("-wal", "-shm"):
        side = Path(f"{target}{suffix}")
        if side.exists():
            os.replace(side, Path(f"{kept}{suffix}"))
    return kept


def _restore_pg(db: Database, source: Path, info: BackupInfo, replace: bool, progress: Progress | None,
                cancel: CancelCheck | None) -> RestoreResult:
    tool = _need_tool("pg_restore")
    with db.engine.connect() as conn:
        schema = conn.exec_driver_sql("SELECT current_schema()").scalar()
    if schema is None:
        raise ValidationError(f"{db.display_url} has no schema to restore into (its search_path names none that "
                              "exists); create it first.")
    if info.schema != schema:
        raise ValidationError(f"{source} holds the schema {info.schema!r}, but {db.display_url} uses {schema!r}: "
                              "pg_restore restores a schema under its own name. Use a database URL whose "
                              f"search_path is {info.schema}.")
    state = _refuse_without_confirmation(db, replace)
    previous: Path | None = None
    if state in (SchemaState.CURRENT, SchemaState.OUTDATED, SchemaState.NEWER):
        previous = source.resolve().with_name(f"before-restore-{schema}-{_stamp()}.dump")
        if progress is not None:
            progress(0, 0, "Keeping the database being replaced")
        with _pg_process([_need_tool("pg_dump"), "--format=custom", f"--file={previous}", f"--schema={schema}",
                          "--no-password"], _pg_env(db), cancel) as run:
            pass
        if run.proc.returncode != 0:
            raise DatabaseError(run.failure("pg_dump") + " Nothing was restored.")
    # Every entry of the archive but the schema itself (it exists, and may hold other objects).
    listing = subprocess.run([tool, "--list", str(source)], capture_output=True, text=True, check=True).stdout
    entries = [line for line in listing.splitlines()
               if not re.match(r"^\d+; \d+ \d+ (SCHEMA|COMMENT - SCHEMA|ACL - SCHEMA) ", line)]
    list_file = source.resolve().with_name(f".{source.name}.{os.getpid()}.list")
    list_file.write_text("\n".join(entries) + "\n", encoding="utf-8")
    try:
        if progress is not None:
            progress(0, 0, "Restoring")
        args = [tool, "--clean", "--if-exists", "--single-transaction", "--exit-on-error", "--no-owner",
                "--no-privileges", f"--use-list={list_file}", f"--dbname={make_url(db.url).database}",
                "--no-password", str(source)]
        with _pg_process(args, _pg_env(db), cancel) as run:
            pass
        if run.proc.returncode != 0:
            raise DatabaseError(run.failure("pg_restore") + " Nothing was restored (one transaction).")
    finally:
        list_file.unlink(missing_ok=True)
    fresh = Database(db.url)
    try:
        initialize_database(fresh)
        with fresh.transaction() as s:
            audit.record(s, "database.restored", "database", "restore",
                         after={"file": str(source), "backup_taken_at": info.taken_at,
                                "backup_head_seq": info.head_seq, "backup_head_hash": info.head_hash},
                         details={"into": db.display_url})
        with fresh.reader() as s:
            head = audit.head_of(s)
        if fresh.anchor_key is not None:
            book = AnchorBook()
            book.supersede(fresh.anchor_key, f"restored from {source}")
            book.add(fresh.anchor_key, head[0], head[1], "restore")
        report = check_database(fresh, anchors=[Anchor(info.head_seq, info.head_hash, "backup", info.taken_at,
                                                       where=str(source))], progress=progress, cancel=cancel)
    finally:
        fresh.dispose()
    return RestoreResult(db.display_url, info, previous, head[0], report)
