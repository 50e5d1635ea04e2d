"""A window's first size: as large as it likes where the screen has room, and never larger than the
screen once the window manager has added its title bar and borders (not known before the window is
shown, hence an allowance)."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QWidget

#: Room left for a window manager's title bar and borders (a title bar is 20-40 px high).
FRAME_ALLOWANCE = QSize(16, 48)


def first_size(widget: QWidget, width: int, height: int) -> QSize:
    """``width`` x ``height`` where the widget's screen has room, else the screen's available area less the
    frame allowance (seen under Openbox at 1280 x 800: a window as high as the screen lost its status bar
    below the bottom edge)."""
    room = widget.screen().availableGeometry()
    return QSize(min(width, room.width() - FRAME_ALLOWANCE.width()),
                 min(height, room.height() - FRAME_ALLOWANCE.height()))


__all__ = ["FRAME_ALLOWANCE", "first_size"]
