"""Split… an inbox document that holds several certificates: one document per page range."""

from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QLineEdit, QVBoxLayout, QWidget

from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.intake.inbox import InboxItem, parse_page_ranges


class SplitDialog(QDialog):
    """Asks for page ranges such as ``1-2, 3-4``; OK stays disabled while they do not read as ranges (the
    label says why). The service checks them against the document's pages."""

    def __init__(self, item: InboxItem, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("splitDialog")
        self.setWindowTitle(f"Split {item.name}")
        self.setMinimumWidth(420)
        layout = QVBoxLayout(self)
        own = f"pages {item.page_range} of the file" if item.page_range else f"{item.pages} pages"
        prompt = QLabel(f"Document {item.id} has {own}. Give one page range per certificate it holds, e.g. "
                        "1-2, 3-4. The file is kept as it arrived; each range becomes a document of the inbox.", self)
        prompt.setWordWrap(True)
        layout.addWidget(prompt)
        self.edit = QLineEdit(self)
        self.edit.setObjectName("splitRanges")
        self.edit.setPlaceholderText("1-2, 3-4")
        layout.addWidget(self.edit)
        self.problem = QLabel("", self)
        self.problem.setObjectName("splitProblem")
        self.problem.setStyleSheet("color: #b71c1c;")
        self.problem.setWordWrap(True)
        layout.addWidget(self.problem)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Split")
        self.ok_button.setObjectName("splitOk")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.edit.textChanged.connect(self._on_edit_text_changed)
        self._on_edit_text_changed("")

    def ranges(self) -> list[tuple[int, int]]:
        """The ranges typed (ValidationError when they do not read as ranges)."""
        return parse_page_ranges(self.edit.text())

    def _on_edit_text_changed(self, text: str) -> None:
        try:
            self.ranges()
        except ValidationError as exc:
            self.problem.setText(str(exc) if text.strip() else "")
            self.ok_button.setEnabled(False)
            return
        self.problem.setText("")
        self.ok_button.setEnabled(True)


__all__ = ["SplitDialog"]
