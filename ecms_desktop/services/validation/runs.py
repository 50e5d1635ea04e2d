"""Validation runs stored with the certificate, in the caller's transaction.

A run (:class:`~ecms_desktop.models.validation.ValidationRun`) keeps the findings of one validation
with the rules-pack version, and is written together with its audit event (``certificate.validated``).
Here: the findings of a stored certificate with its latest permit checks (:func:`evaluate_certificate`),
storing a run (:func:`store_run`, :func:`record_validation`), the approval gate (errors block approval,
warnings need a reviewer's acknowledgement: :func:`approval_gate`), findings accepted on import
(:func:`accept_findings`), and a stored run read back as a :class:`ValidationResult`.

These are the hooks the certificate services call inside their own transactions; the use cases with
their own transactions are :class:`~ecms_desktop.services.validation.service.ValidationService`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ecms_desktop.models import Certificate, utcnow
from ecms_desktop.models.validation import Finding as FindingRow
from ecms_desktop.models.validation import PermitCheck, ValidationRun, WarningAcknowledgement
from ecms_desktop.rules import RulesPack
from ecms_desktop.services.core import audit, people
from ecms_desktop.services.core.errors import Problem, ValidationError
from ecms_desktop.services.core.settings import business_settings
from ecms_desktop.services.validation.engine import (
    Finding,
    PermitStatus,
    ValidationEngine,
    fingerprint,
    sort_findings,
    subject_of,
)

# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ValidationResult:
    """A stored validation run of one certificate."""

    certificate_id: int
    certificate_number: str
    run_id: int
    rules_version: str
    as_of: dt.date
    trigger: str
    ran_at: dt.datetime
    ran_by: str
    fingerprint: str
    findings: tuple[Finding, ...]
    #: The reviewer's acknowledgement of this run's warnings, if any: (who, when).
    acknowledged: tuple[str, dt.datetime] | None = None

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def infos(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "info")

    @property
    def can_approve(self) -> bool:
        """No errors remain (warnings still need an acknowledgement)."""
        return not self.errors

    def to_json(self) -> dict[str, Any]:
        return {"id": self.certificate_id, "certificate_number": self.certificate_number,
                "findings": [f.to_json() for f in self.findings]}


@dataclass(frozen=True)
class ApprovalResult:
    """An approval made through validation: the run it rests on and the acknowledgement, if any."""

    validation: ValidationResult
    acknowledgement_id: int | None
    new_version: int


# --------------------------------------------------------------------------- storage (in a session)


def latest_permits(session: Session, cert_ids: Sequence[int]) -> dict[int, dict[str, PermitStatus]]:
    """The latest permit check of each coverage line of the certificates, by certificate id and state
    (checks that could not be made are left out)."""
    out: dict[int, dict[str, PermitStatus]] = {}
    if not cert_ids:
        return out
    rows = session.execute(
        select(PermitCheck.certificate_id, PermitCheck.state, PermitCheck.result, PermitCheck.as_of,
               PermitCheck.method, PermitCheck.source, PermitCheck.name_on_record)
        .where(PermitCheck.certificate_id.in_(cert_ids), PermitCheck.result != "unavailable")
        .order_by(PermitCheck.id))
    for cid, state, result, as_of, method, source, name in rows:
        out.setdefault(cid, {})[state] = PermitStatus(result, as_of, method, source, name or "")
    return out


def permit_max_age(session: Session, company_id: int) -> int:
    """How old a permit check may be, in days, before the engine asks for a new one (a company setting)."""
    return business_settings(session, company_id).permit_check_max_age_days


def store_run(session: Session, cert: Certificate, findings: Sequence[Finding], *, rules_version: str,
              as_of: dt.date, trigger: str, audit_event: bool = True) -> ValidationRun:
    """Store a run with its findings and write ``certificate.validated`` in the caller's transaction."""
    fp = fingerprint(findings)
    run = ValidationRun(
        certificate_id=cert.id, company_id=cert.company_id, rules_version=rules_version, as_of=as_of,
        trigger=trigger, ran_at=utcnow(), ran_by=people.actor_name(session), fingerprint=fp,
        error_count=sum(f.severity == "error" for f in findings),
        warning_count=sum(f.severity == "warning" for f in findings),
        info_count=sum(f.severity == "info" for f in findings),
        findings=[FindingRow(rule=f.rule, severity=f.severity, state=f.state, field=f.field, message=f.message,
                             source=f.source, confidence=f.confidence) for f in findings],
    )
    session.add(run)
    session.flush()
    if audit_event:
        audit.record(session, "certificate.validated", "certificate", cert.id, company_id=cert.company_id,
                     certificate_id=cert.id, after=run_audit_payload(run, findings))
    return run


