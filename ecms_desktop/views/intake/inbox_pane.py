"""The desk's Inbox pane: the documents that arrived for the company and have no home yet, with what was
read from each, and the actions on the one selected (Assign…, Discard…, Split…, Refresh)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.intake.inbox import InboxItem

#: The inbox document's id in every cell.
DOCUMENT_ID_ROLE = Qt.ItemDataRole.UserRole + 1

#: How a document arrived, in a word (the tooltip says more).
_HOW = {"upload": "desk", "renewal_return": "intake", "email": "e-mail", "scan": "scan", "import": "import",
        "demo": "demo"}
_HOW_TIP = {"upload": "dropped on the desk or chosen with File > Import documents",
            "renewal_return": "ecms intake, the watched folder or a returned request packet"}
#: Below this confidence a value read from the scan is shown greyed: a weak suggestion.
_WEAK = 0.6

Index = QModelIndex | QPersistentModelIndex


def read_value(item: InboxItem, name: str) -> tuple[str, float] | None:
    """A value read from the document (``form_code`` or a field's name) and its confidence; None when
    nothing was read for it."""
    reading = item.extraction or {}
    value = reading.get(name) if name == "form_code" else (reading.get("fields") or {}).get(name)
    if not isinstance(value, dict) or not str(value.get("value") or "").strip():
        return None
    return str(value["value"]), float(value.get("confidence") or 0.0)


def nothing_read(item: InboxItem) -> bool:
    """Whether the document was read and nothing could be read from it."""
    return (item.extraction or {}).get("method") == "none"


#: The widest the file-name column is made on its own (pixels; the name is cut in its middle, keeping
#: its end and extension); the user may widen it. At 260 the form and purchaser read were off the pane.
FILE_COLUMN_MAX = 170

class InboxTableModel(QAbstractTableModel):
    """The inbox's documents, one per row, as the service listed them (oldest arrival first)."""

    COLUMNS = ("File", "Received", "How", "Pages", "Form read", "Purchaser read")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.items: list[InboxItem] = []

    def set_items(self, items: list[InboxItem]) -> None:
        self.beginResetModel()
        self.items = list(items)
        self.endResetModel()

    def item(self, row: int) -> InboxItem | None:
        return self.items[row] if 0 <= row < len(self.items) else None

    def row_of(self, document_id: int) -> int:
        return next((n for n, i in enumerate(self.items) if i.id == document_id), -1)

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.items)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole \
                and 0 <= section < len(self.COLUMNS):
            return self.COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        item = self.item(index.row())
        if item is None:
            return None
        col = index.column()
        if role == DOCUMENT_ID_ROLE:
            return item.id
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(item, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tip(item, col)
        if role == Qt.ItemDataRole.ForegroundRole and col >= 4:
            found = read_value(item, "form_code" if col == 4 else "purchaser_name")
            if found is None or found[1] < _WEAK:
                return QColor("#777777")
        if role == Qt.ItemDataRole.TextAlignmentRole and col == 3:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    @staticmethod
    def _text(item: InboxItem, col: int) -> str:
        if col == 0:
            return item.name
        if col == 1:  # the day: the time is in the tooltip (the column left no room for what was read)
            return item.received_at.astimezone().strftime("%Y-%m-%d")
        if col == 2:
            return _HOW.get(item.received_via, item.received_via)
        if col == 3:
            return str(item.pages) + (f" (pages {item.page_range} of {item.file_pages})" if item.page_range else "")
        if nothing_read(item):
            return "nothing could be read"
        if item.extraction is None:
            return "not read"
        found = read_value(item, "form_code" if col == 4 else "purchaser_name")
        if found is None:
            return "not a form we know" if col == 4 else "—"
        return f"{found[0]} ({found[1]:.0%})"

    @staticmethod
    def _tip(item: InboxItem, col: int) -> str:
        reading = item.extraction or {}
        if col >= 4 and reading:
            notes = "; ".join(str(n) for n in reading.get("notes") or ())
            how = f"Read by {reading.get('method')}" + (f" ({reading.get('engine')})" if reading.get("engine") else "")
            return how + (f". {notes}" if notes else "")
        if col == 1:
            sent = f"; sent {item.sent_at:%Y-%m-%d %H:%M}" if isinstance(item.sent_at, dt.datetime) else ""
            return f"Received {item.received_at.astimezone():%Y-%m-%d %H:%M} by {item.received_by}{sent}"
        if col == 2:
            return _HOW_TIP.get(item.received_via, item.received_via)
        return f"Document {item.id}: {item.name}"


class InboxPane(QWidget):
    """The intake inbox's pane: the count, the list and the actions on the selected document."""

    #: The selected document changed (the InboxItem, or None).
    item_selected = Signal(object)
    assign_requested = Signal(object)
    discard_requested = Signal(object)
    split_requested = Signal(object)
    refresh_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("inboxPane")
        #: The document kept selected through a refresh (not shown again), while it is selected again.
        self._keeping: int | None = None
        self.model = InboxTableModel(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        top = QHBoxLayout()
        self.count_label = QLabel("", self)
        self.count_label.setObjectName("inboxCount")
        # The count on its own line above the buttons, wrapped when narrow: it must not make the desk wider
        # than the screen, nor be cut off beside the buttons.
        self.count_label.setWordWrap(True)
        self.count_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        layout.addWidget(self.count_label)
        top.addStretch(1)
        self.assign_button = self._button("&Assign…", "inboxAssign", self.assign_requested,
                                          "Give the document to a customer: a new certificate, or attach it")
        self.discard_button = self._button("Dis&card…", "inboxDiscard", self.discard_requested,
                                           "Take the document out of the inbox for good, with a reason")
        self.split_button = self._button("S&plit…", "inboxSplit", self.split_requested,
                                         "One document per certificate: split by page ranges")
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.setObjectName("inboxRefresh")
        self.refresh_button.setToolTip("Read the inbox again (documents that came through ecms intake meanwhile)")
        self.refresh_button.clicked.connect(lambda: self.refresh_requested.emit())
        for b in (self.assign_button, self.discard_button, self.split_button, self.refresh_button):
            top.addWidget(b)
        layout.addLayout(top)
        self.table = QTableView(self)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.table.setObjectName("inboxTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        # Sized to what they show when the list changes (the file name at most FILE_COLUMN_MAX wide), then
        # the user's to change; the list scrolls sideways rather than squeezing the file name to "...".
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.table.doubleClicked.connect(lambda _index: self._emit_for_selected(self.assign_requested))
        self.table.selectionModel().currentRowChanged.connect(self._on_table_current_row_changed)
        layout.addWidget(self.table, 1)
        self.empty_label = QLabel("No document waits in the inbox. Files dropped on the certificate list, chosen "
                                  "with File > Import documents or received with ecms intake arrive here.", self)
        self.empty_label.setWordWrap(True)
        self.empty_label.setObjectName("inboxEmpty")
        layout.addWidget(self.empty_label)
        self.set_items([])

    def _button(self, text: str, name: str, signal: Any, tip: str) -> QPushButton:
        button = QPushButton(text, self)
        button.setObjectName(name)
        button.setToolTip(tip)
        button.clicked.connect(lambda: self._emit_for_selected(signal))
        return button

    def _emit_for_selected(self, signal: Any) -> None:
        item = self.selected_item()
        if item is not None:
            signal.emit(item)

    @property
    def count(self) -> int:
        return len(self.model.items)

    def selected_item(self) -> InboxItem | None:
        index = self.table.currentIndex()
        return self.model.item(index.row()) if index.isValid() else None

    def set_items(self, items: list[InboxItem]) -> None:
        """Show these documents, keeping the selected one selected when it is still there."""
        kept = self.selected_item()
        self.table.selectionModel().blockSignals(True)
        self.model.set_items(items)
        self.table.selectionModel().blockSignals(False)
        n = len(items)
        self.count_label.setText(f"{n} document{'s' if n != 1 else ''} waiting in the inbox")
        self.count_label.setToolTip(self.count_label.text())
        self.table.resizeColumnsToContents()
        if self.table.columnWidth(0) > FILE_COLUMN_MAX:
            self.table.setColumnWidth(0, FILE_COLUMN_MAX)
        self.empty_label.setVisible(n == 0)
        row = self.model.row_of(kept.id) if kept is not None else -1
        if row >= 0:
            # The same document stays selected: it is not shown again (a refresh after another desk's change
            # would otherwise clear the viewer and read the file the user is looking at once more).
            self._keeping = kept.id if kept is not None else None
            try:
                self.select_row(row)
            finally:
                self._keeping = None
        else:
            self._update_buttons()
            if kept is not None:
                self.item_selected.emit(None)

    def select_document(self, document_id: int) -> bool:
        row = self.model.row_of(document_id)
        if row >= 0:
            self.select_row(row)
        return row >= 0

    def select_row(self, row: int) -> None:
        self.table.selectRow(row)
        self.table.setCurrentIndex(self.model.index(row, 0))
        self._update_buttons()

    def _update_buttons(self) -> None:
        item = self.selected_item()
        for b in (self.assign_button, self.discard_button):
            b.setEnabled(item is not None)
        self.split_button.setEnabled(item is not None and item.pages > 1)

    def _on_table_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._update_buttons()
        item = self.model.item(current.row()) if current.isValid() else None
        if item is not None and item.id == self._keeping:
            return
        self.item_selected.emit(item)


__all__ = ["DOCUMENT_ID_ROLE", "InboxPane", "InboxTableModel", "nothing_read", "read_value"]
