"""The Customers window (search, add, edit, merge, export), a customer's exemption matrix with its one-click
actions, and Certificate > New… from a file or an inbox document."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pytestqt", reason="needs pytest-qt")

from PySide6.QtCore import QModelIndex, QSettings, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QAbstractItemModelTester
from sqlalchemy import select

from ecms_desktop.models import Certificate, Customer, DocumentSource
from ecms_desktop.services.customers.editing import CustomerEditService
from ecms_desktop.services.customers.matrix import Coverage, NextAction
from ecms_desktop.services.customers.service import CustomerService
from ecms_desktop.services.renewals.email_service import EmailService
from ecms_desktop.services.renewals.returned_forms import ReturnedFormsService
from ecms_desktop.views.customers.edit_dialog import CustomerEditDialog
from ecms_desktop.views.customers.list_view import CustomersView
from ecms_desktop.views.customers.matrix_view import ACTION_COLUMN, CustomerView
from ecms_desktop.views.customers.merge_dialog import CustomerMergeDialog
from ecms_desktop.views.main_window import MainWindow
from ecms_desktop.views.operations.task_runner import TaskRunner
from tests.factories import (
    DAY0,
    RULES,
    import_sales,
    make_customer,
    make_expiring_certificate,
    paged_pdf,
    write_text_pdf,
)
from tests.helpers.smtp_server import SmtpTestServer

AS_OF = dt.date(2026, 6, 1)


@pytest.fixture
def runner(qtbot) -> TaskRunner:  # type: ignore[no-untyped-def]
    return TaskRunner()


def _list_view(qtbot, db, company_id, runner, tmp_path: Path) -> CustomersView:  # type: ignore[no-untyped-def]
    view = CustomersView(db, runner, company_id, as_of=AS_OF,
                         settings=QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(view)
    QAbstractItemModelTester(view.model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    view.show()
    with qtbot.waitSignal(view.loaded, timeout=10000):
        view.refresh()
    return view


def _edit_dialog(qtbot, view: CustomersView, button) -> CustomerEditDialog:  # type: ignore[no-untyped-def]
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(d.isVisible() for d in view.findChildren(CustomerEditDialog)), timeout=10000)
    return next(d for d in view.findChildren(CustomerEditDialog) if d.isVisible())


def test_long_addresses_and_parents_never_squeeze_the_legal_name(qtbot, db, company_id, runner, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Seen on the demo at 1000 px: e-mail and parent columns sized to long contents left the legal name
    a few pixels wide ("al n")."""
    parent = make_customer(db, company_id, "C-0", "Consolidated Holdings of the Greater Northwest Region Inc.")
    ids = [make_customer(db, company_id, f"C-{i}", f"Allen County Board of Commissioners {i}") for i in range(1, 6)]
    with db.transaction() as s:
        for i, customer_id in enumerate(ids, 1):
            c = s.get(Customer, customer_id)
            assert c is not None
            c.email = f"accounts-payable-department-{i}@allen-county-board-of-commissioners.example.org"
            c.parent_id = parent
    view = _list_view(qtbot, db, company_id, runner, tmp_path)
    view.resize(1000, 600)
    header = view.table.horizontalHeader()
    name_width = view.table.columnWidth(1)
    assert name_width >= max(260, header.fontMetrics().horizontalAdvance("Legal name"))
    assert all(view.table.columnWidth(c) <= 240 for c in (2, 5))


