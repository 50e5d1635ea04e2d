"""The application's icon (resources/icons: the SVG drawing and its PNG sizes, made by installer/make_icons.py)."""

from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtGui import QIcon

from ecms_desktop.paths import resource_path

#: The PNG sizes drawn from the SVG (the .desktop file's hicolor icons use the same files).
ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)


def application_icon() -> QIcon:
    """The icon of every window (title bar, task bar, Alt+Tab), from the PNGs: no SVG support needed."""
    icon = QIcon()
    for size in ICON_SIZES:
        icon.addFile(str(resource_path("icons", f"ecms-desktop-{size}.png")), QSize(size, size))
    return icon
