"""Certificate > New…: a new pending certificate of a customer (chosen, or created on the spot) from its
document, a file or a document waiting in the intake inbox. What the paper says is filled in at review;
the states it covers may be given here."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.rules import RulesPack
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.customers.service import CustomerInfo
from ecms_desktop.services.intake.inbox import InboxItem
from ecms_desktop.views.operations import customers
from ecms_desktop.views.operations.customers import NewCertificateRequest
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.widgets.customer_picker import CustomerPicker
from ecms_desktop.views.widgets.error_presenter import present_error
from ecms_desktop.views.widgets.file_dialogs import get_open_file_name

_DOCUMENTS = "Documents (*.pdf *.png *.jpg *.jpeg *.tif *.tiff *.eml)"


class NewCertificateDialog(QDialog):
    """Gathers the customer, the document and the states; ``certificate_created(certificate_id)`` once the
    certificate is made (the dialog then closes)."""

    certificate_created = Signal(int)

    def __init__(self, db: Database, rules: RulesPack, runner: TaskRunner, company_id: int, *, as_of: dt.date,
                 customers_list: list[CustomerInfo], inbox: list[InboxItem], customer_id: int | None = None,
                 state: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("newCertificateDialog")
        self.setWindowTitle("New certificate")
        self.setMinimumWidth(560)
        self.db, self.rules, self.runner, self.company_id, self.as_of = db, rules, runner, company_id, as_of
        self.inbox = inbox
        layout = QVBoxLayout(self)

        who = QGroupBox("Customer", self)
        who_form = QFormLayout(who)
        self.existing_radio = QRadioButton("&Existing customer", who)
        self.customer_picker = CustomerPicker(customers_list, who)
        self.customer_picker.setObjectName("newCertificateCustomer")
        self.customer_picker.select_customer(customer_id)
        who_form.addRow(self.existing_radio)
        who_form.addRow("Customer:", self.customer_picker)
        self.new_radio = QRadioButton("&New customer", who)
        who_form.addRow(self.new_radio)
        self.number_edit = QLineEdit(who)
        self.number_edit.setObjectName("newCertificateNumber")
        self.number_edit.setPlaceholderText("customer number")
        self.name_edit = QLineEdit(who)
        self.name_edit.setObjectName("newCertificateName")
        self.name_edit.setPlaceholderText("legal name")
        who_form.addRow("Number:", self.number_edit)
        who_form.addRow("Name:", self.name_edit)
        who_group = QButtonGroup(self)
        who_group.addButton(self.existing_radio)
        who_group.addButton(self.new_radio)
        layout.addWidget(who)

        what = QGroupBox("Document", self)
        what_form = QFormLayout(what)
        self.file_radio = QRadioButton("From a &file:", what)
        self.file_edit = QLineEdit(what)
        self.file_edit.setObjectName("newCertificateFile")
        self.browse_button = QPushButton("&Browse…", what)
        file_row = QHBoxLayout()
        file_row.addWidget(self.file_edit, 1)
        file_row.addWidget(self.browse_button)
        what_form.addRow(self.file_radio, file_row)
        self.inbox_radio = QRadioButton("From the &inbox:", what)
        self.inbox_combo = QComboBox(what)
        self.inbox_combo.setObjectName("newCertificateInbox")
        for item in inbox:
            self.inbox_combo.addItem(f"{item.id}: {item.name} ({item.pages} page{'s' if item.pages != 1 else ''}, "
                                     f"received {item.received_at:%Y-%m-%d})", item.id)
        what_form.addRow(self.inbox_radio, self.inbox_combo)
        doc_group = QButtonGroup(self)
        doc_group.addButton(self.file_radio)
        doc_group.addButton(self.inbox_radio)
        layout.addWidget(what)

        states_form = QFormLayout()
        self.states_edit = QLineEdit(state, self)
        self.states_edit.setObjectName("newCertificateStates")
        self.states_edit.setPlaceholderText("e.g. TX, OK (may stay empty: filled in at review)")
        states_form.addRow("&States on the paper:", self.states_edit)
        layout.addLayout(states_form)
        note = QLabel("The certificate is made pending review; the form, reason and type are filled in from the "
                      "document at review.", self)
        note.setWordWrap(True)
        layout.addWidget(note)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Create")
        self.ok_button.setObjectName("newCertificateCreate")
        self.buttons.accepted.connect(self.create_certificate)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

        (self.existing_radio if customers_list else self.new_radio).setChecked(True)
        self.file_radio.setChecked(True)
        self.inbox_radio.setEnabled(bool(inbox))
        self.browse_button.clicked.connect(self._browse)
        for radio in (self.existing_radio, self.new_radio, self.file_radio, self.inbox_radio):
            radio.toggled.connect(lambda _on: self._update())
        for edit in (self.number_edit, self.name_edit, self.file_edit):
            edit.textChanged.connect(lambda _t: self._update())
        self.customer_picker.editTextChanged.connect(lambda _t: self._update())
        self.customer_picker.currentIndexChanged.connect(lambda _i: self._update())
        self._update()

    def _browse(self) -> None:
        path = get_open_file_name(self, "The certificate's document", self.file_edit.text(), _DOCUMENTS)
        if path:
            self.file_edit.setText(path)
            self.file_radio.setChecked(True)

    def _update(self) -> None:
        new_customer = self.new_radio.isChecked()
        self.customer_picker.setEnabled(not new_customer)
        self.number_edit.setEnabled(new_customer)
        self.name_edit.setEnabled(new_customer)
        self.file_edit.setEnabled(self.file_radio.isChecked())
        self.inbox_combo.setEnabled(self.inbox_radio.isChecked())
        self.ok_button.setEnabled(self.request() is not None)

    def request(self) -> NewCertificateRequest | None:
        """The complete choice, or None while something is missing."""
        if self.new_radio.isChecked():
            number, name = self.number_edit.text().strip(), self.name_edit.text().strip()
            if not number or not name:
                return None
            customer, new_name = number, name
        else:
            chosen = self.customer_picker.selected_customer()
            if chosen is None:
                return None
            customer, new_name = chosen.number, None
        states = tuple(s.strip().upper() for s in self.states_edit.text().replace(";", ",").split(",") if s.strip())
        if self.file_radio.isChecked():
            text = self.file_edit.text().strip()
            if not text:
                return None
            return NewCertificateRequest(self.company_id, customer, new_name, Path(text), None, states)
        document_id = self.inbox_combo.currentData()
        return (NewCertificateRequest(self.company_id, customer, new_name, None, int(document_id), states)
                if document_id is not None else None)

    def create_certificate(self) -> None:
        """Make the certificate (off the GUI thread)."""
        request = self.request()
        if request is None:
            return
        self.ok_button.setEnabled(False)
        customers.new_certificate(self.db, self.rules, request, self.as_of).success(self._on_created) \
            .failure(self._on_failed).run(self.runner, parent=self)

    def _on_created(self, certificate_id: int) -> None:
        self.certificate_created.emit(certificate_id)
        self.accept()

    def _on_failed(self, error: BaseException) -> None:
        self._update()
        present_error(self, error)
