"""The OAuth part of Settings > E-mail: the customer's app registration (client id, Microsoft tenant,
Google's client secret, an identity-provider URL for sovereign clouds), "Sign in…", "Sign in with a
code…", "Sign out", and the state line ("Signed in as X, token refreshed automatically")."""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

from ecms_desktop.services.core.errors import Cancelled
from ecms_desktop.services.renewals.email_service import EmailService, SmtpSettings
from ecms_desktop.services.renewals.mail_oauth import DEFAULT_TENANT, PROVIDERS
from ecms_desktop.services.renewals.mail_sign_in import MailSignIn, SignedIn
from ecms_desktop.services.renewals.mail_tokens import TokenState
from ecms_desktop.views.operations import mail_sign_in
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.sign_in_dialog import SignInDialog

HELP = ("The client id is <b>your own app registration</b> at the provider (ECMS ships none): see "
        "'E-mail with Microsoft 365 and Gmail' in the README.")
#: The longer help, as the client id's tooltip.
HELP_DETAILS = ("Microsoft: Entra admin center > App registrations > New registration; platform 'Mobile and desktop "
                "applications' with the redirect URI http://127.0.0.1 (any port is allowed); API permission "
                "SMTP.Send (Office 365 Exchange Online); 'Allow public client flows' on for the sign-in with a code. "
                "No client secret.\nGoogle: Cloud console > APIs & Services > Credentials > OAuth client ID of type "
                "'Desktop app'. Its client secret is not secret (Google says so); paste it here, it is kept in the "
                "keyring.")


def grow_to_fit(widget: QWidget) -> None:
    """Grow ``widget``'s window by what its word-wrapped labels lack at their present width (a tab page does
    not pass the height its wrapped lines need up to the window); never shrink what the user sized."""
    window = widget.window()
    if window is widget or not window.isVisible():
        return
    # Rows just shown or hidden change the window's minimum only when its layout runs again, which Qt leaves
    # to the next event-loop pass: without this a real window kept its old height and squeezed the rows.
    for layout in (widget.layout(), window.layout()):
        if layout is not None:
            layout.activate()
    labels = [label for label in widget.findChildren(QLabel) if label.wordWrap() and label.isVisible()]
    missing = sum(max(0, label.heightForWidth(label.width()) - label.height()) for label in labels)
    hint = window.minimumSizeHint()
    width = max(window.width(), hint.width())
    # The height the rows need at this width, wrapped lines included (the minimum size hint leaves them out).
    needed = window.heightForWidth(width) if window.hasHeightForWidth() else -1
    height = max(window.height() + missing, hint.height(), needed)
    if (width, height) != (window.width(), window.height()):
        window.resize(width, height)


