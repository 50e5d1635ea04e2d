"""E-mail sign-in: signing the company's mailbox in at Microsoft 365 or Google (through the browser or
with a code) and out again, off the GUI thread."""

from __future__ import annotations

from collections.abc import Callable

from ecms_desktop.services.renewals.email_service import SmtpSettings
from ecms_desktop.services.renewals.mail_oauth import DeviceCode
from ecms_desktop.services.renewals.mail_sign_in import MailSignIn, SignedIn
from ecms_desktop.services.renewals.mail_tokens import TokenState
from ecms_desktop.views.operations import Operation


def sign_in_with_browser(sign_in: MailSignIn, company_id: int, settings: SmtpSettings, client_secret: str | None,
                         open_browser: Callable[[str], object]) -> Operation[SignedIn]:
    """Sign in…: the provider's page in the system browser; waits (with Cancel) for the user."""
    return Operation(lambda _p, cancel: sign_in.sign_in_with_browser(
        company_id, open_browser, cancel=cancel, settings=settings, client_secret=client_secret),
        show_progress=False)


def sign_in_with_code(sign_in: MailSignIn, company_id: int, settings: SmtpSettings, client_secret: str | None,
                      show: Callable[[DeviceCode], object]) -> Operation[SignedIn]:
    """Sign in with a code…: a web address and a code to enter there on any device."""
    return Operation(lambda _p, cancel: sign_in.sign_in_with_device_code(
        company_id, show, cancel=cancel, settings=settings, client_secret=client_secret), show_progress=False)


def sign_out(sign_in: MailSignIn, company_id: int, settings: SmtpSettings) -> Operation[TokenState]:
    """Sign out: forget the mailbox's tokens on this computer."""
    return Operation(lambda _p, _c: sign_in.sign_out(company_id, settings=settings), title="Signing out")
