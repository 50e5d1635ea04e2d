"""The Renewal center's template editor: the company's subject, text and HTML e-mail templates with a
live preview."""

from __future__ import annotations

import html

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.core.errors import EcmsError
from ecms_desktop.services.renewals.service import RenewalService
from ecms_desktop.services.renewals.templates import TEMPLATE_KINDS, TemplateSource, render_template, sample_context
from ecms_desktop.views.widgets.error_presenter import present_error


class TemplateEditorWidget(QWidget):
    """Edit the company's subject, text and HTML templates with a live preview."""

    template_saved = Signal(str)

    def __init__(self, service: RenewalService, company_id: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.service, self.company_id = service, company_id
        self.kind = QComboBox()
        self.kind.addItems(list(TEMPLATE_KINDS))
        self.subject = QLineEdit()
        self.text = QPlainTextEdit()
        self.html = QPlainTextEdit()
        self.preview = QTextBrowser()
        self.preview.setOpenLinks(False)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.save_button = QPushButton("Save template")
        self.reset_button = QPushButton("Use built-in")
        form = QFormLayout()
        form.addRow("E-mail", self.kind)
        form.addRow("Subject", self.subject)
        left = QWidget()
        lay = QVBoxLayout(left)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(form)
        lay.addWidget(QLabel("Plain text"))
        lay.addWidget(self.text, 1)
        lay.addWidget(QLabel("HTML (values are escaped automatically)"))
        lay.addWidget(self.html, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.reset_button)
        buttons.addStretch(1)
        lay.addLayout(buttons)
        split = QSplitter()
        split.addWidget(left)
        split.addWidget(self.preview)
        outer = QVBoxLayout(self)
        outer.addWidget(split, 1)
        outer.addWidget(self.status)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self._render)
        for editor in (self.text, self.html):
            editor.textChanged.connect(self._timer.start)
        self.subject.textChanged.connect(self._timer.start)
        self.kind.currentTextChanged.connect(self._load)
        self.save_button.clicked.connect(self._on_save_clicked)
        self.reset_button.clicked.connect(self._on_reset_clicked)
        self._load(self.kind.currentText())

    def source(self) -> TemplateSource:
        return TemplateSource(self.kind.currentText(), self.subject.text(), self.text.toPlainText(),
                              self.html.toPlainText(), True)

    def _load(self, kind: str) -> None:
        try:
            src = self.service.template(self.company_id, kind)
        except EcmsError as exc:
            present_error(self, exc)
            return
        self.subject.setText(src.subject)
        self.text.setPlainText(src.text)
        self.html.setPlainText(src.html)
        self._render()

    def _render(self) -> None:
        try:
            subject, _text, body = render_template(self.source(), sample_context(self.kind.currentText()))
        except EcmsError as exc:
            self.status.setText(f"<span style='color:#a00'>{html.escape(str(exc))}</span>")
            self.save_button.setEnabled(False)
            return
        self.save_button.setEnabled(True)
        self.status.setText(f"Subject: {html.escape(subject)}")
        self.preview.setHtml(body)

    def _on_save_clicked(self) -> None:
        try:
            self.service.save_template(self.company_id, self.source())
        except EcmsError as exc:
            present_error(self, exc)
            return
        self.status.setText("Saved.")
        self.template_saved.emit(self.kind.currentText())

    def _on_reset_clicked(self) -> None:
        try:
            self.service.reset_template(self.company_id, self.kind.currentText())
        except EcmsError as exc:
            present_error(self, exc)
            return
        self._load(self.kind.currentText())
