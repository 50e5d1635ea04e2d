"""The rules packs installed in a database (no Qt here)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class InstalledRulesPack(Base):
    """A state rules pack installed from an archive (``ecms rules install``), newer than the program's own:
    kept in the database so that every desk on a shared database validates with the same rules.

    At most one is ``active`` (in force, unless the program's packaged pack is newer) and at most one
    ``previous`` (what "go back" returns to); the others are ``retired``, kept for the record.
    """

    __tablename__ = "rules_pack"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The pack's version (``2026.12.2``), from its ``pack.json``.
    version: Mapped[str] = mapped_column(String(40))
    #: SHA-256 of the archive's bytes.
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    #: The archive as installed (a ZIP file with its MANIFEST.json; see ``rules/archive.py``).
    archive: Mapped[bytes] = mapped_column(LargeBinary)
    installed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: The person who installed it.
    installed_by: Mapped[str] = mapped_column(String(100))
    #: ``active``, ``previous`` or ``retired``.
    status: Mapped[str] = mapped_column(String(20), index=True)
    #: The archive's file name and anything the installer noted.
    note: Mapped[str] = mapped_column(Text, default="")
