"""The window shown while the company's mailbox signs in at Microsoft 365 or Google: what to do (the
browser page, or the web address and the code to enter there, with Copy), and Cancel. The sign-in
itself runs off the GUI thread; the worker hands the page or the code over through signals."""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ecms_desktop.services.renewals.email_service import SmtpSettings
from ecms_desktop.services.renewals.mail_oauth import DeviceCode, provider
from ecms_desktop.services.renewals.mail_sign_in import MailSignIn, SignedIn
from ecms_desktop.views.operations import mail_sign_in
from ecms_desktop.views.operations.task_runner import Task, TaskRunner


def _open_in_browser(url: str) -> None:
    QDesktopServices.openUrl(QUrl(url))


class SignInDialog(QDialog):
    """Runs one sign-in; ``signed_in`` or ``sign_in_failed`` says how it ended (Cancelled when the user
    cancelled). ``open_url`` opens the provider's page (the system browser by default)."""

    signed_in = Signal(object)
    sign_in_failed = Signal(object)
    #: From the worker thread: the page to open (browser) or the code to show (device code).
    _page_ready = Signal(str)
    _code_ready = Signal(object)

    def __init__(self, runner: TaskRunner, sign_in: MailSignIn, company_id: int, settings: SmtpSettings,
                 client_secret: str | None, *, with_code: bool, parent: QWidget | None = None,
                 open_url: Callable[[str], object] = _open_in_browser) -> None:
        super().__init__(parent)
        self.runner, self.sign_in, self.company_id = runner, sign_in, company_id
        self.settings, self.client_secret, self.with_code, self.open_url = settings, client_secret, with_code, open_url
        self.task: Task | None = None
        self.copy_text = ""
        name = provider(settings.oauth_provider).name
        self.setWindowTitle(f"Sign in to {name}")
        self.setObjectName("signInDialog")
        layout = QVBoxLayout(self)
        self.instructions = QLabel(self)
        self.instructions.setObjectName("signInInstructions")
        self.instructions.setWordWrap(True)
        self.instructions.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.instructions.setMinimumWidth(460)
        layout.addWidget(self.instructions)
        buttons = QHBoxLayout()
        self.copy_button = QPushButton("Copy code" if with_code else "Copy address", self)
        self.copy_button.setObjectName("signInCopy")
        self.copy_button.setEnabled(False)
        self.open_button = QPushButton("Open the page", self)
        self.open_button.setObjectName("signInOpenPage")
        self.open_button.setVisible(with_code)
        self.open_button.setEnabled(False)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setObjectName("signInCancel")
        buttons.addWidget(self.copy_button)
        buttons.addWidget(self.open_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.page = ""
        self.instructions.setText(f"Asking {html.escape(name)} for a code…" if with_code else
                                  f"Sign in as <b>{html.escape(settings.username)}</b> in the browser window that "
                                  "opens. ECMS waits up to five minutes.")
        self._page_ready.connect(self._on_page_ready)
        self._code_ready.connect(self._on_code_ready)
        self.copy_button.clicked.connect(self._on_copy_clicked)
        self.open_button.clicked.connect(lambda: self.open_url(self.page))
        self.cancel_button.clicked.connect(self._on_cancel_clicked)

    def start(self) -> None:
        """Begin the sign-in in the background and show the dialog."""
        op = (mail_sign_in.sign_in_with_code(self.sign_in, self.company_id, self.settings, self.client_secret,
                                             self._code_ready.emit) if self.with_code else
              mail_sign_in.sign_in_with_browser(self.sign_in, self.company_id, self.settings, self.client_secret,
                                                self._page_ready.emit))
        self.task = op.success(self._on_signed_in).failure(self._on_failed).run(self.runner, parent=self)
        self.destroyed.connect(self.task.cancel)  # closed with its window: stop waiting for the browser
        self.show()

    def reject(self) -> None:  # Escape or the window's close button: cancel, then close when the work stops
        self._on_cancel_clicked()

    # -- from the worker

    def _on_page_ready(self, url: str) -> None:
        self.page = self.copy_text = url
        self.copy_button.setEnabled(True)
        self.open_url(url)
        self.instructions.setText(
            f"Sign in as <b>{html.escape(self.settings.username)}</b> in the browser window that opened. ECMS waits "
            f"up to five minutes.<br><br>If no window opened, open this address in a browser on this computer:"
            f"<br><small>{html.escape(url)}</small>")
        self.adjustSize()

    def _on_code_ready(self, code: DeviceCode) -> None:
        self.page, self.copy_text = code.verification_uri, code.user_code
        self.copy_button.setEnabled(True)
        self.open_button.setEnabled(True)
        self.instructions.setText(
            f"Open <b>{html.escape(code.verification_uri)}</b> in a browser (on any device), enter the code<br>"
            f"<span style='font-size:20pt; font-family:monospace'>{html.escape(code.user_code)}</span><br>and sign "
            f"in as <b>{html.escape(self.settings.username)}</b>. The code is valid for "
            f"{max(1, code.expires_in // 60)} minutes; ECMS notices when you are done.")
        self.adjustSize()

    def _on_signed_in(self, result: SignedIn) -> None:
        self.signed_in.emit(result)
        self.accept()

    def _on_failed(self, error: BaseException) -> None:
        self.sign_in_failed.emit(error)
        super().reject()

    # -- the user

    def _on_copy_clicked(self) -> None:
        QGuiApplication.clipboard().setText(self.copy_text)

    def _on_cancel_clicked(self) -> None:
        if self.task is None or self.task.finished_flag:
            super().reject()
            return
        self.cancel_button.setEnabled(False)
        self.instructions.setText("Cancelling the sign-in…")
        self.task.cancel()

