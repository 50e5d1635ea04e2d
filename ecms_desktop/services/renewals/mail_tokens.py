"""The OAuth tokens of a company's mailbox, kept in the operating system's keyring, and a current
access token for each send (refreshed when it has expired or expires within a minute).

Under the same keyring service as the SMTP passwords, one entry per company, provider and mailbox
holds the refresh token, the last access token and its expiry (JSON; split over several entries when
long, because Windows' Credential Locker keeps at most 2,560 bytes per entry and Microsoft's tokens
are longer). A Google client secret has its own entry.

Without a keyring the tokens are kept in this program's memory only: the GUI signs in once per
session; each ``ecms`` command is a session of its own, so scheduled sending with OAuth needs a keyring.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ecms_desktop.models import utcnow
from ecms_desktop.services.renewals import mail_oauth
from ecms_desktop.services.renewals import smtp_passwords as keyring_store
from ecms_desktop.services.renewals.mail_oauth import SIGN_IN_AGAIN, OAuthRefused, SignInNeeded, TokenGrant


class MailboxSettings(Protocol):
    """What the tokens are kept by: the company's mailbox and its app registration (the mail settings,
    :class:`~ecms_desktop.services.renewals.email_service.SmtpSettings`)."""

    @property
    def company_id(self) -> int: ...
    @property
    def username(self) -> str: ...
    @property
    def oauth_provider(self) -> str: ...
    @property
    def oauth_client_id(self) -> str: ...
    @property
    def oauth_tenant(self) -> str: ...
    @property
    def oauth_idp_url(self) -> str: ...

#: Refresh an access token that expires within this many seconds.
REFRESH_MARGIN = dt.timedelta(seconds=60)
#: Characters per keyring entry (Windows keeps 2,560 bytes, as UTF-16).
_CHUNK = 1200
#: Tokens of this program's run, by account, when there is no keyring.
_session: dict[str, str] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class StoredTokens:
    """A mailbox's sign-in: the refresh token and the latest access token with its expiry."""

    username: str
    refresh_token: str
    access_token: str
    expires_at: dt.datetime
    signed_in_at: dt.datetime


@dataclass(frozen=True)
class TokenState:
    """What Settings and ``ecms smtp show`` say about the sign-in (never a token)."""

    signed_in: bool
    username: str
    expires_at: dt.datetime | None
    #: ``keyring`` or ``session`` (this program's memory only: no keyring on this computer).
    kept_in: str
    keyring: keyring_store.KeyringStatus

    def describe(self) -> str:
        if not self.signed_in:
            return "Not signed in."
        where = ("" if self.kept_in == "keyring" else
                 f" (kept until this program ends: {self.keyring.description})")
        expires = f"; access token valid until {self.expires_at:%Y-%m-%d %H:%M} UTC" if self.expires_at else ""
        return f"Signed in as {self.username}, token refreshed automatically{expires}{where}."


def token_account(settings: MailboxSettings) -> str:
    """The keyring account of a company's mailbox sign-in."""
    return f"company-{settings.company_id}:oauth-{settings.oauth_provider}:{settings.username}"


def secret_account(company_id: int, provider: str, client_id: str) -> str:
    """The keyring account of an app registration's client secret (Google desktop clients)."""
    return f"company-{company_id}:oauth-{provider}-client-secret:{client_id}"


def _write(account: str, text: str) -> bool:
    """Keep ``text`` (keyring, in pieces; else this session's memory); True when in the keyring."""
    _erase(account)
    if not keyring_store.keyring_status().available:
        with _lock:
            _session[account] = text
        return False
    pieces = [text[i:i + _CHUNK] for i in range(0, len(text), _CHUNK)] or [""]
    for n, piece in enumerate(pieces[1:], start=2):
        if not keyring_store.store_password(f"{account}#{n}", piece):
            return False
    return keyring_store.store_password(account, f"{len(pieces)}\n{pieces[0]}")


def _read(account: str) -> str | None:
    with _lock:
        if account in _session:
            return _session[account]
    head = keyring_store.get_password(account)
    if head is None:
        return None
    count, _, first = head.partition("\n")
    pieces = [first]
    for n in range(2, int(count) + 1 if count.isdigit() else 0):
        piece = keyring_store.get_password(f"{account}#{n}")
        if piece is None:
            return None
        pieces.append(piece)
    return "".join(pieces)


def _erase(account: str) -> None:
    with _lock:
        _session.pop(account, None)
    head = keyring_store.get_password(account)
    if head is None:
        return
    count = head.partition("\n")[0]
    for n in range(2, int(count) + 1 if count.isdigit() else 0):
        keyring_store.delete_password(f"{account}#{n}")
    keyring_store.delete_password(account)


