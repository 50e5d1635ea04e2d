"""Asking for the SMTP password when the operating system's keyring does not keep it."""

from __future__ import annotations

from PySide6.QtWidgets import QInputDialog, QLineEdit, QWidget

from ecms_desktop.services.core.errors import Cancelled
from ecms_desktop.services.renewals.email_service import EmailService


def ask_smtp_password(parent: QWidget, email: EmailService, company_id: int) -> str | None:
    """The password to send with: None when the server needs none, the keyring has it or the mailbox
    signs in with OAuth; else asked (raises Cancelled when the user declines)."""
    settings = email.get_profile(company_id)
    if settings is None or not settings.username or settings.auth_method == "oauth" or email.stored_password(settings):
        return None
    text, ok = QInputDialog.getText(parent, "SMTP password", f"Password for {settings.username}@{settings.host} "
                                    "(no keyring on this computer, so it is not stored):",
                                    QLineEdit.EchoMode.Password)
    if not ok:
        raise Cancelled()
    return text