def test_the_list_searches_adds_and_edits_customers(qtbot, db, company_id, runner, tmp_path) -> None:  # type: ignore[no-untyped-def]
    make_customer(db, company_id, "C-1", "Lone Star Retail LLC")
    make_customer(db, company_id, "C-2", "Gulf Coast Marine LLC")
    view = _list_view(qtbot, db, company_id, runner, tmp_path)
    assert [r.number for r in view.model.rows] == ["C-2", "C-1"]
    with qtbot.waitSignal(view.loaded, timeout=10000):
        view.search_edit.setText("lone star")
    assert [r.number for r in view.model.rows] == ["C-1"]

    dialog = _edit_dialog(qtbot, view, view.new_button)
    dialog.edits["number"].setText("C-3")
    dialog.edits["email"].setText("not an address")
    dialog.edits["ship_to_state"].setText("ok")
    dialog.parent_picker.setCurrentIndex(dialog.parent_picker.findText("C-1 — Lone Star Retail LLC"))
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "cannot be saved" in dialog.problem_label.text(), timeout=10000)
    assert "legal name: a legal name is required" in dialog.problem_label.text()
    assert dialog.isVisible() and "B00020" in dialog.edits["email"].styleSheet()  # what was typed is kept
    dialog.edits["legal_name"].setText("Sooner Supply Inc")
    dialog.edits["email"].setText("ap@sooner.example")
    with qtbot.waitSignal(view.changed, timeout=10000), qtbot.waitSignal(view.loaded, timeout=10000):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    assert view.selected_row() is not None and view.selected_row().number == "C-3"  # type: ignore[union-attr]
    found = CustomerService(db).find(company_id, "C-3")
    record = CustomerEditService(db).get(found.id)
    assert (record.ship_to_state, record.email, record.parent_label) == ("OK", "ap@sooner.example",
                                                                         "C-1 Lone Star Retail LLC")

    dialog = _edit_dialog(qtbot, view, view.edit_button)
    assert dialog.edits["legal_name"].text() == "Sooner Supply Inc"
    dialog.edits["bill_to_city"].setText("Tulsa")
    with qtbot.waitSignal(view.loaded, timeout=10000):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert CustomerEditService(db).get(found.id).bill_to_city == "Tulsa"

    with qtbot.waitSignal(view.report_exported, timeout=10000) as exported:
        view.export_report(tmp_path / "uncovered.csv")
    assert exported.args == [0] and (tmp_path / "uncovered.csv").read_text(encoding="utf-8-sig").startswith(
        "Customer number,")


def test_merge_shows_what_moves_and_merges_on_confirmation(qtbot, db, company_id, runner, tmp_path) -> None:  # type: ignore[no-untyped-def]
    make_expiring_certificate(db, company_id, "C-1B", DAY0 + dt.timedelta(days=400))
    keep = make_customer(db, company_id, "C-1", "Lone Star Retail LLC")
    view = _list_view(qtbot, db, company_id, runner, tmp_path)
    assert view.select_customer(CustomerService(db).find(company_id, "C-1B").id)
    qtbot.mouseClick(view.merge_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(view.findChildren(CustomerMergeDialog)), timeout=10000)
    dialog = view.findChildren(CustomerMergeDialog)[0]
    assert not dialog.merge_button.isEnabled()
    with qtbot.waitSignal(dialog.plan_shown, timeout=10000):
        dialog.survivor_picker.setCurrentIndex(dialog.survivor_picker.findData(keep))
    assert "1 certificate(s)" in dialog.plan_label.text() and "C-1B will mean C-1" in dialog.plan_label.text()
    with qtbot.waitSignal(dialog.merged_into, timeout=10000), qtbot.waitSignal(view.loaded, timeout=10000):
        qtbot.mouseClick(dialog.merge_button, Qt.MouseButton.LeftButton)
    assert [r.number for r in view.model.rows] == ["C-1"] and view.model.rows[0].certificates == 1
    assert "is merged into C-1" in view.status.text()
    assert CustomerService(db).find(company_id, "c-1b").id == keep


def _matrix_customer(db, company_id, tmp_path) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=20))
    pending = make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=400), state="FL",
                                        review="pending")
    import_sales(db, company_id, tmp_path, "I1,1,2025-12-01,C-1,WA,40,0,yes")
    return make_customer(db, company_id, "C-1"), pending


