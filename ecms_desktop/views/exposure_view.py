"""The exposure report in the app: a table by state, period and customer with its two measures side by
side and never added together (the untaxed amount of exempt sales without a covering certificate; the
tax collected on sales a certificate covered), a bar chart of one measure at a time (painted with
QPainter: QtCharts is not part of PySide6-Essentials), the sales behind a row with their explanations,
and the report as an Excel workbook."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.core.database import Database
from ecms_desktop.services.sales.exposure import (
    MEASURE_LABELS,
    PAST_POLICY,
    TAX_ON_COVERED,
    UNCOVERED,
    ExposureReport,
    ExposureRow,
)
from ecms_desktop.views.exposure_lines_dialog import ExposureLinesDialog, money
from ecms_desktop.views.operations import sales
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.widgets.dates import TypedDateField
from ecms_desktop.views.widgets.error_presenter import present_error
from ecms_desktop.views.widgets.file_dialogs import get_save_file_name

_Index = QModelIndex | QPersistentModelIndex
_COLUMNS = ("State", "Period", "Customer", "Customer name", "Exempt, no certificate: lines",
            "Untaxed amount", "Covered, taxed: lines", "Tax collected", "Covered in law only: lines",
            "Untaxed, covered in law")
#: The tooltips of the measure columns: what each figure is.
_COLUMN_TIPS = {4: "Sales the customer claimed exempt that no certificate covers",
                5: MEASURE_LABELS[UNCOVERED], 6: "Sales a valid certificate covered on which tax was collected",
                7: MEASURE_LABELS[TAX_ON_COVERED],
                8: "Sales claimed exempt that a certificate covered in law after our renewal policy expired it",
                9: MEASURE_LABELS[PAST_POLICY]}
_MEASURE_COLORS = {5: QColor("#B03A2E"), 7: QColor("#B9770E")}
NO_SALES = "No sales imported for this period"
NO_EXPOSURE = "No exposure in this period"
#: Every imported line still waits for its determination: nothing can be said yet.
NOT_DECIDED = "No sales decided yet for this period"
#: The name column of a customer number the ERP sends that the customer list does not hold.
_NOT_LISTED = "(not in the customer list)"
_money = money


def _empty_text(report: ExposureReport) -> str | None:
    """What the report says when it has no row: no sales imported, none decided yet, or no exposure;
    ``None`` when it has rows."""
    if not report.has_sales:
        return NO_SALES
    if report.undecided_lines >= report.sales_lines:
        return NOT_DECIDED
    return None if report.rows else NO_EXPOSURE


class ExposureTableModel(QAbstractTableModel):
    """Rows of an :class:`ExposureReport`: one per customer, state and period, both measures side by side."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[ExposureRow] = []

    def set_report(self, report: ExposureReport | None) -> None:
        self.beginResetModel()
        self._rows = list(report.rows) if report else []
        self.endResetModel()

    def row_at(self, row: int) -> ExposureRow | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt API
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt API
        return 0 if parent.isValid() else len(_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(_COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return _COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return _COLUMN_TIPS.get(section)
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._rows)):
            return None
        r = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            u, t, p = r.uncovered, r.tax_on_covered, r.past_policy
            values = (r.state, r.period, r.customer_number, r.customer_name or _NOT_LISTED,
                      str(u.lines) if u.lines else "",
                      _money(u.untaxed_amount) if u.lines else "", str(t.lines) if t.lines else "",
                      _money(t.tax_collected) if t.lines else "", str(p.lines) if p.lines else "",
                      _money(p.untaxed_amount) if p.lines else "")
            return values[col]
        if role == Qt.ItemDataRole.TextAlignmentRole and col >= 4:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == 3 and not r.customer_name:
                return QColor("#7F7F7F")
            return _MEASURE_COLORS.get(col)
        return None


