"""The review desk's main window (see ``window.py`` for how its parts fit together)."""

from ecms_desktop.views.main_window.desk import ui_settings
from ecms_desktop.views.main_window.window import MainWindow

__all__ = ["MainWindow", "ui_settings"]
