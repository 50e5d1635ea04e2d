"""The mouse wheel changes a combo box, spin box or date edit only when it has the keyboard focus;
otherwise the wheel scrolls what is around it (the form), as the accountant meant.

One application-wide event filter does it for every such widget the program makes (Qt gives these
widgets the focus on a wheel turn, so the filter also lowers their focus policy to click-and-tab
when they are polished).
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QAbstractScrollArea, QAbstractSpinBox, QApplication, QComboBox, QWidget

_VALUE_WIDGETS = (QComboBox, QAbstractSpinBox)  # QAbstractSpinBox covers spin boxes and date edits


class WheelGuard(QObject):
    """Event filter on the application: see the module's docstring."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Wheel and isinstance(watched, QWidget):
            # The value widget itself, or its inner line edit (a spin box's, an editable combo's).
            target = watched if isinstance(watched, _VALUE_WIDGETS) else watched.parentWidget()
            if isinstance(target, _VALUE_WIDGETS) and not target.hasFocus():
                assert isinstance(event, QWheelEvent)
                _scroll_around(target, event)
                event.accept()  # handled: the value stays as it is
                return True
        elif kind == QEvent.Type.Polish and isinstance(watched, _VALUE_WIDGETS):
            widget: QWidget = watched
            if widget.focusPolicy() == Qt.FocusPolicy.WheelFocus:
                widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        return False


def _scroll_around(widget: QWidget, event: QWheelEvent) -> None:
    """Hand the wheel to the nearest scroll area around ``widget`` (the form scrolls on)."""
    parent = widget.parentWidget()
    while parent is not None and not isinstance(parent, QAbstractScrollArea):
        parent = parent.parentWidget()
    if parent is None:
        return
    viewport = parent.viewport()
    position = QPointF(viewport.mapFromGlobal(event.globalPosition().toPoint()))
    QApplication.sendEvent(viewport, QWheelEvent(position, event.globalPosition(), event.pixelDelta(),
                                                 event.angleDelta(), event.buttons(), event.modifiers(),
                                                 event.phase(), event.inverted(), event.source()))


def install_wheel_guard() -> None:
    """Install the guard on the running application (once; later calls do nothing)."""
    app = QCoreApplication.instance()
    if app is None or app.property("ecmsWheelGuard"):
        return
    guard = WheelGuard(app)
    app.installEventFilter(guard)
    app.setProperty("ecmsWheelGuard", True)


__all__ = ["WheelGuard", "install_wheel_guard"]
