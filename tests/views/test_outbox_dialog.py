"""The Outbox: queued, sent and failed messages with the failure's reason, filtered by status; a failed
message is retried through the task runner against a real loopback SMTP server."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import QItemSelectionModel
from PySide6.QtTest import QAbstractItemModelTester

from ecms_desktop.services.renewals.email_service import EmailService
from ecms_desktop.services.renewals.service import RenewalService
from ecms_desktop.views.outbox_dialog import OutboxDialog
from tests.factories import DAY0, RULES, make_expiring_certificate, use_local_smtp


@pytest.fixture
def outbox(qtbot, db, company_id, smtp):
    use_local_smtp(db, company_id, smtp.port, sender="tax@acme.example")
    make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=10))
    make_expiring_certificate(db, company_id, "C-2", DAY0 + dt.timedelta(days=11), email="bad@buyer.example")
    make_expiring_certificate(db, company_id, "C-3", DAY0 + dt.timedelta(days=12))
    smtp.refuse_recipient("bad@buyer.example", 550)
    service = RenewalService(db, RULES)
    c3 = next(i.key for i in service.plan(company_id, DAY0).items if i.customer_number == "C-3")
    service.run(company_id, DAY0, keys=[c3], send=False)  # left queued
    service.run(company_id, DAY0)  # C-1 sent, C-2 refused
    dlg = OutboxDialog(EmailService(db), company_id)
    qtbot.addWidget(dlg)
    with qtbot.waitSignal(dlg.outbox_loaded, timeout=30000):
        dlg.show()
    yield dlg
    dlg.runner.wait()


def rows(model) -> list[tuple[str, str, str]]:
    return [(model.index(r, 0).data(), model.index(r, 3).data(), model.index(r, 7).data())
            for r in range(model.rowCount())]


def test_lists_and_filters_by_status(qtbot, outbox):
    QAbstractItemModelTester(outbox.model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    assert sorted(r[:2] for r in rows(outbox.model)) == [("Failed", "bad@buyer.example"),
                                                         ("Queued", "c-3@buyer.example"),
                                                         ("Sent", "c-1@buyer.example")]
    failed = next(r for r in rows(outbox.model) if r[0] == "Failed")
    assert failed[2].startswith("550") and "No such user" in failed[2]
    assert "1 queued (not sent)" in outbox.summary.text() and "1 failed" in outbox.summary.text()
    assert all("RQ-" in outbox.model.index(r, 4).data() for r in range(outbox.model.rowCount()))
    with qtbot.waitSignal(outbox.outbox_loaded, timeout=30000):
        outbox.status.setCurrentIndex(outbox.status.findData("failed"))
    assert [r[1] for r in rows(outbox.model)] == ["bad@buyer.example"]
    with qtbot.waitSignal(outbox.outbox_loaded, timeout=30000):
        outbox.status.setCurrentIndex(outbox.status.findData("sent"))
    assert [r[1] for r in rows(outbox.model)] == ["c-1@buyer.example"]


def test_retry_a_failed_message(qtbot, outbox, smtp):
    sent_before = len(smtp.messages)
    assert not outbox.retry_button.isEnabled()
    row = next(r for r in range(outbox.model.rowCount()) if outbox.model.index(r, 0).data() == "Sent")
    outbox.table.selectionModel().select(outbox.model.index(row, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
                                         | QItemSelectionModel.SelectionFlag.Rows)
    assert not outbox.retry_button.isEnabled()  # only a failed message is retried
    row = next(r for r in range(outbox.model.rowCount()) if outbox.model.index(r, 0).data() == "Failed")
    outbox.table.selectionModel().select(outbox.model.index(row, 0), QItemSelectionModel.SelectionFlag.ClearAndSelect
                                         | QItemSelectionModel.SelectionFlag.Rows)
    assert outbox.retry_button.isEnabled()
    assert "Refused:</b> 550" in outbox.detail.text() and "then Retry" in outbox.detail.text()
    smtp.refused.clear()  # the address works now
    with qtbot.waitSignal(outbox.messages_sent, timeout=60000) as blocker:
        outbox.retry_button.click()
    assert blocker.args[0].sent == 1
    assert [m.rcpt_tos for m in smtp.messages[sent_before:]] == [["bad@buyer.example"]]  # not the queued one
    qtbot.waitUntil(lambda: "last send: 1 sent" in outbox.summary.text(), timeout=30000)
    assert sorted(r[0] for r in rows(outbox.model)) == ["Queued", "Sent", "Sent"]
