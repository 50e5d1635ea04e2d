"""Finding what the user cannot read in a window: clipped labels, fields and buttons, widgets outside
their parent's visible area, table columns narrower than their header text.

For each visible QLabel, QLineEdit, QComboBox, QAbstractButton (and their subclasses):
- its width is at least its minimumSizeHint's (a label's text, a button's caption); a line edit or
  combo box is at least ``READABLE_CHARS`` characters wide;
- it lies inside its parent's rectangle; in a scroll area's content (scrolling brings it in), it is
  not cut off at the side by a scroll area that cannot scroll sideways.
For each visible horizontal table header: every visible section is at least as wide as its text.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractScrollArea,
    QComboBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMenu,
    QSizePolicy,
    QToolButton,
    QWidget,
)

#: A line edit or combo box narrower than this many average characters is not readable.
READABLE_CHARS = 10


def _scroll_area_of(widget: QWidget) -> QAbstractScrollArea | None:
    """The scroll area (not a table or list) whose content ``widget`` is in, if any."""
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QAbstractScrollArea) and not isinstance(parent, QAbstractItemView):
            return parent
        parent = parent.parentWidget()
    return None


def _cut_by_scroll_area(widget: QWidget, area: QAbstractScrollArea) -> bool:
    """Whether the scroll area cuts ``widget`` off at its side with no way to scroll to it (scrolling
    down is fine; a form wider than its pane with the sideways scroll bar off is not)."""
    viewport = area.viewport()
    if area.horizontalScrollBar().isVisible() or not viewport.isAncestorOf(widget):
        return False
    left = widget.mapTo(viewport, widget.rect().topLeft()).x()
    return left < -1 or left + widget.width() > viewport.width() + 1


def _inside_item_view(widget: QWidget) -> bool:
    """Editors and buttons drawn in cells of a table or list (index widgets) follow the cells."""
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QAbstractItemView):
            return True
        parent = parent.parentWidget()
    return False


def _name(widget: QWidget) -> str:
    text = ""
    if isinstance(widget, QLabel | QAbstractButton):
        text = widget.text()
    elif isinstance(widget, QComboBox):
        text = widget.currentText()
    owner = widget.parentWidget()
    where = f" in {type(owner).__name__} {owner.objectName()!r}" if owner is not None else ""
    return f"{type(widget).__name__} {widget.objectName()!r} {text[:40]!r}{where}"


def layout_problems(window: QWidget) -> list[str]:
    """What is clipped or out of sight in ``window`` as it is laid out now."""
    problems: list[str] = []
    widgets = [w for w in window.findChildren(QWidget) if w.isVisibleTo(window) and w.window() is window]
    for w in widgets:
        if isinstance(w, QMenu) or _inside_item_view(w):
            continue
        if isinstance(w, QLabel | QLineEdit | QComboBox | QAbstractButton) and not isinstance(w, QToolButton):
            need = w.minimumSizeHint().width()
            if isinstance(w, QLabel) and (w.wordWrap() or not w.text() or (w.pixmap() is not None
                                          and not w.pixmap().isNull())):
                need = 0  # a wrapping label grows down; an empty one or a picture has nothing to clip
            if (isinstance(w, QLabel) and w.sizePolicy().horizontalPolicy() == QSizePolicy.Policy.Ignored
                    and w.toolTip() == w.text()):
                need = 0  # gives way on purpose (a file name beside the buttons), all of it in its tooltip
            if isinstance(w, QLineEdit | QComboBox):
                need = max(need if isinstance(w, QComboBox) else 0,
                           READABLE_CHARS * w.fontMetrics().averageCharWidth())
            if isinstance(w, QLineEdit) and 0 < w.minimumWidth() == w.maximumWidth():
                # made this narrow on purpose (a page number): its text must fit
                need = w.fontMetrics().horizontalAdvance(w.text() or "0") + 8
            if w.width() + 1 < need:
                problems.append(f"{_name(w)} is {w.width()} px wide, needs {need}")
        area = _scroll_area_of(w)
        if area is not None and isinstance(w, QLabel | QLineEdit | QComboBox | QAbstractButton) \
                and _cut_by_scroll_area(w, area):
            problems.append(f"{_name(w)} is cut off at the side of {type(area).__name__} {area.objectName()!r} "
                            f"({area.viewport().width()} px wide)")
        parent = w.parentWidget()
        if parent is not None and area is None and not isinstance(w, QHeaderView):
            inside = QRect(0, 0, parent.width(), parent.height())
            if not inside.adjusted(-1, -1, 1, 1).contains(w.geometry()) and w.width() > 0:
                problems.append(f"{_name(w)} at {w.geometry().getRect()} lies outside its parent "
                                f"({parent.width()}x{parent.height()})")
        if isinstance(w, QHeaderView) and w.orientation() == Qt.Orientation.Horizontal:
            model = w.model()
            if model is None:
                continue
            metrics = w.fontMetrics()
            for section in range(w.count()):
                if w.isSectionHidden(section) or w.sectionSize(section) == 0:
                    continue
                text = str(model.headerData(section, Qt.Orientation.Horizontal) or "")
                need = metrics.horizontalAdvance(text) + 6
                if text and w.sectionSize(section) < need:
                    table = w.parentWidget()
                    problems.append(f"column {text!r} of {type(table).__name__} "
                                    f"{table.objectName() if table else ''!r} is {w.sectionSize(section)} px, "
                                    f"its header needs {need}")
    return problems
