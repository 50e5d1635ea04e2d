"""File > Back up…, File > Check database…, the check on start and the anchor on exit: named operations
run through the window's task runner (progress and Cancel), with their results shown in one dialog.

The work itself is the services' (``services/backup.py``, ``services/integrity_check.py``), the same the
``ecms backup`` and ``ecms check`` commands use.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from ecms_desktop.services.backup import BackupResult, backup_database
from ecms_desktop.services.database import Database
from ecms_desktop.services.integrity_check import CheckReport, check_database, verify_and_anchor
from ecms_desktop.views.file_dialogs import get_save_file_name
from ecms_desktop.views.task_runner import TaskRunner

log = logging.getLogger(__name__)

BACKUP_DIR_KEY = "dirs/backup"


def report_lines(report: CheckReport) -> list[str]:
    """The check's report as lines of text (the same facts ``ecms check`` prints)."""
    lines = [f"Audit trail: {report.events} events, head event {report.head_seq} ({report.head_hash[:16]}…)."]
    if report.records:
        checked = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in report.records.items() if n) or "none"
        lines.append(f"Records checked against the audit trail: {checked}; stored files: {report.files}.")
    if report.anchors:
        lines.append(f"Anchors checked ({len(report.anchors)}):")
        for a in report.anchors:
            state = {True: "held", False: "NOT HELD", None: "not binding"}[a.held]
            lines.append(f"  event {a.anchor.seq} ({a.anchor.source}, {a.anchor.at or 'no date'}): {state}"
                         + (f" — {a.note}" if a.note else ""))
    lines.extend(f"Note: {note}" for note in report.notes)
    if report.ok:
        lines.append("Result: intact.")
    else:
        lines.append(f"Result: {len(report.problems) + report.unlisted} problems:")
        lines.extend(f"  [{p.area}] {p}" for p in report.problems)
        if report.unlisted:
            lines.append(f"  … and {report.unlisted} more (run `ecms check` for the whole list)")
    return lines


class IntegrityReportDialog(QDialog):
    """The outcome of a backup or a check: a headline and the report's text (selectable, to copy)."""

    def __init__(self, title: str, headline: str, lines: list[str], *, ok: bool, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setObjectName("integrityReportDialog")
        self.setWindowTitle(title)
        self.setMinimumSize(640, 360)
        layout = QVBoxLayout(self)
        self.headline = QLabel(headline, self)
        self.headline.setObjectName("integrityHeadline")
        self.headline.setWordWrap(True)
        self.headline.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.headline.setStyleSheet("" if ok else "color: #B00020; font-weight: bold;")
        layout.addWidget(self.headline)
        self.details = QPlainTextEdit("\n".join(lines), self)
        self.details.setObjectName("integrityDetails")
        self.details.setReadOnly(True)
        layout.addWidget(self.details, 1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout.addWidget(buttons)


def default_backup_name(db: Database, today: dt.date) -> str:
    stem = db.path.stem if db.path is not None else "ecms"
    return f"{stem}-backup-{today.isoformat()}{'.sqlite' if db.dialect == 'sqlite' else '.dump'}"


def choose_backup_file(parent: QWidget | None, db: Database, folder: str, today: dt.date) -> Path | None:
    """Where to write the backup (the dialog asks before replacing a file)."""
    start = str(Path(folder) / default_backup_name(db, today)) if folder else default_backup_name(db, today)
    pattern = "SQLite backups (*.sqlite)" if db.dialect == "sqlite" else "PostgreSQL archives (*.dump)"
    path = get_save_file_name(parent, "Back up the database", start, f"{pattern};;All files (*)")
    return Path(path) if path else None


def run_backup(runner: TaskRunner, parent: QWidget, db: Database, target: Path, *,
               on_done: Callable[[BackupResult], None], on_error: Callable[[BaseException], None]) -> Any:
    """Back up off the GUI thread with progress and Cancel. The file dialog already asked whether to
    replace an existing file, so an existing one is replaced."""
    return runner.run(lambda progress, cancel: backup_database(db, target, overwrite=True, progress=progress,
                                                               cancel=cancel),
                      on_done=on_done, on_error=on_error, title="Backing up the database", parent=parent)


def run_check(runner: TaskRunner, parent: QWidget, db: Database, *, on_done: Callable[[CheckReport], None],
              on_error: Callable[[BaseException], None]) -> Any:
    return runner.run(lambda progress, cancel: check_database(db, progress=progress, cancel=cancel),
                      on_done=on_done, on_error=on_error, title="Checking the database", parent=parent)


def run_start_check(runner: TaskRunner, db: Database, *, on_done: Callable[[CheckReport], None],
                    on_error: Callable[[BaseException], None]) -> Any:
    """The cheap check on opening a database (anchors, the head, SQLite's quick_check on a small file),
    quietly in the background; the head is anchored when it passes."""
    return runner.run(lambda _p, _c: verify_and_anchor(db, "start", level="quick"), on_done=on_done,
                      on_error=on_error, show_progress=False)


def anchor_on_exit(db: Database) -> None:
    """Anchor the head as the program closes the database (when the cheap check passes)."""
    try:
        verify_and_anchor(db, "exit")
    except Exception:  # closing must never fail on this
        log.warning("the audit chain's head was not anchored on exit", exc_info=True)


def backup_headline(result: BackupResult) -> str:
    if result.check.ok:
        return (f"Backed up to {result.path} ({result.size:,} bytes, audit trail to event {result.head_seq}). "
                "The backup passes the integrity check.")
    return (f"The backup was written to {result.path}, but the database it copies has "
            f"{len(result.check.problems) + result.check.unlisted} problems (below).")
