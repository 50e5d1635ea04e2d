"""Settings > E-mail: the company's outgoing mail server (server, port, security, user, sender), how
to log in - a password kept in the operating system's keyring (never in the database or a file), or a
sign-in at Microsoft 365 or Google (OAuth; :mod:`.widgets.mail_sign_in`) - the reply-to address, and
"Send test message" with the values on screen, off the GUI thread."""

from __future__ import annotations

import html
from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
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
from ecms_desktop.services.renewals.mail_oauth import PROVIDERS
from ecms_desktop.views.operations import outbox
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.widgets.mail_sign_in import MailSignInWidget, grow_to_fit

#: Security choices as shown, and the port each usually goes with.
_SECURITY = (("STARTTLS (usually port 587)", "starttls", 587), ("SSL/TLS (usually port 465)", "ssl", 465),
             ("None (usually port 25; only inside a trusted network)", "none", 25))
#: Login choices as shown: ``method`` or ``oauth:provider``.
_LOGIN = (("Password", "password"), ("Microsoft 365 (sign in)", "oauth:microsoft"),
          ("Google / Gmail (sign in)", "oauth:google"))


def login_key(method: str, provider: str) -> str:
    """The login choice of a method and provider (the combo box's data)."""
    return f"{method}:{provider}" if method == "oauth" else method


@dataclass(frozen=True)
class SmtpChange:
    """The mail server as typed, to save on OK (``password`` and ``client_secret`` None: keep what the
    keyring has)."""

    settings: SmtpSettings
    password: str | None
    client_secret: str | None = None

    def save(self, email: EmailService, company_id: int) -> None:
        """Store the settings (audited); the password and the client secret go to the keyring only."""
        t = self.settings
        email.set_profile(company_id, host=t.host, port=t.port, security=t.security, from_address=t.from_address,
                          username=t.username, password=self.password, auth_method=t.auth_method,
                          oauth_provider=t.oauth_provider, oauth_client_id=t.oauth_client_id,
                          oauth_tenant=t.oauth_tenant, oauth_idp_url=t.oauth_idp_url,
                          client_secret=self.client_secret)


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
        self.login = QComboBox(self)
        self.login.setObjectName("smtpLogin")
        for label, value in _LOGIN:
            self.login.addItem(label, value)
        self.oauth = MailSignInWidget(email, runner, company_id, self.typed_settings, self)
        self.oauth.setObjectName("mailSignIn")
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
        form.addRow("Login:", self.login)
        form.addRow("User:", self.username)
        form.addRow("Password:", self.password)
        form.addRow("", self.keyring_note)
        form.addRow(self.oauth)
        form.addRow("Sender:", self.from_address)
        form.addRow("Reply-to:", self.reply_to)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_to, 1)
        test_row.addWidget(self.test_button)
        form.addRow("Test:", test_row)
        form.addRow("", self.test_result)
        self.form = form

        if self.stored is not None:
            self.host.setText(self.stored.host)
            self.port.setValue(self.stored.port)
            self.security.setCurrentIndex(max(0, self.security.findData(self.stored.security)))
            self.username.setText(self.stored.username)
            self.from_address.setText(self.stored.from_address)
            self.login.setCurrentIndex(max(0, self.login.findData(login_key(self.stored.auth_method,
                                                                            self.stored.oauth_provider))))
            self.oauth.show_stored(self.stored)
        self._show_login()
        self.security.currentIndexChanged.connect(self._on_security_changed)
        self.login.currentIndexChanged.connect(self._on_login_changed)
        for edit in (self.username, self.host, self.oauth.client_id, self.oauth.tenant, self.oauth.idp_url):
            edit.editingFinished.connect(self._show_login)
        self.test_button.clicked.connect(self._on_test_clicked)
        self.setEnabled(company_id is not None)
        if company_id is None:
            self.test_result.setText("Add a company first (Companies tab).")

    # -- what is on screen

    def typed_settings(self) -> SmtpSettings:
        method, _, provider = str(self.login.currentData()).partition(":")
        oauth = method == "oauth"
        return SmtpSettings(self.company_id or 0, self.host.text().strip(), self.port.value(),
                            str(self.security.currentData()), self.username.text().strip(),
                            self.from_address.text().strip(), method, provider,
                            self.oauth.client_id.text().strip() if oauth else "",
                            self.oauth.tenant.text().strip() if provider == "microsoft" else "",
                            self.oauth.idp_url.text().strip() if oauth else "")

    def pending_change(self) -> SmtpChange | None:
        """What OK saves: None when nothing was typed or changed."""
        if self.company_id is None:
            return None
        typed = self.typed_settings()
        oauth = typed.auth_method == "oauth"
        password = None if oauth else self.password.text() or None
        secret = self.oauth.typed_secret() if typed.oauth_provider == "google" else None
        if self.stored is None and not (typed.host or typed.username or typed.from_address or password):
            return None
        if typed == self.stored and password is None and secret is None:
            return None
        return SmtpChange(typed, password, secret)

    def _show_login(self) -> None:
        method, _, provider = str(self.login.currentData()).partition(":")
        oauth = method == "oauth"
        for widget in (self.password, self.keyring_note):
            self.form.setRowVisible(widget, not oauth)
        self.form.setRowVisible(self.oauth, oauth)
        self.username.setPlaceholderText("the mailbox that signs in, e.g. tax@yourcompany.com" if oauth else
                                         "Leave empty when the server needs no login")
        if oauth:
            self.oauth.set_provider(provider)
        else:
            self._show_keyring_state()
        self._fit_window()
        QTimer.singleShot(0, self, self._fit_window)  # again once Qt has laid out the rows shown

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        QTimer.singleShot(0, self, self._fit_window)  # once the window has its size

    def _fit_window(self) -> None:
        grow_to_fit(self)

    def _on_login_changed(self, _index: int) -> None:
        provider = PROVIDERS.get(str(self.login.currentData()).partition(":")[2])
        others = {p.smtp_host for p in PROVIDERS.values()}
        if provider is not None and (not self.host.text().strip() or self.host.text().strip() in others):
            self.host.setText(provider.smtp_host)  # the provider's server, unless another one was typed
            self.security.setCurrentIndex(self.security.findData(provider.smtp_security))
            self.port.setValue(provider.smtp_port)
        self._show_login()

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
