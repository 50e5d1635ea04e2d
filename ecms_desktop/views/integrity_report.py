"""What File > Back up… and File > Check database… (and the check on start) show: the report's text,
one dialog for it, and where a backup goes. The work itself is in ``views/operations/database.py``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from ecms_desktop.services.core.database import Database
from ecms_desktop.services.integrity.backup import BackupResult
from ecms_desktop.services.integrity.check import CheckReport
from ecms_desktop.views.widgets.file_dialogs import get_save_file_name

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


def backup_headline(result: BackupResult) -> str:
    if result.check.ok:
        return (f"Backed up to {result.path} ({result.size:,} bytes, audit trail to event {result.head_seq}). "
                "The backup passes the integrity check.")
    return (f"The backup was written to {result.path}, but the database it copies has "
            f"{len(result.check.problems) + result.check.unlisted} problems (below).")
