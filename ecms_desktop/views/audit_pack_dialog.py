"""The "Audit pack" dialog: the same choices as ``ecms audit-pack``, with progress, Cancel and
"Open folder" once the pack is written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.audit_pack.content import AuditPackSelection
from ecms_desktop.services.audit_pack.service import AuditPackResult, AuditPackService
from ecms_desktop.services.core.errors import Cancelled
from ecms_desktop.views.operations.task_runner import Task, TaskRunner
from ecms_desktop.views.widgets.dates import pydate, qdate
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
        self.customers = QListWidget()
        self.customers.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        self.customers.setToolTip("Select customers to limit the pack; none selected means all customers.")
        self.states = QListWidget()
        self.states.setSelectionMode(QAbstractItemView.SelectionMode.MultiSelection)
        self.states.setToolTip("Select states; none selected means all states.")
        for widget in (self.customers, self.states):
            widget.setMaximumHeight(130)
        for state in self._choices.states:
            self.states.addItem(state)
        self.date_from = QDateEdit(qdate(dt.date(today.year - 1, 1, 1)))
        self.date_to = QDateEdit(qdate(dt.date(today.year - 1, 12, 31)))
        for edit in (self.date_from, self.date_to):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
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
        form.addRow("Customers", self.customers)
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
        self.generate_button = self.buttons.addButton("Generate", QDialogButtonBox.ButtonRole.AcceptRole)
        self.cancel_button = self.buttons.addButton("Cancel", QDialogButtonBox.ButtonRole.RejectRole)
        self.open_button = self.buttons.addButton("Open folder", QDialogButtonBox.ButtonRole.ActionRole)
        self.open_button.setEnabled(False)
        self.generate_button.clicked.connect(self._on_generate_clicked)
        self.cancel_button.clicked.connect(self._on_cancel_clicked)
        self.open_button.clicked.connect(self._on_open_clicked)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.buttons)
        self.company.currentIndexChanged.connect(self._on_company_changed)
        self._on_company_changed()
        self.resize(560, 640)

    # -- choices

    def _on_company_changed(self, *_: object) -> None:
        cid = self.company.currentData()
        self.customers.clear()
        for company_id, number, name in self._choices.customers:
            if company_id == cid:
                item = QListWidgetItem(f"{number} - {name}")
                item.setData(256, number)
                self.customers.addItem(item)

    def _on_browse_clicked(self) -> None:
        chosen = get_existing_directory(self, "Folder in which to create the audit pack",
                                        str(Path(self.folder.text()).parent))
        if chosen:
            self.folder.setText(str(Path(chosen) / Path(self.folder.text()).name))

    def selection(self) -> AuditPackSelection:
        """The choices as a selection for the service."""
        return AuditPackSelection(
            date_from=pydate(self.date_from.date()), date_to=pydate(self.date_to.date()),
            company=self.company.currentData(),
            customers=tuple(str(i.data(256)) for i in self.customers.selectedItems()),
            states=tuple(i.text() for i in self.states.selectedItems()),
            review_states=tuple(s for s, box in self.review_boxes.items() if box.isChecked()) or ("approved",))

    # -- running

    def _on_generate_clicked(self) -> None:
        selection = self.selection()
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
        if self.task is not None:
            self.task.cancel()
            self.status.setText("Cancelling…")
            return
        self.reject()

    def _on_open_clicked(self) -> None:
        if self.pack_result is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.pack_result.folder)))
