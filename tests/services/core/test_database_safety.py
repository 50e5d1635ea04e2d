"""Bad database files: damaged, truncated, foreign, not a database, missing, a folder, read-only.

Whatever the file, the command line and ``open_database`` give a clear message naming the file (exit
status 1, never a traceback), and the file is left exactly as it was: same bytes, no ``-wal``/``-shm``
or journal beside it, no new file for a path that does not exist. Only ``ecms init`` creates one.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from ecms_desktop.services.core.database import open_database
from ecms_desktop.services.core.errors import DatabaseDamagedError, DatabaseError, DatabaseMissingError
from tests.helpers.cli import ecms


@pytest.fixture(scope="module")
def ecms_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real ECMS database with certificates, documents and an audit trail (built once)."""
    folder = tmp_path_factory.mktemp("ecms-template")
    path = folder / "template.sqlite"
    saved = os.environ.get("ECMS_DATA_DIR")
    os.environ["ECMS_DATA_DIR"] = str(folder / "data")
    try:
        assert ecms("--db", str(path), "init")[0] == 0
        assert ecms("--db", str(path), "demo", "--certificates", "40", "--seed", "5", "--as-of", "2026-11-01")[0] == 0
    finally:
        if saved is None:
            os.environ.pop("ECMS_DATA_DIR", None)
        else:
            os.environ["ECMS_DATA_DIR"] = saved
    assert not Path(f"{path}-wal").exists()  # closed cleanly: one self-contained file
    return path