def test_the_matrix_offers_each_next_action_in_one_click(qtbot, db, company_id, runner, tmp_path) -> None:  # type: ignore[no-untyped-def]
    customer_id, pending = _matrix_customer(db, company_id, tmp_path)
    view = CustomerView(db, RULES, runner, customer_id, as_of=DAY0)
    qtbot.addWidget(view)
    QAbstractItemModelTester(view.model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    view.show()
    with qtbot.waitSignal(view.loaded, timeout=10000):
        view.refresh()
    assert view.windowTitle() == "Customer C-1 — Customer C-1"
    assert [view.model.index(r, 0).data() for r in range(view.model.rowCount(QModelIndex()))] == ["FL", "TX", "WA"]
    assert [view.model.index(r, 2).data() for r in range(3)] == ["Pending review", "Expiring", "Missing"]
    assert {s: b.text() for s, b in view.action_buttons.items()} == {"FL": "Review", "TX": "Request",
                                                                     "WA": "Request"}
    assert {s: b.text() for s, b in view.other_buttons.items()} == {"WA": "Add certificate"}
    assert view.table.indexWidget(view.model.index(1, ACTION_COLUMN)) is view.action_buttons["TX"]
    assert view.table.indexWidget(view.model.index(2, ACTION_COLUMN)) is view.other_buttons["WA"].parent()
    with qtbot.waitSignal(view.review_requested, timeout=5000) as review:
        qtbot.mouseClick(view.action_buttons["FL"], Qt.MouseButton.LeftButton)
    assert review.args == [pending]
    with qtbot.waitSignal(view.new_certificate_requested, timeout=5000) as add:
        qtbot.mouseClick(view.other_buttons["WA"], Qt.MouseButton.LeftButton)
    assert add.args == [customer_id, "WA"]
    with SmtpTestServer() as smtp:
        EmailService(db).set_profile(company_id, host="127.0.0.1", port=smtp.port, security="none",
                                     from_address="Acme Tax <tax@acme.example>")
        with qtbot.waitSignal(view.step_taken, timeout=20000) as step, qtbot.waitSignal(view.loaded, timeout=20000):
            qtbot.mouseClick(view.action_buttons["TX"], Qt.MouseButton.LeftButton)
        assert step.args[0].requests_opened == 1 and len(smtp.messages) == 1
        assert view.matrix is not None and view.matrix.row("TX").next_action is NextAction.REMIND
        assert view.action_buttons["TX"].text() == "Remind"
        # a missing state's Request: a first request e-mailed with the state's form, then Remind
        with qtbot.waitSignal(view.step_taken, timeout=20000) as step, qtbot.waitSignal(view.loaded, timeout=20000):
            qtbot.mouseClick(view.action_buttons["WA"], Qt.MouseButton.LeftButton)
        assert step.args[0].requests_opened == 1 and len(smtp.messages) == 2
        assert "please send us your Washington exemption certificate" in str(smtp.messages[1].message["Subject"])
    row = view.matrix.row("WA")
    assert (row.coverage, row.next_action, row.requested_on) == (Coverage.MISSING, NextAction.REMIND, DAY0)
    assert view.action_buttons["WA"].text() == "Remind" and view.other_buttons["WA"].text() == "Add certificate"


# -- in the desk -----------------------------------------------------------------------------------------

@pytest.fixture
def window(qtbot, db, company_id, tmp_path):  # type: ignore[no-untyped-def]
    make_expiring_certificate(db, company_id, "C-1", AS_OF + dt.timedelta(days=200))
    w = MainWindow(None, as_of=AS_OF, settings=QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(w)
    w.resize(1400, 800)
    w.show()
    with qtbot.waitSignals([w.grid_ready, w.counts_updated], timeout=15000):
        w.set_database(db)
    yield w
    w.shutdown()


def _new_certificate_dialog(qtbot, window: MainWindow) -> Any:  # type: ignore[no-untyped-def]
    window.new_certificate_dialog = None
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.new_certificate_dialog is not None, timeout=10000)
    return window.new_certificate_dialog


def test_ctrl_n_makes_a_new_certificate_from_a_file_and_selects_it(qtbot, window, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert window.act_new_certificate.shortcut() == QKeySequence("Ctrl+N")
    assert window.act_new_db.shortcut().isEmpty()
    assert "New…" in [a.text().replace("&", "") for a in window.menus[3].actions()]
    dialog = _new_certificate_dialog(qtbot, window)
    assert not dialog.ok_button.isEnabled()
    dialog.customer_picker.setCurrentText("C-1")
    dialog.file_edit.setText(str(write_text_pdf(tmp_path / "scan.pdf", "A certificate for the new desk")))
    dialog.states_edit.setText("tx, ok")
    assert dialog.ok_button.isEnabled()
    with qtbot.waitSignal(dialog.certificate_created, timeout=20000) as created:
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    cert_id = created.args[0]
    qtbot.waitUntil(lambda: window.current_detail is not None and window.current_detail.id == cert_id, timeout=15000)
    detail = window.current_detail
    assert detail.review_state == "pending" and [line.state for line in detail.lines] == ["OK", "TX"]
    assert detail.data.form_code == "" and len(detail.documents) == 1
    with db.reader() as s:
        assert s.get(Certificate, cert_id).customer.number == "C-1"  # type: ignore[union-attr]


def test_a_new_certificate_from_an_inbox_document_for_a_new_customer(qtbot, window, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "waiting.pdf"
    path.write_bytes(paged_pdf("A document that waits in the inbox"))
    [item] = ReturnedFormsService(db, RULES).intake([path], company_id, as_of=AS_OF,
                                                    received_via=DocumentSource.UPLOAD.value)
    dialog = _new_certificate_dialog(qtbot, window)
    assert dialog.inbox_combo.findData(item.document_id) >= 0
    dialog.inbox_radio.setChecked(True)
    dialog.new_radio.setChecked(True)
    dialog.number_edit.setText("C-77")
    assert not dialog.ok_button.isEnabled()  # the new customer needs a name
    dialog.name_edit.setText("Red River Goods LLC")
    with qtbot.waitSignal(dialog.certificate_created, timeout=20000) as created:
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.current_detail is not None and window.current_detail.id == created.args[0],
                    timeout=15000)
    with db.reader() as s:
        customer = s.execute(select(Customer).where(Customer.number == "C-77")).scalar_one()
        assert customer.legal_name == "Red River Goods LLC"
        assert s.get(Certificate, created.args[0]).customer_id == customer.id  # type: ignore[union-attr]


def test_the_customers_menu_opens_the_list_and_the_selected_certificates_customer(qtbot, window, db) -> None:  # type: ignore[no-untyped-def]
    titles = {m.title().replace("&", ""): [a.text().replace("&", "") for a in m.actions()] for m in window.menus}
    assert titles["Customers"] == ["Customers…", "Customer of the selected certificate…",
                                   "Customers without a valid certificate…"]
    assert window.act_customers.shortcut() == QKeySequence("Ctrl+Shift+C")
    with qtbot.waitSignal(window.tool_opened, timeout=10000) as opened:
        window.act_customers.trigger()
    assert isinstance(opened.args[0], CustomersView)
    qtbot.waitUntil(lambda: opened.args[0].model.rowCount(QModelIndex()) == 1, timeout=10000)
    cert_id = window.model.certificate_id(0)
    qtbot.waitUntil(lambda: window.select_certificate(cert_id), timeout=10000)
    qtbot.waitUntil(lambda: window.act_customer_of_selected.isEnabled(), timeout=10000)
    with qtbot.waitSignal(window.tool_opened, timeout=10000) as opened:
        window.act_customer_of_selected.trigger()
    view = opened.args[0]
    assert isinstance(view, CustomerView)
    with db.reader() as s:
        assert view.customer_id == s.get(Certificate, cert_id).customer_id  # type: ignore[union-attr]
    qtbot.waitUntil(lambda: view.matrix is not None, timeout=10000)
    assert view.matrix.customer.number == "C-1"
    for w in list(window.tools.values()):
        w.close()


def test_review_in_the_matrix_selects_the_pending_certificate_in_the_desk(qtbot, window, db, company_id) -> None:  # type: ignore[no-untyped-def]
    pending = make_expiring_certificate(db, company_id, "C-1", AS_OF + dt.timedelta(days=300), state="FL",
                                        review="pending")
    with qtbot.waitSignal(window.tool_opened, timeout=10000) as opened:
        window.open_customer(make_customer(db, company_id, "C-1"))
    view = opened.args[0]
    qtbot.waitUntil(lambda: "FL" in view.action_buttons, timeout=10000)
    qtbot.mouseClick(view.action_buttons["FL"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.current_detail is not None and window.current_detail.id == pending, timeout=15000)
    view.close()
