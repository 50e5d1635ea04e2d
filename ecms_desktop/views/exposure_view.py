"""The exposure report in the app: a table of exposed sales by state, period and customer, and a bar
chart of the amounts at risk (painted with QPainter: QtCharts is not part of PySide6-Essentials)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
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
from ecms_desktop.services.sales.determination_service import DeterminationService
from ecms_desktop.services.sales.exposure import EXPOSURE_LABELS, ExposureReport
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.widgets.dates import pydate, qdate
from ecms_desktop.views.widgets.error_presenter import present_error

_Index = QModelIndex | QPersistentModelIndex
_COLUMNS = ("State", "Period", "Customer", "Exposure", "Lines", "Sales amount", "Amount at risk", "Tax collected")
_KIND_COLORS = {"unsupported_claim": QColor("#B03A2E"), "tax_on_exempt": QColor("#B9770E")}


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


class ExposureTableModel(QAbstractTableModel):
    """Rows of an :class:`ExposureReport`."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._rows: list[Any] = []

    def set_report(self, report: ExposureReport | None) -> None:
        self.beginResetModel()
        self._rows = list(report.rows) if report else []
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt API
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt API
        return 0 if parent.isValid() else len(_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(
                _COLUMNS):
            return _COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._rows)):
            return None
        r = self._rows[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            values = (r.state, r.period, r.customer_number, EXPOSURE_LABELS[r.kind], str(r.lines),
                      _money(r.sales_amount), _money(r.exposure_amount), _money(r.tax_collected))
            return values[col]
        if role == Qt.ItemDataRole.TextAlignmentRole and col >= 4:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole and col == 3:
            return _KIND_COLORS.get(r.kind)
        return None


class BarChartWidget(QWidget):
    """Horizontal bars: one per label, length by amount, the amount written at the end."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: list[tuple[str, Decimal]] = []
        self._title = ""
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumHeight(160)

    def set_data(self, title: str, items: list[tuple[str, Decimal]], limit: int = 12) -> None:
        self._title = title
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
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "No exposure in this period")
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
    """Exposure of one company over a date range, by state, period or customer."""

    report_loaded = Signal(object)

    def __init__(self, db: Database, company_id: int, *, runner: TaskRunner | None = None,
                 date_from: dt.date | None = None, date_to: dt.date | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.db, self.company_id = db, company_id
        self.runner = runner or TaskRunner(self)
        self.report: ExposureReport | None = None
        today = dt.date.today()
        self.from_edit = QDateEdit(qdate(date_from or today.replace(month=1, day=1)))
        self.to_edit = QDateEdit(qdate(date_to or today))
        for edit in (self.from_edit, self.to_edit):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
        self.state_edit = QLineEdit()
        self.state_edit.setPlaceholderText("all states")
        self.state_edit.setMaxLength(2)
        self.state_edit.setFixedWidth(80)
        self.group_combo = QComboBox()
        for label, key in (("By state", "state"), ("By period", "period"), ("By customer", "customer")):
            self.group_combo.addItem(label, key)
        self.refresh_button = QPushButton("Show")
        self.total_label = QLabel("")
        bar = QHBoxLayout()
        for widget in (QLabel("From"), self.from_edit, QLabel("to"), self.to_edit, QLabel("State"), self.state_edit,
                       self.group_combo, self.refresh_button):
            bar.addWidget(widget)
        bar.addStretch(1)
        self.model = ExposureTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.chart = BarChartWidget()
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.chart)
        splitter.addWidget(self.table)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.total_label)
        layout.addWidget(splitter, 1)
        self.refresh_button.clicked.connect(self.refresh)
        self.group_combo.currentIndexChanged.connect(self._on_group_changed)

    def refresh(self) -> None:
        """Load the report off the GUI thread."""
        start, end = pydate(self.from_edit.date()), pydate(self.to_edit.date())
        state = self.state_edit.text().strip().upper() or None
        service = DeterminationService(self.db)
        company_id = self.company_id
        self.refresh_button.setEnabled(False)
        self.runner.run(lambda progress, cancel: service.exposure(company_id, start, end, state=state),
                        on_done=self._on_report_loaded, on_error=self._on_report_failed,
                        title="Computing exposure", parent=self)

    def _on_report_loaded(self, report: ExposureReport) -> None:
        self.refresh_button.setEnabled(True)
        self.report = report
        self.model.set_report(report)
        self.total_label.setText(f"Total at risk: {_money(report.total)} in {len(report.rows)} groups")
        self._on_group_changed()
        self.report_loaded.emit(report)

    def _on_report_failed(self, error: BaseException) -> None:
        self.refresh_button.setEnabled(True)
        present_error(self, error)

    def _on_group_changed(self, *_: object) -> None:
        key = self.group_combo.currentData()
        items = self.report.totals_by(key) if self.report else []
        self.chart.set_data(f"Amount at risk {self.group_combo.currentText().lower()}", items)
