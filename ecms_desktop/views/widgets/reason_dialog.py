"""Ask why: the reason for rejecting, archiving or bringing back a certificate (kept in the audit trail)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QVBoxLayout, QWidget


class ReasonDialog(QDialog):
    """A small dialog with a prompt and a reason field; OK stays disabled until a reason is typed.

    Use ``open()`` and connect ``accepted`` (then read :meth:`reason`). Ctrl+Enter accepts.
    """

    def __init__(self, title: str, prompt: str, parent: QWidget | None = None, *, ok_text: str = "OK",
                 suggestions: tuple[str, ...] = ()) -> None:
        super().__init__(parent)
        self.setObjectName("reasonDialog")
        self.setWindowTitle(title)
        self.setMinimumWidth(420)
        layout = QVBoxLayout(self)
        label = QLabel(prompt)
        label.setWordWrap(True)
        layout.addWidget(label)
        self.edit = QPlainTextEdit()
        self.edit.setObjectName("reasonEdit")
        self.edit.setTabChangesFocus(True)
        self.edit.setFixedHeight(self.fontMetrics().lineSpacing() * 4 + 12)
        if suggestions:
            self.edit.setPlaceholderText("e.g. " + "; ".join(suggestions))
        layout.addWidget(self.edit)
        hint = QLabel("The reason is kept in the certificate's history. Ctrl+Enter to confirm.")
        hint.setStyleSheet("color: palette(mid);")
        layout.addWidget(hint)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(ok_text)
        self.ok_button.setObjectName("reasonOk")
        self.ok_button.setEnabled(False)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.edit.textChanged.connect(self._on_edit_text_changed)
        self.edit.setFocus()

    def reason(self) -> str:
        return self.edit.toPlainText().strip()

    def _on_edit_text_changed(self) -> None:
        self.ok_button.setEnabled(bool(self.reason()))

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if (event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and event.modifiers() & Qt.KeyboardModifier.ControlModifier):
            if self.reason():
                self.accept()
            return
        super().keyPressEvent(event)

    def accept(self) -> None:
        if self.reason():
            super().accept()
