"""The History tab: a certificate's audit trail in words (who did what, when, and what changed), as
:mod:`~ecms_desktop.services.certificates.history_service` tells it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QSplitter, QTableView, QVBoxLayout, QWidget

from ecms_desktop.rules import RulesPack
from ecms_desktop.services.certificates.history_service import HistoryEntry, certificate_history
from ecms_desktop.services.core.database import Database
from ecms_desktop.views.operations.task_runner import TaskRunner

_Index = QModelIndex | QPersistentModelIndex


class HistoryTableModel(QAbstractTableModel):
    """Rows: audit events oldest first. Columns: when, who, what, what happened (in sentences)."""

    HEADERS = ("When", "Who", "What", "What happened")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.entries: list[HistoryEntry] = []

    def set_entries(self, entries: list[HistoryEntry]) -> None:
        self.beginResetModel()
        self.entries = list(entries)
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.entries)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        horizontal = orientation == Qt.Orientation.Horizontal
        if horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(self.HEADERS):
            return self.HEADERS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self.entries)):
            return None
        e = self.entries[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            col = index.column()
            if col == 0:
                return e.occurred_at.astimezone().strftime("%Y-%m-%d %H:%M")
            if col == 1:
                return e.actor
            if col == 2:
                return e.action_label
            if col == 3:
                return e.text
        return None


class HistoryView(QWidget):
    """Shows a certificate's history; ``load(certificate_id)`` fetches it off the GUI thread."""

    loaded = Signal(int)

    def __init__(self, db: Database | None, rules: RulesPack, runner: TaskRunner,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("historyView")
        self.db, self.rules, self.runner = db, rules, runner
        self.model = HistoryTableModel(self)
        self.table = QTableView()
        self.table.setObjectName("historyTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setWordWrap(False)
        self.detail = QPlainTextEdit()
        self.detail.setObjectName("historyDetail")
        self.detail.setReadOnly(True)
        self.status = QLabel("")
        self.status.setObjectName("historyStatus")
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.detail)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.status)
        layout.addWidget(split)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_current_row_changed)
        self._cert_id: int | None = None

    def load(self, certificate_id: int | None) -> None:
        self._cert_id = certificate_id
        self.model.set_entries([])
        self.detail.clear()
        db = self.db
        if certificate_id is None or db is None:
            self.status.setText("")
            return
        self.status.setText("Loading history…")

        def done(entries: list[HistoryEntry]) -> None:
            if certificate_id != self._cert_id:
                return
            self.model.set_entries(entries)
            self.table.resizeColumnsToContents()
            self.status.setText(f"{len(entries)} recorded event(s); the audit trail cannot be edited.")
            self.loaded.emit(certificate_id)

        def failed(error: BaseException) -> None:
            if certificate_id == self._cert_id:
                self.status.setText(f"The history could not be read: {error}")

        rules = self.rules
        self.runner.run(lambda p, c: certificate_history(db, rules, certificate_id), on_done=done, on_error=failed)

    def _on_table_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            self.detail.clear()
            return
        e = self.model.entries[current.row()]
        self.detail.setPlainText("\n".join([*e.sentences, "", f"Event {e.seq} of the audit trail."]))
