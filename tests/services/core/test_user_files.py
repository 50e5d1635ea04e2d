"""The guard every read of a user-named file goes through: the open database's own files are refused
by device and inode (never opened), and devices or pipes are never read."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import DocumentError, ValidationError
from ecms_desktop.services.core.tabular import read_table
from ecms_desktop.services.core.user_files import database_file_kind, read_user_file
from ecms_desktop.services.documents.storage import check_file
from ecms_desktop.services.intake.service import IntakeOutcome, IntakeService
from ecms_desktop.services.renewals.returned_forms import ReturnedFormsService
from tests.factories import make_certificate

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file semantics")


@pytest.fixture
def live(tmp_path, _sqlite_template):  # type: ignore[no-untyped-def]
    """An SQLite database open in this process, with its WAL and shared-memory index."""
    path = tmp_path / "live" / "e.db"
    path.parent.mkdir()
    shutil.copy(_sqlite_template, path)
    db = Database(str(path))
    db.ensure_ready()
    company = CompanyService(db).create("Acme", state="TX").id
    assert Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists()
    yield db, path, company
    db.dispose()


def _opened_by_this_process(path: Path) -> int:
    fds = Path("/proc/self/fd")
    return sum(1 for fd in os.listdir(fds) if (fds / fd).is_symlink()
               and os.readlink(fds / fd) == str(path))


def test_the_open_database_files_are_refused_by_inode_without_being_opened(live, tmp_path):
    _db, path, _company = live
    link = tmp_path / "innocent.pdf"
    os.link(f"{path}-wal", link)  # another name for the write-ahead log
    symlink = tmp_path / "shortcut.pdf"
    symlink.symlink_to(path)
    cases = {path: "database file", Path(f"{path}-wal"): "write-ahead log", Path(f"{path}-shm"): "shared-memory index",
             link: "write-ahead log", symlink: "database file"}
    before = {p: _opened_by_this_process(p) for p in (path, Path(f"{path}-wal"))} if sys.platform == "linux" else {}
    for candidate, what in cases.items():
        assert database_file_kind(candidate) == (what, path.resolve())
        with pytest.raises(DocumentError) as info:
            read_user_file(candidate, max_bytes=10**9)
        assert f"this is the {what} of the ECMS database in use" in str(info.value)
        assert candidate.name in str(info.value)
        with pytest.raises(DocumentError):
            check_file(candidate)
    if before:
        assert {p: _opened_by_this_process(p) for p in before} == before  # only SQLite's own descriptors
    # Another spelling of the same folder is caught too; an unrelated file is read.
    other = tmp_path / "scan.pdf"
    other.write_bytes(b"%PDF-1.4")
    assert database_file_kind(path.parent / ".." / "live" / "e.db") is not None
    assert database_file_kind(other) is None and read_user_file(other, max_bytes=100) == b"%PDF-1.4"


def test_intake_and_imports_refuse_the_database_files_with_a_message(live):
    db, path, company = live
    arrived = ReturnedFormsService(db).intake([path, Path(f"{path}-wal")], company, received_via="upload")
    assert [i.outcome for i in arrived] == ["refused", "refused"]
    assert "write-ahead log of the ECMS database in use" in arrived[1].message
    cert = make_certificate(db, company)
    result = IntakeService(db).attach_files([path, Path(f"{path}-wal")], company, cert.id,
                                            expected_version=cert.version)
    assert [i.outcome for i in result.items] == [IntakeOutcome.REFUSED, IntakeOutcome.REFUSED]
    assert "write-ahead log of the ECMS database in use" in result.items[1].message
    csv_alias = path.parent / "e.csv"
    os.link(path, csv_alias)
    with pytest.raises(ValidationError, match="database file of the ECMS database in use"):
        read_table(csv_alias, required=["a"])


def test_a_database_no_longer_open_is_not_protected(tmp_path, _sqlite_template):
    import gc

    path = tmp_path / "closed.db"
    shutil.copy(_sqlite_template, path)
    db = Database(str(path))
    assert database_file_kind(path) is not None
    db.dispose()
    del db
    gc.collect()
    assert database_file_kind(path) is None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_pipes_and_devices_are_never_read(tmp_path):
    fifo = tmp_path / "pipe.pdf"
    os.mkfifo(fifo)
    with pytest.raises(DocumentError, match="not a regular file"):
        read_user_file(fifo, max_bytes=100)  # would block for ever without O_NONBLOCK
    if Path("/dev/zero").exists():
        with pytest.raises(DocumentError, match="not a regular file"):
            read_user_file(Path("/dev/zero"), max_bytes=100)
    big = tmp_path / "big.pdf"
    big.write_bytes(b"x" * 2000)
    with pytest.raises(DocumentError, match="larger than"):
        read_user_file(big, max_bytes=1000)
    with pytest.raises(DocumentError, match="file not found"):
        read_user_file(tmp_path / "missing.pdf", max_bytes=100)
    with pytest.raises(DocumentError, match="is a folder"):
        read_user_file(tmp_path, max_bytes=100)
