"""Secrets (the SMTP password) in the operating system's keyring, never in the database or a file.

When no keyring backend is available (a headless Linux box without Secret Service, a container),
nothing is stored: :func:`keyring_status` says so and the caller asks for the password each time
(the GUI with a dialog, the CLI with ``getpass`` or ``--password-stdin``).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Keyring service name under which ECMS keeps SMTP passwords.
SERVICE = "ecms-desktop-smtp"


@dataclass(frozen=True)
class KeyringStatus:
    """Whether a usable keyring exists, and which (or why not) in words."""

    available: bool
    description: str


def keyring_status() -> KeyringStatus:
    """Whether passwords can be kept in the OS keyring on this machine."""
    try:
        import keyring
        from keyring.backends import fail
    except Exception as exc:
        return KeyringStatus(False, f"the keyring package cannot be loaded ({exc})")
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 1) <= 0:
        return KeyringStatus(False, "no operating-system keyring is available on this machine "
                                    "(no Secret Service, Keychain or Windows Credential Locker)")
    return KeyringStatus(True, f"{type(backend).__module__}.{type(backend).__name__}")


def smtp_account(company_id: int, host: str, username: str) -> str:
    """The keyring account name for one company's SMTP login."""
    return f"company-{company_id}:{username}@{host}"


def store_password(account: str, password: str) -> bool:
    """Keep the password in the keyring; False (nothing stored anywhere) when no keyring exists."""
    if not keyring_status().available:
        return False
    import keyring

    try:
        keyring.set_password(SERVICE, account, password)
    except Exception as exc:
        log.warning("keyring refused to store the SMTP password: %s", exc)
        return False
    return True


def get_password(account: str) -> str | None:
    """The stored password, or None when there is none or no keyring."""
    if not keyring_status().available:
        return None
    import keyring

    try:
        return keyring.get_password(SERVICE, account)
    except Exception as exc:
        log.warning("keyring could not be read: %s", exc)
        return None


def delete_password(account: str) -> None:
    """Forget a stored password (nothing happens when there is none)."""
    if not keyring_status().available:
        return
    import keyring

    with contextlib.suppress(Exception):
        keyring.delete_password(SERVICE, account)
