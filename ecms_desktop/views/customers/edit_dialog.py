"""Add or edit a customer: number, legal name, e-mail, bill-to and ship-to addresses, parent customer and the
account owner who gets escalations. The dialog works on a copy and saves once, on OK; a refusal (a field
wrong, or someone else's edit meanwhile) is shown in the dialog, which stays open with what was typed."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.customers.editing import CustomerRecord
from ecms_desktop.services.customers.service import CustomerInfo
from ecms_desktop.views.operations import customers
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.widgets.customer_picker import CustomerPicker
from ecms_desktop.views.widgets.error_presenter import present_error

_ADDRESS = (("line1", "Street"), ("city", "City"), ("state", "State"), ("zip", "ZIP"))


class CustomerEditDialog(QDialog):
    """Edits a copy of ``record`` (``record.id`` None: a new customer). ``saved(CustomerRecord)`` after the
    one save; the dialog then closes."""

    saved = Signal(object)

    def __init__(self, db: Database, runner: TaskRunner, record: CustomerRecord, customers_list: list[CustomerInfo],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("customerEditDialog")
        self.db, self.runner, self.original = db, runner, record
        new = record.id is None
        self.setWindowTitle("New customer" if new else f"Customer {record.number}")
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.edits: dict[str, QLineEdit] = {}

        def edit(field: str, label: str, form_layout: QFormLayout | None = form) -> QLineEdit:
            line = QLineEdit(str(getattr(record, field)), self)
            line.setObjectName(f"customer_{field}")
            self.edits[field] = line
            if form_layout is not None:
                form_layout.addRow(label, line)
            return line

        edit("number", "Customer &number:")
        edit("legal_name", "&Legal name:")
        edit("email", "&E-mail:").setPlaceholderText("where certificate requests go")
        edit("owner_email", "Account &owner:").setPlaceholderText("e-mail of whoever gets escalations")
        self.parent_picker = CustomerPicker([c for c in customers_list if c.id != record.id], self)
        self.parent_picker.setObjectName("customer_parent")
        self.parent_picker.select_customer(record.parent_id)
        form.addRow("&Parent customer:", self.parent_picker)
        layout.addLayout(form)
        addresses = QWidget(self)
        grid = QGridLayout(addresses)
        grid.setContentsMargins(0, 0, 0, 0)
        for column, (prefix, title) in enumerate((("bill_to", "Bill-to address"), ("ship_to", "Ship-to address"))):
            box = QGroupBox(title, addresses)
            box_form = QFormLayout(box)
            for part, label in _ADDRESS:
                line = edit(f"{prefix}_{part}", label, box_form)
                if part == "state":
                    line.setMaxLength(2)
                    line.setPlaceholderText("e.g. TX")
            grid.addWidget(box, 0, column)
        layout.addWidget(addresses)
        self.notes = QPlainTextEdit(record.notes, self)
        self.notes.setObjectName("customer_notes")
        self.notes.setFixedHeight(70)
        layout.addWidget(QLabel("Notes:", self))
        layout.addWidget(self.notes)
        self.problem_label = QLabel("", self)
        self.problem_label.setObjectName("customerProblems")
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #B00020;")
        layout.addWidget(self.problem_label)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Add customer" if new else "Save")
        self.ok_button.setObjectName("customerSave")
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def edited(self) -> CustomerRecord:
        """The record as the dialog shows it now."""
        parent = self.parent_picker.selected_customer()
        texts: dict[str, Any] = {field: line.text() for field, line in self.edits.items()}
        return dataclasses.replace(self.original, notes=self.notes.toPlainText(),
                                   parent_id=parent.id if parent else None, **texts)

    def save(self) -> None:
        """Save once (off the GUI thread); the dialog closes when the save is done."""
        if self.parent_picker.currentText().strip() and self.parent_picker.selected_customer() is None:
            self._show_problems(f"No customer {self.parent_picker.currentText().strip()!r} to be the parent: "
                                "choose one from the list or clear the field.")
            return
        self.ok_button.setEnabled(False)
        original = self.original if self.original.id is not None else None
        customers.save_customer(self.db, self.edited(), original).success(self._on_saved) \
            .failure(self._on_failed).run(self.runner, parent=self)

    def _on_saved(self, record: CustomerRecord) -> None:
        self.ok_button.setEnabled(True)
        self.saved.emit(record)
        self.accept()

    def _on_failed(self, error: BaseException) -> None:
        self.ok_button.setEnabled(True)
        if isinstance(error, ValidationError):
            self._show_problems(error.message, [p.column or "" for p in error.problems])
        else:
            present_error(self, error)

    def _show_problems(self, message: str, fields: list[str] | tuple[str, ...] = ()) -> None:
        self.problem_label.setText(message)
        for field, line in self.edits.items():
            line.setStyleSheet("border: 1px solid #B00020;" if field in fields else "")
        first = next((self.edits[f] for f in fields if f in self.edits), None)
        if first is not None:
            first.setFocus()


def open_customer_editor(parent: QWidget, db: Database, runner: TaskRunner, company_id: int, customer_id: int | None,
                         on_saved: Callable[[CustomerRecord], None],
                         on_opened: Callable[[CustomerEditDialog], None] | None = None) -> None:
    """Read the company's customers (for the parent picker) and the customer (``None``: a new one) off the
    GUI thread, then open the edit dialog; ``on_saved(record)`` after its save, ``on_opened(dialog)`` once
    it is open."""

    def opened(customers_list: list[CustomerInfo], record: CustomerRecord) -> None:
        dialog = CustomerEditDialog(db, runner, record, customers_list, parent)
        dialog.saved.connect(on_saved)
        dialog.open()
        if on_opened is not None:
            on_opened(dialog)

    def listed(customers_list: list[CustomerInfo]) -> None:
        if customer_id is None:
            opened(customers_list, CustomerRecord(company_id=company_id))
            return
        customers.read_customer(db, customer_id).success(lambda record: opened(customers_list, record)) \
            .failure(lambda error: present_error(parent, error)).run(runner, parent=parent)

    customers.list_customers(db, company_id).success(listed) \
        .failure(lambda error: present_error(parent, error)).run(runner, parent=parent)
