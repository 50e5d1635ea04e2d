"""File menu: a new database, the recent databases, Back up… and Check database… (their reports shown
in one dialog). Opening a database is the desk's own (``desk.py``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from PySide6.QtWidgets import QMenu

from ecms_desktop.services.core.database import display_url
from ecms_desktop.services.integrity.backup import BackupResult
from ecms_desktop.services.integrity.check import CheckReport
from ecms_desktop.views.database_dialog import choose_new_database_file, recent_databases, url_with_saved_password
from ecms_desktop.views.integrity_report import BACKUP_DIR_KEY, backup_headline, choose_backup_file, report_lines
from ecms_desktop.views.main_window.desk import DeskWindow
from ecms_desktop.views.operations import database


class DatabaseMenuMixin(DeskWindow):
    """The database entries of the File menu."""

    def new_database_dialog(self) -> None:
        url = choose_new_database_file(self)
        if url:
            self.open_database(url, create=True)

    def fill_recent_menu(self, menu: QMenu) -> None:
        """File > Open recent: the databases opened lately (their passwords from the keyring)."""
        menu.clear()
        recent = recent_databases(self.settings)
        for url in recent:
            act = menu.addAction(display_url(url))
            act.triggered.connect(lambda _=False, u=url: self.open_database(url_with_saved_password(u)))
        if not recent:
            menu.addAction("(none)").setEnabled(False)

    def backup_dialog(self) -> None:
        """File > Back up…: choose the file, then back up through the task runner."""
        db = self.db
        if db is None:
            return
        target = choose_backup_file(self, db, str(self.settings.value(BACKUP_DIR_KEY, "") or ""), dt.date.today())
        if target is not None:
            self.settings.setValue(BACKUP_DIR_KEY, str(target.parent))
            self.backup_to(target)

    def backup_to(self, target: Path) -> None:
        db = self.db
        if db is None:
            return
        database.back_up(db, target).success(self._on_backed_up).failure(self._on_operation_error) \
            .run(self.runner, parent=self)

    def _on_backed_up(self, result: BackupResult) -> None:
        self.statusBar().showMessage(f"Backed up to {result.path}.", 8000)
        self.backup_finished.emit(result)
        if self.interactive:
            self._show_report("Backup", backup_headline(result), report_lines(result.check), ok=result.check.ok)

    def check_database(self) -> None:
        """File > Check database…: the whole ``ecms check`` through the task runner."""
        db = self.db
        if db is None:
            return
        database.check(db).success(self._on_checked).failure(self._on_operation_error).run(self.runner, parent=self)

    def _on_checked(self, report: CheckReport) -> None:
        self.integrity_checked.emit(report)
        if self.interactive:
            self._show_report("Database check", report.summary(), report_lines(report), ok=report.ok)
