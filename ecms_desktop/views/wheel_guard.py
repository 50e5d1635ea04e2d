"""The mouse wheel changes a combo box, spin box or date edit only when it has the keyboard focus;
otherwise the wheel scrolls what is around it (the form), as the accountant meant.

One application-wide event filter does it for every such widget the program makes (Qt gives these
widgets the focus on a wheel turn, so the filter also lowers their focus policy to click-and-tab
when they are polished).
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QWidget

_VALUE_WIDGETS = (QComboBox, QAbstractSpinBox)  # QAbstractSpinBox covers spin boxes and date edits


class WheelGuard(QObject):
    """Event filter on the application: see the module's docstring."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Wheel:
            if isinstance(watched, _VALUE_WIDGETS) and not watched.hasFocus():
                event.ignore()  # filtered and ignored: Qt passes the wheel on to the parent (the scroll area)
                return True
        elif kind == QEvent.Type.Polish and isinstance(watched, _VALUE_WIDGETS):
            widget: QWidget = watched
            if widget.focusPolicy() == Qt.FocusPolicy.WheelFocus:
                widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        return False


def install_wheel_guard() -> None:
    """Install the guard on the running application (once; later calls do nothing)."""
    app = QCoreApplication.instance()
    if app is None or app.property("ecmsWheelGuard"):
        return
    guard = WheelGuard(app)
    app.installEventFilter(guard)
    app.setProperty("ecmsWheelGuard", True)


__all__ = ["WheelGuard", "install_wheel_guard"]
