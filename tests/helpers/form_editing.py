"""Editing a field of the certificate form the way a user does (focus, keys), for the tests of the
form and of the review queue that hosts it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt

#: Each kind of field edit_field can change.
EDITOR_KINDS = ("line", "date", "combo", "check", "text", "states", "override")


def edit_field(qtbot: Any, form: Any, kind: str) -> Any:
    """Change one field of the kind given the way a user does, leaving the focus in it."""
    if kind == "states":
        editor = form.states_edit
    elif kind == "override":
        editor = form.override_edit
    else:
        editor = form.builder.editor({"line": "purchaser_name", "date": "signed_date", "combo": "certificate_type",
                                      "check": "signature", "text": "purchaser_address"}[kind])
    editor.setFocus(Qt.FocusReason.OtherFocusReason)
    qtbot.waitUntil(editor.hasFocus, timeout=3000)
    if kind == "check":
        qtbot.keyClick(editor, Qt.Key.Key_Space)
    elif kind == "combo":
        qtbot.keyClick(editor, Qt.Key.Key_Down if editor.currentIndex() == 0 else Qt.Key.Key_Up)
    elif kind == "text":
        qtbot.keyClicks(editor, " Suite 9")
    else:
        editor.selectAll()
        qtbot.keyClicks(editor, {"line": "Someone Else Entirely LLC", "date": "2026-04-30", "states": "TX, OK",
                                 "override": "2027-01-31"}[kind])
    return editor
