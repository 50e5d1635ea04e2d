"""The Customers window: the company's customers with a search, and adding, editing, merging, opening a
customer's exemption matrix and exporting the report of customers buying exempt without a valid
certificate."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.core.database import Database
from ecms_desktop.services.customers.editing import CustomerRecord, CustomerRow
from ecms_desktop.services.customers.merge import MergePlan
from ecms_desktop.services.customers.service import CustomerInfo
from ecms_desktop.views.customers.edit_dialog import open_customer_editor
from ecms_desktop.views.customers.merge_dialog import CustomerMergeDialog
from ecms_desktop.views.operations import customers
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.widgets.error_presenter import present_error
from ecms_desktop.views.widgets.file_dialogs import get_save_file_name

_Index = QModelIndex | QPersistentModelIndex
COLUMNS = ("Number", "Legal name", "E-mail", "Ship-to city", "State", "Parent", "Certificates")


class CustomerTableModel(QAbstractTableModel):
    """Rows of the customer list."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[CustomerRow] = []

    def set_rows(self, rows: list[CustomerRow]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt API
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt API
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal and 0 <= section < len(
                COLUMNS):
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        r = self.rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return (r.number, r.legal_name, r.email, r.ship_to_city, r.ship_to_state, r.parent_label,
                    str(r.certificates))[index.column()]
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == 6:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class CustomersView(QWidget):
    """The company's customers. ``loaded(list)`` after each search; ``customer_opened(customer_id)`` asks the
    desk for a customer's matrix; ``changed()`` after an edit or a merge; ``report_exported(rows)``."""

    loaded = Signal(object)
    customer_opened = Signal(int)
    changed = Signal()
    report_exported = Signal(int)

    def __init__(self, db: Database, runner: TaskRunner, company_id: int, *, as_of: dt.date,
                 settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("customersView")
        self.setWindowFlag(Qt.WindowType.Window, True)
        self.setWindowTitle("Customers")
        self.db, self.runner, self.company_id, self.as_of, self.settings = db, runner, company_id, as_of, settings
        self._generation = 0
        #: The customer to select once the list is read again (the one just saved).
        self._select_next: int | None = None
        #: What the last change did, shown with the count once the list is read again.
        self._notice = ""
        layout = QVBoxLayout(self)
        bar = QHBoxLayout()
        self.search_edit = QLineEdit(self)
        self.search_edit.setObjectName("customerSearch")
        self.search_edit.setPlaceholderText("Search number, name, e-mail or city")
        self.search_edit.setClearButtonEnabled(True)
        bar.addWidget(self.search_edit, 1)
        self.new_button = QPushButton("&New…", self)
        self.edit_button = QPushButton("&Edit…", self)
        self.open_button = QPushButton("Exemption &matrix", self)
        self.merge_button = QPushButton("Mer&ge into…", self)
        self.report_button = QPushButton("&Uncovered exempt sales…", self)
        self.report_button.setToolTip("Export the customers buying exempt where no valid certificate covers them "
                                      "(Excel or CSV)")
        for button in (self.new_button, self.edit_button, self.open_button, self.merge_button, self.report_button):
            bar.addWidget(button)
        layout.addLayout(bar)
        self.model = CustomerTableModel(self)
        self.table = QTableView(self)
        self.table.setObjectName("customerTable")
        self.table.setModel(self.model)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self._columns_fitted = False
        layout.addWidget(self.table, 1)
        self.status = QLabel("", self)
        self.status.setObjectName("customersStatus")
        layout.addWidget(self.status)
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(250)
        self._search_timer.timeout.connect(self.refresh)
        self.search_edit.textChanged.connect(lambda _t: self._search_timer.start())
        self.search_edit.returnPressed.connect(self.refresh)
        self.new_button.clicked.connect(self.new_customer)
        self.edit_button.clicked.connect(self.edit_selected)
        self.open_button.clicked.connect(self.open_selected)
        self.merge_button.clicked.connect(self.merge_selected)
        self.report_button.clicked.connect(self.export_report_dialog)
        self.table.doubleClicked.connect(lambda _i: self.open_selected())
        self.table.selectionModel().currentRowChanged.connect(lambda _c, _p: self._update_buttons())
        self.resize(1000, 600)
        self._update_buttons()

    def refresh(self) -> None:
        """Search again (off the GUI thread); a slower earlier search never overwrites a later one."""
        self._search_timer.stop()
        self._generation += 1
        generation = self._generation
        customers.search_customers(self.db, self.company_id, self.search_edit.text()) \
            .success(lambda rows: self._on_rows_read(generation, rows)) \
            .failure(lambda error: present_error(self, error)).run(self.runner, parent=self)

    def _on_rows_read(self, generation: int, rows: list[CustomerRow]) -> None:
        if generation != self._generation:
            return
        chosen = self.selected_row()
        wanted = self._select_next if self._select_next is not None else chosen.id if chosen is not None else None
        self._select_next = None
        self.model.set_rows(rows)
        if rows and not self._columns_fitted:
            self._fit_columns()
        count = f"{len(rows)} customer{'s' if len(rows) != 1 else ''}"
        self.status.setText(f"{count}. {self._notice}" if self._notice else count)
        self._notice = ""
        if not (wanted is not None and self.select_customer(wanted)) and rows:
            self.table.selectRow(0)
        self._update_buttons()
        self.loaded.emit(rows)

    def _fit_columns(self) -> None:
        """Columns as wide as their contents, once, within bounds: the legal name gets room first, long
        e-mail addresses and parent names are cut (with an ellipsis) rather than squeezing the name."""
        self._columns_fitted = True
        self.table.resizeColumnsToContents()
        width = self.table.columnWidth
        self.table.setColumnWidth(1, max(min(width(1), 380), 260))
        for column in (2, 5):
            self.table.setColumnWidth(column, min(width(column), 240))

    def selected_row(self) -> CustomerRow | None:
        index = self.table.currentIndex()
        return self.model.rows[index.row()] if index.isValid() and index.row() < len(self.model.rows) else None

    def select_customer(self, customer_id: int) -> bool:
        row = next((i for i, r in enumerate(self.model.rows) if r.id == customer_id), None)
        if row is None:
            return False
        self.table.selectRow(row)
        return True

    def _update_buttons(self) -> None:
        chosen = self.selected_row() is not None
        for button in (self.edit_button, self.open_button, self.merge_button):
            button.setEnabled(chosen)

    def new_customer(self) -> None:
        open_customer_editor(self, self.db, self.runner, self.company_id, None, on_saved=self._on_saved)

    def edit_selected(self) -> None:
        chosen = self.selected_row()
        if chosen is not None:
            open_customer_editor(self, self.db, self.runner, self.company_id, chosen.id, on_saved=self._on_saved)

    def _on_saved(self, record: CustomerRecord) -> None:
        self._select_next = record.id
        if not any(r.id == record.id for r in self.model.rows):  # a new customer the search would hide
            self.search_edit.blockSignals(True)
            self.search_edit.clear()
            self.search_edit.blockSignals(False)
        self.changed.emit()
        self.refresh()

    def open_selected(self) -> None:
        chosen = self.selected_row()
        if chosen is not None:
            self.customer_opened.emit(chosen.id)

    def merge_selected(self) -> None:
        chosen = self.selected_row()
        if chosen is None:
            return

        def listed(customers_list: list[CustomerInfo]) -> None:
            merged = next((c for c in customers_list if c.id == chosen.id), None)
            if merged is None:
                self.refresh()
                return
            dialog = CustomerMergeDialog(self.db, self.runner, merged, customers_list, self)
            dialog.merged_into.connect(self._on_merged)
            dialog.open()

        customers.list_customers(self.db, self.company_id).success(listed) \
            .failure(lambda error: present_error(self, error)).run(self.runner, parent=self)

    def _on_merged(self, plan: MergePlan) -> None:
        self._notice = plan.summary()
        self.changed.emit()
        self.refresh()

    def export_report_dialog(self) -> None:
        folder = str(self.settings.value("dirs/reports", "")) if self.settings is not None else ""
        name = f"uncovered-exempt-sales-{self.as_of:%Y-%m-%d}.xlsx"
        path = get_save_file_name(self, "Customers without a valid certificate where they buy exempt",
                                  str(Path(folder) / name) if folder else name,
                                  "Excel workbook (*.xlsx);;CSV (*.csv)")
        if path:
            self.export_report(Path(path))

    def export_report(self, path: Path) -> None:
        """Write the report of customers buying exempt without a valid certificate to ``path``."""
        if self.settings is not None:
            self.settings.setValue("dirs/reports", str(path.parent))
        customers.export_uncovered(self.db, self.company_id, path, self.as_of) \
            .success(lambda n: self._on_exported(path, n)) \
            .failure(lambda error: present_error(self, error)).run(self.runner, parent=self)

    def _on_exported(self, path: Path, rows: int) -> None:
        self.status.setText(f"{rows} customer/state row{'s' if rows != 1 else ''} written to {path}")
        self.report_exported.emit(rows)
