"""The Renewal center: plan table, message preview, selection, sending through the task runner to a
real loopback SMTP server, and the template editor's live preview."""

from __future__ import annotations

import datetime as dt

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QAbstractItemModelTester

from ecms_desktop.services.renewals.email_service import EmailService
from ecms_desktop.services.renewals.service import RenewalService
from ecms_desktop.views.renewal_center import RenewalCenterDialog
from tests.factories import DAY0, RULES, make_expiring_certificate
from tests.helpers.smtp_server import SmtpTestServer


@pytest.fixture
def smtp():
    with SmtpTestServer() as server:
        yield server


@pytest.fixture
def dialog(qtbot, db, company_id, smtp):
    EmailService(db).set_profile(company_id, host="127.0.0.1", port=smtp.port, security="none",
                                 from_address="tax@acme.example")
    from ecms_desktop.services.companies.service import CompanyService

    CompanyService(db).set_setting("smtp_rate_per_minute", 0, company_id)
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

    # uncheck the request of customer C-2
    row = next(r for r in range(model.rowCount()) if "C-2" in model.index(r, 2).data()
               and model.index(r, 1).data() == "Request")
    assert model.setData(model.index(row, 0), Qt.CheckState.Unchecked, Qt.ItemDataRole.CheckStateRole)
    with qtbot.waitSignal(dialog.batch_sent, timeout=60000) as blocker:
        dialog.send_button.click()
    result = blocker.args[0]
    assert result.requests_opened == 3 and result.suspended == 1 and result.delivery.sent == 3
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["c-1@buyer.example", "c-3@buyer.example",
                                                          "c-old@buyer.example"]
    # after the run only the unchecked request is still due
    qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=30000)
    assert [model.index(r, 2).data() for r in range(model.rowCount())] == ["Customer C-2 (C-2)"]


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