def store_client_secret(company_id: int, provider: str, client_id: str, secret: str) -> bool:
    """Keep a client secret (empty: forget it); True when kept in the keyring."""
    account = secret_account(company_id, provider, client_id)
    if not secret:
        _erase(account)
        return False
    return _write(account, secret)


def client_secret(settings: MailboxSettings) -> str:
    return _read(secret_account(settings.company_id, settings.oauth_provider, settings.oauth_client_id)) or ""


def client(settings: MailboxSettings) -> mail_oauth.Client:
    """The app registration of these settings, with its endpoints."""
    return mail_oauth.Client(settings.oauth_provider, settings.oauth_client_id,
                             mail_oauth.endpoints(settings.oauth_provider, tenant=settings.oauth_tenant,
                                                  idp_url=settings.oauth_idp_url),
                             client_secret(settings), settings.username)


class TokenKeeper:
    """Reads, keeps and refreshes a mailbox's tokens; ``now`` is the clock expiry is compared with."""

    def __init__(self, *, now: Callable[[], dt.datetime] = utcnow, http_timeout: float = 30.0) -> None:
        self.now, self.http_timeout = now, http_timeout

    def load(self, settings: MailboxSettings) -> StoredTokens | None:
        text = _read(token_account(settings))
        if not text:
            return None
        try:
            data = json.loads(text)
            return StoredTokens(data["username"], data["refresh_token"], data["access_token"],
                                dt.datetime.fromisoformat(data["expires_at"]),
                                dt.datetime.fromisoformat(data["signed_in_at"]))
        except (ValueError, KeyError, TypeError):
            return None

    def save(self, settings: MailboxSettings, grant: TokenGrant, *, previous: StoredTokens | None = None) -> bool:
        """Keep a grant (a refresh that gave no new refresh token keeps the old one); True when in the
        keyring, False when only in this session's memory."""
        now = self.now()
        refresh_token = grant.refresh_token or (previous.refresh_token if previous else "")
        data = {"username": settings.username, "refresh_token": refresh_token, "access_token": grant.access_token,
                "expires_at": (now + dt.timedelta(seconds=grant.expires_in)).isoformat(),
                "signed_in_at": (previous.signed_in_at if previous else now).isoformat()}
        return _write(token_account(settings), json.dumps(data))

    def forget(self, settings: MailboxSettings) -> None:
        _erase(token_account(settings))

    def state(self, settings: MailboxSettings) -> TokenState:
        stored = self.load(settings)
        status = keyring_store.keyring_status()
        with _lock:
            in_session = token_account(settings) in _session
        return TokenState(stored is not None, stored.username if stored else settings.username,
                          stored.expires_at if stored else None, "session" if in_session else "keyring", status)

    def access_token(self, settings: MailboxSettings, *, force_refresh: bool = False) -> str:
        """A current access token for sending: the stored one, or a refreshed one when it has expired,
        expires within a minute, or the mail server refused it (``force_refresh``)."""
        name = mail_oauth.provider(settings.oauth_provider).name
        stored = self.load(settings)
        if stored is None:
            status = keyring_store.keyring_status()
            why = ("" if status.available else
                   f" (no keyring on this computer: {status.description}; a sign-in lasts until the program ends)")
            raise SignInNeeded(f"{settings.username} is not signed in to {name} for sending mail{why}. "
                               f"Nothing was sent. {SIGN_IN_AGAIN.replace('Sign in again', 'Sign in')}")
        if not force_refresh and stored.access_token and stored.expires_at - REFRESH_MARGIN > self.now():
            return stored.access_token
        if not stored.refresh_token:
            raise SignInNeeded(f"The sign-in of {settings.username} at {name} has expired and cannot be renewed "
                               f"(the provider gave no refresh token). Nothing was sent. {SIGN_IN_AGAIN}")
        try:
            grant = mail_oauth.refresh(client(settings), stored.refresh_token, timeout=self.http_timeout)
        except OAuthRefused as exc:
            if exc.code in ("invalid_grant", "invalid_client", "unauthorized_client"):
                raise SignInNeeded(f"{name} no longer accepts the sign-in of {settings.username} (revoked or "
                                   f"expired: {exc}). Nothing was sent; the messages stay queued. "
                                   f"{SIGN_IN_AGAIN}") from exc
            raise
        self.save(settings, grant, previous=stored)
        return grant.access_token

