"""The Settings dialog opened on its E-mail tab, as the e-mail settings tests use it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.settings_dialog import SettingsDialog


def email_settings_dialog(qtbot, db, company_id, tmp_path: Path) -> SettingsDialog:  # type: ignore[no-untyped-def]
    settings = QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)
    dialog = SettingsDialog(db, TaskRunner(), settings, company_id=company_id, companies=CompanyService(db).list(),
                            expiring_soon_days=30)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.tabs.setCurrentWidget(dialog.email_tab)
    return dialog
