"""Paints a certificate's status as a rounded pill with its name (text + colour, not colour alone)."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFontMetrics, QPainter, QPen
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem, QWidget

from ecms_desktop.models import Status
from ecms_desktop.views.widgets.theme import badge_colors

#: Item data role holding the row's :class:`Status` (set by the certificate table model).
STATUS_ROLE = Qt.ItemDataRole.UserRole + 2

_H_PAD = 8
_V_MARGIN = 3


class StatusBadgeDelegate(QStyledItemDelegate):
    """Draws the status column: a pill coloured by status, with the status label inside."""

    def __init__(self, parent: QWidget | None = None, *, dark: bool | None = None) -> None:
        super().__init__(parent)
        self.dark = dark  # None: follow the widget's palette

    @staticmethod
    def status_of(index: QModelIndex | QPersistentModelIndex) -> Status | None:
        value = index.data(STATUS_ROLE)
        if value is None:
            return None
        try:
            return Status(value)
        except ValueError:
            return None

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        status = self.status_of(index)
        if status is None:
            super().paint(painter, option, index)
            return
        # Background and selection as the style draws them, without the text.
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else None
        if style is not None:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        colours = badge_colors(status, option.palette, dark=self.dark)
        label = str(index.data(Qt.ItemDataRole.DisplayRole) or status.label)
        fm = QFontMetrics(option.font)
        rect = QRectF(option.rect).adjusted(4, _V_MARGIN, -4, -_V_MARGIN)
        width = min(rect.width(), fm.horizontalAdvance(label) + 2 * _H_PAD)
        pill = QRectF(rect.left(), rect.top(), width, rect.height())
        radius = pill.height() / 2
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor(colours.border), 1))
        painter.setBrush(QColor(colours.background))
        painter.drawRoundedRect(pill.adjusted(0.5, 0.5, -0.5, -0.5), radius, radius)
        painter.setPen(QColor(colours.foreground))
        painter.setFont(option.font)
        text = fm.elidedText(label, Qt.TextElideMode.ElideRight, int(pill.width() - 2 * _H_PAD) + 1)
        painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, text)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        base = super().sizeHint(option, index)
        status = self.status_of(index)
        if status is None:
            return base
        fm = QFontMetrics(option.font)
        label = str(index.data(Qt.ItemDataRole.DisplayRole) or status.label)
        return QSize(fm.horizontalAdvance(label) + 2 * _H_PAD + 8,
                     max(base.height(), fm.height() + 2 * _V_MARGIN + 4))
