"""Checking certificates: validating one or all against their states' rules, verifying permit numbers
with the states' registries, recording a manual permit check, and reading the stored results."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from ecms_desktop.rules import RulesPack
from ecms_desktop.services.certificates.claims import ClaimInfo, ClaimService
from ecms_desktop.services.certificates.form_spec import ExpiryDecider, load_expiry_decider
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.validation.permit_service import PermitCheckInfo, PermitService
from ecms_desktop.services.validation.runs import ValidationResult
from ecms_desktop.services.validation.service import ManyResult, ValidationService
from ecms_desktop.views.operations import Operation


def validate_certificate(db: Database, rules: RulesPack, cert_id: int, *, as_of: dt.date
                         ) -> Operation[ValidationResult]:
    """Validate now: check the certificate and keep the run (with its audit event)."""
    return Operation(lambda _p, _c: ValidationService(db, rules).validate(cert_id, as_of=as_of), title="Validating")


def validate_all(db: Database, rules: RulesPack, *, company_id: int, as_of: dt.date) -> Operation[ManyResult]:
    """Validate every certificate of the company, in batches, with progress and Cancel."""
    return Operation(lambda progress, cancel: ValidationService(db, rules).validate_many(
        None, as_of=as_of, company_id=company_id, progress=progress, cancel=cancel, collect=False),
        title="Validating all certificates")


def verify_permits(db: Database, rules: RulesPack, cert_id: int, *, as_of: dt.date
                   ) -> Operation[list[PermitCheckInfo]]:
    """Check a certificate's permit numbers with each state's verifier (each check recorded)."""
    return Operation(lambda _p, _c: PermitService(db, rules).verify(cert_id, as_of=as_of), title="Verifying permits")


def record_permit_check(db: Database, rules: RulesPack, cert_id: int, *, state: str, number: str,
                        values: dict[str, str], as_of: dt.date) -> Operation[PermitCheckInfo]:
    """A reviewer's manual permit check: the result seen on the state's lookup page, where, and the
    evidence file (``values``: result, evidence, source_url, note)."""
    return Operation(lambda _p, _c: PermitService(db, rules).record_manual_check(
        cert_id, state=state, result=values["result"], evidence=Path(values["evidence"]),
        source_url=values["source_url"], as_of=as_of, number=number or None, note=values["note"]),
        title="Recording the permit check")


@dataclass(frozen=True)
class StoredChecks:
    """What is stored about a certificate's checks: the latest validation run, the newest permit check
    per state, and how old a permit check may be (days) before it is due again."""

    latest: ValidationResult | None
    permit_checks: dict[str, PermitCheckInfo]
    max_age_days: int
    #: The claim of someone other than the person acting on the certificate (None: unclaimed or theirs).
    claim_by_other: ClaimInfo | None = None


def read_checks(db: Database, rules: RulesPack, cert_id: int, company_id: int) -> Operation[StoredChecks]:
    """The stored checks of a certificate, for the form's findings and permit panes."""

    def work(_p: Progress, _c: CancelCheck) -> StoredChecks:
        return StoredChecks(ValidationService(db, rules).latest(cert_id),
                            PermitService(db, rules).latest_checks(cert_id),
                            CompanyService(db).permit_check_max_age_days(company_id),
                            ClaimService(db).claim_by_other(cert_id))

    return Operation(work)


def read_expiry_decider(db: Database, rules: RulesPack, company_id: int) -> Operation[ExpiryDecider]:
    """How the company's certificates expire (the rules pack and the company's own expiry policy)."""
    return Operation(lambda _p, _c: load_expiry_decider(db, rules, company_id))
