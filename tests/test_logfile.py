"""The log file: in the log folder (ECMS_LOG_DIR), with tracebacks, rotated; the CLI writes there too."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from ecms_desktop import logfile, paths


@pytest.fixture
def log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "logs here"
    monkeypatch.setenv("ECMS_LOG_DIR", str(folder))
    logfile.stop_log_file()
    yield folder
    logfile.stop_log_file()


def _fail() -> None:
    raise ZeroDivisionError("division by zero in the totals")


def test_an_unexpected_error_is_written_with_its_traceback(log_dir: Path) -> None:
    assert paths.log_dir() == log_dir
    try:
        _fail()
    except ZeroDivisionError as exc:
        path = logfile.log_unexpected(exc, logging.getLogger("ecms_desktop.test"))
    assert path == log_dir / "ecms.log"
    text = path.read_text(encoding="utf-8")
    assert "ERROR ecms_desktop.test" in text and "Traceback (most recent call last)" in text
    assert "in _fail" in text and "ZeroDivisionError: division by zero in the totals" in text


def test_the_log_file_is_rotated(log_dir: Path) -> None:
    path = logfile.start_log_file(max_bytes=2000, backups=2)
    assert path is not None
    logger = logging.getLogger("ecms_desktop.test")
    for i in range(200):
        logger.warning("warning number %d about something that keeps happening", i)
    assert sorted(p.name for p in log_dir.iterdir()) == ["ecms.log", "ecms.log.1", "ecms.log.2"]
    assert all(p.stat().st_size <= 2000 for p in log_dir.iterdir())
    assert "warning number 199" in path.read_text(encoding="utf-8")


def test_the_cli_writes_an_unexpected_error_to_the_same_log(log_dir: Path) -> None:
    from ecms_desktop.cli import unexpected

    try:
        _fail()
    except ZeroDivisionError as exc:
        message = unexpected(exc)
    assert message == (f"unexpected error (ZeroDivisionError: division by zero in the totals); the details were "
                       f"written to {log_dir / 'ecms.log'}")
    assert "in _fail" in (log_dir / "ecms.log").read_text(encoding="utf-8")


def test_the_log_follows_a_moved_log_folder(log_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert logfile.start_log_file() == log_dir / "ecms.log"
    monkeypatch.setenv("ECMS_LOG_DIR", str(tmp_path / "elsewhere"))
    logging.getLogger("ecms_desktop.test").warning("still in the old folder until the log is started again")
    assert logfile.start_log_file() == tmp_path / "elsewhere" / "ecms.log"
    logging.getLogger("ecms_desktop.test").warning("now in the new folder")
    assert "now in the new folder" in (tmp_path / "elsewhere" / "ecms.log").read_text(encoding="utf-8")
