"""The Renewal center: plan table, message preview, selection (nothing destructive preselected,
suspensions confirmed with their count), sending exactly the ticked rows through the task runner to a
real loopback SMTP server, messages queued earlier shown and left alone, and the template editor's
live preview."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QAbstractItemModelTester
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton
from sqlalchemy import func, select

from ecms_desktop.models.renewal import OutboxMessage, RenewalRequest
from ecms_desktop.services.core.errors import ExternalServiceError
from ecms_desktop.services.renewals.email_service import EmailService
from ecms_desktop.services.renewals.service import Action, RenewalService
from ecms_desktop.views.renewal_center import RenewalCenterDialog
from tests.factories import DAY0, RULES, make_expiring_certificate, use_local_smtp
from tests.helpers.smtp_server import closed_port


def message_box(qtbot, name: str) -> QMessageBox:
    """The open question box named ``name`` (shown window-modally; the event loop keeps running)."""
    found: list[QMessageBox] = []

    def shown() -> bool:
        found[:] = [w for w in QApplication.topLevelWidgets()
                    if isinstance(w, QMessageBox) and w.objectName() == name and w.isVisible()]
        return bool(found)

    qtbot.waitUntil(shown, timeout=5000)
    return found[0]


def press(box: QMessageBox, text: str) -> None:
    button = next(b for b in box.findChildren(QPushButton) if b.text() == text)
    button.click()


def ticked(model) -> dict[str, str]:
    return {f"{model.index(r, 2).data()} {model.index(r, 1).data()}":
            model.index(r, 0).data(Qt.ItemDataRole.CheckStateRole) == Qt.CheckState.Checked
            for r in range(model.rowCount())}



@pytest.fixture
def dialog(qtbot, db, company_id, smtp):
    use_local_smtp(db, company_id, smtp.port, sender="tax@acme.example")
    for n in range(3):
        make_expiring_certificate(db, company_id, f"C-{n + 1}", DAY0 + dt.timedelta(days=10 + n))
    make_expiring_certificate(db, company_id, "C-OLD", DAY0 - dt.timedelta(days=3))
    dlg = RenewalCenterDialog(RenewalService(db, RULES), company_id, DAY0)
    qtbot.addWidget(dlg)
    with qtbot.waitSignal(dlg.preview_shown, timeout=30000):  # plan and preview are read off the GUI thread
        dlg.show()
    yield dlg
    dlg.runner.wait()


def test_plan_preview_selection_and_send(qtbot, dialog, smtp, tmp_path):
    model = dialog.model
    QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    steps = [model.index(r, 1).data() for r in range(model.rowCount())]
    assert sorted(steps) == ["Request"] * 4 + ["Suspend"]
    # the first row is previewed: subject with the preview token, attachments named
    assert "RQ-PREVIEW00" in dialog.preview_header.text() and "fill-in.pdf" in dialog.preview_header.text()
    assert "Dear Customer" in dialog.preview.toPlainText()
    dialog.grab().save(str(tmp_path / "renewal_center.png"))

    # requests are preselected, the suspension is not
    assert ticked(model) == {"Customer C-1 (C-1) Request": True, "Customer C-2 (C-2) Request": True,
                             "Customer C-3 (C-3) Request": True, "Customer C-OLD (C-OLD) Request": True,
                             "Customer C-OLD (C-OLD) Suspend": False}
    # uncheck the request of customer C-2
    row = next(r for r in range(model.rowCount()) if "C-2" in model.index(r, 2).data()
               and model.index(r, 1).data() == "Request")
    assert model.setData(model.index(row, 0), Qt.CheckState.Unchecked, Qt.ItemDataRole.CheckStateRole)
    with qtbot.waitSignal(dialog.batch_sent, timeout=60000) as blocker:
        dialog.send_button.click()  # no suspension ticked: no question
    result = blocker.args[0]
    assert result.requests_opened == 3 and result.suspended == 0 and result.delivery.sent == 3
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["c-1@buyer.example", "c-3@buyer.example",
                                                          "c-old@buyer.example"]
    # after the run the unchecked request and the suspension are still due
    qtbot.waitUntil(lambda: model.rowCount() == 2, timeout=30000)
    assert ticked(model) == {"Customer C-2 (C-2) Request": True, "Customer C-OLD (C-OLD) Suspend": False}


def test_suspensions_are_confirmed_with_their_count(qtbot, dialog, smtp):
    model = dialog.model
    dialog.select_none.click()
    dialog.select_all.click()  # e-mails only
    assert [i.action for i in model.selected_items()] == [Action.REQUEST] * 4
    dialog.select_suspensions.click()
    assert len(model.selected_items()) == 5
    dialog.send_button.click()
    box = message_box(qtbot, "confirmSuspensions")
    assert box.text() == "Suspend 1 customer?" and "4 ticked e-mail steps are carried out" in box.informativeText()
    press(box, "Cancel")  # nothing happens
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=5000)
    assert dialog.send_button.isEnabled() and dialog.runner.pool.activeThreadCount() == 0
    with dialog.service.db.reader() as s:
        assert s.execute(select(func.count()).select_from(RenewalRequest)).scalar_one() == 0
    assert smtp.messages == []

    dialog.send_button.click()
    box = message_box(qtbot, "confirmSuspensions")
    with qtbot.waitSignal(dialog.batch_sent, timeout=60000) as blocker:
        press(box, "Suspend 1")
    assert blocker.args[0].suspended == 1 and blocker.args[0].requests_opened == 4
    assert len(smtp.messages) == 4


def test_messages_queued_earlier_are_shown_and_not_sent(qtbot, db, company_id, dialog, smtp):
    c1 = next(i for i in dialog.model.items if i.customer_number == "C-1")
    dialog.service.run(company_id, DAY0, keys=[c1.key], send=False)  # an earlier run left it queued
    with qtbot.waitSignal(dialog.plan_loaded, timeout=30000):
        dialog.refresh()
    assert "1 message is queued from an earlier send, not sent" in dialog.queued_note.text()
    with qtbot.waitSignal(dialog.batch_sent, timeout=60000) as blocker:
        dialog.send_button.click()
    assert blocker.args[0].delivery.sent == 3 and blocker.args[0].queued_earlier == 1
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["c-2@buyer.example", "c-3@buyer.example",
                                                          "c-old@buyer.example"]
    qtbot.waitUntil(lambda: "1 message is queued" in dialog.queued_note.text(), timeout=30000)

    # the user says so: Outbox > Send queued…
    outbox = dialog.open_outbox("queued")
    qtbot.waitUntil(lambda: outbox.model.rowCount() == 1, timeout=30000)
    assert outbox.model.index(0, 0).data() == "Queued" and outbox.model.index(0, 3).data() == "c-1@buyer.example"
    outbox.send_queued_button.click()
    box = message_box(qtbot, "confirmSendQueued")
    assert box.text() == "Send the queued message now?"
    with qtbot.waitSignal(outbox.messages_sent, timeout=60000):
        press(box, "Send")
    assert smtp.messages[-1].rcpt_tos == ["c-1@buyer.example"]
    qtbot.waitUntil(lambda: outbox.model.rowCount() == 0, timeout=30000)
    qtbot.waitUntil(lambda: dialog.queued_note.text() == "", timeout=30000)


def test_send_with_the_server_down_creates_nothing(qtbot, db, company_id, dialog, smtp, monkeypatch):
    EmailService(db).set_profile(company_id, host="127.0.0.1", port=closed_port(), security="none",
                                 from_address="tax@acme.example")
    shown: list[BaseException] = []
    monkeypatch.setattr("ecms_desktop.views.renewal_center.present_error", lambda _w, e: shown.append(e))
    with qtbot.waitSignal(dialog.batch_failed, timeout=60000) as blocker:
        dialog.send_button.click()
    assert isinstance(blocker.args[0], ExternalServiceError) and shown == [blocker.args[0]]
    assert "Cannot reach the SMTP server" in str(blocker.args[0])
    with db.reader() as s:
        assert s.execute(select(func.count()).select_from(RenewalRequest)).scalar_one() == 0
        assert s.execute(select(func.count()).select_from(OutboxMessage)).scalar_one() == 0
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 5, timeout=30000)


def test_template_editor_live_preview_and_save(qtbot, dialog):
    editor = dialog.templates
    dialog.tabs.setCurrentWidget(editor)
    editor.html.setPlainText('{% extends "_layout.html.j2" %}{% block body %}<p>Hello {{ customer.name }}, '
                             'renew by {{ expiry }}</p>{% endblock %}')
    qtbot.waitUntil(lambda: "Hello Blue Widgets Inc, renew by 2026-03-31" in editor.preview.toPlainText(),
                    timeout=5000)
    editor.subject.setText("Renew {{ token")  # a mistake is reported, saving disabled
    qtbot.waitUntil(lambda: "mistake" in editor.status.text(), timeout=5000)
    assert not editor.save_button.isEnabled()
    editor.subject.setText("Please renew, {{ customer.name }} [{{ token }}]")
    qtbot.waitUntil(editor.save_button.isEnabled, timeout=5000)
    with qtbot.waitSignal(editor.template_saved, timeout=5000):
        editor.save_button.click()
    src = dialog.service.template(dialog.company_id, "request")
    assert src.custom and src.subject.startswith("Please renew")
    dialog.tabs.setCurrentIndex(0)
    with qtbot.waitSignal(dialog.preview_shown, timeout=30000):
        dialog.refresh()
    assert "Please renew, Customer C-" in dialog.preview_header.text()


def test_a_first_requests_reminder_is_listed_previewed_and_sent(qtbot, db, company_id, smtp, tmp_path):
    from ecms_desktop.services.renewals.first_request import open_first_request
    from tests.factories import import_sales, make_customer

    EmailService(db).set_profile(company_id, host="127.0.0.1", port=smtp.port, security="none",
                                 from_address="tax@acme.example")
    make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=300))
    import_sales(db, company_id, tmp_path, "I1,1,2025-12-01,C-1,OK,40,0,yes")
    open_first_request(RenewalService(db, RULES), make_customer(db, company_id, "C-1"), "OK", as_of=DAY0)
    dlg = RenewalCenterDialog(RenewalService(db, RULES), company_id, DAY0 + dt.timedelta(days=7))
    qtbot.addWidget(dlg)
    with qtbot.waitSignal(dlg.preview_shown, timeout=30000):
        dlg.show()
    model = dlg.model
    QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    assert [[model.index(0, c).data() for c in range(1, 7)]] == [
        ["Reminder 1", "Customer C-1 (C-1)", "OK", "first request", "", None]]
    assert "Until we do, we must charge sales tax" in dlg.preview.toPlainText()
    with qtbot.waitSignal(dlg.batch_sent, timeout=60000) as blocker:
        dlg.send_button.click()
    assert blocker.args[0].reminders == 1 and len(smtp.messages) == 2
    dlg.runner.wait()


def test_the_plan_is_counted_in_words() -> None:
    """The summary read "138 request, 0 reminder, 0 escalation, 100 suspend due on …" on the demo."""
    from ecms_desktop.views.renewal_center import plan_summary

    counts = {"request": 138, "reminder": 1, "escalation": 0, "suspend": 100}
    assert plan_summary(counts, dt.date(2026, 12, 6)) == \
        "138 requests, 1 reminder, 0 escalations, 100 suspensions due on 2026-12-06"


def test_another_desks_change_keeps_the_users_ticks_and_place(qtbot, db, company_id, dialog):
    """Live refresh: the plan is read again when another desk commits, and the user's choices stay."""
    from ecms_desktop.services.core.changes import ChangeBatch

    model = dialog.model

    def row_of(customer: str) -> int:
        return next(r for r in range(model.rowCount()) if customer in model.index(r, 2).data()
                    and model.index(r, 1).data() == "Request")

    assert model.setData(model.index(row_of("C-2"), 0), Qt.CheckState.Unchecked, Qt.ItemDataRole.CheckStateRole)
    dialog.table.selectRow(row_of("C-3"))
    make_expiring_certificate(db, company_id, "C-9", DAY0 + dt.timedelta(days=20))  # as another desk would
    with qtbot.waitSignal(dialog.plan_loaded, timeout=30000):
        dialog.follow_changes(ChangeBatch((), 0, False))
    assert ticked(model) == {"Customer C-1 (C-1) Request": True, "Customer C-2 (C-2) Request": False,
                             "Customer C-3 (C-3) Request": True, "Customer C-9 (C-9) Request": True,
                             "Customer C-OLD (C-OLD) Request": True, "Customer C-OLD (C-OLD) Suspend": False}
    assert dialog.table.currentIndex().row() == row_of("C-3")
