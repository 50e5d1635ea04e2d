"""Merge a customer into another that is the same business: choose the customer that stays, see what moves
(certificates, renewal requests, sales lines, child customers, details filled in), confirm."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from ecms_desktop.services.core.database import Database
from ecms_desktop.services.customers.merge import MergePlan
from ecms_desktop.services.customers.service import CustomerInfo
from ecms_desktop.views.operations import customers
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.widgets.customer_picker import CustomerPicker
from ecms_desktop.views.widgets.error_presenter import present_error


class CustomerMergeDialog(QDialog):
    """Merges ``merged`` into the customer chosen to stay. ``plan_shown(MergePlan)`` once what would move
    is shown; ``merged_into(MergePlan)`` after the merge (the dialog then closes)."""

    plan_shown = Signal(object)
    merged_into = Signal(object)

    def __init__(self, db: Database, runner: TaskRunner, merged: CustomerInfo, customers_list: list[CustomerInfo],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("customerMergeDialog")
        self.setWindowTitle(f"Merge customer {merged.number}")
        self.setMinimumWidth(560)
        self.db, self.runner, self.merged = db, runner, merged
        self.plan: MergePlan | None = None
        layout = QVBoxLayout(self)
        intro = QLabel(f"<b>{merged.number} {merged.legal_name}</b> is the same business as the customer chosen "
                       "below. Everything of it moves to that customer, and its number will mean that customer "
                       "from now on. This cannot be undone.", self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.survivor_picker = CustomerPicker([c for c in customers_list if c.id != merged.id], self)
        self.survivor_picker.setObjectName("mergeSurvivor")
        form.addRow("&Keep customer:", self.survivor_picker)
        layout.addLayout(form)
        self.plan_label = QLabel("Choose the customer to keep.", self)
        self.plan_label.setObjectName("mergePlan")
        self.plan_label.setWordWrap(True)
        layout.addWidget(self.plan_label)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.merge_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.merge_button.setText("Merge")
        self.merge_button.setObjectName("mergeConfirm")
        self.merge_button.setEnabled(False)
        self.buttons.accepted.connect(self.merge)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.survivor_picker.currentIndexChanged.connect(lambda _i: self._on_survivor_changed())
        self.survivor_picker.editTextChanged.connect(lambda _t: self._on_survivor_changed())

    def _on_survivor_changed(self) -> None:
        self.plan = None
        self.merge_button.setEnabled(False)
        survivor = self.survivor_picker.selected_customer()
        if survivor is None:
            self.plan_label.setText("Choose the customer to keep.")
            return
        self.plan_label.setText("Reading what would move…")
        customers.plan_merge(self.db, self.merged.id, survivor.id).success(self._on_plan_read) \
            .failure(self._on_failed).run(self.runner, parent=self)

    def _on_plan_read(self, plan: MergePlan) -> None:
        survivor = self.survivor_picker.selected_customer()
        if survivor is None or survivor.id != plan.survivor_id:
            return  # another customer was chosen meanwhile
        self.plan = plan
        lines = [f"Moves to {plan.survivor_number} {plan.survivor_name}:",
                 f"• {plan.certificates} certificate(s)", f"• {plan.renewal_requests} renewal request(s)",
                 f"• {plan.sales_lines} sales line(s)", f"• {plan.child_customers} child customer(s)"]
        if plan.filled_in:
            lines.append("• details filled in where empty: " + ", ".join(f.replace("_", " ") for f in plan.filled_in))
        numbers = ", ".join((plan.merged_number, *plan.earlier_numbers))
        lines.append(f"Number(s) {numbers} will mean {plan.survivor_number}; {plan.merged_number} "
                     f"{plan.merged_name} is removed.")
        self.plan_label.setText("\n".join(lines))
        self.adjustSize()  # the dialog grows to show every line
        self.merge_button.setEnabled(True)
        self.plan_shown.emit(plan)

    def merge(self) -> None:
        """Merge as shown (off the GUI thread)."""
        if self.plan is None:
            return
        self.merge_button.setEnabled(False)
        customers.merge_customers(self.db, self.plan.merged_id, self.plan.survivor_id).success(self._on_merged) \
            .failure(self._on_failed).run(self.runner, parent=self)

    def _on_merged(self, plan: MergePlan) -> None:
        self.merged_into.emit(plan)
        self.accept()

    def _on_failed(self, error: BaseException) -> None:
        self.plan_label.setText(str(error))
        present_error(self, error)
