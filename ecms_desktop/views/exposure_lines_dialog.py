"""The sales behind a row of the exposure report: each invoice line, the measure it counts in and by how
much, and, for the selected line, which certificates the decision considered and why each did or did
not cover the sale."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.core.database import Database
from ecms_desktop.services.sales.exposure import PAST_POLICY, TAX_ON_COVERED, UNCOVERED, ExposureLine, ExposureRow
from ecms_desktop.views.operations import sales
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.widgets.error_presenter import present_error

_Index = QModelIndex | QPersistentModelIndex
_COLUMNS = ("Invoice", "Line", "Date", "Amount", "Tax collected", "Counts as", "Figure", "Certificate")
_MEASURE_SHORT = {UNCOVERED: "exempt, no covering certificate (untaxed amount)",
                  TAX_ON_COVERED: "tax collected, certificate covered (tax)",
                  PAST_POLICY: "covered in law, past our renewal policy (not exposure)"}


def money(value: Decimal) -> str:
    """An amount as the exposure windows show it."""
    return f"{value:,.2f}"


class ExposureLinesTableModel(QAbstractTableModel):
    """The sales behind one row of the report."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.lines: list[ExposureLine] = []

    def set_lines(self, lines: tuple[ExposureLine, ...]) -> None:
        self.beginResetModel()
        self.lines = list(lines)
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt API
        return 0 if parent.isValid() else len(self.lines)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt API
        return 0 if parent.isValid() else len(_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if (orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole
                and 0 <= section < len(_COLUMNS)):
            return _COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self.lines)):
            return None
        x = self.lines[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            certificate = x.certificate_number or "none"
            values = (x.invoice_number, str(x.line), x.invoice_date.isoformat(), money(x.amount),
                      money(x.tax_collected), _MEASURE_SHORT[x.measure], money(x.figure),
                      certificate + (" (corrected)" if x.corrected else ""))
            return values[col]
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (1, 3, 4, 6):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


def line_explanation(x: ExposureLine) -> str:
    """What the desk shows for a line: the decision's explanation, then each certificate considered."""
    text = [f"Invoice {x.invoice_number} line {x.line} of {x.invoice_date}: {x.explanation}"]
    if x.measure == UNCOVERED:
        text.append(f"Claimed exempt, but no certificate covers {money(x.figure)} of it: that amount was left "
                    "untaxed.")
    else:
        text.append(f"{money(x.figure)} of tax was collected although the certificate covered the sale: the "
                    "customer may claim it back.")
    if x.corrected:
        text.append("This sale was decided again by reprocessing after its period was filed; the correction "
                    "counts.")
    if x.candidates:
        text.append("Certificates considered:")
        text += [f"  • {c}" for c in x.candidates]
    else:
        text.append("No certificate of this customer was on file for the sale's state and date.")
    return "\n".join(text)


class ExposureLinesDialog(QDialog):
    """The sales behind one row of the exposure report, with each line's explanation."""

    lines_loaded = Signal(object)  # tuple[ExposureLine, ...]

    def __init__(self, db: Database, company_id: int, row: ExposureRow, date_from: dt.date, date_to: dt.date, *,
                 runner: TaskRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db, self.company_id, self.row, self.runner = db, company_id, row, runner
        self.date_from, self.date_to = date_from, date_to
        who = f"{row.customer_number} {row.customer_name}".strip()
        self.setWindowTitle(f"Sales of {who}, {row.state} {row.period}")
        self.heading = QLabel(f"<b>{who}</b> in {row.state}, period {row.period} (report {date_from} to {date_to}): "
                              f"exempt sales without a covering certificate {money(row.uncovered.untaxed_amount)} "
                              f"untaxed; tax collected on covered sales {money(row.tax_on_covered.tax_collected)}.")
        self.heading.setWordWrap(True)
        self.model = ExposureLinesTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.explanation = QPlainTextEdit()
        self.explanation.setReadOnly(True)
        self.explanation.setPlaceholderText("Select a line to see why it was decided as it was.")
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.explanation)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(splitter, 1)
        layout.addWidget(buttons)
        self.table.selectionModel().currentRowChanged.connect(self._on_line_changed)
        self.resize(980, 560)

    def load(self) -> None:
        """Read the row's sales off the GUI thread."""
        r = self.row
        sales.load_exposure_lines(self.db, self.company_id, self.date_from, self.date_to, state=r.state,
                                  period=r.period, customer_number=r.customer_number) \
            .success(self._on_lines_loaded).failure(lambda error: present_error(self, error)).run(self.runner, self)

    def _on_lines_loaded(self, lines: tuple[ExposureLine, ...]) -> None:
        self.model.set_lines(lines)
        if lines:
            self.table.selectRow(0)
        self.lines_loaded.emit(lines)

    def _on_line_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        lines = self.model.lines
        self.explanation.setPlainText(line_explanation(lines[current.row()])
                                      if current.isValid() and current.row() < len(lines) else "")
