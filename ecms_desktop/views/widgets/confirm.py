"""A yes/cancel question that does not block the event loop (tests and the progress dialogs keep
running while it is open)."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


def ask(parent: QWidget, title: str, text: str, yes_text: str, on_yes: Callable[[], None], *,
        informative: str = "", name: str = "") -> QMessageBox:
    """Show the question window-modally; ``on_yes`` runs when the user presses ``yes_text``. Cancel is
    the default button, so Enter does not do the destructive thing."""
    box = QMessageBox(QMessageBox.Icon.Question, title, text, QMessageBox.StandardButton.Cancel, parent)
    if name:
        box.setObjectName(name)
    if informative:
        box.setInformativeText(informative)
    yes = box.addButton(yes_text, QMessageBox.ButtonRole.AcceptRole)
    yes.setObjectName("confirmYes")
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)

    def clicked(button: object) -> None:
        if button is yes:
            on_yes()

    box.buttonClicked.connect(clicked)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box
