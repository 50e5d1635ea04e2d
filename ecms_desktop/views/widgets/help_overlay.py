"""The shortcuts overlay (Help > Keyboard shortcuts, F1): every keyboard shortcut of the window's actions,
grouped by menu, drawn over the window; any key or click closes it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from PySide6.QtCore import QEvent, QObject, QRect, Qt
from PySide6.QtGui import (
    QAction,
    QColor,
    QFont,
    QFontMetrics,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
)
from PySide6.QtWidgets import QMenu, QWidget

Shortcut = tuple[str, str]  # (what it does, key text)
Section = tuple[str, Sequence[Shortcut]]


def shortcuts_of_menus(menus: Iterable[QMenu]) -> list[Section]:
    """(menu title, [(action text, shortcut)]) for every action with a shortcut, as shown in the menus."""
    sections: list[Section] = []
    for menu in menus:
        items: list[Shortcut] = []
        for action in menu.actions():
            items.extend(_action_shortcuts(action))
        if items:
            sections.append((menu.title().replace("&", ""), items))
    return sections


def _action_shortcuts(action: QAction) -> list[Shortcut]:
    submenu = action.menu()
    if isinstance(submenu, QMenu):
        out: list[Shortcut] = []
        for sub in submenu.actions():
            out.extend(_action_shortcuts(sub))
        return out
    keys = [k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts() if not k.isEmpty()]
    if not keys or action.isSeparator():
        return []
    return [(action.text().replace("&", "").rstrip(".…"), " / ".join(keys))]


class HelpOverlay(QWidget):
    """A translucent panel over ``parent`` listing shortcuts in columns."""

    def __init__(self, parent: QWidget, sections: Sequence[Section], *, title: str = "Keyboard shortcuts") -> None:
        super().__init__(parent)
        self.setObjectName("helpOverlay")
        self.sections = list(sections)
        self.title = title
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.hide()
        parent.installEventFilter(self)

    def open(self) -> None:
        self._cover_parent()
        self.raise_()
        self.show()
        self.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.parentWidget() and event.type() == QEvent.Type.Resize and self.isVisible():
            self._cover_parent()
        return False

    def _cover_parent(self) -> None:
        parent = self.parentWidget()
        if parent is not None:
            self.setGeometry(parent.rect())

    def keyPressEvent(self, event: QKeyEvent) -> None:
        self.hide()
        event.accept()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.hide()
        event.accept()

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.fillRect(self.rect(), QColor(0, 0, 0, 150))
        pal = self.palette()
        base_font = QFont(self.font())
        title_font = QFont(base_font)
        title_font.setPointSizeF(base_font.pointSizeF() * 1.5)
        title_font.setBold(True)
        head_font = QFont(base_font)
        head_font.setBold(True)
        fm = QFontMetrics(base_font)
        line_h = fm.height() + 6
        col_w = 330
        key_w = 120
        columns = max(1, min(3, (self.width() - 80) // col_w))
        # distribute sections over columns, keeping each section whole
        heights = [(len(items) + 2) * line_h for _, items in self.sections]
        per_col = max(sum(heights) / columns, max(heights, default=0))
        placed: list[list[int]] = [[] for _ in range(columns)]
        col, used = 0, 0.0
        for i, h in enumerate(heights):
            if used + h > per_col + line_h and col < columns - 1 and placed[col]:
                col, used = col + 1, 0.0
            placed[col].append(i)
            used += h
        content_h = max((sum(heights[i] for i in c) for c in placed), default=0)
        panel_w = columns * col_w + 48
        panel_h = content_h + 3 * line_h + 40
        panel = QRect((self.width() - panel_w) // 2, max(10, (self.height() - panel_h) // 2), panel_w, panel_h)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(pal.window())
        p.drawRoundedRect(panel, 12, 12)
        p.setFont(title_font)
        p.setPen(pal.windowText().color())
        p.drawText(panel.adjusted(24, 16, -24, 0), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop, self.title)
        hint = "Press any key or click to close"
        p.setFont(base_font)
        p.setPen(pal.placeholderText().color())
        p.drawText(panel.adjusted(24, 20, -24, 0), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, hint)
        top = panel.top() + 16 + QFontMetrics(title_font).height() + 16
        for c, indexes in enumerate(placed):
            x = panel.left() + 24 + c * col_w
            y = top
            for i in indexes:
                name, items = self.sections[i]
                p.setFont(head_font)
                p.setPen(pal.windowText().color())
                p.drawText(QRect(x, y, col_w - 16, line_h), Qt.AlignmentFlag.AlignVCenter, name)
                y += line_h
                p.setFont(base_font)
                for text, keys in items:
                    key_rect = QRect(x, y + 2, min(key_w, fm.horizontalAdvance(keys) + 14), line_h - 4)
                    p.setPen(pal.mid().color())
                    p.setBrush(pal.base())
                    p.drawRoundedRect(key_rect, 4, 4)
                    p.setPen(pal.text().color())
                    p.drawText(key_rect, Qt.AlignmentFlag.AlignCenter, keys)
                    p.setPen(pal.windowText().color())
                    text_rect = QRect(x + key_w + 10, y, col_w - key_w - 26, line_h)
                    p.drawText(text_rect, Qt.AlignmentFlag.AlignVCenter,
                               fm.elidedText(text, Qt.TextElideMode.ElideRight, text_rect.width()))
                    y += line_h
                y += line_h
        p.end()
