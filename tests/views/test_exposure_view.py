"""The exposure view (table + painted bar chart) and the reprocess dialog (preview, acknowledgement, start)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

pytest.importorskip("pytestqt", reason="needs pytest-qt")

from PySide6.QtCore import QModelIndex
from PySide6.QtTest import QAbstractItemModelTester

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


def test_exposure_view_shows_table_and_chart(qtbot, sales, company_id) -> None:  # type: ignore[no-untyped-def]
    view = ExposureView(sales, company_id, date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 12, 31))
    qtbot.addWidget(view)
    QAbstractItemModelTester(view.model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    view.resize(900, 560)
    view.show()
    with qtbot.waitSignal(view.report_loaded, timeout=10000):
        view.refresh()
    assert view.model.rowCount(QModelIndex()) == 4
    assert view.chart.items()[0] == ("TX", Decimal("1690.00"))
    assert "1,940.00" in view.total_label.text()
    view.group_combo.setCurrentIndex(2)  # by customer
    assert [label for label, _ in view.chart.items()] == ["C-1", "C-2", "C-3"]
    view.grab().save("/tmp/exposure_view.png")
    view.state_edit.setText("OK")
    with qtbot.waitSignal(view.report_loaded, timeout=10000):
        view.refresh()
    assert view.model.rowCount(QModelIndex()) == 1


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
