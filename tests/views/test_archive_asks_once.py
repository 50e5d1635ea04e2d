"""Archiving asks once: the form's Archive… button and Certificate > Archive… each ask for the reason in
one dialog (the button used to ask twice: the form's reason dialog and the window's question)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QDialog, QInputDialog

from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.views.main_window import MainWindow
from tests.factories import seed_certificates

AS_OF = dt.date(2026, 6, 1)


def _dialogs() -> list[QDialog]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, QDialog) and w.isVisible()]


def _desk(qtbot, db, company_id, tmp_path: Path) -> tuple[MainWindow, int]:  # type: ignore[no-untyped-def]
    ids = seed_certificates(db, company_id, 3)
    window = MainWindow(None, as_of=AS_OF, settings=QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.resize(1400, 860)
    window.show()
    with qtbot.waitSignals([window.grid_ready, window.counts_updated], timeout=15000):
        window.set_database(db)
    pending = next(i for i in ids if CertificateService(db).get(i, AS_OF).review_state == "pending")
    qtbot.waitUntil(lambda: window.model.position_of(pending) is not None, timeout=15000)
    with qtbot.waitSignal(window.form.checks_loaded, timeout=15000):
        assert window.select_certificate(pending)
    return window, pending


def test_the_forms_archive_button_asks_once(qtbot, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    window, cert_id = _desk(qtbot, db, company_id, tmp_path)
    qtbot.mouseClick(window.form.archive_button, Qt.MouseButton.LeftButton)
    asked = _dialogs()
    assert asked == [window.form.reason_dialog] and not any(isinstance(d, QInputDialog) for d in asked)
    qtbot.keyClicks(window.form.reason_dialog.edit, "customer closed")
    with qtbot.waitSignal(window.form.saved, timeout=15000):
        qtbot.mouseClick(window.form.reason_dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not _dialogs(), timeout=5000)  # no second question follows
    stored = CertificateService(db).get(cert_id, AS_OF)
    assert stored.review_state == "archived" and stored.review_reason == "customer closed"
    window.shutdown()


def test_the_menus_archive_asks_once(qtbot, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    window, cert_id = _desk(qtbot, db, company_id, tmp_path)
    window.act_archive.trigger()
    dialog = window.review_reason_dialog
    assert dialog is not None and _dialogs() == [dialog] and not dialog.ok_button.isEnabled()
    qtbot.keyClicks(dialog.edit, "replaced by a newer certificate")
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: CertificateService(db).get(cert_id, AS_OF).review_state == "archived", timeout=15000)
    assert CertificateService(db).get(cert_id, AS_OF).review_reason == "replaced by a newer certificate"
    assert window.review_reason_dialog is None and not _dialogs()
    window.shutdown()
