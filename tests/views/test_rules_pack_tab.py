"""Settings > Rules pack: install a newer pack from an archive, see the certificates whose validation result
changes, re-validate them, go back; and the desk (its form, filters and Help > About) follows the pack in force."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

from ecms_desktop.rules.archive import build_archive
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core.rules_packs import RulesPackService
from ecms_desktop.services.validation.service import ValidationService
from ecms_desktop.views import rules_pack_tab
from ecms_desktop.views.main_window import MainWindow
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.settings_dialog import SettingsDialog
from tests.factories import AS_OF, make_certificate
from tests.helpers.rules_pack import newer_copy


def test_install_lists_what_changes_revalidates_and_goes_back(qtbot, db, company_id, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                              monkeypatch) -> None:
    cert = make_certificate(db, company_id)
    ValidationService(db).validate_many([cert.id], as_of=AS_OF)
    archive = tmp_path / "ecms-rules-2026.12.2.zip"
    build_archive(newer_copy(tmp_path, "2026.12.2", stricter_texas=True), archive)
    monkeypatch.setattr(rules_pack_tab, "get_open_file_name", lambda *_a, **_k: str(archive))

    dialog = SettingsDialog(db, TaskRunner(), QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat),
                            company_id=company_id, companies=CompanyService(db).list(), expiring_soon_days=30,
                            as_of=AS_OF)
    qtbot.addWidget(dialog)
    dialog.show()
    tab = dialog.rules_tab
    dialog.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: "2026.12.1 (the program's own)" in tab.in_force.text(), timeout=10000)
    assert not tab.rollback_button.isEnabled()

    with qtbot.waitSignal(dialog.rules_changed, timeout=30000), qtbot.waitSignal(tab.stale_listed, timeout=60000):
        tab.install_button.click()
    assert "2026.12.2 (installed in the database)" in tab.in_force.text()
    assert tab.previous.text() == "the program's own pack" and tab.rollback_button.isEnabled()
    assert tab.stale_list.count() == 1 and "rules pack 2026.12.1, now 2026.12.2" in tab.stale_list.item(0).text()
    assert "1 certificate(s) would get another validation result as of 2026-11-22" in tab.stale_summary.text()
    assert tab.revalidate_button.isVisible() and tab.revalidate_button.text() == "Re-validate 1 certificate"

    with qtbot.waitSignal(tab.revalidated, timeout=60000):
        tab.revalidate_button.click()
    latest = ValidationService(db).latest(cert.id)
    assert latest is not None and latest.rules_version == "2026.12.2" and latest.trigger == "revalidation"
    assert "1 certificate(s) validated again" in tab.stale_summary.text()

    with qtbot.waitSignal(tab.stale_listed, timeout=60000):
        tab.rollback_button.click()
    assert "2026.12.1 (the program's own)" in tab.in_force.text()
    assert tab.stale_list.count() == 1  # validated with 2026.12.2: its result changes back


def test_a_refused_archive_is_shown_and_nothing_changes(qtbot, db, company_id, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                        monkeypatch) -> None:
    shown: list[str] = []
    monkeypatch.setattr(rules_pack_tab, "present_error", lambda _parent, error: shown.append(str(error)))
    archive = tmp_path / "ecms-rules-2026.11.1.zip"
    build_archive(newer_copy(tmp_path, "2026.11.1"), archive)
    tab = rules_pack_tab.RulesPackTab(db, TaskRunner(), as_of=AS_OF)
    qtbot.addWidget(tab)
    tab.install_from(archive)
    qtbot.waitUntil(lambda: bool(shown), timeout=30000)
    assert "rules pack 2026.11.1 is older than the one in force, 2026.12.1" in shown[0]
    assert RulesPackService(db).show().source == "packaged"


def test_the_desk_and_about_follow_the_pack_in_force(qtbot, db, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    archive = tmp_path / "ecms-rules-2026.12.2.zip"
    build_archive(newer_copy(tmp_path, "2026.12.2"), archive)
    RulesPackService(db).install(archive)
    window = MainWindow(None, as_of=AS_OF, settings=QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.database_opened, timeout=15000):
        window.set_database(db)
    assert window.rules.version == "2026.12.2" and window.form.rules is window.rules
    assert window.filter_bar.state_combo.count() == len(window.rules.states) + 1
    window.act_about.trigger()
    assert window.about_dialog is not None
    assert window.about_dialog.values["rules"].text().endswith("version 2026.12.2")
    window.shutdown()
