"""The rules pack: which one is in force, installing a newer one, going back, and the certificates whose
validation result the change touches (listed and re-validated with progress and Cancel)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.rules_packs import RulesChange, RulesInForce, RulesPackService
from ecms_desktop.services.validation.service import ManyResult, StaleCertificate, ValidationService
from ecms_desktop.views.operations import Operation


def read_rules_in_force(db: Database) -> Operation[RulesInForce]:
    """Which rules pack is in force for the database, and what going back returns to."""
    return Operation(lambda _p, _c: RulesPackService(db).show())


def install_rules_pack(db: Database, file: Path) -> Operation[RulesChange]:
    """Check a rules pack archive completely and install it (admins only; audited)."""
    return Operation(lambda _p, _c: RulesPackService(db).install(file), title="Installing the rules pack")


def roll_back_rules_pack(db: Database) -> Operation[RulesChange]:
    """Go back to the rules pack in force before the last install (admins only; audited)."""
    return Operation(lambda _p, _c: RulesPackService(db).rollback(), title="Going back to the previous rules pack")


def list_stale_certificates(db: Database, *, as_of: dt.date) -> Operation[list[StaleCertificate]]:
    """The certificates whose stored validation no longer stands with the rules in force (nothing stored)."""
    return Operation(lambda progress, cancel: ValidationService(db).stale_certificates(
        as_of, progress=progress, cancel=cancel), title="Finding certificates whose result would change")


def revalidate_certificates(db: Database, ids: list[int], *, as_of: dt.date) -> Operation[ManyResult]:
    """Validate the listed certificates again with the rules in force (runs stored, trigger ``revalidation``)."""
    return Operation(lambda progress, cancel: ValidationService(db).validate_many(
        ids, as_of=as_of, trigger="revalidation", progress=progress, cancel=cancel, collect=False),
        title="Re-validating certificates")
