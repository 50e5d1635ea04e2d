"""The "Audit pack" dialog: the same choices as ``ecms audit-pack``, with progress, Cancel and
"Open folder" once the pack is written. Customers are found by a search box (with a count of those
selected); dates are taken as typed (:class:`~ecms_desktop.views.widgets.dates.TypedDateField`); before
the pack is made, certificates of the selection that were never validated are counted and the user
may validate them first or go on."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.audit_pack.content import AuditPackSelection
from ecms_desktop.services.audit_pack.service import AuditPackResult, AuditPackService, UnvalidatedCertificates
from ecms_desktop.services.core.errors import Cancelled
from ecms_desktop.views.operations import audit_pack
from ecms_desktop.views.operations.task_runner import Task, TaskRunner
from ecms_desktop.views.widgets.dates import TypedDateField
from ecms_desktop.views.widgets.error_presenter import present_error
from ecms_desktop.views.widgets.file_dialogs import get_existing_directory


class AuditPackDialog(QDialog):
    """Choose company, customers, states, period and review states; build the pack off the GUI thread."""

    pack_generated = Signal(object)  # AuditPackResult

    def __init__(self, service: AuditPackService, runner: TaskRunner, *, today: dt.date | None = None,
                 default_folder: Path | None = None, parent: QWidget | None = None,
                 choices: Any = None) -> None:
        """``choices``: the service's ``choices()`` read beforehand off the GUI thread (the main
        window does); read here when not given."""
        super().__init__(parent)
        self.setWindowTitle("Audit pack")
        self.service, self.runner = service, runner
        self.pack_result: AuditPackResult | None = None
        self.task: Task | None = None
        self._choices = choices if choices is not None else service.choices()
        today = today or dt.date.today()

        self.company = QComboBox()
        for cid, name in self._choices.companies:
            self.company.addItem(name, cid)
        self.customer_search = QLineEdit()
        self.customer_search.setPlaceholderText("Search customers by number or name")
        self.customer_search.setClearButtonEnabled(True)
        self.customers = QListWidget()
        self.customers.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        self.customers.setToolTip("Select customers to limit the pack; none selected means all customers. "
                                  "A search hides the others without unselecting them.")
        self.customer_count = QLabel("")
        self.customer_count.setObjectName("customerCount")
        self.states = QListWidget()
        self.states.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        self.states.setToolTip("Select states; none selected means all states.")
        for widget in (self.customers, self.states):
            widget.setMaximumHeight(130)
        for state in self._choices.states:
            self.states.addItem(state)
        #: Dates typed without a year are taken in the desk's date's year (and say so).
        self.date_from = TypedDateField(dt.date(today.year - 1, 1, 1), year=today.year)
        self.date_to = TypedDateField(dt.date(today.year - 1, 12, 31), year=today.year)
        self.unvalidated_box: QMessageBox | None = None
        self.go_on_button: QPushButton | None = None
        #: The count of never-validated certificates running before a pack (None: not checking).
        self.checking: Task | None = None
        self.review_boxes: dict[str, QCheckBox] = {}
        review_row = QHBoxLayout()
        for state in self._choices.review_states:
            box = QCheckBox(state)
            box.setChecked(state == "approved")
            self.review_boxes[state] = box
            review_row.addWidget(box)
        review_row.addStretch(1)
        self.folder = QLineEdit(str((default_folder or Path.home()) / f"audit-pack-{today.isoformat()}"))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._on_browse_clicked)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.folder, 1)
        folder_row.addWidget(browse)
        self.make_zip = QCheckBox("Also write a .zip beside the folder")
        self.make_zip.setChecked(True)

        form = QFormLayout()
        form.addRow("Company", self.company)
        customer_box = QVBoxLayout()
        customer_box.addWidget(self.customer_search)
        customer_box.addWidget(self.customers)
        customer_box.addWidget(self.customer_count)
        form.addRow("Customers", customer_box)
        form.addRow("States", self.states)
        form.addRow("From", self.date_from)
        form.addRow("To", self.date_to)
        form.addRow("Review states held in the period", review_row)
        form.addRow("Folder", folder_row)
        form.addRow("", self.make_zip)

        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.status = QLabel("Certificates whose validity overlaps the period, with their status during it, "
                             "their files, findings and audit trail.")
        self.status.setWordWrap(True)
        self.status.setMinimumHeight(64)
        self.buttons = QDialogButtonBox()
        # An action, not the box's accept button: Enter in a date or the search box finishes the entry,
        # it never starts a pack (the box makes its first accept button the default one).
        self.generate_button = self.buttons.addButton("Generate", QDialogButtonBox.ButtonRole.ActionRole)
        self.cancel_button = self.buttons.addButton("Cancel", QDialogButtonBox.ButtonRole.RejectRole)
        self.open_button = self.buttons.addButton("Open folder", QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button.setEnabled(False)
        for button in (self.generate_button, self.cancel_button, self.open_button, browse):
            button.setAutoDefault(False)
        self.generate_button.clicked.connect(self._on_generate_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.open_button.clicked.connect(self._on_open_clicked)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)
        layout.addWidget(self.buttons)
        self.company.currentIndexChanged.connect(self._on_company_changed)
        self.customer_search.textChanged.connect(self._on_customer_search_changed)
        self.customers.itemSelectionChanged.connect(self._on_customers_selection_changed)
        self._on_company_changed()
        self.resize(620, 720)

    # -- choices

    def _on_company_changed(self, *_: object) -> None:
        cid = self.company.currentData()
        self.customers.clear()
        for company_id, number, name in self._choices.customers:
            if company_id == cid:
                item = QListWidgetItem(f"{number} - {name}")
                item.setData(256, number)
                self.customers.addItem(item)
        self._on_customer_search_changed(self.customer_search.text())
        self._on_customers_selection_changed()

    def _on_customer_search_changed(self, text: str) -> None:
        words = text.casefold().split()
        for row in range(self.customers.count()):
            item = self.customers.item(row)
            label = item.text().casefold()
            item.setHidden(not all(word in label for word in words))
        self._on_customers_selection_changed()

    def _on_customers_selection_changed(self) -> None:
        n = len(self.customers.selectedItems())
        shown = sum(not self.customers.item(r).isHidden() for r in range(self.customers.count()))
        found = f"; {shown} of {self.customers.count()} shown" if self.customer_search.text().strip() else ""
        self.customer_count.setText((f"{n} customer{'s' if n != 1 else ''} selected" if n
                                     else "No customer selected: all customers") + found)

    def _on_browse_clicked(self) -> None:
        chosen = get_existing_directory(self, "Folder in which to create the audit pack",
                                        str(Path(self.folder.text()).parent))
        if chosen:
            self.folder.setText(str(Path(chosen) / Path(self.folder.text()).name))

    def date_problem(self) -> str:
        """What is wrong with the typed dates ("" when both are dates, in order)."""
        for label, field in (("From", self.date_from), ("To", self.date_to)):
            if field.read() is None:
                return f"{label}: {field.problem()}"
        start, end = self.date_from.date(), self.date_to.date()
        if start is not None and end is not None and end < start:
            return f"The period ends ({end}) before it starts ({start})."
        return ""

    def selection(self) -> AuditPackSelection:
        """The choices as a selection for the service (ValueError while a date is not one)."""
        problem = self.date_problem()
        start, end = self.date_from.date(), self.date_to.date()
        if problem or start is None or end is None:
            raise ValueError(problem)
        return AuditPackSelection(
            date_from=start, date_to=end,
            company=self.company.currentData(),
            customers=tuple(str(i.data(256)) for i in self.customers.selectedItems()),
            states=tuple(i.text() for i in self.states.selectedItems()),
            review_states=tuple(s for s, box in self.review_boxes.items() if box.isChecked()) or ("approved",))

    # -- running

    def _on_generate_clicked(self) -> None:
        """Check the dates, count the never-validated certificates of the selection, then generate (after
        asking when there are some)."""
        try:
            selection = self.selection()
        except ValueError as exc:
            self.status.setText(f"Please correct the dates. {exc}")
            return
        self.generate_button.setEnabled(False)
        self.status.setText("Checking the selected certificates…")
        self.checking = audit_pack.count_unvalidated(self.service, selection) \
            .success(lambda found: self._on_unvalidated_counted(selection, found)) \
            .failure(self._on_check_failed).run(self.runner)

    def _on_check_failed(self, error: BaseException) -> None:
        self.checking = None
        self._on_task_error(error)

    def _on_unvalidated_counted(self, selection: AuditPackSelection, found: UnvalidatedCertificates) -> None:
        if self.checking is None:  # cancelled meanwhile
            return
        self.checking = None
        if not found.never_validated:
            self.generate(selection)
            return
        names = ", ".join(found.customers[:5]) + (" and others" if len(found.customers) > 5 else "")
        box = QMessageBox(QMessageBox.Icon.Warning, "Certificates never validated",
                          f"{found.never_validated} of the {found.certificates} certificates of this selection were "
                          f"never validated (customers {names}).", QMessageBox.StandardButton.NoButton, self)
        box.setObjectName("unvalidatedWarning")
        box.setInformativeText("The pack shows no findings for them. Validate them first (Certificate > "
                               "Validate all), or generate the pack as it is.")
        self.go_on_button = box.addButton("Generate anyway", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(self.go_on_button)
        box.finished.connect(lambda _r: self._on_unvalidated_answered(box, selection))
        self.unvalidated_box = box
        self.status.setText(f"{found.never_validated} certificates of this selection were never validated.")
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()

    def _on_unvalidated_answered(self, box: QMessageBox, selection: AuditPackSelection) -> None:
        go_on = box.clickedButton() is self.go_on_button
        self.unvalidated_box = None
        box.deleteLater()
        if go_on:
            self.generate(selection)
        else:
            self.generate_button.setEnabled(True)
            self.status.setText("Not generated: validate the certificates first, or generate anyway.")

    def generate(self, selection: AuditPackSelection) -> None:
        """Build the pack of ``selection`` off the GUI thread, with progress and Cancel."""
        folder = Path(self.folder.text()).expanduser()
        make_zip = self.make_zip.isChecked()
        self.generate_button.setEnabled(False)
        self.open_button.setEnabled(False)
        self.progress.setVisible(True)
        self.progress.setRange(0, 0)
        self.status.setText("Generating the audit pack…")
        self.task = self.runner.run(
            lambda progress, cancel: self.service.generate(selection, folder, make_zip=make_zip,
                                                           progress=progress, cancel=cancel),
            on_done=self._on_task_done, on_error=self._on_task_error, show_progress=False)
        self.task.progressed.connect(self._on_task_progressed)

    def _on_task_progressed(self, done: int, total: int, text: str) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(done, total))
        if text:
            self.status.setText(text)

    def _on_task_done(self, result: AuditPackResult) -> None:
        self.task = None
        self.pack_result = result
        self.progress.setRange(0, 1)
        self.progress.setValue(1)
        lines = [f"Written to {result.folder}",
                 f"{result.certificates} certificates ({result.lines} state lines), {result.documents} "
                 f"documents, {result.pdf_pages} PDF pages."]
        lines += [f"Note: {p}" for p in result.problems[:5]]
        self.status.setText("\n".join(lines))
        self.generate_button.setEnabled(True)
        self.open_button.setEnabled(True)
        self.cancel_button.setText("Close")
        self.pack_generated.emit(result)

    def _on_task_error(self, error: BaseException) -> None:
        self.task = None
        self.progress.setVisible(False)
        self.generate_button.setEnabled(True)
        if isinstance(error, Cancelled):
            self.status.setText("Cancelled: nothing was written.")
            return
        self.status.setText(f"The audit pack could not be generated: {error}")
        present_error(self, error)

    def _on_cancel_clicked(self) -> None:
        if self.checking is not None:
            self.checking = None
            self.generate_button.setEnabled(True)
            self.status.setText("Cancelled: nothing was written.")
            return
        if self.task is not None:
            self.task.cancel()
            self.status.setText("Cancelling…")
            return
        self.reject()

    def _on_open_clicked(self) -> None:
        if self.pack_result is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.pack_result.folder)))
