"""Choosing an existing customer by typing part of its number or name: an editable list with a completer
that matches anywhere in "number — legal name", case-insensitively. Used wherever a certificate or a
document is given to a customer (Assign… in the inbox, Certificate > New…, merging customers)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QCompleter, QWidget

from ecms_desktop.services.customers.service import CustomerInfo


class CustomerPicker(QComboBox):
    """An editable customer list; :meth:`selected_customer` is the customer chosen from the list or typed
    as its exact number or legal name."""

    def __init__(self, customers: Sequence[CustomerInfo] = (), parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        completer = QCompleter(self.model(), self)
        completer.setFilterMode(Qt.MatchFlag.MatchContains)
        completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.setCompleter(completer)
        line_edit = self.lineEdit()
        if line_edit is not None:
            line_edit.setPlaceholderText("number or name")
        self.customers: list[CustomerInfo] = []
        self.set_customers(customers)

    def set_customers(self, customers: Sequence[CustomerInfo]) -> None:
        """Offer these customers (nothing is chosen afterwards)."""
        self.customers = list(customers)
        self.blockSignals(True)
        self.clear()
        for c in self.customers:
            self.addItem(f"{c.number} — {c.legal_name}", c.id)
        self.setCurrentIndex(-1)
        self.blockSignals(False)

    def select_customer(self, customer_id: int | None) -> None:
        """Choose the customer with this id (none: clear the choice)."""
        self.setCurrentIndex(self.findData(customer_id) if customer_id is not None else -1)

    def customer_named(self, name: str) -> CustomerInfo | None:
        """The offered customer whose legal name is ``name`` (case and spacing aside)."""
        key = " ".join(name.casefold().split())
        return next((c for c in self.customers if " ".join(c.legal_name.casefold().split()) == key), None)

    def selected_customer(self) -> CustomerInfo | None:
        """The customer chosen (by the list, or by its number or exact name typed), or None."""
        index = self.currentIndex()
        text = self.currentText().strip()
        if index >= 0 and self.itemText(index) == text:
            cid = self.itemData(index)
            return next((c for c in self.customers if c.id == cid), None)
        key = text.casefold()
        return next((c for c in self.customers if key and key in (c.number.casefold(), c.legal_name.casefold())),
                    None)


__all__ = ["CustomerPicker"]
