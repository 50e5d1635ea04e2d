"""Opening, creating, backing up and checking a database (File menu), and the check on start and the
anchor on exit. The work is the services' (``database``, ``database_setup``, ``backup``,
``integrity_check``), the same the ``ecms init``, ``ecms backup`` and ``ecms check`` commands use."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from ecms_desktop.services.companies.service import CompanyInfo, CompanyService
from ecms_desktop.services.core import database as databases
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.database_setup import initialize_database
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.integrity.backup import BackupResult, backup_database
from ecms_desktop.services.integrity.check import CheckReport, check_database, verify_and_anchor
from ecms_desktop.views.operations import Operation

log = logging.getLogger(__name__)


def open_database(url: str) -> Operation[Database]:
    """Open an existing database (refused with the reason when it is missing, unreachable or not ECMS)."""
    return Operation(lambda _p, _c: databases.open_database(url), title="Opening database")


def create_database(url: str) -> Operation[Database]:
    """Create an empty ECMS database at ``url`` (its first audit event included) and open it."""

    def work(_p: Progress, _c: CancelCheck) -> Database:
        db = Database(url)
        try:
            initialize_database(db)
            db.ensure_ready()
        except BaseException:
            db.dispose()
            raise
        return db

    return Operation(work, title="Opening database")


@dataclass(frozen=True)
class DeskCompanies:
    """The companies of an opened database and how many days ahead each counts as expiring soon
    (under None: the value for all companies)."""

    companies: list[CompanyInfo]
    expiring_soon_days: dict[int | None, int]


def read_companies(db: Database) -> Operation[DeskCompanies]:
    """The companies and their expiring-soon windows, read as a database is opened."""

    def work(_p: Progress, _c: CancelCheck) -> DeskCompanies:
        service = CompanyService(db)
        companies = service.list()
        return DeskCompanies(companies, service.expiring_soon_windows(c.id for c in companies))

    return Operation(work, title="Opening database")


def back_up(db: Database, target: Path) -> Operation[BackupResult]:
    """File > Back up…: a consistent, checked copy. The file dialog already asked whether to replace an
    existing file, so an existing one is replaced."""
    return Operation(lambda progress, cancel: backup_database(db, target, overwrite=True, progress=progress,
                                                              cancel=cancel),
                     title="Backing up the database")


def check(db: Database) -> Operation[CheckReport]:
    """File > Check database…: the whole ``ecms check``."""
    return Operation(lambda progress, cancel: check_database(db, progress=progress, cancel=cancel),
                     title="Checking the database")


def check_on_start(db: Database) -> Operation[CheckReport]:
    """The cheap check on opening a database (anchors, the head, SQLite's quick_check on a small file),
    quietly in the background; the head is anchored when it passes."""
    return Operation(lambda _p, _c: verify_and_anchor(db, "start", level="quick"), show_progress=False)


def anchor_on_exit(db: Database) -> None:
    """Anchor the head as the program closes the database (when the cheap check passes). Runs at once,
    on the GUI thread: the window is closing and waits for it."""
    try:
        verify_and_anchor(db, "exit")
    except Exception:  # closing must never fail on this
        log.warning("the audit chain's head was not anchored on exit", exc_info=True)
