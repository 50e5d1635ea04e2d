"""The review queue by keyboard: approve one, reject one with a reason, navigate."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import Qt

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.core.certificate_records import CertificateInput, LineInput
from ecms_desktop.services.customers.service import CustomerService
from ecms_desktop.services.documents.storage import check_bytes
from ecms_desktop.views.certificates.review_queue import ReviewQueueWindow
from ecms_desktop.views.operations.task_runner import TaskRunner
from tests.factories import complete_fields, letter_pdf, permit_number
from tests.helpers.form_editing import EDITOR_KINDS, edit_field
from tests.helpers.shortcuts import ambiguous_shortcuts

AS_OF = dt.date(2026, 6, 1)


#: (customer, state, form, certificate fields): complete but for the address (typed in the queue);
#: incomplete (rejected); complete with a warning (the purchaser name only weakly matches the
#: customer: acknowledged by keyboard); unsigned (errors: approval refused).
QUEUE = [
    ("Alpha Traders", "TX", "TX-01-339", complete_fields("Alpha Traders", "TX", purchaser_address="")),
    ("Bravo Stores", "CA", "CA-CDTFA-230", {"purchaser_name": "Bravo Stores"}),
    ("Charlie Retail", "NY", "NY-ST-120", complete_fields("Charlie Retail Holdings", "NY")),
    ("Delta Supply", "TX", "TX-01-339", complete_fields("Delta Supply", "TX", signed=False, signer_title="")),
]


@pytest.fixture
def queue(qtbot, db, company_id):
    rules = load_rules_pack()
    service = CertificateService(db, rules)
    ids = []
    for i, (name, state, form, values) in enumerate(QUEUE):
        customer = CustomerService(db).get_or_create(company_id, f"C-{i}", name)
        detail = service.create(CertificateInput(company_id=company_id, customer_id=customer.id, form_code=form,
                                                 lines=(LineInput(state, permit_number(state)),), **values),
                                as_of=AS_OF)
        service.attach_document(check_bytes(letter_pdf(2), f"{name}.pdf"), certificate_id=detail.id,
                                expected_version=detail.version)
        ids.append(detail.id)
    runner = TaskRunner()
    win = ReviewQueueWindow(db, rules, runner, AS_OF)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.certificate_shown, timeout=20000):
        win.show()
    win.activateWindow()
    qtbot.waitUntil(lambda: win.isActiveWindow(), timeout=5000)
    yield win, ids, service
    win.viewer.shutdown()
    runner.wait(10000)
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()  # deliver the last results while the window still exists


def key(qtbot, win, k, mod=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(win.focusWidget() or win, k, mod)


def _reactivate(qtbot, win):
    # The offscreen platform does not give activation back after a dialog.
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)


def test_review_by_keyboard(qtbot, queue):
    win, ids, service = queue
    assert win.ids == ids and win.detail.id == ids[0]
    assert win.position.text().startswith("Certificate 1 of 4")
    # Focus lands on the first empty required field of the TX form (purchaser address).
    qtbot.waitUntil(lambda: win.focusWidget() is win.form.builder.editor("purchaser_address"), timeout=5000)
    qtbot.waitSignal(win.viewer.page_painted, timeout=20000, raising=False)
    # The missing address is an error: Approve stays available but refuses, saying why (the tooltip too).
    assert win.form.has_errors and win.approve_action.isEnabled()
    assert "cannot be approved" in win.approve_action.toolTip()
    key(qtbot, win, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert "cannot be approved" in win.statusBar().currentMessage() and "address" in win.statusBar().currentMessage()
    assert service.get(ids[0], AS_OF).review_state == "pending"
    # Navigate: next, previous.
    with qtbot.waitSignal(win.certificate_shown, timeout=10000) as b:
        key(qtbot, win, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    assert b.args == [ids[1]]
    with qtbot.waitSignal(win.certificate_shown, timeout=10000) as b:
        key(qtbot, win, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    assert b.args == [ids[0]]
    # J / K work when the focus is not in a text field.
    win.form.save_button.setFocus()
    with qtbot.waitSignal(win.certificate_shown, timeout=10000) as b:
        qtbot.keyClick(win.form.save_button, Qt.Key.Key_J)
    assert b.args == [ids[1]]
    win.form.save_button.setFocus()
    with qtbot.waitSignal(win.certificate_shown, timeout=10000) as b:
        qtbot.keyClick(win.form.save_button, Qt.Key.Key_K)
    assert b.args == [ids[0]]
    # Typing J in a field types it; the live check then finds nothing left: Approve is enabled.
    qtbot.waitUntil(lambda: win.focusWidget() is win.form.builder.editor("purchaser_address"), timeout=5000)
    qtbot.keyClicks(win.focusWidget(), "1 Jay St")
    assert win.form.builder.editor("purchaser_address").toPlainText() == "1 Jay St"
    assert win.index == 0
    qtbot.waitUntil(lambda: win.form.findings_live and not win.form.has_errors, timeout=5000)
    # Approve with Ctrl+Enter: no warnings, so no question; the edit is saved, the certificate
    # approved, the next one shown.
    with qtbot.waitSignals([win.reviewed, win.certificate_shown], timeout=20000):
        key(qtbot, win, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert win.acknowledge_dialog is None
    first = service.get(ids[0], AS_OF)
    assert first.review_state == "approved" and first.data.purchaser_address == "1 Jay St"
    assert win.ids == ids[1:] and win.detail.id == ids[1]
    # Reject with Ctrl+Shift+R (as on the main window, where Ctrl+R opens this queue), a reason typed in
    # the dialog, Ctrl+Enter to confirm.
    key(qtbot, win, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: win.reason_dialog is not None and win.reason_dialog.isVisible(), timeout=5000)
    dlg = win.reason_dialog
    qtbot.keyClicks(dlg.edit, "Not signed")
    with qtbot.waitSignals([win.reviewed, win.certificate_shown], timeout=20000):
        qtbot.keyClick(dlg.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    second = service.get(ids[1], AS_OF)
    assert second.review_state == "rejected" and second.review_reason == "Not signed"
    assert win.ids == [ids[2], ids[3]] and win.detail.id == ids[2]
    # Zoom by keyboard.
    _reactivate(qtbot, win)
    qtbot.waitUntil(lambda: not win.viewer.busy and win.viewer.page_count == 2, timeout=20000)
    before = win.viewer.zoom
    key(qtbot, win, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert win.viewer.zoom > before


def test_warnings_are_acknowledged_by_keyboard(qtbot, queue):
    from ecms_desktop.services.validation.service import ValidationService

    win, ids, service = queue
    with qtbot.waitSignal(win.certificate_shown, timeout=30000):
        win.go_to(2)
    assert win.detail.id == ids[2]
    qtbot.waitUntil(lambda: win.approve_action.isEnabled(), timeout=5000)
    assert [f.field for f in win.form.warnings] == ["purchaser_name"] and not win.form.has_errors
    # A pending certificate with warnings: "Acknowledge and approve…" is offered.
    assert win.form.findings_panel.acknowledge_button.isVisibleTo(win)
    # Ctrl+Enter lists the warnings and asks; nothing is approved yet.
    key(qtbot, win, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: win.acknowledge_dialog is not None and win.acknowledge_dialog.isVisible(), timeout=5000)
    dlg = win.acknowledge_dialog
    assert dlg.model.rowCount() == 1 and "weakly" in dlg.model.finding(0).message
    assert service.get(ids[2], AS_OF).review_state == "pending"
    # Esc goes back without approving.
    qtbot.keyClick(dlg.note_edit, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: win.acknowledge_dialog is None, timeout=5000)
    assert service.get(ids[2], AS_OF).review_state == "pending"
    _reactivate(qtbot, win)
    key(qtbot, win, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: win.acknowledge_dialog is not None and win.acknowledge_dialog.isVisible(), timeout=5000)
    dlg = win.acknowledge_dialog
    qtbot.keyClicks(dlg.note_edit, "Holdings is the trading name")
    with qtbot.waitSignals([win.reviewed, win.certificate_shown], timeout=20000):
        qtbot.keyClick(dlg.note_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert service.get(ids[2], AS_OF).review_state == "approved"
    latest = ValidationService(service.db).latest(ids[2])
    assert latest is not None and latest.acknowledged is not None  # who and when are on file
    assert win.detail.id == ids[3]


def test_approval_refused_while_errors_remain(qtbot, queue):
    win, ids, service = queue
    with qtbot.waitSignal(win.certificate_shown, timeout=30000):
        win.go_to(3)
    assert win.detail.id == ids[3]
    qtbot.waitUntil(lambda: win.form.has_errors, timeout=5000)
    assert "cannot be approved" in win.approve_action.toolTip()
    # The shortcut says why in the status bar, naming the first error, and approves nothing.
    key(qtbot, win, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert "cannot be approved" in win.statusBar().currentMessage()
    assert win.acknowledge_dialog is None and not win._busy
    assert service.get(ids[3], AS_OF).review_state == "pending"
    # Tick the signature and fill the title: Approve becomes available.
    win.form.builder.editor("signature").setChecked(True)
    title = win.form.builder.editor("signer_title")
    title.setFocus()
    qtbot.keyClicks(title, "Owner")
    qtbot.waitUntil(lambda: not win.form.has_errors, timeout=5000)
    with qtbot.waitSignal(win.reviewed, timeout=20000):
        key(qtbot, win, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert service.get(ids[3], AS_OF).review_state == "approved"


def test_shortcuts_are_shown(qtbot, queue):
    win, _, _ = queue
    assert "Ctrl+Shift+R" in win.reject_action.toolTip()
    assert "Ctrl+Return" in win.approve_action.toolTip() or "Ctrl+Enter" in win.approve_action.toolTip()
    key(qtbot, win, Qt.Key.Key_F1)
    qtbot.waitUntil(lambda: win._help is not None and win._help.isVisible(), timeout=5000)


# --------------------------------------------------------------------------- integrity of the queue


def _answer(qtbot, win, button):  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QMessageBox

    qtbot.waitUntil(lambda: win.form.unsaved_dialog is not None and win.form.unsaved_dialog.isVisible(), timeout=5000)
    box = win.form.unsaved_dialog
    assert "not saved" in box.text()
    box.button(getattr(QMessageBox.StandardButton, button)).click()


def test_approving_after_editing_a_date_saves_nothing_into_the_next_certificate(qtbot, queue):
    """The reported case: edit a date of A, Ctrl+Enter: B must show B, and saving B writes B's values."""
    win, ids, service = queue
    qtbot.waitUntil(lambda: win.focusWidget() is win.form.builder.editor("purchaser_address"), timeout=5000)
    qtbot.keyClicks(win.focusWidget(), "1 Jay St")
    edit_field(qtbot, win.form, "date")  # the focus stays in the date field
    qtbot.waitUntil(lambda: win.approve_action.isEnabled(), timeout=5000)
    with qtbot.waitSignals([win.reviewed, win.certificate_shown], timeout=20000):
        key(qtbot, win, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    first = service.get(ids[0], AS_OF)
    assert first.review_state == "approved" and first.data.signed_date == dt.date(2026, 4, 30)
    second = service.get(ids[1], AS_OF)
    assert win.detail.id == ids[1] and win.form.collect() == second.data, "A's values reached B"
    assert "Bravo Stores" in win.form.title.text() and not win.form.is_dirty()
    win.form.save_button.setFocus()  # the focus moves on, then Save
    win.form.save()
    win.form.runner.wait(10000)
    qtbot.wait(50)
    assert service.get(ids[1], AS_OF).data == second.data


@pytest.mark.parametrize("kind", EDITOR_KINDS)
def test_walking_the_queue_after_editing_each_kind_of_field_never_mixes_records(qtbot, queue, kind):
    win, ids, service = queue
    versions = [service.get(i, AS_OF).version for i in ids]
    for step, (move, expected) in enumerate([(Qt.Key.Key_Right, 1), (Qt.Key.Key_Right, 2), (Qt.Key.Key_Left, 1)]):
        _reactivate(qtbot, win)
        edit_field(qtbot, win.form, kind)
        assert win.form.is_dirty()
        key(qtbot, win, move, Qt.KeyboardModifier.AltModifier)  # the focus is still in the edited field
        with qtbot.waitSignal(win.certificate_shown, timeout=20000) as shown:
            _answer(qtbot, win, "Discard")
        assert shown.args == [ids[expected]], step
        stored = service.get(ids[expected], AS_OF)
        assert win.form.collect() == stored.data, f"step {step}: values of another certificate are shown"
        assert not win.form.is_dirty()
    assert [service.get(i, AS_OF).version for i in ids] == versions  # nothing was written anywhere


def test_unsaved_edits_in_the_queue_ask_save_discard_or_cancel(qtbot, queue):
    win, ids, service = queue
    name = win.form.builder.editor("purchaser_name")
    name.setFocus()
    name.selectAll()
    qtbot.keyClicks(name, "Alpha Traders Renamed")
    # Next: Cancel stays here with the edit.
    key(qtbot, win, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    _answer(qtbot, win, "Cancel")
    qtbot.waitUntil(lambda: win.form.unsaved_dialog is None, timeout=5000)
    assert win.detail.id == ids[0] and name.text() == "Alpha Traders Renamed" and win.form.is_dirty()
    # Next again: Save stores the edit, then the next certificate is shown.
    _reactivate(qtbot, win)
    key(qtbot, win, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    with qtbot.waitSignal(win.certificate_shown, timeout=20000) as shown:
        _answer(qtbot, win, "Save")
    assert shown.args == [ids[1]]
    assert service.get(ids[0], AS_OF).data.purchaser_name == "Alpha Traders Renamed"
    # Reject with unsaved edits asks too (Cancel: nothing rejected, no reason asked).
    _reactivate(qtbot, win)
    win.form.builder.editor("purchaser_name").setText("Bravo Edited")
    win.reject()
    _answer(qtbot, win, "Cancel")
    assert win.reason_dialog is None and service.get(ids[1], AS_OF).review_state == "pending"
    # Closing the queue with unsaved edits asks; Cancel keeps it open, Discard closes it.
    win.close()
    _answer(qtbot, win, "Cancel")
    qtbot.waitUntil(lambda: win.form.unsaved_dialog is None, timeout=5000)
    assert win.isVisible() and win.form.builder.editor("purchaser_name").text() == "Bravo Edited"
    win.close()
    _answer(qtbot, win, "Discard")
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=5000)
    assert service.get(ids[1], AS_OF).data.purchaser_name == "Bravo Stores"


def test_approving_on_a_busy_database_keeps_the_edit_and_retries(qtbot, tmp_path, _sqlite_template):
    import shutil
    import sqlite3

    from PySide6.QtWidgets import QMessageBox

    from ecms_desktop.services.companies.service import CompanyService
    from ecms_desktop.services.core.database import Database

    path = tmp_path / "busy.sqlite"
    shutil.copy(_sqlite_template, path)
    setup = Database(str(path))
    company = CompanyService(setup).create("Acme Supply Co", state="TX").id
    rules = load_rules_pack()
    name, state, form, values = QUEUE[0]
    customer = CustomerService(setup).get_or_create(company, "C-0", name)
    cert = CertificateService(setup, rules).create(
        CertificateInput(company_id=company, customer_id=customer.id, form_code=form,
                         lines=(LineInput(state, permit_number(state)),), **values), as_of=AS_OF)
    setup.dispose()
    db = Database(str(path), lock_timeout=0.3)
    runner = TaskRunner()
    win = ReviewQueueWindow(db, rules, runner, AS_OF)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.certificate_shown, timeout=20000):
        win.show()
    _reactivate(qtbot, win)
    address = win.form.builder.editor("purchaser_address")
    address.setFocus()
    qtbot.keyClicks(address, "1 Busy St")
    qtbot.waitUntil(win.approve_action.isEnabled, timeout=5000)
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        key(qtbot, win, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
        qtbot.waitUntil(lambda: win.findChild(QMessageBox, "databaseBusyBox") is not None, timeout=20000)
        box = win.findChild(QMessageBox, "databaseBusyBox")
        assert "is busy" in box.text() and "edits are still in the form" in box.informativeText()
        assert address.toPlainText() == "1 Busy St" and win.detail.id == cert.id
    finally:
        other.execute("ROLLBACK")
        other.close()
    with qtbot.waitSignal(win.reviewed, timeout=20000):
        box.button(QMessageBox.StandardButton.Retry).click()
    stored = CertificateService(db, rules).get(cert.id, AS_OF)
    assert stored.review_state == "approved" and stored.data.purchaser_address == "1 Busy St"
    win.viewer.shutdown()
    runner.wait(10000)
    db.dispose()


@pytest.mark.parametrize("where", ["form", "viewer"])
def test_ctrl_s_saves_the_edits_wherever_the_focus_is_in_the_queue(qtbot, queue, where):
    """Ctrl+S is one shortcut in the queue window: with the form's own Save shortcut beside the
    window's, Qt found it ambiguous and nothing was saved while the cursor was in a field."""
    win, ids, service = queue
    edit_field(qtbot, win.form, "line")
    if where == "viewer":
        win.viewer.setFocus(Qt.FocusReason.OtherFocusReason)
        qtbot.waitUntil(lambda: win.form.focusWidget() is None or not win.form.isAncestorOf(win.focusWidget()),
                        timeout=3000)
    with qtbot.waitSignal(win.form.saved, timeout=20000):
        key(qtbot, win, Qt.Key.Key_S, Qt.KeyboardModifier.ControlModifier)
    assert service.get(ids[0], AS_OF).data.purchaser_name == "Someone Else Entirely LLC"
    assert not win.form.is_dirty()


def test_the_queue_window_fits_the_screen(qtbot, queue):
    """On a 1280 x 800 screen the queue opened 1400 x 900: its Approve badge and field column were
    off screen."""
    win, _, _ = queue
    room = win.screen().availableGeometry()
    assert win.width() <= room.width() and win.height() <= room.height()


def test_no_key_of_the_queue_is_ambiguous(qtbot, queue):
    win, _, _ = queue
    assert ambiguous_shortcuts(win) == {}
