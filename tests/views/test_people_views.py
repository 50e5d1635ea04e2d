"""People at the desk: who acts (status bar), what the person may not do (disabled, with the reason),
the profile chosen at start on a local file, and Settings > People."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDialog

from ecms_desktop.services.core import people
from ecms_desktop.services.core.people import Role
from ecms_desktop.services.core.people_service import PeopleService
from ecms_desktop.views.main_window import people as people_mixin
from ecms_desktop.views.main_window.window import MainWindow
from ecms_desktop.views.people_views import PeopleTab, ProfileDialog
from tests.factories import make_certificate
from tests.helpers.team import team_on

AS_OF = dt.date(2026, 12, 6)


def _open(qtbot, db, tmp_path, *, interactive: bool = False) -> MainWindow:  # type: ignore[no-untyped-def]
    w = MainWindow(None, as_of=AS_OF, settings=QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat),
                   interactive=interactive)
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignals([w.grid_ready], timeout=15000):
        w.set_database(db)
    qtbot.waitUntil(lambda: w.actor_settled, timeout=10000)
    return w


def test_a_reviewer_sees_why_approving_is_not_theirs(qtbot, db, db_url, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    make_certificate(db, company_id, approve=False)
    with team_on(db, db_url) as team:
        riley = team.dbs["Riley Reviewer"]
        w = _open(qtbot, riley, tmp_path)
        try:
            assert w.actor_label.text() == "Riley Reviewer · reviewer"
            w.table.selectRow(0)
            qtbot.waitUntil(lambda: w.current_detail is not None, timeout=10000)
            w._update_actions()
            assert not w.act_approve.isEnabled()
            assert "needs the approver role" in w.act_approve.toolTip()
            assert not w.act_reprocess.isEnabled()
            # The form's own ways to decide are not offered either: Archive… says why.
            assert not w.form.archive_button.isEnabled()
            assert "needs the approver role" in w.form.archive_button.toolTip()
            assert not w.form.findings_panel.approvable
            w.set_database(None)
        finally:
            w.shutdown()
        alex = team.dbs["Alex Approver"]
        w = _open(qtbot, alex, tmp_path)
        try:
            w.table.selectRow(0)
            qtbot.waitUntil(lambda: w.current_detail is not None, timeout=10000)
            w._update_actions()
            assert w.act_approve.isEnabled() and w.actor_label.text() == "Alex Approver · approver"
            assert w.form.archive_button.isEnabled()
            w.set_database(None)
        finally:
            w.shutdown()


def test_a_local_file_asks_who_you_are_and_remembers(qtbot, db, db_url, company_id, tmp_path,  # type: ignore[no-untyped-def]
                                                     monkeypatch) -> None:
    if db.dialect != "sqlite":
        pytest.skip("profiles are chosen on a local SQLite file; PostgreSQL knows the login")
    with team_on(db, db_url):
        monkeypatch.setenv("ECMS_USER", "someone not registered")
        db.actor_box.choose(None)
        asked: list[list[str]] = []

        def choose(dialog: ProfileDialog) -> int:
            asked.append(list(dialog._names))
            dialog.list.setCurrentRow(dialog._names.index("Alex Approver"))
            return QDialog.DialogCode.Accepted

        monkeypatch.setattr(people_mixin.ProfileDialog, "exec", choose)
        w = _open(qtbot, db, tmp_path, interactive=True)
        try:
            qtbot.waitUntil(lambda: w.actor is not None, timeout=10000)
            assert "Alex Approver" in asked[0] and "Riley Reviewer" in asked[0]
            assert w.actor is not None and w.actor.name == "Alex Approver"
            assert people.remembered_profile(db.actor_box.database_key) == "Alex Approver"
            w.set_database(None)
        finally:
            w.shutdown()
        # ECMS_USER wins over the remembered choice; without it the remembered one is used.
        monkeypatch.delenv("ECMS_USER")
        db.actor_box.choose(None)
        assert db.actor().name == "Alex Approver"


def test_settings_people_tab_admin_and_reviewer(qtbot, db, db_url, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ecms_desktop.views.operations.task_runner import TaskRunner

    with team_on(db, db_url) as team:
        runner = TaskRunner()
        dana = team.dbs["Dana Admin"]
        tab = PeopleTab(dana, runner, dana.actor())
        qtbot.addWidget(tab)
        qtbot.waitUntil(lambda: tab.table.rowCount() == 4, timeout=10000)
        names = [tab.table.item(r, 0).text() for r in range(4)]
        row = names.index("Riley Reviewer")
        tab.table.selectRow(row)
        assert tab.role_button.isEnabled() and tab.active_button.text() == "Disable"
        tab.role_combo.setCurrentIndex(tab.role_combo.findData("approver"))
        with qtbot.waitSignal(tab.changed, timeout=10000):
            tab.role_button.click()
        assert {p.name: p.role for p in PeopleService(dana).list()}["Riley Reviewer"] is Role.APPROVER

        riley = team.dbs["Riley Reviewer"]
        tab2 = PeopleTab(riley, runner, riley.actor())
        qtbot.addWidget(tab2)
        qtbot.waitUntil(lambda: tab2.table.rowCount() == 4, timeout=10000)
        tab2.table.selectRow(0)
        assert not tab2.add_button.isEnabled() and not tab2.role_button.isEnabled()
        assert "needs the admin role" in tab2.note.text()
        runner.wait()
