"""The e-mail outbox (Renewals > Outbox…): every message queued, sent or refused, with the reason of
a failure; a failed message is retried and queued ones are sent only when the accountant says so."""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.core.errors import Cancelled
from ecms_desktop.services.renewals.email_service import DeliveryReport, EmailService, OutboxEntry
from ecms_desktop.views.operations import Operation, outbox
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.widgets.confirm import ask
from ecms_desktop.views.widgets.error_presenter import present_error
from ecms_desktop.views.widgets.smtp_password import ask_smtp_password

_AnyIndex = QModelIndex | QPersistentModelIndex
_STATUS_COLOURS = {"queued": "#8A6D00", "sent": "#2E7D32", "failed": "#A00000"}
_STATUS_LABELS = {"queued": "Queued", "sent": "Sent", "failed": "Failed"}


class OutboxTableModel(QAbstractTableModel):
    """The outbox's messages, newest first."""

    HEADERS = ("Status", "When (UTC)", "Customer", "To", "Subject", "E-mail", "Tries", "Reason")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.entries: list[OutboxEntry] = []

    def set_entries(self, entries: list[OutboxEntry]) -> None:
        self.beginResetModel()
        self.entries = list(entries)
        self.endResetModel()

    def rowCount(self, parent: _AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.entries)

    def columnCount(self, parent: _AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def data(self, index: _AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.entries):
            return None
        e, col = self.entries[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            when = e.sent_at if e.status == "sent" and e.sent_at else e.created_at
            reason = (f"{e.code} {e.reason}" if e.code and not e.reason.startswith(str(e.code)) else e.reason)
            values = (_STATUS_LABELS[e.status], when.strftime("%Y-%m-%d %H:%M"), e.customer_name, e.to_address,
                      e.subject, e.kind, e.attempts, reason)
            return values[col]
        if role == Qt.ItemDataRole.ForegroundRole and col == 0:
            return QColor(_STATUS_COLOURS[e.status])
        if role == Qt.ItemDataRole.ToolTipRole and col in (4, 7):
            return e.reason or e.subject
        return None

    def entry(self, row: int) -> OutboxEntry | None:
        return self.entries[row] if 0 <= row < len(self.entries) else None


def _describe(e: OutboxEntry) -> str:
    """The selected message in full, with what to do about it."""
    who = f"{e.customer_name} <{e.to_address}>" if e.customer_name else e.to_address
    text = f"<b>{html.escape(_STATUS_LABELS[e.status])}</b> {html.escape(e.kind)} to {html.escape(who)}: " \
           f"{html.escape(e.subject)}"
    if e.status == "failed":
        text += (f"<br><b>Refused:</b> {html.escape(e.reason)}<br>Fix the customer's address, then Retry.")
    elif e.status == "queued":
        text += "<br>Not sent yet" + (f" (last attempt: {html.escape(e.reason)})" if e.reason else "") + \
                ": Send queued… sends it."
    elif e.sent_at is not None:
        text += f"<br>Sent {e.sent_at:%Y-%m-%d %H:%M} UTC after {e.attempts} attempt{'s' if e.attempts != 1 else ''}."
    return text


class OutboxDialog(QDialog):
    """List the outbox by status; Retry a failed message, Send queued… the waiting ones."""

    #: The messages were read (off the GUI thread) and are shown.
    outbox_loaded = Signal(object)
    #: A retry or "send queued" ended (the DeliveryReport).
    messages_sent = Signal(object)
    #: A retry or "send queued" did not happen (the error).
    send_failed = Signal(object)

    def __init__(self, email: EmailService, company_id: int, *, runner: TaskRunner | None = None,
                 status: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("outboxDialog")
        self.setWindowTitle("Outbox")
        self.resize(1100, 520)
        self.email, self.company_id = email, company_id
        self.runner = runner or TaskRunner(self)
        self._generation = 0
        self.queued = 0
        #: What the last retry or "send queued" did, shown beside the counts.
        self.last_result = ""
        self.status = QComboBox()
        self.status.setObjectName("outboxStatus")
        for label, value in (("All messages", None), ("Queued (not sent)", "queued"), ("Sent", "sent"),
                             ("Failed", "failed")):
            self.status.addItem(label, value)
        self.status.setCurrentIndex(max(0, self.status.findData(status)))
        self.summary = QLabel()
        self.summary.setObjectName("outboxSummary")
        self.refresh_button = QPushButton("Refresh")
        top = QHBoxLayout()
        top.addWidget(QLabel("Show"))
        top.addWidget(self.status)
        top.addWidget(self.refresh_button)
        top.addWidget(self.summary, 1)

        self.model = OutboxTableModel(self)
        self.table = QTableView()
        self.table.setObjectName("outboxTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.ExtendedSelection)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.setWordWrap(False)
        for col, width in enumerate((60, 115, 180, 200, 280, 65, 40)):
            self.table.setColumnWidth(col, width)

        self.detail = QLabel()
        self.detail.setObjectName("outboxDetail")
        self.detail.setWordWrap(True)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retry_button = QPushButton("Retry")
        self.retry_button.setObjectName("outboxRetry")
        self.retry_button.setToolTip("Send the selected failed message again (after fixing the address)")
        self.send_queued_button = QPushButton("Send queued…")
        self.send_queued_button.setObjectName("outboxSendQueued")
        self.send_queued_button.setToolTip("Send the selected queued messages, or all queued ones")
        actions = QHBoxLayout()
        actions.addWidget(self.retry_button)
        actions.addWidget(self.send_queued_button)
        actions.addStretch(1)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        actions.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.detail)
        layout.addLayout(actions)

        self.status.currentIndexChanged.connect(lambda _i: self.refresh())
        self.refresh_button.clicked.connect(self.refresh)
        self.retry_button.clicked.connect(self._on_retry_clicked)
        self.send_queued_button.clicked.connect(self._on_send_queued_clicked)
        self.table.selectionModel().selectionChanged.connect(lambda *_a: self._update_buttons())
        self._update_buttons()
        self.refresh()

    # -- reading

    def refresh(self) -> None:
        """Read the outbox off the GUI thread (a late answer to an older read is dropped)."""
        self._generation += 1
        generation = self._generation
        self.summary.setText("Reading the outbox…")
        outbox.read_outbox(self.email, self.company_id, self.status.currentData()) \
            .success(lambda view: self._on_outbox_read(generation, view)) \
            .failure(self._on_read_failed).run(self.runner)

    def _on_outbox_read(self, generation: int, view: outbox.OutboxView) -> None:
        if generation != self._generation:
            return
        self.model.set_entries(view.entries)
        self.queued = view.queued
        failed = sum(1 for e in view.entries if e.status == "failed")
        parts = [f"{len(view.entries)} shown", f"{view.queued} queued (not sent)"]
        if failed:
            parts.append(f"{failed} failed")
        if self.last_result:
            parts.append(f"last send: {self.last_result}")
        self.summary.setText(", ".join(parts))
        self._update_buttons()
        self.outbox_loaded.emit(view)

    def _on_read_failed(self, error: BaseException) -> None:
        self.summary.setText("")
        present_error(self, error)

    # -- selection

    def selected_entries(self) -> list[OutboxEntry]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [e for e in (self.model.entry(r) for r in rows) if e is not None]

    def _update_buttons(self) -> None:
        chosen = self.selected_entries()
        self.detail.setText("" if len(chosen) != 1 else _describe(chosen[0]))
        self.retry_button.setEnabled(len(chosen) == 1 and chosen[0].status == "failed")
        self.send_queued_button.setEnabled(self.queued > 0)

    # -- sending

    def _password(self) -> str | None:
        return ask_smtp_password(self, self.email, self.company_id)

    def _on_retry_clicked(self) -> None:
        chosen = self.selected_entries()
        if len(chosen) != 1 or chosen[0].status != "failed":
            return
        try:
            password = self._password()
        except Cancelled:
            return
        self._start(outbox.retry_message(self.email, self.company_id, chosen[0].outbox_id, password=password))

    def _on_send_queued_clicked(self) -> None:
        chosen = [e.outbox_id for e in self.selected_entries() if e.status == "queued"]
        count = len(chosen) or self.queued
        if not count:
            return
        if chosen:
            what = f"the {count} selected queued message{'s' if count != 1 else ''}"
        else:
            what = "the queued message" if count == 1 else f"all {count} queued messages"
        ask(self, "Send queued messages", f"Send {what} now?", "Send",
            lambda: self._send_queued(chosen or None),
            informative="They were written by an earlier run and not sent yet.", name="confirmSendQueued")

    def _send_queued(self, ids: list[int] | None) -> None:
        try:
            password = self._password()
        except Cancelled:
            return
        self._start(outbox.send_queued(self.email, self.company_id, ids, password=password))

    def _start(self, operation: Operation[DeliveryReport]) -> None:
        self.retry_button.setEnabled(False)
        self.send_queued_button.setEnabled(False)
        operation.success(self._on_sent).failure(self._on_send_failed).run(self.runner, parent=self)

    def _on_sent(self, report: DeliveryReport) -> None:
        self.last_result = report.summary()
        self.refresh()
        self.messages_sent.emit(report)

    def _on_send_failed(self, error: BaseException) -> None:
        self.refresh()
        if not isinstance(error, Cancelled):
            present_error(self, error)
        self.send_failed.emit(error)
