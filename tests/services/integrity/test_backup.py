"""Backup and restore: a consistent snapshot while another process commits, checked; restore refuses what
is not an ECMS backup, comes from a newer program or fails its check, asks before replacing, keeps the
database it replaces, and is safe while another process has the database open."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core.database import Database, open_database
from ecms_desktop.services.core.database_setup import initialize_database
from ecms_desktop.services.core.errors import Cancelled, ValidationError
from ecms_desktop.services.integrity import backup as backup_module
from ecms_desktop.services.integrity.backup import backup_database, restore_database
from ecms_desktop.services.integrity.backup_format import describe_backup
from ecms_desktop.services.integrity.check import check_database
from tests.conftest import PG_URL
from tests.helpers.cli import ecms

REPO = Path(__file__).resolve().parents[3]

#: A second program that commits through the services, one setting change after another, and says
#: after each commit which event it wrote.
WRITER = textwrap.dedent("""
    import sys, time
    from ecms_desktop.services.core import audit
    from ecms_desktop.services.companies.service import CompanyService
    from ecms_desktop.services.core.database import open_database
    db = open_database(sys.argv[1])
    stop = __import__("pathlib").Path(sys.argv[2])
    n = 0
    while not stop.exists() and n < 2000:
        n += 1
        CompanyService(db).set_setting("expiring_soon_days", 30 + n % 60, None)
        with db.reader() as s:
            print(audit.head_of(s)[0], flush=True)
        time.sleep(0.01)
    db.dispose()
""")


@pytest.fixture(params=["sqlite", "postgresql"])
def live_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database made with ``ecms init`` and demo data, on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'live.sqlite'}"
        schema = None
    else:
        if not PG_URL:
            pytest.skip("PostgreSQL run: set ECMS_TEST_DATABASE_URL to run this test on PostgreSQL")
        schema = f"t_{uuid.uuid4().hex[:12]}"
        with create_engine(PG_URL).begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options={quote(f'-csearch_path={schema}')}"
    try:
        assert ecms("--db", url, "init")[0] == 0
        assert ecms("--db", url, "demo", "--certificates", "60", "--seed", "4", "--as-of", "2026-11-01")[0] == 0
        yield url
    finally:
        if schema is not None:
            engine = create_engine(PG_URL)
            with engine.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            engine.dispose()


def head(url: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT last_seq FROM audit_head WHERE id = 1")).scalar_one())
    finally:
        engine.dispose()


class Writer:
    """The other desk: a process committing through the services until told to stop."""

    def __init__(self, url: str, folder: Path) -> None:
        self.stop = folder / f"stop-{uuid.uuid4().hex[:6]}"
        self.proc = subprocess.Popen([sys.executable, "-c", WRITER, url, str(self.stop)], cwd=REPO,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env={**os.environ})
        self.seen: list[int] = []

    def wait_for_commits_after(self, seq: int, count: int, timeout: float = 60) -> None:
        """Block until the writer has committed ``count`` events after event ``seq``."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while sum(1 for s in self.seen if s > seq) < count:
            assert time.monotonic() < deadline, "the other process did not commit"
            line = self.proc.stdout.readline()
            assert line, self.proc.stderr.read() if self.proc.stderr else "writer ended"
            self.seen.append(int(line))

    def finish(self) -> None:
        self.stop.touch()
        out, err = self.proc.communicate(timeout=60)
        self.seen.extend(int(x) for x in out.split())
        assert self.proc.returncode == 0, err