def _overwrite(offset: Callable[[Path], int], data: Callable[[int], bytes]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        at = offset(path)
        with path.open("r+b") as fh:
            fh.seek(at)
            fh.write(data(at))
    return damage


def _truncate(size: Callable[[Path], int]) -> Callable[[Path], None]:
    return lambda path: os.truncate(path, size(path))


def _root_page(table: str) -> Callable[[Path], int]:
    def offset(path: Path) -> int:
        con = sqlite3.connect(f"{path.as_uri()}?immutable=1", uri=True)
        try:
            root = con.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
            page_size = con.execute("PRAGMA page_size").fetchone()[0]
        finally:
            con.close()
        return int((root - 1) * page_size)
    return offset


def _foreign(journal: str) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        path.unlink()
        con = sqlite3.connect(path)
        con.execute(f"PRAGMA journal_mode={journal}")
        con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        con.execute("INSERT INTO invoices (total) VALUES (12.5)")
        con.commit()
        con.close()
    return make


def _replace_with(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def _folder(path: Path) -> None:
    path.unlink()
    path.mkdir()


def _missing(path: Path) -> None:
    path.unlink()


ALL = ("list", "check", "audit verify")

#: name -> (how the copy of a good database is spoiled, words the message must contain, commands tried)
CASES: dict[str, tuple[Callable[[Path], None], str, tuple[str, ...]]] = {
    "truncated to 50 bytes": (_truncate(lambda p: 50), "damaged", ALL),
    "truncated to one page": (_truncate(lambda p: 4096), "damaged", ALL),
    "truncated to two pages": (_truncate(lambda p: 8192), "damaged", ALL),
    "truncated to half": (_truncate(lambda p: p.stat().st_size // 2), "damaged", ALL),
    "truncated by its last page": (_truncate(lambda p: p.stat().st_size - 4096), "damaged", ALL),
    "header overwritten": (_overwrite(lambda p: 0, lambda _a: b"\xff" * 100), "not a database file", ALL),
    "page size overwritten": (_overwrite(lambda p: 16, lambda _a: b"\x00\x07"), "not a database file", ALL),
    # Damage the first look cannot see: found when the pages are read (the chain's own command reads
    # only the audit trail's pages, so it is tried where they are the damaged ones).
    "certificate table overwritten": (_overwrite(_root_page("certificate"), lambda _a: os.urandom(4096)),
                                      "damaged", ("list", "check")),
    "audit trail overwritten": (_overwrite(_root_page("audit_event"), lambda _a: os.urandom(4096)), "damaged", ALL),
    "zero-length file": (_replace_with(b""), "empty database", ALL),
    "random bytes": (_replace_with(os.urandom(64 * 1024)), "not a database file", ALL),
    "a text file": (_replace_with(b"customer_number,state\nC-1,TX\n" * 200), "not a database file", ALL),
    "foreign SQLite in WAL mode": (_foreign("wal"), "not an ECMS Desktop database", ALL),
    "foreign SQLite in rollback mode": (_foreign("delete"), "not an ECMS Desktop database", ALL),
    "a folder": (_folder, "is a folder", ALL),
    "a path that does not exist": (_missing, "does not exist", ALL),
}

COMMANDS = {
    "list": ("list",),
    "check": ("check",),
    "audit verify": ("audit", "verify"),
}


def _fingerprint(path: Path) -> tuple[str, ...]:
    """What is on disk at and beside the path: the file's bytes and which side files exist."""
    state = "missing"
    if path.is_dir():
        state = "folder:" + ",".join(sorted(p.name for p in path.iterdir()))
    elif path.exists():
        state = hashlib.sha256(path.read_bytes()).hexdigest()
    sides = [s for s in ("-wal", "-shm", "-journal") if Path(f"{path}{s}").exists()]
    return (state, *sides)


@pytest.fixture
def spoiled(request: pytest.FixtureRequest, ecms_file: Path, tmp_path: Path) -> tuple[Path, str, tuple[str, ...]]:
    damage, words, commands = CASES[request.param]
    path = tmp_path / "certificates.sqlite"
    shutil.copy(ecms_file, path)
    damage(path)
    return path, words, commands


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("spoiled", list(CASES), indirect=True)
def test_a_bad_database_file_gets_a_message_naming_it_and_is_never_written(
        spoiled: tuple[Path, str, tuple[str, ...]], command: str) -> None:
    path, words, commands = spoiled
    if command not in commands:
        pytest.skip(f"`ecms {command}` does not read the damaged pages")
    before = _fingerprint(path)
    for url in (str(path), f"sqlite:///{path}"):
        code, out, err = ecms("--db", url, *COMMANDS[command])
        assert code == 1, (out, err)
        assert err.startswith("error: ") and str(path) in err and words in err, err
        assert "Traceback" not in err and "unexpected error" not in err, err
        assert _fingerprint(path) == before, "the refused file was changed"
        if words == "damaged":
            assert "ecms restore" in err  # says what to do
        if words == "does not exist":
            assert "ecms init" in err


@pytest.mark.parametrize("spoiled", list(CASES), indirect=True)
def test_open_database_refuses_a_bad_file_naming_it_without_writing(
        spoiled: tuple[Path, str, tuple[str, ...]]) -> None:
    path, words, _commands = spoiled
    before = _fingerprint(path)
    expected = DatabaseMissingError if words == "does not exist" else (
        DatabaseDamagedError if words == "damaged" else DatabaseError)
    with pytest.raises(expected) as info:
        db = open_database(str(path))
        # A damage the first look does not see shows at the first read, as the same clear error.
        try:
            with db.reader() as s:
                from sqlalchemy import text

                s.execute(text("SELECT count(*), max(purchaser_name) FROM certificate")).all()
                s.execute(text("SELECT count(*), max(actor) FROM audit_event")).all()
        finally:
            db.dispose()
    assert str(path) in str(info.value) and words in str(info.value)
    assert _fingerprint(path) == before


def test_a_mistyped_path_is_an_error_and_only_init_creates(tmp_path: Path) -> None:
    path = tmp_path / "certificats.sqlite"  # a typo of an existing name
    for args in (("list",), ("audit", "verify"), ("company", "add", "Acme"), ("check",)):
        code, _, err = ecms("--db", str(path), *args)
        assert code == 1 and f"{path} does not exist" in err
        assert not path.exists() and not Path(f"{path}-wal").exists()
    code, out, _ = ecms("--db", str(path), "init")
    assert code == 0 and out.startswith("Created") and path.exists()
    code, out, _ = ecms("--db", str(path), "audit", "verify")
    assert code == 0 and "intact: 1 events" in out  # the creation is the first event


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else False,
                    reason="file permissions do not bind the superuser; run as an ordinary user to test this")
def test_a_read_only_database_file_is_refused_without_writing(ecms_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "readonly.sqlite"
    shutil.copy(ecms_file, path)
    path.chmod(0o444)
    before = _fingerprint(path)
    code, _, err = ecms("--db", str(path), "list")
    assert code == 1 and "read-only" in err and str(path) in err
    assert _fingerprint(path) == before


def test_a_database_let_go_is_freed_with_its_anchor_listeners(tmp_path: Path) -> None:
    """The anchors' commit listeners must not keep a Database alive (a window that opens database after
    database, or the file guard that protects the files of open databases, relies on it)."""
    import gc
    import weakref

    from ecms_desktop.services.companies.service import CompanyService
    from ecms_desktop.services.core.database import Database
    from ecms_desktop.services.core.database_setup import initialize_database

    db = Database(f"sqlite:///{tmp_path / 'freed.sqlite'}")
    initialize_database(db)
    CompanyService(db).create("Acme")  # a commit that wrote its anchor
    ref = weakref.ref(db)
    db.dispose()
    del db
    gc.collect()
    assert ref() is None
