"""Finding keyboard shortcuts that Qt would find ambiguous (and then ignore) in a window."""

from __future__ import annotations

from collections import defaultdict

from PySide6.QtGui import QAction, QShortcut
from PySide6.QtWidgets import QWidget


def ambiguous_shortcuts(window: QWidget) -> dict[str, list[str]]:
    """Key sequences that more than one enabled action or shortcut of ``window`` answers to."""
    owners: dict[str, list[str]] = defaultdict(list)
    for action in window.findChildren(QAction):
        if action.isEnabled():
            for key in action.shortcuts():
                if not key.isEmpty():
                    owners[key.toString()].append(f"action {action.objectName() or action.text()!r}")
    for shortcut in window.findChildren(QShortcut):
        if shortcut.isEnabled() and not shortcut.key().isEmpty():
            owners[shortcut.key().toString()].append(f"shortcut of {type(shortcut.parent()).__name__}")
    return {key: names for key, names in owners.items() if len(names) > 1}