class MailSignInWidget(QWidget):
    """The sign-in settings and buttons; ``typed`` gives the settings on screen (the sign-in uses them
    even before OK saves them)."""

    signed_in = Signal(object)
    signed_out = Signal(object)
    sign_in_failed = Signal(object)

    def __init__(self, email: EmailService, runner: TaskRunner, company_id: int | None,
                 typed: Callable[[], SmtpSettings], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.email, self.runner, self.company_id, self.typed = email, runner, company_id, typed
        self.sign_in = MailSignIn(email)
        self.dialog: SignInDialog | None = None
        #: Opens the provider's page (the system browser; a test replaces it).
        self.open_url: Callable[[str], object] | None = None
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self.help = QLabel(HELP, self)
        self.help.setObjectName("oauthHelp")
        self.help.setWordWrap(True)
        self.help.setEnabled(False)
        self.client_id = QLineEdit(self)
        self.client_id.setObjectName("oauthClientId")
        self.client_id.setPlaceholderText("application (client) id of your app registration")
        self.client_id.setToolTip(HELP_DETAILS)
        self.tenant = QLineEdit(self)
        self.tenant.setObjectName("oauthTenant")
        self.tenant.setPlaceholderText(f"{DEFAULT_TENANT} (any work or school account), or your tenant id")
        self.client_secret = QLineEdit(self)
        self.client_secret.setObjectName("oauthClientSecret")
        self.client_secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.client_secret.setPlaceholderText("Google desktop apps only; kept in the keyring")
        self.idp_url = QLineEdit(self)
        self.idp_url.setObjectName("oauthIdpUrl")
        self.idp_url.setPlaceholderText("the provider's own (e.g. https://login.microsoftonline.us for US Government)")
        self.state = QLabel(self)
        self.state.setObjectName("signInState")
        self.state.setWordWrap(True)
        self.state.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.sign_in_button = QPushButton("Sign in…", self)
        self.sign_in_button.setObjectName("signIn")
        self.code_button = QPushButton("Sign in with a code…", self)
        self.code_button.setObjectName("signInWithCode")
        self.sign_out_button = QPushButton("Sign out", self)
        self.sign_out_button.setObjectName("signOut")
        form.addRow(self.help)
        form.addRow("Client id:", self.client_id)
        form.addRow("Tenant:", self.tenant)
        form.addRow("Client secret:", self.client_secret)
        form.addRow("Identity provider:", self.idp_url)
        row = QHBoxLayout()
        row.addWidget(self.sign_in_button)
        row.addWidget(self.code_button)
        row.addWidget(self.sign_out_button)
        row.addStretch(1)
        form.addRow("Sign-in:", row)
        form.addRow("", self.state)
        self.form = form
        self.sign_in_button.clicked.connect(lambda: self._start(with_code=False))
        self.code_button.clicked.connect(lambda: self._start(with_code=True))
        self.sign_out_button.clicked.connect(self._on_sign_out_clicked)

    def show_stored(self, settings: SmtpSettings) -> None:
        self.client_id.setText(settings.oauth_client_id)
        self.tenant.setText(settings.oauth_tenant)
        self.idp_url.setText(settings.oauth_idp_url)

    def set_provider(self, key: str) -> None:
        """Show what this provider needs (a tenant for Microsoft, the client secret for Google)."""
        preset = PROVIDERS.get(key)
        self.form.setRowVisible(self.tenant, bool(preset and preset.uses_tenant))
        self.form.setRowVisible(self.client_secret, key == "google")
        self.code_button.setEnabled(bool(preset and not preset.no_device_code))
        self.code_button.setToolTip(preset.no_device_code if preset and preset.no_device_code else
                                    "Show a web address and a code to enter there, on this or another device")
        self.show_state()

    def typed_secret(self) -> str | None:
        return self.client_secret.text().strip() or None

    def show_state(self) -> None:
        """The sign-in state of the mailbox on screen, on this computer."""
        typed = self.typed()
        if self.company_id is None or typed.auth_method != "oauth":
            self.state.setText("")
            return
        if not typed.username:
            self._say("Type the mailbox that signs in (User) first.")
        elif not typed.oauth_client_id:
            self._say("Type the client id of your app registration first.")
        else:
            self._show(self.email.tokens.state(typed))

    def _show(self, state: TokenState) -> None:
        self.sign_out_button.setEnabled(state.signed_in)
        self._say(state.describe(), "#2E7D32" if state.signed_in else "#8A6D00")

    def _say(self, text: str, colour: str = "#8A6D00") -> None:
        self.state.setText(f"<span style='color:{colour}'>{html.escape(text)}</span>")
        QTimer.singleShot(0, self, lambda: grow_to_fit(self))

    # -- sign in and out

    def _start(self, *, with_code: bool) -> None:
        if self.company_id is None:
            return
        extra = {} if self.open_url is None else {"open_url": self.open_url}
        self.dialog = SignInDialog(self.runner, self.sign_in, self.company_id, self.typed(), self.typed_secret(),
                                   with_code=with_code, parent=self, **extra)
        self.dialog.signed_in.connect(self._on_signed_in)
        self.dialog.sign_in_failed.connect(self._on_sign_in_failed)
        self.dialog.start()

    def _on_signed_in(self, result: SignedIn) -> None:
        self._say(result.describe(), "#2E7D32" if result.kept_in_keyring else "#8A6D00")
        self.sign_out_button.setEnabled(True)
        self.signed_in.emit(result)

    def _on_sign_in_failed(self, error: BaseException) -> None:
        self._say("Sign-in cancelled; nothing was stored." if isinstance(error, Cancelled) else str(error),
                  "#8A6D00" if isinstance(error, Cancelled) else "#A00000")
        self.sign_in_failed.emit(error)

    def _on_sign_out_clicked(self) -> None:
        if self.company_id is None:
            return
        mail_sign_in.sign_out(self.sign_in, self.company_id, self.typed()).success(self._on_signed_out) \
            .failure(self._on_sign_in_failed).run(self.runner, parent=self)

    def _on_signed_out(self, state: TokenState) -> None:
        self._show(state)
        self.signed_out.emit(state)
