"""The status strip: how many certificates have each status; clicking a count filters the grid."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QAbstractButton, QButtonGroup, QHBoxLayout, QLabel, QSizePolicy, QWidget

from ecms_desktop.models import Status
from ecms_desktop.views.widgets.theme import STATUS_ORDER, badge_colors


class StatusCountButton(QAbstractButton):
    """A checkable pill "Expired  12" in the status's colours."""

    def __init__(self, status: Status, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.status = status
        self.count: int | None = None
        self.setCheckable(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setObjectName(f"statusCount_{status.value}")
        self.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self._update_text()

    def set_count(self, count: int | None) -> None:
        self.count = count
        self._update_text()
        self.updateGeometry()
        self.update()

    def _update_text(self) -> None:
        shown = "…" if self.count is None else f"{self.count:,}"
        self.setText(f"{self.status.label}  {shown}")
        self.setToolTip(f"Show only {self.status.label.lower()} certificates (click again to show all)")
        self.setAccessibleName(f"{self.status.label}: {shown}")

    def sizeHint(self) -> QSize:
        fm = self.fontMetrics()
        return QSize(fm.horizontalAdvance(self.text()) + 24, fm.height() + 10)

    def paintEvent(self, _event: QPaintEvent) -> None:
        colours = badge_colors(self.status, self.palette())
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = self.rect().adjusted(1, 1, -1, -1)
        radius = rect.height() / 2
        border = QColor(colours.foreground if self.isChecked() else colours.border)
        p.setPen(QPen(border, 2 if self.isChecked() else 1))
        p.setBrush(QColor(colours.background))
        p.drawRoundedRect(rect, radius, radius)
        font = self.font()
        font.setBold(self.isChecked())
        p.setFont(font)
        p.setPen(QColor(colours.foreground))
        p.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.text())
        if self.hasFocus():
            p.setPen(QPen(self.palette().highlight().color(), 1, Qt.PenStyle.DotLine))
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRoundedRect(rect.adjusted(2, 2, -2, -2), radius - 2, radius - 2)
        p.end()


class StatusStrip(QWidget):
    """Counts per status; ``status_clicked`` emits the chosen status, or None when unchosen."""

    status_clicked = Signal(object)  # Status | None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("statusStrip")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 3, 6, 3)
        layout.setSpacing(6)
        self.total_label = QLabel("", self)
        self.total_label.setObjectName("statusTotal")
        layout.addWidget(self.total_label)
        self.group = QButtonGroup(self)
        self.group.setExclusive(False)
        self.buttons: dict[Status, StatusCountButton] = {}
        for status in STATUS_ORDER:
            button = StatusCountButton(status, self)
            self.buttons[status] = button
            self.group.addButton(button)
            layout.addWidget(button)
            button.clicked.connect(lambda checked, s=status: self._on_button_clicked(s, checked))
        layout.addStretch(1)

    def set_counts(self, counts: dict[Status, int] | None) -> None:
        for status, button in self.buttons.items():
            button.set_count(None if counts is None else counts.get(status, 0))
        total = None if counts is None else sum(counts.values())
        self.total_label.setText("" if total is None else f"{total:,} certificates:")

    def set_selected(self, status: Status | None) -> None:
        for s, button in self.buttons.items():
            button.setChecked(s == status)

    def selected(self) -> Status | None:
        return next((s for s, b in self.buttons.items() if b.isChecked()), None)

    def _on_button_clicked(self, status: Status, checked: bool) -> None:
        self.set_selected(status if checked else None)
        self.status_clicked.emit(status if checked else None)
