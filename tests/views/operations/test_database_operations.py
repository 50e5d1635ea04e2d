"""File > Back up…, File > Check database…, the check on start, and the first run on the default local
database (offered, never created silently), in the real main window."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMessageBox
from sqlalchemy import create_engine, text

from ecms_desktop.services.core import audit
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.database_setup import initialize_database
from ecms_desktop.services.integrity.backup import BackupResult
from ecms_desktop.services.integrity.backup_format import describe_backup
from ecms_desktop.services.integrity.check import CheckReport
from ecms_desktop.views import integrity_report
from ecms_desktop.views.main_window import MainWindow
from tests.factories import seed_certificates

AS_OF = dt.date(2026, 6, 1)


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def created(tmp_path: Path) -> Any:
    """A database made as File > New database makes one, with a company and certificates."""
    from ecms_desktop.services.companies.service import CompanyService

    db = Database(f"sqlite:///{tmp_path / 'desk.sqlite'}")
    initialize_database(db)
    company = CompanyService(db).create("Acme Supply Co", state="TX")
    seed_certificates(db, company.id, 30)
    yield db
    db.dispose()


def open_window(qtbot: Any, db: Any, settings: QSettings, *, interactive: bool = False) -> MainWindow:
    window = MainWindow(None, as_of=AS_OF, settings=settings, interactive=interactive)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignals([window.grid_ready, window.integrity_checked], timeout=20000):
        window.set_database(db)
    return window


def test_file_back_up_writes_a_checked_backup_through_the_task_runner(
        qtbot: Any, created: Database, settings: QSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window = open_window(qtbot, created, settings)
    target = tmp_path / "chosen-backup.sqlite"
    monkeypatch.setattr("ecms_desktop.views.main_window.database_menu.choose_backup_file", lambda *_a: target)
    progress: list[tuple[int, int, str]] = []
    real_run = window.runner.run

    def run(work: Any, **kwargs: Any) -> Any:  # see the progress the task runner shows
        task = real_run(work, **kwargs)
        task.progressed.connect(lambda d, t, txt: progress.append((d, t, txt)))
        return task

    monkeypatch.setattr(window.runner, "run", run)
    assert window.act_backup.isEnabled()
    with qtbot.waitSignal(window.backup_finished, timeout=60000) as signal:
        window.act_backup.trigger()
    result: BackupResult = signal.args[0]
    assert result.path == target and result.check.ok
    assert any("Copying the database" in text for _d, _t, text in progress)
    info = describe_backup(target)
    assert info.kind == "sqlite" and info.head_seq == result.head_seq
    assert settings.value(integrity_report.BACKUP_DIR_KEY) == str(tmp_path)
    with created.reader() as s:  # the backup itself is audited
        assert audit.list_events(s)[-1].action == "database.backed_up"
    window.shutdown()


def test_file_check_database_reports_a_record_changed_outside_the_program(
        qtbot: Any, created: Database, settings: QSettings) -> None:
    window = open_window(qtbot, created, settings)
    with qtbot.waitSignal(window.integrity_checked, timeout=60000) as signal:
        window.act_check.trigger()
    assert signal.args[0].ok
    engine = create_engine(created.url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE certificate SET purchaser_name = 'Changed Behind Its Back' WHERE id = 7"))
    engine.dispose()
    with qtbot.waitSignal(window.integrity_checked, timeout=60000) as signal:
        window.act_check.trigger()
    report: CheckReport = signal.args[0]
    assert not report.ok and any("certificate 7: differs" in str(p) for p in report.problems)
    lines = integrity_report.report_lines(report)
    assert any("certificate 7" in line for line in lines) and lines[-2].startswith("Result:")
    window.shutdown()


def test_the_check_on_start_warns_about_a_rewritten_chain_without_blocking_the_desk(
        qtbot: Any, created: Database, settings: QSettings) -> None:
    engine = create_engine(created.url)
    with engine.begin() as conn:  # cut the last event and point the head at the one before
        last = conn.execute(text("SELECT max(seq) FROM audit_event")).scalar_one()
        conn.execute(text("DELETE FROM audit_digest WHERE seq = :s"), {"s": last})
        conn.execute(text("DELETE FROM audit_event WHERE seq = :s"), {"s": last})
        conn.execute(text("UPDATE audit_head SET last_seq = :s, last_hash = (SELECT hash FROM audit_event WHERE "
                          "seq = :s)"), {"s": last - 1})
    engine.dispose()
    window = MainWindow(None, as_of=AS_OF, settings=settings, interactive=True)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.integrity_checked, timeout=20000) as signal:
        window.set_database(created)
    report: CheckReport = signal.args[0]
    assert not report.ok and any("events were removed" in str(p) for p in report.problems)
    dialog = window._report_dialog
    assert dialog.isVisible() and not dialog.isModal()
    assert "File > Check database" in dialog.headline.text()
    # The warning stays in the status bar (a passing message was replaced by the grid's next refresh).
    assert window.integrity_label.isVisible() and "audit trail" in window.integrity_label.text().lower()
    dialog.close()
    window.shutdown()


def test_first_run_offers_to_create_the_default_database_and_never_creates_unasked(
        qtbot: Any, settings: QSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "first-run" / "ecms.sqlite"
    path.parent.mkdir()
    url = f"sqlite:///{path}"
    window = MainWindow(None, as_of=AS_OF, settings=settings, interactive=True)
    qtbot.addWidget(window)
    window.show()
    shown: list[str] = []
    monkeypatch.setattr(window, "show_database_problem", lambda u, message: shown.append(message))
    monkeypatch.setattr(QMessageBox, "question", lambda *_a, **_k: QMessageBox.StandardButton.No)
    window.open_database(url, offer_create=True)
    qtbot.waitUntil(lambda: bool(shown), timeout=10000)
    assert "does not exist" in shown[0] and not path.exists()
    monkeypatch.setattr(QMessageBox, "question", lambda *_a, **_k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(window.database_opened, timeout=20000) as signal:
        window.open_database(url, offer_create=True)
    assert signal.args[0] is not None and path.exists()
    with signal.args[0].reader() as s:
        assert [e.action for e in audit.list_events(s)] == ["database.created"]
    window.shutdown()


def test_a_named_database_that_does_not_exist_is_not_offered_for_creation(
        qtbot: Any, settings: QSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "typo.sqlite"
    window = MainWindow(None, as_of=AS_OF, settings=settings, interactive=False)
    qtbot.addWidget(window)
    asked: list[Any] = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **_k: asked.append(a) or QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(window.database_failed, timeout=10000) as signal:
        window.open_database(f"sqlite:///{path}")
    assert "does not exist" in signal.args[0] and not asked and not path.exists()
    window.shutdown()


def test_file_new_database_creates_it_with_its_first_event(
        qtbot: Any, settings: QSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'new-desk.sqlite'}"
    monkeypatch.setattr("ecms_desktop.views.main_window.database_menu.choose_new_database_file", lambda *_a: url)
    window = MainWindow(None, as_of=AS_OF, settings=settings, interactive=False)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.database_opened, timeout=20000) as signal:
        window.act_new_db.trigger()
    db = signal.args[0]
    with db.reader() as s:
        assert [e.action for e in audit.list_events(s)] == ["database.created"]
    window.shutdown()