def run_audit_payload(run: ValidationRun, findings: Sequence[Finding]) -> dict[str, Any]:
    """The ``after`` of the ``certificate.validated`` event of a stored run."""
    return audit_payload_of({"id": run.id, "rules_version": run.rules_version, "as_of": run.as_of,
                             "trigger": run.trigger, "error_count": run.error_count,
                             "warning_count": run.warning_count, "info_count": run.info_count,
                             "fingerprint": run.fingerprint}, findings)


def audit_payload_of(run: Mapping[str, Any], findings: Sequence[Any]) -> dict[str, Any]:
    """The ``after`` of a ``certificate.validated`` event, from the run's column values."""
    return {"run_id": run["id"], "rules_version": run["rules_version"], "as_of": run["as_of"],
            "trigger": run["trigger"], "errors": run["error_count"], "warnings": run["warning_count"],
            "infos": run["info_count"], "fingerprint": run["fingerprint"],
            "findings": [f"{f.severity}:{f.rule}:{f.state}:{f.field}" for f in findings]}


def evaluate_certificate(session: Session, rules: RulesPack, cert: Certificate, *, as_of: dt.date,
                         engine: ValidationEngine | None = None) -> list[Finding]:
    """The findings for ``cert`` (an ORM certificate in the caller's transaction) as of a date, with its
    latest permit checks; nothing is stored (see :func:`store_run`). A certificate not stored yet (no
    id; its customer and company set) has no permit checks, and is not flushed by this."""
    eng = engine or ValidationEngine(rules)
    if cert.id is None:
        with session.no_autoflush:
            return eng.evaluate(subject_of(cert), as_of, permits={},
                                permit_max_age_days=permit_max_age(session, cert.company_id))
    session.flush()
    permits = latest_permits(session, [cert.id]).get(cert.id, {})
    return eng.evaluate(subject_of(cert), as_of, permits=permits,
                        permit_max_age_days=permit_max_age(session, cert.company_id))


def record_validation(session: Session, rules: RulesPack, cert: Certificate, *, as_of: dt.date,
                      trigger: str, engine: ValidationEngine | None = None) -> ValidationRun:
    """HOOK for certificate save / import / intake: validate ``cert`` (an ORM certificate already
    flushed in the caller's transaction) and store the run plus its audit event in that transaction.
    Never raises for findings; errors only block approval."""
    findings = evaluate_certificate(session, rules, cert, as_of=as_of, engine=engine)
    return store_run(session, cert, findings, rules_version=rules.version, as_of=as_of, trigger=trigger)


def approval_gate(session: Session, rules: RulesPack, cert: Certificate, *, as_of: dt.date,
                  acknowledge_warnings: bool, note: str = "") -> dict[str, Any]:
    """HOOK for approval, inside the approving transaction: validate, refuse while errors remain
    (ValidationError listing them), refuse unacknowledged warnings, record the acknowledgement.
    Returns details to put on the ``certificate.approved`` audit event."""
    run = record_validation(session, rules, cert, as_of=as_of, trigger="approval")
    return _gate(session, cert, run, acknowledge_warnings=acknowledge_warnings, note=note)


def _gate(session: Session, cert: Certificate, run: ValidationRun, *, acknowledge_warnings: bool,
          note: str) -> dict[str, Any]:
    errors = [f for f in run.findings if f.severity == "error"]
    warnings = [f for f in run.findings if f.severity == "warning"]
    if errors:
        raise ValidationError(
            f"Certificate {cert.id} cannot be approved: {len(errors)} "
            f"{'error remains' if len(errors) == 1 else 'errors remain'}. "
            "Correct the certificate (or reject it) first.",
            [Problem(f"{f.state + ': ' if f.state else ''}{f.message}", column=f.field or None) for f in errors])
    details: dict[str, Any] = {"validation_run_id": run.id, "rules_version": run.rules_version}
    if warnings:
        if not acknowledge_warnings:
            raise ValidationError(
                f"Certificate {cert.id} has {len(warnings)} warning{'s' if len(warnings) != 1 else ''}; "
                "read them and acknowledge them to approve.",
                [Problem(f"{f.state + ': ' if f.state else ''}{f.message}", column=f.field or None)
                 for f in warnings])
        ack = _acknowledge(session, cert, run, warnings, note, "certificate.warnings_acknowledged", "warnings")
        details["acknowledgement_id"] = ack.id
        details["acknowledged_warnings"] = len(warnings)
    return details


