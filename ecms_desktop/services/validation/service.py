"""Validation use cases of the review desk, the CLI and the other services (:class:`ValidationService`).

Each use case runs in its own transaction: checking a certificate or an edited input without storing
anything, validating one certificate or many (in batches, with bulk inserts of the runs and their
findings), reading a certificate's stored runs, and, when the rules pack changes, listing the
certificates whose result would change (:meth:`ValidationService.stale_certificates`) and re-running
them (:meth:`ValidationService.revalidate_stale`). The engine itself is
:mod:`~ecms_desktop.services.validation.engine`; storing runs and the approval gate are
:mod:`~ecms_desktop.services.validation.runs`.

No Qt here: the GUI, the CLI and the other services call it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, selectinload

from ecms_desktop.models import Certificate, utcnow
from ecms_desktop.models.validation import Finding as FindingRow
from ecms_desktop.models.validation import ValidationRun, WarningAcknowledgement
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.services.core import audit, people, state_digest
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import Cancelled, NotFoundError
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.validation.engine import Finding, ValidationEngine, fingerprint, subject_of
from ecms_desktop.services.validation.runs import (
    ValidationResult,
    latest_permits,
    permit_max_age,
    record_validation,
    result_of_run,
    run_audit_payload,
)

# --------------------------------------------------------------------------- results


@dataclass
class ManyResult:
    """What :meth:`ValidationService.validate_many` did."""

    validated: int = 0
    with_errors: int = 0
    with_warnings: int = 0
    errors: int = 0
    warnings: int = 0
    infos: int = 0
    results: list[ValidationResult] = field(default_factory=list)


@dataclass(frozen=True)
class StaleCertificate:
    """A certificate whose stored validation no longer stands: validated with an older rules pack,
    never validated, or whose findings would now differ."""

    certificate_id: int
    certificate_number: str
    last_run_id: int | None
    last_rules_version: str | None
    rules_changed: bool
    result_changes: bool
    reason: str


# --------------------------------------------------------------------------- service


class ValidationService:
    """Validation use cases for the review desk, the CLI and the other services."""

    def __init__(self, db: Database, rules: RulesPack | None = None) -> None:
        self.db = db
        self.rules = rules or load_rules_pack()
        self.engine = ValidationEngine(self.rules)

    # -- pure

    def evaluate(self, detail_or_input: Any, as_of: dt.date, *, customer_name: str | None = None
                 ) -> list[Finding]:
        """Findings for a ``CertificateDetail`` or an edited ``CertificateInput`` without storing
        anything (the edit form calls this live). ``customer_name`` enables the name comparison
        for an input."""
        return self.engine.evaluate(subject_of(detail_or_input, customer_name=customer_name), as_of)

    # -- stored runs

    def _load(self, session: Session, cert_id: int) -> Certificate:
        cert = session.execute(
            select(Certificate).where(Certificate.id == cert_id)
            .options(selectinload(Certificate.lines), selectinload(Certificate.customer),
                     selectinload(Certificate.company), selectinload(Certificate.documents))
        ).scalar_one_or_none()
        if cert is None:
            raise NotFoundError(f"There is no certificate {cert_id}.")
        return cert

    def validate(self, cert_id: int, *, as_of: dt.date, trigger: str = "on_demand") -> ValidationResult:
        """Validate one certificate and store the run (with its audit event) in one transaction."""
        with self.db.transaction() as s:
            cert = self._load(s, cert_id)
            run = record_validation(s, self.rules, cert, as_of=as_of, trigger=trigger, engine=self.engine)
            return result_of_run(run, cert.certificate_number)

    def latest(self, cert_id: int) -> ValidationResult | None:
        """The certificate's last stored run (with its acknowledgement, if any), or None."""
        with self.db.reader() as s:
            run = s.execute(select(ValidationRun).where(ValidationRun.certificate_id == cert_id)
                            .order_by(ValidationRun.id.desc()).limit(1)
                            .options(selectinload(ValidationRun.findings))).scalar_one_or_none()
            if run is None:
                return None
            number = s.execute(select(Certificate.certificate_number).where(Certificate.id == cert_id)).scalar_one()
            ack = s.execute(select(WarningAcknowledgement).where(WarningAcknowledgement.run_id == run.id)
                            .order_by(WarningAcknowledgement.id.desc()).limit(1)).scalar_one_or_none()
            return result_of_run(run, number, ack)

    def history(self, cert_id: int) -> list[ValidationResult]:
        """Every stored run of a certificate, newest first."""
        with self.db.reader() as s:
            runs = s.execute(select(ValidationRun).where(ValidationRun.certificate_id == cert_id)
                             .order_by(ValidationRun.id.desc())
                             .options(selectinload(ValidationRun.findings))).scalars().all()
            number = s.execute(select(Certificate.certificate_number).where(Certificate.id == cert_id)
                               ).scalar_one_or_none() or ""
            acks = {a.run_id: a for a in s.execute(select(WarningAcknowledgement).where(
                WarningAcknowledgement.certificate_id == cert_id)).scalars()}
            return [result_of_run(r, number, acks.get(r.id)) for r in runs]

    def validate_many(self, ids: Sequence[int] | None, *, as_of: dt.date, company_id: int | None = None,
                      trigger: str = "on_demand", progress: Progress | None = None,
                      cancel: CancelCheck | None = None, collect: bool = True,
                      batch_size: int = 500) -> ManyResult:
        """Validate the given certificates (``None``: all, or all of ``company_id``) in batches; each
        batch is one transaction (runs + audit events). Cancelling keeps the finished batches and
        raises :class:`Cancelled`."""
        if ids is None:
            with self.db.reader() as s:
                q = select(Certificate.id).order_by(Certificate.id)
                if company_id is not None:
                    q = q.where(Certificate.company_id == company_id)
                ids = list(s.execute(q).scalars())
        ids = list(ids)
        total = len(ids)
        result = ManyResult()
        for start in range(0, total, batch_size):
            if cancel and cancel():
                raise Cancelled(f"Validation cancelled after {result.validated} of {total} certificates; "
                                "those are stored.")
            if progress:
                progress(start, total, f"Validating certificates {start + 1}-{min(start + batch_size, total)}")
            self._validate_batch(ids[start:start + batch_size], as_of, trigger, result, collect)
        if progress:
            progress(total, total, f"Validated {result.validated} certificates")
        return result

    def _validate_batch(self, batch: Sequence[int], as_of: dt.date, trigger: str, result: ManyResult,
                        collect: bool) -> None:
        with self.db.transaction() as s:
            certs = s.execute(select(Certificate).where(Certificate.id.in_(batch)).order_by(Certificate.id)
                              .options(selectinload(Certificate.lines), selectinload(Certificate.customer),
                     selectinload(Certificate.company), selectinload(Certificate.documents))
                              ).scalars().all()
            found = {c.id for c in certs}
            missing = [i for i in batch if i not in found]
            if missing:
                raise NotFoundError(f"There is no certificate {', '.join(map(str, missing[:10]))}.")
            permits = latest_permits(s, list(found))
            ages: dict[int, int] = {}
            staged: list[tuple[Certificate, dict[str, Any], list[Finding]]] = []  # (cert, run row, findings)
            ran_at, ran_by = utcnow(), people.actor_name(s)
            for cert in certs:
                if cert.company_id not in ages:
                    ages[cert.company_id] = permit_max_age(s, cert.company_id)
                findings = self.engine.evaluate(subject_of(cert), as_of, permits=permits.get(cert.id, {}),
                                                permit_max_age_days=ages[cert.company_id])
                run: dict[str, Any] = {"certificate_id": cert.id, "company_id": cert.company_id,
                       "rules_version": self.rules.version, "as_of": as_of, "trigger": trigger, "ran_at": ran_at,
                       "ran_by": ran_by, "fingerprint": fingerprint(findings),
                       "error_count": sum(f.severity == "error" for f in findings),
                       "warning_count": sum(f.severity == "warning" for f in findings),
                       "info_count": sum(f.severity == "info" for f in findings)}
                staged.append((cert, run, findings))
            # Bulk inserts: one statement for the runs (ids returned in order), one for the findings.
            run_ids = list(s.execute(insert(ValidationRun).returning(ValidationRun.id, sort_by_parameter_order=True),
                                     [run for _, run, _ in staged]).scalars())
            rows = [{"run_id": rid, "rule": f.rule, "severity": f.severity, "state": f.state, "field": f.field,
                     "message": f.message, "source": f.source, "confidence": f.confidence}
                    for rid, (_, _, findings) in zip(run_ids, staged, strict=True) for f in findings]
            if rows:
                s.execute(insert(FindingRow), rows)
            state_digest.touch(s, "validation_run", run_ids)
            for rid, (_, run, _) in zip(run_ids, staged, strict=True):
                run["id"] = rid
            audit.record_many(s, [
                audit.NewEvent("certificate.validated", "certificate", cert.id,
                               after=run_audit_payload(ValidationRun(**run), findings), company_id=cert.company_id,
                               certificate_id=cert.id)
                for cert, run, findings in staged])
            for cert, run, findings in staged:
                result.validated += 1
                n_errors, n_warnings = run["error_count"], run["warning_count"]
                result.errors += n_errors
                result.warnings += n_warnings
                result.infos += run["info_count"]
                result.with_errors += int(n_errors > 0)
                result.with_warnings += int(n_warnings > 0)
                if collect:
                    result.results.append(result_of_run(ValidationRun(**run), cert.certificate_number,
                                                        findings=findings))

    # -- rules-pack changes

    def stale_certificates(self, as_of: dt.date, *, company_id: int | None = None,
                           progress: Progress | None = None, cancel: CancelCheck | None = None,
                           batch_size: int = 1000) -> list[StaleCertificate]:
        """Certificates whose last run used another rules-pack version, that were never validated, or
        whose findings as of ``as_of`` would differ from the stored ones (re-evaluated, nothing stored)."""
        with self.db.reader() as s:
            latest = (select(ValidationRun.certificate_id, func.max(ValidationRun.id).label("run_id"))
                      .group_by(ValidationRun.certificate_id).subquery())
            q = (select(Certificate.id, ValidationRun.id, ValidationRun.rules_version, ValidationRun.fingerprint)
                 .outerjoin(latest, latest.c.certificate_id == Certificate.id)
                 .outerjoin(ValidationRun, ValidationRun.id == latest.c.run_id).order_by(Certificate.id))
            if company_id is not None:
                q = q.where(Certificate.company_id == company_id)
            last: list[tuple[int, int | None, str | None, str | None]] = [
                (r[0], r[1], r[2], r[3]) for r in s.execute(q)]
        out: list[StaleCertificate] = []
        total = len(last)
        for start in range(0, total, batch_size):
            if cancel and cancel():
                raise Cancelled("Stopped listing certificates to re-validate.")
            if progress:
                progress(start, total, "Comparing stored validation results")
            chunk = last[start:start + batch_size]
            with self.db.reader() as s:
                certs = {c.id: c for c in s.execute(
                    select(Certificate).where(Certificate.id.in_([r[0] for r in chunk]))
                    .options(selectinload(Certificate.lines), selectinload(Certificate.customer),
                     selectinload(Certificate.company), selectinload(Certificate.documents))).scalars()}
                permits = latest_permits(s, list(certs))
                ages = {cid: permit_max_age(s, cid) for cid in {c.company_id for c in certs.values()}}
                for cid, run_id, version, fp in chunk:
                    cert = certs[cid]
                    now = fingerprint(self.engine.evaluate(subject_of(cert), as_of, permits=permits.get(cid, {}),
                                                           permit_max_age_days=ages[cert.company_id]))
                    if run_id is None:
                        out.append(StaleCertificate(cid, cert.certificate_number, None, None, False, True,
                                                    "never validated"))
                        continue
                    rules_changed = version != self.rules.version
                    changes = now != fp
                    if not rules_changed and not changes:
                        continue
                    why = []
                    if rules_changed:
                        why.append(f"validated with rules pack {version}, now {self.rules.version}")
                    why.append("the result would change" if changes else "the result would stay the same")
                    out.append(StaleCertificate(cid, cert.certificate_number, run_id, version, rules_changed,
                                                changes, "; ".join(why)))
        if progress:
            progress(total, total, f"{len(out)} certificates to re-validate")
        return out

    def revalidate_stale(self, as_of: dt.date, *, company_id: int | None = None, only_changed: bool = False,
                         progress: Progress | None = None, cancel: CancelCheck | None = None) -> ManyResult:
        """Re-validate the certificates :meth:`stale_certificates` lists (only those whose result
        changes when ``only_changed``), storing new runs with trigger ``revalidation``."""
        stale = self.stale_certificates(as_of, company_id=company_id, cancel=cancel)
        ids = [x.certificate_id for x in stale if x.result_changes or not only_changed]
        return self.validate_many(ids, as_of=as_of, trigger="revalidation", progress=progress, cancel=cancel,
                                  collect=False)

