"""One customer: its details and its exemption matrix (each state where it buys × what covers it there on
the desk's date), with the next action one click away: request or remind (the renewal ladder's e-mail; for a
state no certificate covers, a first request with the state's form), review (the certificate waiting,
selected in the desk); a missing state also offers adding the certificate by hand."""

from __future__ import annotations

import datetime as dt
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.rules import RulesPack
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.customers.editing import CustomerRecord
from ecms_desktop.services.customers.matrix import Coverage, ExemptionMatrix, NextAction, StateCoverage
from ecms_desktop.services.renewals.service import RunResult
from ecms_desktop.views.customers.edit_dialog import open_customer_editor
from ecms_desktop.views.operations import customers
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.widgets.error_presenter import present_error

_Index = QModelIndex | QPersistentModelIndex
COLUMNS = ("State", "Where from", "Coverage", "Certificate", "Expires", "Exempt sales", "Open request", "Next action")
#: The column holding the one-click action button.
ACTION_COLUMN = len(COLUMNS) - 1
COVERAGE_COLORS = {Coverage.ACTIVE: "#1B7F3B", Coverage.EXPIRING: "#B26A00", Coverage.PENDING: "#1F4E79",
                   Coverage.EXPIRED: "#B00020", Coverage.MISSING: "#B00020"}


