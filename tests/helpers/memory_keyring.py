"""An in-memory keyring backend: the program stores and reads SMTP passwords through the real
``keyring`` API as with the operating system's keyring, and the test can look inside."""

from __future__ import annotations

from keyring.backend import KeyringBackend


class MemoryKeyring(KeyringBackend):
    """Passwords in a dict, by (service, account)."""

    priority = 1  # type: ignore[assignment]
    #: Never chosen by keyring on its own (every subclass is a candidate): only where a test sets it.
    viable = False  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def delete_password(self, service: str, username: str) -> None:
        self.passwords.pop((service, username), None)
