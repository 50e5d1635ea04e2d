"""Reprocess a certificate's sales: choose the range, preview the impact, acknowledge, then start.

Nothing changes before the user has seen the preview and ticked the acknowledgement; filed periods
are never changed (corrections go to the current open period), which the preview says line by line.
"""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.core.database import Database
from ecms_desktop.services.sales.determination_service import DeterminationService
from ecms_desktop.services.sales.reprocessing import ReprocessPlan
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.widgets.dates import pydate, qdate
from ecms_desktop.views.widgets.error_presenter import present_error

_WARNING = ("Reprocessing may result in refunds of tax collected from customers outside the statute of "
            "limitations. You are responsible for any correspondence with the tax authorities.")


class ReprocessDialog(QDialog):
    """Preview and confirm reprocessing of one certificate over a date range."""

    reprocessed = Signal(object)

    def __init__(self, db: Database, certificate_id: int, *, as_of: dt.date, runner: TaskRunner | None = None,
                 date_from: dt.date | None = None, date_to: dt.date | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Reprocess transactions - certificate {certificate_id}")
        self.service = DeterminationService(db)
        self.certificate_id, self.as_of = certificate_id, as_of
        self.runner = runner or TaskRunner(self)
        self.plan: ReprocessPlan | None = None
        self.from_edit = QDateEdit(qdate(date_from or as_of.replace(month=1, day=1)))
        self.to_edit = QDateEdit(qdate(date_to or as_of))
        for edit in (self.from_edit, self.to_edit):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.dateChanged.connect(self._on_inputs_changed)
        self.address_check = QCheckBox("Prioritise the customer's address over the invoice address")
        self.address_check.toggled.connect(self._on_inputs_changed)
        self.preview_button = QPushButton("Preview impact")
        self.summary_label = QLabel("Choose the range and preview the impact before anything is changed.")
        self.summary_label.setWordWrap(True)
        self.summary_label.setMinimumHeight(self.summary_label.fontMetrics().lineSpacing() * 3 + 6)
        self.table = QTableWidget(0, 7)
        self.table.setHorizontalHeaderLabels(["Invoice", "Line", "Date", "State", "Action", "Before", "After"])
        self.table.verticalHeader().setVisible(False)
        self.ack_check = QCheckBox(_WARNING)
        self.ack_check.setEnabled(False)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.start_button = self.buttons.addButton("Start", QDialogButtonBox.ButtonRole.AcceptRole)
        self.start_button.setEnabled(False)
        form = QFormLayout()
        dates = QHBoxLayout()
        dates.addWidget(self.from_edit)
        dates.addWidget(QLabel("to"))
        dates.addWidget(self.to_edit)
        dates.addStretch(1)
        form.addRow("Invoice dates", dates)
        form.addRow("", self.address_check)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.preview_button)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.ack_check)
        layout.addWidget(self.buttons)
        self.preview_button.clicked.connect(self.preview)
        self.ack_check.toggled.connect(self._update_start)
        self.buttons.rejected.connect(self.reject)
        self.start_button.clicked.connect(self.start)
        self.resize(760, 480)

    def _range(self) -> tuple[dt.date, dt.date]:
        return pydate(self.from_edit.date()), pydate(self.to_edit.date())

    def _on_inputs_changed(self, *_: object) -> None:
        """Any change of the inputs invalidates the preview (and the acknowledgement)."""
        self.plan = None
        self.ack_check.setChecked(False)
        self.ack_check.setEnabled(False)
        self.table.setRowCount(0)
        self.summary_label.setText("Preview the impact of the changed range.")
        self._update_start()

    def _update_start(self, *_: object) -> None:
        self.start_button.setEnabled(bool(self.plan and self.plan.changes and self.ack_check.isChecked()))

    def preview(self) -> None:
        start, end = self._range()
        prefer = self.address_check.isChecked()
        cert_id, as_of, service = self.certificate_id, self.as_of, self.service
        self.preview_button.setEnabled(False)
        self.runner.run(lambda progress, cancel: service.preview_reprocess(
            cert_id, start, end, as_of=as_of, prefer_customer_address=prefer),
            on_done=self._on_preview_done, on_error=self._on_failed, title="Previewing", parent=self)

    def _on_preview_done(self, plan: ReprocessPlan) -> None:
        self.preview_button.setEnabled(True)
        self.plan = plan
        changes = plan.changes
        self.summary_label.setText(
            f"{len(plan.items)} sales examined: {plan.count('update')} will be updated in open periods; "
            f"{plan.count('adjust')} in filed periods stay as filed and get a negating and a new entry in the "
            f"current open period; {plan.count('determine')} decided for the first time; "
            f"{plan.count('unchanged')} unchanged. Exempt amount changes by {plan.exempt_delta:,.2f}."
            if changes else f"{len(plan.items)} sales examined: nothing would change.")
        self.table.setRowCount(len(changes))
        for row, item in enumerate(changes):
            action = {"adjust": f"adjust in {item.adjustment_period} (filed {item.filed_period})",
                      "update": "update", "determine": "first determination" + (
                          f", booked in {item.adjustment_period} (filed {item.filed_period})"
                          if item.adjustment_period else "")}[item.action]
            before = f"{'exempt' if item.old_exempt else 'taxable'} {item.old_certificate or ''}".strip()
            after = f"{'exempt' if item.new_exempt else 'taxable'} {item.new_certificate or ''}".strip()
            for col, value in enumerate((item.invoice_number, str(item.line), item.invoice_date.isoformat(),
                                         item.state, action, before, after)):
                self.table.setItem(row, col, QTableWidgetItem(value))
        self.table.resizeColumnsToContents()
        self.ack_check.setEnabled(bool(changes))
        self._update_start()

    def start(self) -> None:
        if not (self.plan and self.plan.changes and self.ack_check.isChecked()):
            return
        start, end = self._range()
        prefer = self.address_check.isChecked()
        cert_id, as_of, service = self.certificate_id, self.as_of, self.service
        self.start_button.setEnabled(False)
        self.runner.run(lambda progress, cancel: service.reprocess(
            cert_id, start, end, as_of=as_of, prefer_customer_address=prefer),
            on_done=self._on_reprocessed, on_error=self._on_failed, title="Reprocessing", parent=self)

    def _on_reprocessed(self, plan: ReprocessPlan) -> None:
        self.reprocessed.emit(plan)
        self.accept()

    def _on_failed(self, error: BaseException) -> None:
        self.preview_button.setEnabled(True)
        self._update_start()
        present_error(self, error)
