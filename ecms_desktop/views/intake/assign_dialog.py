"""Assign… an inbox document: find its customer by number or name (or create the customer on the spot),
then make a new certificate from the document or attach it to one of the customer's certificates.

The dialog only gathers the choice; the window asks the service (and loads the chosen customer's
certificates off the GUI thread: :meth:`AssignDialog.set_certificates`)."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.certificates.query import CertificateRow
from ecms_desktop.services.customers.service import CustomerInfo
from ecms_desktop.services.intake.inbox import InboxItem
from ecms_desktop.views.intake.inbox_pane import read_value
from ecms_desktop.views.widgets.customer_picker import CustomerPicker

_CERT_ROLE = Qt.ItemDataRole.UserRole + 1
#: A purchaser name read at least this surely is offered as the new customer's name.
_SURE = 0.9


@dataclass(frozen=True)
class AssignChoice:
    """What the accountant chose: the customer (number, or exact name of an existing one), the name of a
    customer to create (None: an existing one), and the certificate to attach to (None: a new one)."""

    customer: str
    new_customer_name: str | None
    certificate_id: int | None
    expected_version: int | None


class AssignDialog(QDialog):
    """Whose document it is, and what becomes of it. ``customer_chosen(customer_id)`` asks for the
    customer's certificates; OK is enabled once the choice is complete."""

    customer_chosen = Signal(int)

    def __init__(self, item: InboxItem, customers: list[CustomerInfo], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("assignDialog")
        self.setWindowTitle(f"Assign {item.name}")
        self.setMinimumWidth(520)
        self.item = item
        self.customers = customers
        self._rows: list[CertificateRow] = []
        #: The customer whose certificates were asked for last.
        self._asked_for: int | None = None
        layout = QVBoxLayout(self)
        read = read_value(item, "purchaser_name")
        intro = QLabel(f"Document {item.id}: {item.name}, {item.pages} page{'s' if item.pages != 1 else ''}."
                       + (f" The purchaser read from it: {read[0]} ({read[1]:.0%})." if read else ""), self)
        intro.setWordWrap(True)
        layout.addWidget(intro)

        who = QGroupBox("Customer", self)
        form = QFormLayout(who)
        self.existing_radio = QRadioButton("&Existing customer", who)
        self.existing_radio.setObjectName("assignExisting")
        self.customer_combo = CustomerPicker(customers, who)
        self.customer_combo.setObjectName("assignCustomer")
        form.addRow(self.existing_radio, self.customer_combo)
        self.new_radio = QRadioButton("&New customer", who)
        self.new_radio.setObjectName("assignNewCustomer")
        form.addRow(self.new_radio)
        self.number_edit = QLineEdit(who)
        self.number_edit.setObjectName("assignNewNumber")
        self.number_edit.setPlaceholderText("customer number")
        self.name_edit = QLineEdit(who)
        self.name_edit.setObjectName("assignNewName")
        self.name_edit.setPlaceholderText("legal name")
        form.addRow("Number:", self.number_edit)
        form.addRow("Name:", self.name_edit)
        who_group = QButtonGroup(self)
        who_group.addButton(self.existing_radio)
        who_group.addButton(self.new_radio)
        layout.addWidget(who)

        what = QGroupBox("Certificate", self)
        what_layout = QVBoxLayout(what)
        self.new_cert_radio = QRadioButton("New certificate &from this document (fields not known stay empty)", what)
        self.new_cert_radio.setObjectName("assignNewCertificate")
        self.attach_radio = QRadioButton("A&ttach to an existing certificate of the customer:", what)
        self.attach_radio.setObjectName("assignAttach")
        self.cert_list = QListWidget(what)
        self.cert_list.setObjectName("assignCertificates")
        what_group = QButtonGroup(self)
        what_group.addButton(self.new_cert_radio)
        what_group.addButton(self.attach_radio)
        what_layout.addWidget(self.new_cert_radio)
        what_layout.addWidget(self.attach_radio)
        what_layout.addWidget(self.cert_list)
        layout.addWidget(what)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Assign")
        self.ok_button.setObjectName("assignOk")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

        self.new_cert_radio.setChecked(True)
        match = self.customer_combo.customer_named(read[0]) if read else None
        if customers:
            self.existing_radio.setChecked(True)
            self.customer_combo.setCurrentIndex(self.customer_combo.findData(match.id) if match else -1)
        else:
            self.new_radio.setChecked(True)
        if read and match is None and read[1] >= _SURE:
            self.name_edit.setText(read[0])
        for w in (self.existing_radio, self.new_radio, self.new_cert_radio, self.attach_radio):
            w.toggled.connect(self._update)
        self.customer_combo.currentIndexChanged.connect(lambda _i: self._on_customer_changed())
        self.customer_combo.editTextChanged.connect(lambda _t: self._on_customer_changed())
        self.number_edit.textChanged.connect(lambda _t: self._update())
        self.name_edit.textChanged.connect(lambda _t: self._update())
        self.cert_list.currentRowChanged.connect(lambda _r: self._update())
        self._update()

    def selected_customer(self) -> CustomerInfo | None:
        """The existing customer chosen (by the list, or by its number or exact name typed)."""
        return self.customer_combo.selected_customer() if self.existing_radio.isChecked() else None

    def set_certificates(self, customer_id: int, rows: list[CertificateRow]) -> None:
        """The certificates of ``customer_id`` (ignored when another customer is chosen meanwhile)."""
        chosen = self.selected_customer()
        if chosen is None or chosen.id != customer_id:
            return
        self._rows = rows
        self.cert_list.clear()
        for r in rows:
            text = (f"{r.id}: {r.form_code or 'form not known'}, {r.states or 'no state'}, {r.review_state}"
                    + (f", expires {r.expiry_date:%Y-%m-%d}" if r.expiry_date else ""))
            entry = QListWidgetItem(text)
            entry.setData(_CERT_ROLE, r.id)
            self.cert_list.addItem(entry)
        self._update()

    def ask_for_certificates(self) -> None:
        """Ask for the chosen customer's certificates (once per customer chosen)."""
        chosen = self.selected_customer()
        wanted = chosen.id if chosen is not None else None
        if wanted == self._asked_for:
            return
        self._asked_for = wanted
        self._rows = []
        self.cert_list.clear()
        if wanted is not None:
            self.customer_chosen.emit(wanted)

    def _on_customer_changed(self) -> None:
        self.ask_for_certificates()
        self._update()

    def _update(self) -> None:
        new_customer = self.new_radio.isChecked()
        self.customer_combo.setEnabled(not new_customer)
        self.number_edit.setEnabled(new_customer)
        self.name_edit.setEnabled(new_customer)
        self.attach_radio.setEnabled(not new_customer)
        if new_customer and self.attach_radio.isChecked():
            self.new_cert_radio.setChecked(True)
        self.cert_list.setEnabled(self.attach_radio.isChecked())
        self.ok_button.setEnabled(self.choice() is not None)

    def choice(self) -> AssignChoice | None:
        """The complete choice, or None while something is missing."""
        if self.new_radio.isChecked():
            number, name = self.number_edit.text().strip(), self.name_edit.text().strip()
            return AssignChoice(number, name, None, None) if number and name else None
        customer = self.selected_customer()
        if customer is None:
            return None
        if not self.attach_radio.isChecked():
            return AssignChoice(customer.number, None, None, None)
        row = self.cert_list.currentRow()
        if not 0 <= row < len(self._rows):
            return None
        cert = self._rows[row]
        return AssignChoice(customer.number, None, cert.id, cert.version)


__all__ = ["AssignChoice", "AssignDialog"]