def _acknowledge(session: Session, cert: Certificate, run: ValidationRun, findings: Sequence[Any], note: str,
                 action: str, key: str) -> WarningAcknowledgement:
    """Record who accepted which findings of a run, when and why (``note``), with its audit event."""
    listed = acknowledged_findings(findings, with_severity=key == "findings")
    ack = WarningAcknowledgement(certificate_id=cert.id, run_id=run.id, acknowledged_by=people.actor_name(session),
                                 acknowledged_at=utcnow(), note=note, warnings=listed)
    session.add(ack)
    session.flush()
    audit.record(session, action, "certificate", cert.id, company_id=cert.company_id, certificate_id=cert.id,
                 after={"run_id": run.id, "acknowledgement_id": ack.id, key: ack.warnings, "note": note})
    return ack


def acknowledged_findings(findings: Sequence[Any], *, with_severity: bool) -> list[dict[str, str]]:
    """The findings an acknowledgement lists (with their severity when errors and warnings are accepted
    together)."""
    listed = [{"rule": f.rule, "state": f.state, "field": f.field, "message": f.message} for f in findings]
    if with_severity:  # errors and warnings together: say which is which
        listed = [{**item, "severity": f.severity} for item, f in zip(listed, findings, strict=True)]
    return listed


def accept_findings(session: Session, cert: Certificate, run: ValidationRun, *, reason: str
                    ) -> WarningAcknowledgement | None:
    """Record, in the caller's transaction, that the user accepts ``cert`` as approved despite the
    errors and warnings of ``run`` (an import of certificates approved in an earlier system, with
    ``--accept-findings --reason``): who, when and why, per certificate, as an acknowledgement of the
    run (as the desk's acknowledgement of warnings) and a ``certificate.findings_accepted`` audit
    event listing the findings. Nothing is recorded when the run found neither."""
    if not reason.strip():
        raise ValidationError("Say why the certificate is accepted despite its findings.")
    accepted = [f for f in run.findings if f.severity in ("error", "warning")]
    if not accepted:
        return None
    return _acknowledge(session, cert, run, accepted, reason.strip(), "certificate.findings_accepted", "findings")


def result_of_run(run: ValidationRun, number: str, ack: WarningAcknowledgement | None = None,
                  findings: Sequence[Finding] | None = None) -> ValidationResult:
    """A stored run as a :class:`ValidationResult`, with its findings (``findings``: the run's, when
    they are not loaded with it) and the acknowledgement of its warnings, if any."""
    fs = findings if findings is not None else [
        Finding(r.rule, r.severity, r.state, r.field, r.message, r.source, r.confidence) for r in run.findings]
    return ValidationResult(
        certificate_id=run.certificate_id, certificate_number=number, run_id=run.id,
        rules_version=run.rules_version, as_of=run.as_of, trigger=run.trigger, ran_at=run.ran_at,
        ran_by=run.ran_by, fingerprint=run.fingerprint, findings=tuple(sort_findings(fs)),
        acknowledged=(ack.acknowledged_by, ack.acknowledged_at) if ack is not None else None)


def approval_result(session: Session, cert_id: int, certificate_number: str, new_version: int) -> ApprovalResult:
    """The approval just made of a certificate: its latest approval-triggered run, with the
    acknowledgement of its warnings if there is one."""
    run = session.execute(select(ValidationRun).where(ValidationRun.certificate_id == cert_id,
                                                      ValidationRun.trigger == "approval")
                          .order_by(ValidationRun.id.desc()).limit(1)
                          .options(selectinload(ValidationRun.findings))).scalar_one()
    ack = session.execute(select(WarningAcknowledgement).where(WarningAcknowledgement.run_id == run.id)
                          ).scalar_one_or_none()
    return ApprovalResult(result_of_run(run, certificate_number, ack), ack.id if ack else None, new_version)

