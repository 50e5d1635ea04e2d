"""The review queue by keyboard: approve one, reject one with a reason, navigate."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import Qt

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificate_service import CertificateInput, CertificateService, LineInput
from ecms_desktop.services.customer_service import CustomerService
from ecms_desktop.services.document_service import DocumentService, check_bytes
from ecms_desktop.views.review_queue import ReviewQueueWindow
from ecms_desktop.views.task_runner import TaskRunner
from tests.views.test_pdf_viewer import make_pdf

AS_OF = dt.date(2026, 6, 1)


@pytest.fixture
def queue(qtbot, db, company_id):
    rules = load_rules_pack()
    service = CertificateService(db, rules)
    ids = []
    for i, (name, state, form) in enumerate([("Alpha Traders", "TX", "TX-01-339"),
                                             ("Bravo Stores", "CA", "CA-CDTFA-230"),
                                             ("Charlie Retail", "NY", "NY-ST-120")]):
        customer = CustomerService(db).get_or_create(company_id, f"C-{i}", name)
        detail = service.create(CertificateInput(company_id=company_id, customer_id=customer.id, form_code=form,
                                                 lines=(LineInput(state),), purchaser_name=name), as_of=AS_OF)
        DocumentService(db).attach(check_bytes(make_pdf(2), f"{name}.pdf"), certificate_id=detail.id)
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


def key(qtbot, win, k, mod=Qt.KeyboardModifier.NoModifier):
    qtbot.keyClick(win.focusWidget() or win, k, mod)


def test_review_by_keyboard(qtbot, queue):
    win, ids, service = queue
    assert win.ids == ids and win.detail.id == ids[0]
    assert win.position.text().startswith("Certificate 1 of 3")
    # Focus lands on the first empty required field of the TX form (purchaser address).
    qtbot.waitUntil(lambda: win.focusWidget() is win.form.builder.editor("purchaser_address"), timeout=5000)
    qtbot.waitSignal(win.viewer.page_painted, timeout=20000, raising=False)
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
    # Typing J in a field types it.
    qtbot.waitUntil(lambda: win.focusWidget() is win.form.builder.editor("purchaser_address"), timeout=5000)
    qtbot.keyClicks(win.focusWidget(), "1 Jay St")
    assert win.form.builder.editor("purchaser_address").toPlainText() == "1 Jay St"
    assert win.index == 0
    # Approve with Ctrl+Enter: the edit is saved, the certificate approved, the next one shown.
    with qtbot.waitSignals([win.reviewed, win.certificate_shown], timeout=20000):
        key(qtbot, win, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    first = service.get(ids[0], AS_OF)
    assert first.review_state == "approved" and first.data.purchaser_address == "1 Jay St"
    assert win.ids == ids[1:] and win.detail.id == ids[1]
    # Reject with Ctrl+R, a reason typed in the dialog, Ctrl+Enter to confirm.
    key(qtbot, win, Qt.Key.Key_R, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: win.reason_dialog is not None and win.reason_dialog.isVisible(), timeout=5000)
    dlg = win.reason_dialog
    qtbot.keyClicks(dlg.edit, "Not signed")
    with qtbot.waitSignals([win.reviewed, win.certificate_shown], timeout=20000):
        qtbot.keyClick(dlg.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    second = service.get(ids[1], AS_OF)
    assert second.review_state == "rejected" and second.review_reason == "Not signed"
    assert win.ids == [ids[2]] and win.detail.id == ids[2]
    # Zoom by keyboard (the offscreen platform does not give activation back after a dialog).
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    qtbot.waitUntil(lambda: not win.viewer.busy and win.viewer.page_count == 2, timeout=20000)
    before = win.viewer.zoom
    key(qtbot, win, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert win.viewer.zoom > before
    # Approve the last one: the queue is empty.
    with qtbot.waitSignal(win.reviewed, timeout=20000):
        key(qtbot, win, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: win.stack.currentIndex() == 1, timeout=10000)
    assert "No certificates" in win.empty.text()
    assert service.get(ids[2], AS_OF).review_state == "approved"


def test_shortcuts_are_shown(qtbot, queue):
    win, _, _ = queue
    assert "Ctrl+R" in win.reject_action.toolTip()
    assert "Ctrl+Return" in win.approve_action.toolTip() or "Ctrl+Enter" in win.approve_action.toolTip()
    key(qtbot, win, Qt.Key.Key_F1)
    qtbot.waitUntil(lambda: win._help is not None and win._help.isVisible(), timeout=5000)
