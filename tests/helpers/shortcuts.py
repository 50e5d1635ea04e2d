"""Finding keyboard shortcuts that Qt would find ambiguous (and then ignore) in a window.

A key clashes when two owners in the same window answer to it where the user can be: two window-wide
actions, or a window-wide action and a shortcut of a widget inside the window, or two shortcuts of
widgets one inside the other. Disabled actions count (they are enabled again when the selection
changes); a QShortcut switched off on purpose (``setEnabled(False)``, e.g. the viewer's keys inside
the review queue, where the window's actions carry them) does not.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QMenu, QWidget

_WINDOW_WIDE = (Qt.ShortcutContext.WindowShortcut, Qt.ShortcutContext.ApplicationShortcut)


@dataclass(frozen=True)
class KeyOwner:
    """One key of one action or shortcut, and where it is heard."""

    key: str  # portable text, e.g. "Ctrl+Shift+R"
    owner: str  # e.g. "action 'actReject' (&Reject…)"
    #: The widget the key is heard in (with its children); None: the whole window.
    scope: QWidget | None

    def overlaps(self, other: KeyOwner) -> bool:
        if self.scope is None or other.scope is None:
            return True
        return self.scope is other.scope or self.scope.isAncestorOf(other.scope) or other.scope.isAncestorOf(
            self.scope)


def _window_of(widget: QWidget) -> QWidget:
    """The window a widget's keys are heard in: a menu of the menu bar belongs to the bar's window."""
    while isinstance(widget, QMenu) and widget.parentWidget() is not None:
        widget = widget.parentWidget()
    return widget.window()


def _describe(action: QAction) -> str:
    name = action.objectName()
    text = action.text().replace("&", "")
    return f"action {name!r} ({text})" if name else f"action {text!r}"


def key_owners(window: QWidget) -> list[KeyOwner]:
    """Every key of every action and shortcut heard in ``window`` (its dialogs are windows of their own)."""
    window = window.window()
    owners: list[KeyOwner] = []
    actions: dict[int, QAction] = {}
    for widget in [window, *window.findChildren(QWidget)]:
        for action in widget.actions():
            actions[id(action)] = action
    for action in window.findChildren(QAction):
        actions[id(action)] = action
    for action in actions.values():
        keys = [k for k in action.shortcuts() if not k.isEmpty()]
        if not keys or action.isSeparator():
            continue
        heard_in = [w for w in action.associatedObjects() if isinstance(w, QWidget) and _window_of(w) is window]
        if not heard_in:
            continue
        window_wide = action.shortcutContext() in _WINDOW_WIDE
        scopes: list[QWidget | None] = [None] if window_wide else [w for w in heard_in if not isinstance(w, QMenu)]
        for key in keys:
            for scope in scopes:
                owners.append(KeyOwner(key.toString(QKeySequence.SequenceFormat.PortableText), _describe(action),
                                       scope))
    for shortcut in window.findChildren(QShortcut):
        parent = shortcut.parent()
        if not shortcut.isEnabled() or not isinstance(parent, QWidget) or parent.window() is not window:
            continue
        scope = None if shortcut.context() in _WINDOW_WIDE else parent
        for key in shortcut.keys():  # noqa: SIM118 - QShortcut.keys(), not a dict
            if not key.isEmpty():
                owners.append(KeyOwner(key.toString(QKeySequence.SequenceFormat.PortableText),
                                       f"shortcut of {type(parent).__name__} {parent.objectName()!r}", scope))
    return owners


def ambiguous_shortcuts(window: QWidget) -> dict[str, list[str]]:
    """Key sequences that more than one action or shortcut of ``window`` answers to in the same place,
    with the owners that clash."""
    by_key: dict[str, list[KeyOwner]] = defaultdict(list)
    for owner in key_owners(window):
        by_key[owner.key].append(owner)
    clashes: dict[str, list[str]] = {}
    for key, owners in by_key.items():
        names: list[str] = []
        for i, a in enumerate(owners):
            for b in owners[i + 1:]:
                if a.owner != b.owner and a.overlaps(b):
                    names.extend(n for n in (a.owner, b.owner) if n not in names)
        if names:
            clashes[key] = names
    return clashes