class BarChartWidget(QWidget):
    """Horizontal bars: one per label, length by amount, the amount written at the end."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: list[tuple[str, Decimal]] = []
        self._title = ""
        #: What the chart says when it has no bars.
        self.empty_text = "No exposure in this period"
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(160)

    def set_data(self, title: str, items: list[tuple[str, Decimal]], limit: int = 12, *,
                 empty_text: str = "No exposure in this period") -> None:
        self._title = title
        self.empty_text = empty_text
        self._items = items[:limit]
        self.update()

    def items(self) -> list[tuple[str, Decimal]]:
        return list(self._items)

    def sizeHint(self) -> QSize:
        return QSize(420, 60 + 26 * max(3, len(self._items)))

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), self.palette().base())
        title_font = QFont(self.font())
        title_font.setBold(True)
        p.setFont(title_font)
        p.setPen(self.palette().text().color())
        p.drawText(QRectF(8, 4, self.width() - 16, 22), Qt.AlignmentFlag.AlignLeft, self._title)
        p.setFont(self.font())
        if not self._items:
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.empty_text)
            return
        metrics = p.fontMetrics()
        label_w = min(max(metrics.horizontalAdvance(label) for label, _ in self._items) + 24, self.width() // 3)
        value_w = max(metrics.horizontalAdvance(_money(v)) for _, v in self._items) + 12
        top, bar_h, gap = 30.0, 18.0, 8.0
        avail = max(10.0, self.width() - label_w - value_w - 16)
        biggest = max(v for _, v in self._items) or Decimal(1)
        for i, (label, value) in enumerate(self._items):
            y = top + i * (bar_h + gap)
            if y + bar_h > self.height():
                break
            p.setPen(self.palette().text().color())
            right = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            p.drawText(QRectF(4, y, label_w - 10, bar_h), right,
                       metrics.elidedText(label, Qt.TextElideMode.ElideRight, label_w - 10))
            width = float(avail * float(value / biggest)) if biggest > 0 else 0.0
            p.fillRect(QRectF(label_w, y, max(width, 1.0), bar_h), QColor("#1F4E79"))
            p.drawText(QRectF(label_w + width + 6, y, value_w, bar_h),
                       int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), _money(value))
        p.end()


class ExposureView(QWidget):
    """Exposure of one company over a date range, by state, period or customer: the two measures side by
    side, never summed. Double-click (or Enter on) a row for the sales behind it; Export to Excel writes
    the report as shown."""

    report_loaded = Signal(object)
    lines_opened = Signal(object)  # ExposureLinesDialog
    exported = Signal(object)  # Path

    def __init__(self, db: Database, company_id: int, *, runner: TaskRunner | None = None,
                 date_from: dt.date | None = None, date_to: dt.date | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db, self.company_id = db, company_id
        self.runner = runner or TaskRunner(self)
        self.report: ExposureReport | None = None
        self.lines_dialog: ExposureLinesDialog | None = None
        self.export_folder = ""
        today = dt.date.today()
        end = date_to or today
        # typed as written; a month/day without year is read in the year of the report's end and says so
        self.from_edit = TypedDateField(date_from or end.replace(month=1, day=1), year=end.year)
        self.to_edit = TypedDateField(end, year=end.year)
        self.state_edit = QLineEdit()
        self.state_edit.setPlaceholderText("all states")
        self.state_edit.setMaxLength(2)
        self.state_edit.setFixedWidth(80)
        self.group_combo = QComboBox()
        for label, key in (("By state", "state"), ("By period", "period"), ("By customer", "customer")):
            self.group_combo.addItem(label, key)
        self.measure_combo = QComboBox()
        self.measure_combo.addItem("Untaxed amount of exempt sales without a certificate", UNCOVERED)
        self.measure_combo.addItem("Tax collected on covered sales", TAX_ON_COVERED)
        self.measure_combo.addItem("Covered in law, past our renewal policy (not exposure)", PAST_POLICY)
        self.measure_combo.setToolTip("The figure the chart shows (the measures are never added together)")
        self.refresh_button = QPushButton("Show")
        self.export_button = QPushButton("Export to Excel…")
        self.export_button.setEnabled(False)
        self.lines_button = QPushButton("Show sales…")
        self.lines_button.setToolTip("The invoice lines behind the selected row, with why each was decided so")
        self.lines_button.setEnabled(False)
        self.decide_button = QPushButton("Decide new sales")
        self.decide_button.setToolTip("Decide which certificate covers each imported sale of these dates not decided "
                                      "yet (as `ecms determine` does); they count in the figures afterwards")
        self.decide_button.setVisible(False)
        self.uncovered_label = QLabel("")
        self.tax_label = QLabel("")
        self.policy_label = QLabel("")
        self.status_label = QLabel("")
        for figure in (self.uncovered_label, self.tax_label, self.policy_label, self.status_label):
            figure.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bar = QHBoxLayout()
        for widget in (QLabel("From"), self.from_edit, QLabel("to"), self.to_edit, QLabel("State"), self.state_edit,
                       self.refresh_button):
            bar.addWidget(widget)
        bar.addStretch(1)
        bar.addWidget(self.lines_button)
        bar.addWidget(self.export_button)
        chart_bar = QHBoxLayout()
        chart_bar.addWidget(QLabel("Chart"))
        chart_bar.addWidget(self.measure_combo)
        chart_bar.addWidget(self.group_combo)
        chart_bar.addStretch(1)
        figures = QVBoxLayout()
        status_row = QHBoxLayout()
        status_row.addWidget(self.status_label, 1)
        status_row.addWidget(self.decide_button)
        figures.addLayout(status_row)
        figures.addWidget(self.uncovered_label)
        figures.addWidget(self.tax_label)
        figures.addWidget(self.policy_label)
        self.model = ExposureTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        # Every column as wide as its contents: the table scrolls sideways rather than squeezing the
        # customer's name to an ellipsis when the three measures' columns do not fit.
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.chart = BarChartWidget()
        chart_box = QWidget()
        chart_layout = QVBoxLayout(chart_box)
        chart_layout.setContentsMargins(0, 0, 0, 0)
        chart_layout.addLayout(chart_bar)
        chart_layout.addWidget(self.chart, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(chart_box)
        splitter.addWidget(self.table)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addLayout(figures)
        layout.addWidget(splitter, 1)
        self.refresh_button.clicked.connect(self.refresh)
        self.export_button.clicked.connect(self._on_export_clicked)
        self.lines_button.clicked.connect(self.open_selected_lines)
        self.decide_button.clicked.connect(self.decide_new_sales)
        self.table.activated.connect(lambda _index: self.open_selected_lines())
        self.table.selectionModel().selectionChanged.connect(self._on_selection_changed)
        self.group_combo.currentIndexChanged.connect(self._on_group_changed)
        self.measure_combo.currentIndexChanged.connect(self._on_group_changed)

    def refresh(self) -> None:
        """Load the report off the GUI thread."""
        start, end = self.from_edit.read(), self.to_edit.read()
        if start is None or end is None:
            label, field = ("From", self.from_edit) if start is None else ("To", self.to_edit)
            self.status_label.setText(f"Please correct the dates. {label}: {field.problem()}")
            return
        state = self.state_edit.text().strip().upper() or None
        self.refresh_button.setEnabled(False)
        sales.load_exposure(self.db, self.company_id, start, end, state=state) \
            .success(self._on_report_loaded).failure(self._on_report_failed).run(self.runner, parent=self)

    def _on_report_loaded(self, report: ExposureReport) -> None:
        self.refresh_button.setEnabled(True)
        self.report = report
        self.model.set_report(report)
        self.export_button.setEnabled(True)
        self.lines_button.setEnabled(False)
        u, t = report.uncovered, report.tax_on_covered
        where = f" in {report.state}" if report.state else ""
        empty = _empty_text(report)
        if not report.has_sales:
            self.status_label.setText(f"<b>{NO_SALES}</b> ({report.date_from} to {report.date_to}{where}): import "
                                      "the ERP's invoice lines with Transactions > Import invoice lines.")
        elif empty is not None:
            self.status_label.setText(f"<b>{empty}</b>: {report.sales_lines:,} sales lines from "
                                      f"{report.date_from} to {report.date_to}{where}.")
        else:
            self.status_label.setText(f"{report.sales_lines:,} sales lines from {report.date_from} to "
                                      f"{report.date_to}{where}. The three figures below measure different things "
                                      "and are not added together.")
        if report.undecided_lines:
            self.status_label.setText(self.status_label.text() + f" <b>{report.undecided_lines:,} sales lines are "
                                      "not decided yet</b> and are not in these figures.")
        self.decide_button.setVisible(report.undecided_lines > 0)
        self.decide_button.setEnabled(True)
        self.uncovered_label.setText(f"Exempt sales without a covering certificate: <b>{_money(u.untaxed_amount)}"
                                     f"</b> untaxed, in {u.lines:,} lines")
        self.tax_label.setText(f"Tax collected although a certificate covered the sale: <b>{_money(t.tax_collected)}"
                               f"</b> of tax, in {t.lines:,} lines")
        p = report.past_policy
        self.policy_label.setText(f"Covered in law, past our renewal policy (not exposure): <b>"
                                  f"{_money(p.untaxed_amount)}</b> untaxed, in {p.lines:,} lines")
        self._on_group_changed()
        self.report_loaded.emit(report)

    def _on_report_failed(self, error: BaseException) -> None:
        self.refresh_button.setEnabled(True)
        present_error(self, error)

    def decide_new_sales(self) -> None:
        """Decide the report's sales not decided yet (progress and Cancel), then show the report again."""
        report = self.report
        if report is None:
            return
        self.decide_button.setEnabled(False)
        sales.decide_sales(self.db, self.company_id, report.date_from, report.date_to) \
            .success(lambda _summary: self.refresh()).failure(self._on_decide_failed).run(self.runner, parent=self)

    def _on_decide_failed(self, error: BaseException) -> None:
        self.decide_button.setEnabled(True)
        present_error(self, error)

    def _on_group_changed(self, *_: object) -> None:
        key, measure = self.group_combo.currentData(), self.measure_combo.currentData()
        items = self.report.totals_by(key, measure) if self.report else []
        empty = (_empty_text(self.report) if self.report is not None else None) or NO_EXPOSURE
        self.chart.set_data(f"{self.measure_combo.currentText()}, {self.group_combo.currentText().lower()}", items,
                            empty_text=empty)

    def _on_selection_changed(self, *_: object) -> None:
        self.lines_button.setEnabled(self.selected_row() is not None)

    def selected_row(self) -> ExposureRow | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.row_at(rows[0].row()) if rows else None

    def open_selected_lines(self) -> None:
        """The sales behind the selected row, each with its explanation, in a window of their own."""
        row, report = self.selected_row(), self.report
        if row is None or report is None:
            return
        if self.lines_dialog is not None:
            self.lines_dialog.close()
            self.lines_dialog.deleteLater()
        dialog = ExposureLinesDialog(self.db, self.company_id, row, report.date_from, report.date_to,
                                     runner=self.runner, parent=self)
        dialog.setObjectName("exposureLinesDialog")
        self.lines_dialog = dialog
        dialog.show()
        dialog.load()
        self.lines_opened.emit(dialog)

    def _on_export_clicked(self) -> None:
        report = self.report
        if report is None:
            return
        name = f"exposure-{report.date_from}-{report.date_to}{'-' + report.state if report.state else ''}.xlsx"
        chosen = get_save_file_name(self, "Export the exposure report", str(Path(self.export_folder) / name),
                                    "Excel workbooks (*.xlsx)")
        if chosen:
            self.export_to(Path(chosen))

    def export_to(self, path: Path) -> None:
        """Write the report as shown to ``path`` (an .xlsx workbook) off the GUI thread; ``exported`` follows."""
        if self.report is None:
            return
        if path.suffix.lower() != ".xlsx":
            path = path.with_name(path.name + ".xlsx")
        self.export_folder = str(path.parent)
        self.export_button.setEnabled(False)
        sales.export_exposure(self.report, path).success(self._on_exported).failure(self._on_export_failed) \
            .run(self.runner, parent=self)

    def _on_exported(self, path: Path) -> None:
        self.export_button.setEnabled(True)
        self.exported.emit(path)

    def _on_export_failed(self, error: BaseException) -> None:
        self.export_button.setEnabled(True)
        present_error(self, error)
