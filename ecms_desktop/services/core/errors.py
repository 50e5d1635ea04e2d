"""Typed errors with messages an accountant can act on.

Every error the services raise on purpose derives from :class:`EcmsError`. The GUI has one presenter
that turns them into dialogs; the CLI prints ``error: <message>`` and exits with status 1 (2 for
usage errors). Unexpected exceptions are logged with a traceback and shown plainly.
"""

from __future__ import annotations

from dataclasses import dataclass


class EcmsError(Exception):
    """Base of all expected errors: ``str(error)`` is a message the user can act on."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input, and where: a file, a row (1-based as a spreadsheet shows it),
    a column or field, and what is wrong."""

    message: str
    file: str | None = None
    row: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class ValidationError(EcmsError):
    """The input is wrong; ``problems`` lists each thing wrong with where it is."""

    def __init__(self, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.problems: list[Problem] = list(problems or [])

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  {p}" for p in self.problems)


class NotFoundError(EcmsError):
    """A record the user named does not exist."""


class NotSetUpError(NotFoundError):
    """Something the work needs has not been set up yet (e.g. the company's mail server); the message says
    where to set it up."""


class ConflictError(EcmsError):
    """Someone else changed the record meanwhile (optimistic locking), or a unique rule was broken."""


class ExternalServiceError(EcmsError):
    """A server outside the program (SMTP, a registry, a webhook, a shared database) failed."""


class DatabaseError(EcmsError):
    """The database cannot be used: unreachable, not an ECMS database, or newer than this program."""


class DatabaseBusyError(DatabaseError):
    """Another writer holds the database longer than the program waits (a bounded wait ran out).

    Nothing was written; the same action can simply be tried again. The GUI keeps the user's edit
    and offers to retry; the CLI exits with status 1 and says so."""


class DatabaseMissingError(DatabaseError):
    """The database named does not exist (a mistyped path is never silently a new, empty database);
    only ``ecms init`` and File > New database create one."""


class DatabaseDamagedError(DatabaseError):
    """The database file itself is damaged (``database disk image is malformed`` and the like); the
    message names the file and says to restore it from a backup."""


class DocumentError(EcmsError):
    """A document cannot be used: corrupt, encrypted, unsupported, or too costly to read safely."""


class Cancelled(EcmsError):
    """The user cancelled a long operation; nothing half-done was kept."""

    def __init__(self, message: str = "Cancelled by the user.") -> None:
        super().__init__(message)
