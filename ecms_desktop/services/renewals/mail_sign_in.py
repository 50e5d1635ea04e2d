"""Signing the company's mailbox in at Microsoft 365 or Google so that renewal mail goes out with
``AUTH XOAUTH2``, and signing it out; both are recorded in the audit trail (never a token).

The tokens are kept in this computer's keyring for the person signed in to it (each desk of a team
signs in once); see :mod:`ecms_desktop.services.renewals.mail_tokens`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

from ecms_desktop.services.core import audit, people
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.core.people import Permission
from ecms_desktop.services.core.progress import CancelCheck
from ecms_desktop.services.renewals import mail_oauth, mail_tokens
from ecms_desktop.services.renewals.email_service import EmailService, SmtpSettings, checked_settings
from ecms_desktop.services.renewals.mail_oauth import DeviceCode, TokenGrant
from ecms_desktop.services.renewals.mail_tokens import TokenState


@dataclass(frozen=True)
class SignedIn:
    """The result of a sign-in: the state as shown, and whether the keyring keeps it."""

    state: TokenState
    kept_in_keyring: bool

    def describe(self) -> str:
        if self.kept_in_keyring:
            return self.state.describe() + " The sign-in is kept in the operating system's keyring."
        return (self.state.describe() + f" It cannot be kept: {self.state.keyring.description}, so sign in again "
                "each time the program starts (scheduled `ecms` sending needs a keyring).")


class MailSignIn:
    """Sign-in, sign-out and the sign-in state of a company's mailbox (the OAuth method)."""

    def __init__(self, email: EmailService) -> None:
        self.email = email

    def oauth_settings(self, company_id: int) -> SmtpSettings:
        """The company's mail settings, which must use the OAuth method."""
        settings = self.email.require_profile(company_id)
        if settings.auth_method != "oauth":
            raise ValidationError("The company's mail server is set to log in with a password, so there is nothing "
                                  "to sign in to: choose Microsoft 365 or Google in Settings > E-mail (or `ecms smtp "
                                  "set --auth oauth --provider ... --client-id ...`).")
        return settings

    def state(self, company_id: int) -> TokenState:
        """Whether the mailbox is signed in on this computer, as whom, and until when the access token runs."""
        return self.email.tokens.state(self.oauth_settings(company_id))

    def sign_in_with_browser(self, company_id: int, open_browser: Callable[[str], object], *,
                             cancel: CancelCheck | None = None, timeout: float = 300.0,
                             settings: SmtpSettings | None = None, client_secret: str | None = None) -> SignedIn:
        """Sign in through the system browser (authorization code with PKCE); ``open_browser`` is given
        the provider's sign-in page. Waits at most ``timeout`` seconds; ``cancel`` stops the wait.
        ``settings`` (and ``client_secret``): the values on screen, not saved yet; else the saved ones."""
        settings = self._may_sign_in(company_id, settings)
        grant = mail_oauth.browser_sign_in(self._client(settings, client_secret), open_browser, cancel=cancel,
                                           timeout=timeout, http_timeout=self.email.timeout)
        return self._keep(settings, grant, "browser")

    def sign_in_with_device_code(self, company_id: int, show: Callable[[DeviceCode], object], *,
                                 cancel: CancelCheck | None = None, sleep: Callable[[float], None] = time.sleep,
                                 settings: SmtpSettings | None = None, client_secret: str | None = None) -> SignedIn:
        """Sign in with a code typed at the provider's page on any device; ``show`` is given the page and
        the code; the provider is asked every few seconds whether the user is done."""
        settings = self._may_sign_in(company_id, settings)
        grant = mail_oauth.device_sign_in(self._client(settings, client_secret), show, cancel=cancel, sleep=sleep,
                                          http_timeout=self.email.timeout)
        return self._keep(settings, grant, "device code")

    def sign_out(self, company_id: int, *, settings: SmtpSettings | None = None) -> TokenState:
        """Forget the mailbox's tokens on this computer (audited). To revoke them at the provider as
        well, remove the app's access in the account's security page. ``settings``: the values on
        screen; else the saved ones."""
        settings = self._settings(company_id, settings)
        was = self.email.tokens.state(settings)
        with self.email.db.transaction() as s:
            people.require(s, Permission.EDIT, "sign the mailbox out")
            self.email.tokens.forget(settings)
            audit.record(s, "smtp.signed_out", "smtp_profile", company_id, company_id=company_id,
                         details={"provider": settings.oauth_provider, "username": settings.username,
                                  "was_signed_in": was.signed_in})
        return self.email.tokens.state(settings)

    def _settings(self, company_id: int, typed: SmtpSettings | None) -> SmtpSettings:
        if typed is None:
            return self.oauth_settings(company_id)
        settings = checked_settings(
            company_id, host=typed.host, port=typed.port, security=typed.security, from_address=typed.from_address,
            username=typed.username, doing="used to sign in", auth_method=typed.auth_method,
            oauth_provider=typed.oauth_provider, oauth_client_id=typed.oauth_client_id,
            oauth_tenant=typed.oauth_tenant, oauth_idp_url=typed.oauth_idp_url)
        if settings.auth_method != "oauth":
            raise ValidationError("Choose Microsoft 365 or Google as the login in Settings > E-mail first.")
        return settings

    def _may_sign_in(self, company_id: int, typed: SmtpSettings | None) -> SmtpSettings:
        settings = self._settings(company_id, typed)
        with self.email.db.reader() as s:
            people.require(s, Permission.EDIT, "sign the mailbox in")
        return settings

    @staticmethod
    def _client(settings: SmtpSettings, client_secret: str | None) -> mail_oauth.Client:
        client = mail_tokens.client(settings)
        return client if client_secret is None else dataclasses.replace(client, client_secret=client_secret.strip())

    def _keep(self, settings: SmtpSettings, grant: TokenGrant, how: str) -> SignedIn:
        if not grant.refresh_token:
            raise ValidationError(f"{mail_oauth.provider(settings.oauth_provider).name} gave no refresh token, so "
                                  "the sign-in would end within the hour: check that the app registration allows "
                                  "'offline_access' (Microsoft) and sign in again. Nothing was stored.")
        with self.email.db.transaction() as s:
            people.require(s, Permission.EDIT, "sign the mailbox in")
            kept = self.email.tokens.save(settings, grant)
            audit.record(s, "smtp.signed_in", "smtp_profile", settings.company_id, company_id=settings.company_id,
                         details={"provider": settings.oauth_provider, "username": settings.username,
                                  "client_id": settings.oauth_client_id, "how": how, "kept_in_keyring": kept})
        return SignedIn(self.email.tokens.state(settings), kept)