def test_backup_while_another_process_commits_is_a_consistent_snapshot_that_passes_check(
        live_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = open_database(live_url)
    writer = Writer(live_url, tmp_path)
    target = tmp_path / ("backup.sqlite" if db.dialect == "sqlite" else "backup.dump")
    snapshot: list[int] = []
    try:
        writer.wait_for_commits_after(0, 2)  # the other desk is writing
        monkeypatch.setattr(backup_module, "_PAGES_PER_STEP", 8)  # many steps: the copy takes a while

        def during(*_args: object) -> bool:
            # Called while the copy (SQLite) or the dump (PostgreSQL) is under way, after its snapshot was
            # taken: let the other desk commit three more events meanwhile.
            if not snapshot:
                snapshot.append(head(live_url))
                writer.wait_for_commits_after(snapshot[0], 3)
            return False

        if db.dialect == "sqlite":
            result = backup_database(db, target, progress=lambda *a: during(), cancel=lambda: False)
        else:
            result = backup_database(db, target, cancel=during)
    finally:
        writer.finish()
    assert snapshot and max(writer.seen) >= snapshot[0] + 3  # commits landed while the backup ran
    assert result.head_seq <= snapshot[0]  # ... and are not in it: one moment, not a smear
    assert result.check.ok, [str(p) for p in result.check.problems]
    info = describe_backup(target)
    assert (info.head_seq, info.head_hash) == (result.head_seq, result.head_hash)
    # The live database goes on passing the check, and still holds the backup's head.
    code, out, _ = ecms("--db", live_url, "check", "--anchor", str(target))
    assert code == 0 and f"[{target}]: held" in out, out
    db.dispose()
    # What the backup holds passes `ecms check` once restored.
    code, out, err = ecms("--db", live_url, "restore", str(target), "--yes")
    assert code == 0, out + err
    assert head(live_url) == result.head_seq + 1  # the backup's events and the restore's own
    code, out, _ = ecms("--db", live_url, "check")
    assert code == 0 and "Result: intact." in out, out


def test_a_backup_never_overwrites_a_file_unasked_nor_the_database_itself(live_url: str, tmp_path: Path) -> None:
    existing = tmp_path / "keep.bin"
    existing.write_bytes(b"precious")
    code, _, err = ecms("--db", live_url, "backup", str(existing))
    assert code == 1 and "already exists" in err and existing.read_bytes() == b"precious"
    if live_url.startswith("sqlite"):
        live = Path(live_url.removeprefix("sqlite:///"))
        code, _, err = ecms("--db", live_url, "backup", str(live), "--overwrite")
        assert code == 1 and "is the database file of the database in use" in err
        alias = tmp_path / "alias.sqlite"  # another name of the same file is the database too
        os.link(live, alias)
        before = live.read_bytes()
        code, _, err = ecms("--db", live_url, "backup", str(alias), "--overwrite")
        assert code == 1 and "database in use" in err and live.read_bytes() == before


def test_a_cancelled_backup_leaves_no_file(live_url: str, tmp_path: Path) -> None:
    db = open_database(live_url)
    target = tmp_path / "cancelled.bak"
    try:
        with pytest.raises(Cancelled):
            backup_database(db, target, cancel=lambda: True)
    finally:
        db.dispose()
    assert not target.exists() and not list(tmp_path.glob(".cancelled.bak*"))


@pytest.fixture
def sqlite_backup(tmp_path: Path) -> tuple[str, Path]:
    url = f"sqlite:///{tmp_path / 'desk.sqlite'}"
    assert ecms("--db", url, "init")[0] == 0
    assert ecms("--db", url, "company", "add", "Before Backup Co")[0] == 0
    backup = tmp_path / "desk-backup.sqlite"
    assert ecms("--db", url, "backup", str(backup))[0] == 0
    assert ecms("--db", url, "company", "add", "After Backup Co")[0] == 0
    return url, backup


def companies(url: str) -> list[str]:
    code, out, err = ecms("--db", url, "company", "list", "--format", "json")
    assert code == 0, err
    import json

    return [c["name"] for c in json.loads(out)]


def _sha(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("what", ["random bytes", "a text file", "an ECMS database file, not a backup",
                                  "a foreign SQLite file", "an empty file", "a folder"])
def test_restore_refuses_a_file_that_is_not_an_ecms_backup(sqlite_backup: tuple[str, Path], tmp_path: Path,
                                                           what: str) -> None:
    url, _backup = sqlite_backup
    bogus = tmp_path / "bogus.sqlite"
    if what == "random bytes":
        bogus.write_bytes(os.urandom(20000))
    elif what == "a text file":
        bogus.write_text("not,a,backup\n" * 100)
    elif what == "an ECMS database file, not a backup":
        assert ecms("--db", str(bogus), "init")[0] == 0
    elif what == "a foreign SQLite file":
        con = sqlite3.connect(bogus)
        con.execute("CREATE TABLE x (a)")
        con.commit()
        con.close()
    elif what == "an empty file":
        bogus.write_bytes(b"")
    else:
        bogus.mkdir()
    database = Path(url.removeprefix("sqlite:///"))
    before = _sha(database)
    code, _, err = ecms("--db", url, "restore", str(bogus), "--yes")
    assert code == 1 and str(bogus) in err and "Nothing was restored" in err, err
    assert "Traceback" not in err
    assert _sha(database) == before and "After Backup Co" in companies(url)


def test_restore_refuses_a_backup_from_a_newer_program(sqlite_backup: tuple[str, Path]) -> None:
    url, backup = sqlite_backup
    con = sqlite3.connect(backup)
    con.execute("UPDATE alembic_version SET version_num = '9999_from_the_future' "
                "WHERE version_num = (SELECT min(version_num) FROM alembic_version)")  # one of the heads
    con.commit()
    con.close()
    code, _, err = ecms("--db", url, "restore", str(backup), "--yes")
    assert code == 1 and "newer version of ECMS Desktop" in err and "9999_from_the_future" in err
    assert "After Backup Co" in companies(url)


def test_restore_refuses_a_tampered_backup_naming_the_record(sqlite_backup: tuple[str, Path]) -> None:
    url, backup = sqlite_backup
    con = sqlite3.connect(backup)
    con.execute("UPDATE company SET legal_name = 'Tampered' WHERE name = 'Before Backup Co'")
    con.commit()
    con.close()
    code, _, err = ecms("--db", url, "restore", str(backup), "--yes")
    assert code == 1 and "fails its check" in err and "company 1: differs" in err
    assert "After Backup Co" in companies(url)


def test_restore_never_replaces_a_database_without_confirmation(sqlite_backup: tuple[str, Path],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    url, backup = sqlite_backup
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal: nobody to ask
    code, _, err = ecms("--db", url, "restore", str(backup))
    assert code == 1 and "--yes" in err and "Nothing was restored" in err
    assert "After Backup Co" in companies(url)
    with pytest.raises(ValidationError, match="exists"):
        restore_database(url, backup)
    assert "After Backup Co" in companies(url)


def test_restore_into_a_new_place_needs_no_confirmation(sqlite_backup: tuple[str, Path], tmp_path: Path) -> None:
    _url, backup = sqlite_backup
    fresh = f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"
    code, out, err = ecms("--db", fresh, "restore", str(backup))
    assert code == 0, out + err
    assert companies(fresh) == ["Before Backup Co"]
    assert ecms("--db", fresh, "check")[0] == 0


OTHER_DESK = textwrap.dedent("""
    import sys, time, pathlib
    from ecms_desktop.services.companies.service import CompanyService
    from ecms_desktop.services.core.database import open_database
    db = open_database(sys.argv[1])
    go = pathlib.Path(sys.argv[2])
    print("before:", ",".join(c.name for c in CompanyService(db).list()), flush=True)
    while not go.exists():
        time.sleep(0.02)
    print("after:", ",".join(c.name for c in CompanyService(db).list()), flush=True)
    CompanyService(db).create("Written After Restore Co")
    print("wrote", flush=True)
    db.dispose()
""")


def test_restore_into_a_database_another_process_has_open(sqlite_backup: tuple[str, Path], tmp_path: Path) -> None:
    """The other desk keeps its connection: after the restore it reads the restored data, and what it then
    writes lands in the restored database, which passes the check. The replaced database is kept."""
    url, backup = sqlite_backup
    go = tmp_path / "go"
    desk = subprocess.Popen([sys.executable, "-c", OTHER_DESK, url, str(go)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ})
    assert desk.stdout is not None
    first = desk.stdout.readline()
    assert "After Backup Co" in first, first + (desk.stderr.read() if desk.stderr else "")
    result = restore_database(url, backup, replace=True)
    go.touch()
    out, err = desk.communicate(timeout=60)
    assert desk.returncode == 0, err
    assert "after: Before Backup Co\n" in out and "wrote" in out
    assert companies(url) == ["Before Backup Co", "Written After Restore Co"]
    code, report, _ = ecms("--db", url, "check")
    assert code == 0, report
    assert result.previous is not None and result.previous.exists()
    kept = Database(f"sqlite:///{result.previous}")
    try:
        assert check_database(kept).ok
    finally:
        kept.dispose()
    assert "After Backup Co" in companies(f"sqlite:///{result.previous}")


def test_restore_of_a_damaged_database_keeps_the_damaged_file(sqlite_backup: tuple[str, Path]) -> None:
    url, backup = sqlite_backup
    database = Path(url.removeprefix("sqlite:///"))
    with database.open("r+b") as fh:
        fh.write(b"\xff" * 100)  # the header is gone
    damaged = _sha(database)
    code, _, err = ecms("--db", url, "list")
    assert code == 1 and "not a database file" in err
    code, out, err = ecms("--db", url, "restore", str(backup), "--yes")
    assert code == 0, out + err
    kept = next(database.parent.glob("desk.sqlite.before-restore-*"))
    assert _sha(kept) == damaged and f"kept as {kept}" in out
    assert companies(url) == ["Before Backup Co"]


@pytest.mark.skipif(not PG_URL, reason="PostgreSQL run: set ECMS_TEST_DATABASE_URL to run this test")
def test_postgresql_restore_asks_and_keeps_the_schema_it_replaces(tmp_path: Path) -> None:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options={quote(f'-csearch_path={schema}')}"
    try:
        db = Database(url)
        initialize_database(db)
        CompanyService(db).create("Before Backup Co")
        db.dispose()
        backup = tmp_path / "team.dump"
        assert ecms("--db", url, "backup", str(backup))[0] == 0
        assert ecms("--db", url, "company", "add", "After Backup Co")[0] == 0
        code, _, err = ecms("--db", url, "restore", str(backup))
        assert code == 1 and "--yes" in err
        code, out, err = ecms("--db", url, "restore", str(backup), "--yes")
        assert code == 0, out + err
        assert companies(url) == ["Before Backup Co"]
        kept = next(tmp_path.glob(f"before-restore-{schema}-*.dump"))
        assert describe_backup(kept).schema == schema
        assert ecms("--db", url, "check")[0] == 0
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