class ExemptionMatrixTableModel(QAbstractTableModel):
    """The rows of an :class:`ExemptionMatrix`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: tuple[StateCoverage, ...] = ()

    def set_matrix(self, matrix: ExemptionMatrix | None) -> None:
        self.beginResetModel()
        self.rows = matrix.rows if matrix is not None else ()
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
        r, column = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 5:
                return f"{r.exempt_sales} line(s), {r.exempt_amount:,.2f}" if r.exempt_sales else ""
            return (r.state, ", ".join(r.sources), r.coverage.label,
                    str(r.certificate_id) if r.certificate_id else "",
                    f"{r.expiry_date:%Y-%m-%d}" if r.expiry_date else "no expiry" if r.coverage.valid else "",
                    "", f"since {r.requested_on:%Y-%m-%d}" if r.requested_on else "", r.next_action.label)[column]
        if role == Qt.ItemDataRole.ForegroundRole and column == 2:
            return QColor(COVERAGE_COLORS[r.coverage])
        if role == Qt.ItemDataRole.ToolTipRole and column == 2 and r.coverage is Coverage.EXPIRING and r.expiry_date:
            return f"Expires on {r.expiry_date:%Y-%m-%d}"
        return None


class CustomerView(QWidget):
    """A customer and its exemption matrix as of ``as_of``. ``loaded(ExemptionMatrix)`` each time the matrix
    is read; ``review_requested(certificate_id)``, ``new_certificate_requested(customer_id, state)`` and
    ``changed()`` (after an edit or a renewal step) are for the desk."""

    loaded = Signal(object)
    review_requested = Signal(int)
    new_certificate_requested = Signal(int, str)
    step_taken = Signal(object)
    changed = Signal()

    def __init__(self, db: Database, rules: RulesPack, runner: TaskRunner, customer_id: int, *, as_of: dt.date,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("customerView")
        self.setWindowFlag(Qt.WindowType.Window, True)
        self.setWindowTitle("Customer")
        self.db, self.rules, self.runner, self.customer_id, self.as_of = db, rules, runner, customer_id, as_of
        self.matrix: ExemptionMatrix | None = None
        layout = QVBoxLayout(self)
        self.header = QLabel("Reading the customer…", self)
        self.header.setObjectName("customerHeader")
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(self.header)
        buttons = QHBoxLayout()
        self.edit_button = QPushButton("&Edit…", self)
        self.new_certificate_button = QPushButton("&New certificate…", self)
        self.refresh_button = QPushButton("&Refresh", self)
        for button in (self.edit_button, self.new_certificate_button, self.refresh_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        self.summary = QLabel("", self)
        self.summary.setObjectName("matrixSummary")
        layout.addWidget(self.summary)
        self.model = ExemptionMatrixTableModel(self)
        self.table = QTableView(self)
        self.table.setObjectName("exemptionMatrix")
        self.table.setModel(self.model)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(ACTION_COLUMN, QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(ACTION_COLUMN, 130)
        layout.addWidget(self.table, 1)
        self.action_buttons: dict[str, QPushButton] = {}
        #: The second action of a row (Add certificate beside a missing state's Request), by state.
        self.other_buttons: dict[str, QPushButton] = {}
        self.edit_button.clicked.connect(self._edit)
        self.new_certificate_button.clicked.connect(lambda: self.new_certificate_requested.emit(self.customer_id, ""))
        self.refresh_button.clicked.connect(self.refresh)
        self.resize(960, 520)

    def refresh(self) -> None:
        """Read the matrix again (off the GUI thread)."""
        customers.read_matrix(self.db, self.customer_id, self.as_of).success(self._on_matrix_read) \
            .failure(self._on_failed).run(self.runner, parent=self)

    def _on_matrix_read(self, matrix: ExemptionMatrix) -> None:
        self.matrix = matrix
        c: CustomerRecord = matrix.customer
        self.setWindowTitle(f"Customer {c.number} — {c.legal_name}")
        ship = ", ".join(p for p in (c.ship_to_line1, c.ship_to_city, f"{c.ship_to_state} {c.ship_to_zip}".strip())
                         if p)
        parts = [f"<b>{c.number} — {c.legal_name}</b>", f"E-mail: {c.email or '<i>none</i>'}",
                 f"Ship to: {ship or '<i>no address</i>'}"]
        if c.parent_label:
            parts.append(f"Parent: {c.parent_label}")
        if c.owner_email:
            parts.append(f"Account owner: {c.owner_email}")
        self.header.setText("<br>".join(parts))
        counts = {cov: sum(1 for r in matrix.rows if r.coverage is cov) for cov in Coverage}
        summary = (f"As of {matrix.as_of:%Y-%m-%d} (expiring within {matrix.expiring_soon_days} days): "
                   + ", ".join(f"{n} {cov.label.lower()}" for cov, n in counts.items() if n))
        self.summary.setText(summary if matrix.rows else
                             "The customer buys nowhere yet: no ship-to state, certificate or sale.")
        self.model.set_matrix(matrix)
        self.action_buttons, self.other_buttons = {}, {}
        two = any(r.other_action is not NextAction.NONE for r in matrix.rows)
        self.table.setColumnWidth(ACTION_COLUMN, 250 if two else 130)
        for row, r in enumerate(matrix.rows):
            if r.next_action is NextAction.NONE:
                continue
            button = QPushButton(r.next_action.label, self.table)
            button.setObjectName(f"matrixAction_{r.state}")
            button.setToolTip(self._action_tip(r))
            button.clicked.connect(lambda _checked=False, state=r.state: self.take_action(state))
            self.action_buttons[r.state] = button
            cell: QWidget = button
            if r.other_action is NextAction.ADD:
                cell = QWidget(self.table)
                box = QHBoxLayout(cell)
                box.setContentsMargins(0, 0, 0, 0)
                box.setSpacing(4)
                add = QPushButton(NextAction.ADD.label, cell)
                add.setObjectName(f"matrixAdd_{r.state}")
                add.setToolTip(f"Add the customer's {r.state} certificate you already hold, from a file or the inbox")
                add.clicked.connect(lambda _checked=False, state=r.state: self.add_certificate(state))
                button.setParent(cell)
                box.addWidget(button)
                box.addWidget(add)
                self.other_buttons[r.state] = add
            self.table.setIndexWidget(self.model.index(row, ACTION_COLUMN), cell)
        self.loaded.emit(matrix)

    @staticmethod
    def _action_tip(r: StateCoverage) -> str:
        if r.next_action is NextAction.REQUEST and r.coverage is Coverage.MISSING:
            return f"E-mail the customer a request for its {r.state} certificate, with the state's form"
        return {NextAction.REQUEST: f"Send the renewal request for {r.state} now",
                NextAction.REMIND: f"Send the reminder due for the open {r.state} request",
                NextAction.REVIEW: f"Open certificate {r.certificate_id} in the desk to review it",
                NextAction.ADD: f"Add the customer's {r.state} certificate from a file or the inbox",
                NextAction.NONE: ""}[r.next_action]

    def take_action(self, state: str) -> None:
        """The next action of a state's row."""
        if self.matrix is None:
            return
        r = self.matrix.row(state)
        if r.next_action is NextAction.REVIEW and r.certificate_id is not None:
            self.review_requested.emit(r.certificate_id)
        elif r.next_action is NextAction.ADD:
            self.add_certificate(r.state)
        elif r.next_action in (NextAction.REQUEST, NextAction.REMIND):
            customers.take_step(self.db, self.rules, self.customer_id, r.state, self.as_of) \
                .success(self._on_step_taken).failure(self._on_step_failed).run(self.runner, parent=self)

    def add_certificate(self, state: str) -> None:
        """Open New certificate for the customer and ``state`` (the accountant holds the paper)."""
        self.new_certificate_requested.emit(self.customer_id, state.upper())

    def _on_step_taken(self, result: RunResult) -> None:
        self.summary.setText(result.summary())
        self.step_taken.emit(result)
        self.changed.emit()
        self.refresh()

    def _on_step_failed(self, error: BaseException) -> None:
        present_error(self, error)
        self.refresh()  # a message may have been queued before delivery failed

    def _edit(self) -> None:
        if self.matrix is None:
            return
        open_customer_editor(self, self.db, self.runner, self.matrix.customer.company_id, self.customer_id,
                             on_saved=self._on_saved)

    def _on_saved(self, _record: CustomerRecord) -> None:
        self.changed.emit()
        self.refresh()

    def _on_failed(self, error: BaseException) -> None:
        self.header.setText(str(error))
        present_error(self, error)
