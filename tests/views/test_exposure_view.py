"""The exposure view (table + painted bar chart) and the reprocess dialog (preview, acknowledgement, start)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

pytest.importorskip("pytestqt", reason="needs pytest-qt")

import openpyxl
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtTest import QAbstractItemModelTester
from PySide6.QtWidgets import QLabel

from ecms_desktop.services.sales.determination_service import DeterminationService
from ecms_desktop.services.sales.periods import PeriodService
from ecms_desktop.views.exposure_view import ExposureView
from ecms_desktop.views.reprocess_dialog import ReprocessDialog
from tests.factories import import_sales, make_signed_certificate


@pytest.fixture
def sales(db, company_id, tmp_path):  # type: ignore[no-untyped-def]
    import_sales(db, company_id, tmp_path, "A1,1,2026-02-10,C-1,TX,1200,0,yes", "A2,1,2026-03-10,C-2,TX,400,0,yes",
                 "A3,1,2026-03-11,C-3,OK,250,0,yes", "A4,1,2026-10-11,C-1,TX,90,0,yes")
    DeterminationService(db).run(company_id)
    return db


@pytest.fixture
def covered(db, company_id, tmp_path):  # type: ignore[no-untyped-def]
    """C-1 ("Harbor Freight Depot") holds a TX certificate: B1 was taxed anyway (7.50 of tax); C-2 has none
    and claimed B2 exempt (300 untaxed); B3 is as it should be."""
    make_signed_certificate(db, company_id, "C-1", as_of=dt.date(2026, 11, 1), review="approved",
                            customer_name="Harbor Freight Depot", certificate_number="TX-9")
    import_sales(db, company_id, tmp_path, "B1,1,2026-05-04,C-1,TX,100,7.50,no", "B2,1,2026-05-06,C-2,TX,300,0,yes",
                 "B3,1,2026-05-08,C-1,TX,60,0,yes")  # covered and untaxed: no exposure
    DeterminationService(db).run(company_id)
    return db


def _loaded(qtbot, db, company_id, date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 12, 31)) -> ExposureView:  # type: ignore[no-untyped-def]
    view = ExposureView(db, company_id, date_from=date_from, date_to=date_to)
    qtbot.addWidget(view)
    QAbstractItemModelTester(view.model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    view.resize(1100, 640)
    view.show()
    with qtbot.waitSignal(view.report_loaded, timeout=10000):
        view.refresh()
    return view


def _cells(view: ExposureView) -> list[list[str]]:
    m = view.model
    return [[m.index(r, c).data() for c in range(m.columnCount())] for r in range(m.rowCount())]


def test_exposure_view_shows_table_and_chart(qtbot, sales, company_id) -> None:  # type: ignore[no-untyped-def]
    view = _loaded(qtbot, sales, company_id)
    assert view.model.rowCount(QModelIndex()) == 4
    assert view.chart.items()[0] == ("TX", Decimal("1690.00"))
    assert "1,940.00" in view.uncovered_label.text() and "0.00" in view.tax_label.text()
    # The third measure is stated beside the other two (it was only in the table's last columns).
    assert "Covered in law, past our renewal policy (not exposure): <b>0.00</b>" in view.policy_label.text()
    assert "three figures" in view.status_label.text()
    # Seen at 1100 pixels in a real window: the customer's name was squeezed to "..." to make room for the
    # three measures' columns; the table scrolls sideways instead.
    view.resize(900, 600)
    view.show()
    qtbot.waitExposed(view)
    assert view.table.columnWidth(3) >= view.table.sizeHintForColumn(3) > 40
    view.group_combo.setCurrentIndex(2)  # by customer
    assert [label for label, _ in view.chart.items()] == ["C-1", "C-2", "C-3"]
    view.grab().save("/tmp/exposure_view.png")
    view.state_edit.setText("OK")
    with qtbot.waitSignal(view.report_loaded, timeout=10000):
        view.refresh()
    assert view.model.rowCount(QModelIndex()) == 1


def test_the_two_measures_are_shown_apart_never_summed(qtbot, covered, company_id) -> None:  # type: ignore[no-untyped-def]
    view = _loaded(qtbot, covered, company_id)
    headers = [view.model.headerData(c, Qt.Orientation.Horizontal) for c in range(view.model.columnCount())]
    assert headers == ["State", "Period", "Customer", "Customer name", "Exempt, no certificate: lines",
                       "Untaxed amount", "Covered, taxed: lines", "Tax collected", "Covered in law only: lines",
                       "Untaxed, covered in law"]
    assert _cells(view) == [["TX", "2026-05", "C-1", "Harbor Freight Depot", "", "", "1", "7.50", "", ""],
                            ["TX", "2026-05", "C-2", "(not in the customer list)", "1", "300.00", "", "", "", ""]]
    assert "300.00" in view.uncovered_label.text() and "untaxed" in view.uncovered_label.text()
    assert "7.50" in view.tax_label.text() and "of tax" in view.tax_label.text()
    shown = " ".join(w.text() for w in view.findChildren(QLabel))
    assert "307.50" not in shown, "the untaxed amount and the tax are never added"
    assert view.chart.items() == [("TX", Decimal("300.00"))]
    view.measure_combo.setCurrentIndex(1)  # tax collected on covered sales
    view.group_combo.setCurrentIndex(2)
    assert view.chart.items() == [("C-1 Harbor Freight Depot", Decimal("7.50"))]


def test_no_sales_is_not_called_no_exposure(qtbot, covered, company_id) -> None:  # type: ignore[no-untyped-def]
    view = _loaded(qtbot, covered, company_id, dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    assert "No sales imported for this period" in view.status_label.text()
    assert view.chart.empty_text == "No sales imported for this period"
    view.from_edit.set_date(dt.date(2026, 5, 8))
    view.to_edit.set_date(dt.date(2026, 5, 8))  # a sale, not exposed
    with qtbot.waitSignal(view.report_loaded, timeout=10000):
        view.refresh()
    assert "No exposure in this period" in view.status_label.text() and view.model.rowCount() == 0
    assert view.chart.empty_text == "No exposure in this period"


def test_sales_not_decided_yet_are_said_and_decided_from_the_view(qtbot, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import_sales(db, company_id, tmp_path, "D1,1,2026-07-01,C-5,TX,120,0,yes", "D2,1,2026-07-02,C-5,TX,30,0,yes")
    view = _loaded(qtbot, db, company_id)
    assert view.model.rowCount() == 0 and view.decide_button.isVisibleTo(view)
    assert "2 sales lines are not decided yet" in view.status_label.text()
    # Seen on the demo: with every line undecided the view said, in bold, "No exposure in this period".
    assert "No exposure" not in view.status_label.text() and "No exposure" not in view.chart.empty_text
    assert "No sales decided yet for this period" in view.status_label.text()
    with qtbot.waitSignal(view.report_loaded, timeout=20000) as loaded:
        view.decide_button.click()
    assert loaded.args[0].undecided_lines == 0 and not view.decide_button.isVisibleTo(view)
    assert _cells(view) == [["TX", "2026-07", "C-5", "(not in the customer list)", "2", "150.00", "", "", "", ""]]


def test_dates_are_taken_as_typed(qtbot, covered, company_id) -> None:  # type: ignore[no-untyped-def]
    view = _loaded(qtbot, covered, company_id)
    view.from_edit.edit.clear()
    qtbot.keyClicks(view.from_edit.edit, "5/6")
    qtbot.keyClick(view.from_edit.edit, Qt.Key.Key_Return)
    assert view.from_edit.date() == dt.date(2026, 5, 6) and "read as Wed 06 May 2026" in view.from_edit.note.text()
    with qtbot.waitSignal(view.report_loaded, timeout=10000) as loaded:
        view.refresh_button.click()
    assert loaded.args[0].date_from == dt.date(2026, 5, 6) and [r.customer_number for r in view.report.rows] == ["C-2"]
    view.to_edit.edit.clear()
    qtbot.keyClicks(view.to_edit.edit, "31/12/2026")
    view.refresh_button.click()
    assert view.status_label.text().startswith("Please correct the dates. To: '31/12/2026': there is no month 31")
    assert view.report.date_from == dt.date(2026, 5, 6), "nothing was computed for a wrong date"


def test_a_row_opens_its_sales_with_each_lines_explanation(qtbot, covered, company_id) -> None:  # type: ignore[no-untyped-def]
    view = _loaded(qtbot, covered, company_id)
    assert not view.lines_button.isEnabled()
    view.table.selectRow(0)
    assert view.lines_button.isEnabled()
    with qtbot.waitSignal(view.lines_opened, timeout=10000) as opened:
        view.lines_button.click()
    dialog = opened.args[0]
    QAbstractItemModelTester(dialog.model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 1, timeout=10000)
    assert dialog.model.index(0, 0).data() == "B1" and dialog.model.index(0, 7).data() == "TX-9"
    assert dialog.model.index(0, 6).data() == "7.50"
    text = dialog.explanation.toPlainText()
    assert "Invoice B1" in text and "TX-9: covers the sale" in text
    dialog.grab().save("/tmp/exposure_lines_dialog.png")
    view.table.selectRow(1)  # C-2: no certificate at all
    with qtbot.waitSignal(view.lines_opened, timeout=10000) as opened:
        view.table.activated.emit(view.model.index(1, 0))
    dialog = opened.args[0]
    qtbot.waitUntil(lambda: dialog.model.rowCount() == 1, timeout=10000)
    assert dialog.model.index(0, 7).data() == "none" and "300.00" in dialog.model.index(0, 6).data()
    assert dialog.explanation.toPlainText().startswith("Invoice B2")


def test_export_writes_the_workbook_as_shown(qtbot, covered, company_id, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    view = _loaded(qtbot, covered, company_id)
    target = tmp_path / "exposure"
    monkeypatch.setattr("ecms_desktop.views.exposure_view.get_save_file_name", lambda *a, **k: str(target))
    with qtbot.waitSignal(view.exported, timeout=10000) as done:
        view.export_button.click()
    path = done.args[0]
    assert path == tmp_path / "exposure.xlsx" and view.export_button.isEnabled()
    ws = openpyxl.load_workbook(path)["Exposure"]
    assert [c.value for c in ws[2]][3:] == ["Customer name", "Exempt sales without certificate: lines",
                                            "Exempt sales without certificate: sales amount",
                                            "Exempt sales without certificate: untaxed amount",
                                            "Tax collected on covered sales: lines",
                                            "Tax collected on covered sales: sales amount",
                                            "Tax collected on covered sales: tax",
                                            "Covered in law, past our renewal policy (not exposure): lines",
                                            "Covered in law, past our renewal policy: sales amount",
                                            "Covered in law, past our renewal policy: untaxed amount"]
    assert [c.value for c in ws[3]] == ["TX", "2026-05", "C-1", "Harbor Freight Depot", 0, 0, 0, 1, 100, 7.5, 0, 0, 0]
    assert [c.value for c in ws[5]][6] == 300 and [c.value for c in ws[5]][9] == 7.5


def test_reprocess_dialog_needs_preview_and_acknowledgement(qtbot, sales, company_id) -> None:  # type: ignore[no-untyped-def]
    cert = make_signed_certificate(sales, company_id, as_of=dt.date(2026, 11, 1), review="approved",
                                   customer_name="Customer One", certificate_number="LATE")
    PeriodService(sales).file(company_id, "TX", "2026-02")
    dialog = ReprocessDialog(sales, cert.id, as_of=dt.date(2026, 11, 20), date_from=dt.date(2026, 1, 1),
                             date_to=dt.date(2026, 12, 31))
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.start_button.isEnabled() and not dialog.ack_check.isEnabled()
    dialog.preview()
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=10000)
    assert dialog.table.rowCount() == 2 and "adjust in 2026-11" in dialog.table.item(0, 4).text()
    assert not dialog.start_button.isEnabled()
    dialog.ack_check.setChecked(True)
    assert dialog.start_button.isEnabled()
    dialog.grab().save("/tmp/reprocess_dialog.png")
    with qtbot.waitSignal(dialog.reprocessed, timeout=10000) as blocker:
        dialog.start_button.click()
    assert blocker.args[0].count("adjust") == 1 and blocker.args[0].count("update") == 1
    assert len(DeterminationService(sales).adjustments(company_id)) == 2
