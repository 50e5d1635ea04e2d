"""Settings > E-mail: the company's outgoing mail server (server, port, security, user, sender), the
password kept in the operating system's keyring (never in the database or a file), the reply-to
address, and "Send test message" with the values on screen, off the GUI thread."""

from __future__ import annotations

import html
from dataclasses import dataclass

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QWidget,
)

from ecms_desktop.services.renewals import smtp_passwords
from ecms_desktop.services.renewals.email_service import EmailService, SmtpSettings
from ecms_desktop.views.operations import outbox
from ecms_desktop.views.operations.task_runner import TaskRunner

#: Security choices as shown, and the port each usually goes with.
_SECURITY = (("STARTTLS (usually port 587)", "starttls", 587), ("SSL/TLS (usually port 465)", "ssl", 465),
             ("None (usually port 25; only inside a trusted network)", "none", 25))


@dataclass(frozen=True)
class SmtpChange:
    """The mail server as typed, to save on OK (``password`` None: keep what the keyring has)."""

    host: str
    port: int
    security: str
    username: str
    from_address: str
    password: str | None

    def save(self, email: EmailService, company_id: int) -> None:
        """Store the settings (audited); the password goes to the keyring only."""
        email.set_profile(company_id, host=self.host, port=self.port, security=self.security,
                          from_address=self.from_address, username=self.username, password=self.password)


class EmailSettingsWidget(QWidget):
    """The E-mail tab of Settings for one company. Nothing is saved here: the dialog's OK saves
    :meth:`pending_change`; the test message uses the values on screen."""

    #: The test message went out (the service's sentence) or failed (the error).
    test_sent = Signal(str)
    test_failed = Signal(object)

    def __init__(self, email: EmailService, runner: TaskRunner, company_id: int | None, *, reply_to: str = "",
                 company_name: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.email, self.runner, self.company_id = email, runner, company_id
        self.stored: SmtpSettings | None = email.get_profile(company_id) if company_id is not None else None
        self.reply_to_stored = reply_to
        form = QFormLayout(self)
        self.host = QLineEdit(self)
        self.host.setObjectName("smtpHost")
        self.host.setPlaceholderText("smtp.yourcompany.com")
        self.port = QSpinBox(self)
        self.port.setObjectName("smtpPort")
        self.port.setRange(1, 65535)
        self.port.setValue(587)
        self.security = QComboBox(self)
        self.security.setObjectName("smtpSecurity")
        for label, value, _port in _SECURITY:
            self.security.addItem(label, value)
        self.username = QLineEdit(self)
        self.username.setObjectName("smtpUser")
        self.username.setPlaceholderText("Leave empty when the server needs no login")
        self.password = QLineEdit(self)
        self.password.setObjectName("smtpPassword")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.from_address = QLineEdit(self)
        self.from_address.setObjectName("smtpSender")
        self.from_address.setPlaceholderText("Acme Tax <tax@yourcompany.com>")
        self.reply_to = QLineEdit(reply_to, self)
        self.reply_to.setObjectName("emailReplyTo")
        self.reply_to.setPlaceholderText("Where customers' replies go (also on the Companies tab)")
        self.keyring_note = QLabel(self)
        self.keyring_note.setObjectName("keyringNote")
        self.keyring_note.setWordWrap(True)
        self.keyring_note.setEnabled(False)
        self.test_to = QLineEdit(self)
        self.test_to.setObjectName("testAddress")
        self.test_to.setPlaceholderText("your own address")
        self.test_button = QPushButton("Send test message", self)
        self.test_button.setObjectName("sendTestMessage")
        self.test_result = QLabel(self)
        self.test_result.setObjectName("testResult")
        self.test_result.setWordWrap(True)
        self.test_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        scope = QLabel(f"How {company_name or 'the company'} sends renewal requests. Shared with everyone using "
                       "this database; changes are recorded in the audit trail.", self)
        scope.setWordWrap(True)
        form.addRow("", scope)
        form.addRow("Server:", self.host)
        form.addRow("Port:", self.port)
        form.addRow("Security:", self.security)
        form.addRow("User:", self.username)
        form.addRow("Password:", self.password)
        form.addRow("", self.keyring_note)
        form.addRow("Sender:", self.from_address)
        form.addRow("Reply-to:", self.reply_to)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_to, 1)
        test_row.addWidget(self.test_button)
        form.addRow("Test:", test_row)
        form.addRow("", self.test_result)

        if self.stored is not None:
            self.host.setText(self.stored.host)
            self.port.setValue(self.stored.port)
            self.security.setCurrentIndex(max(0, self.security.findData(self.stored.security)))
            self.username.setText(self.stored.username)
            self.from_address.setText(self.stored.from_address)
        self._show_keyring_state()
        self.security.currentIndexChanged.connect(self._on_security_changed)
        self.username.editingFinished.connect(self._show_keyring_state)
        self.host.editingFinished.connect(self._show_keyring_state)
        self.test_button.clicked.connect(self._on_test_clicked)
        self.setEnabled(company_id is not None)
        if company_id is None:
            self.test_result.setText("Add a company first (Companies tab).")

    # -- what is on screen

    def typed_settings(self) -> SmtpSettings:
        return SmtpSettings(self.company_id or 0, self.host.text().strip(), self.port.value(),
                            str(self.security.currentData()), self.username.text().strip(),
                            self.from_address.text().strip())

    def pending_change(self) -> SmtpChange | None:
        """What OK saves: None when nothing was typed or changed."""
        if self.company_id is None:
            return None
        typed = self.typed_settings()
        password = self.password.text() or None
        if self.stored is None and not (typed.host or typed.username or typed.from_address or password):
            return None
        if typed == self.stored and password is None:
            return None
        return SmtpChange(typed.host, typed.port, typed.security, typed.username, typed.from_address, password)

    def _show_keyring_state(self) -> None:
        status = smtp_passwords.keyring_status()
        typed = self.typed_settings()
        if not typed.username:
            text = "No user: the server is used without a login."
            self.password.setPlaceholderText("")
        elif not status.available:
            text = (f"The password cannot be kept on this computer ({status.description}); it is asked each time "
                    "mail is sent.")
            self.password.setPlaceholderText("asked when sending")
        elif self.email.stored_password(typed):
            text = "The password is kept in the operating system's keyring; type a new one to replace it."
            self.password.setPlaceholderText("stored in the keyring")
        else:
            text = "A password typed here is kept in the operating system's keyring, never in the database."
            self.password.setPlaceholderText("")
        self.keyring_note.setText(text)

    def _on_security_changed(self, _index: int) -> None:
        usual = {p for _l, _v, p in _SECURITY}
        if self.port.value() in usual:  # follow the choice unless a special port was typed
            self.port.setValue(next(p for _l, v, p in _SECURITY if v == self.security.currentData()))

    # -- test message

    def _on_test_clicked(self) -> None:
        if self.company_id is None:
            return
        self.test_button.setEnabled(False)
        self.test_result.setText("Sending a test message…")
        outbox.send_test_message(self.email, self.typed_settings(), self.test_to.text(),
                                 password=self.password.text() or None) \
            .success(self._on_test_sent).failure(self._on_test_failed).run(self.runner, parent=self)

    def _on_test_sent(self, text: str) -> None:
        self.test_button.setEnabled(True)
        self.test_result.setText(f"<span style='color:#2E7D32'>{html.escape(text)}</span>")
        self.test_sent.emit(text)

    def _on_test_failed(self, error: BaseException) -> None:
        self.test_button.setEnabled(True)
        self.test_result.setText(f"<span style='color:#A00000'>{html.escape(str(error))}</span>")
        self.test_failed.emit(error)
