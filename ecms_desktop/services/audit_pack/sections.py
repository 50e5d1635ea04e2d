"""The tables of an audit pack, each read from the database by a small **section provider**:
certificates (one row per certificate and state line), sales coverage, validation findings, permit
checks, renewal history and the audit trail of the included certificates.

The workbook has a sheet per table; the PDF book's appendices show the findings, the permit checks
and the audit trail. Also here: the one-cell summaries of each certificate's latest validation run
and permit checks, which :mod:`ecms_desktop.services.audit_pack.gather` reads for the certificates
sheet and the summary pages.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecms_desktop.models import AuditEvent, customer_number_key
from ecms_desktop.models.renewal import OutboxMessage, RenewalRequest, RenewalStep
from ecms_desktop.models.transactions import Determination, TransactionLine
from ecms_desktop.models.validation import Finding, PermitCheck, ValidationRun, WarningAcknowledgement
from ecms_desktop.services.audit_pack.content import IN_FORCE_LABEL, Column, PackContent, SectionTable
from ecms_desktop.services.core import audit


class SectionProvider(Protocol):
    """Reads one section's rows through a Qt-free function."""

    key: str
    title: str

    def table(self, session: Session, content: PackContent) -> SectionTable: ...


def _naive_utc(value: dt.datetime | None) -> dt.datetime | None:
    """Excel has no time zones: UTC timestamps are written as plain UTC date-times."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.replace(microsecond=0)


def _text(value: Any) -> str:
    """A JSON value as text (a list or an object as canonical JSON)."""
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(audit.jsonable(value), sort_keys=True, ensure_ascii=False)
    return str(value)


CERTIFICATE_COLUMNS = (
    Column("Customer number", width=14), Column("Customer", width=30), Column("Certificate ID", "int", 10),
    Column("Form", width=14), Column("Form name", width=30), Column("Certificate number", width=18),
    Column("Purchaser permit / registration", width=20), Column("State", width=7),
    Column("State ID number", width=16), Column("Exempt reason", width=14), Column("Type", width=11),
    Column("PO number", width=12), Column("Signed", "bool", 8), Column("Signed date", "date", 12),
    Column("Effective date", "date", 12), Column("Expiry date", "date", 12),
    Column("Status at end of period", width=16), Column("In force during period", width=22),
    Column("Status during the period", width=48), Column("Review state now", width=12),
    Column("Validation result", width=24), Column("Permit check", width=24), Column("File", width=50),
    Column("File SHA-256", width=20),
)


class CertificatesProvider:
    """One row per certificate and state line."""

    key, title = "certificates", "Certificates"

    def table(self, session: Session, content: PackContent) -> SectionTable:
        def rows() -> Iterator[tuple[Any, ...]]:
            for cert in content.certificates:
                for line in cert.lines:
                    docs = cert.documents or ()
                    yield (cert.customer_number, cert.customer_name, cert.id, cert.form_code, cert.form_name,
                           cert.certificate_number, cert.purchaser_tax_id, line.state, line.state_tax_id,
                           cert.exempt_reason, cert.certificate_type, cert.po_number, cert.signed,
                           cert.signed_date, cert.effective_date, line.expiry_date, line.status_at_end.label,
                           IN_FORCE_LABEL[line.in_force], line.period_status, cert.review_state,
                           cert.validation_result, line.permit_check,
                           "\n".join(d.path_for(line.state) for d in docs) or "(no file on record)",
                           "\n".join(d.sha256 for d in docs))
        return SectionTable(self.key, self.title, CERTIFICATE_COLUMNS, rows())


AUDIT_COLUMNS = (
    Column("Seq", "int", 8), Column("When (UTC)", "datetime", 19), Column("Who", width=14),
    Column("Action", width=26), Column("Entity", width=16), Column("Certificate ID", "int", 10),
    Column("Change", width=70), Column("Event hash", width=20),
)


def describe_change(before: dict[str, Any] | None, after: dict[str, Any] | None,
                    details: dict[str, Any] | None = None, limit: int = 600) -> str:
    """An audit event's change in words, for the pack."""
    parts: list[str] = []
    if before and after:
        parts = [f"{k}: {_short(before.get(k))} -> {_short(v)}" for k, v in sorted(after.items())]
    elif after:
        parts = [f"{k}={_short(v)}" for k, v in sorted(after.items()) if v not in (None, "", [], {})]
    if details:
        parts.append("(" + ", ".join(f"{k}={_short(v)}" for k, v in sorted(details.items())) + ")")
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(value: Any) -> str:
    if isinstance(value, dict | list):
        text = json.dumps(value, sort_keys=True, ensure_ascii=False)
    else:
        text = "" if value is None else str(value)
    return text if len(text) <= 80 else text[:79] + "…"


class AuditTrailProvider:
    """The audit trail of the included certificates (and their documents), oldest first."""

    key, title = "audit_trail", "Audit trail"

    def table(self, session: Session, content: PackContent) -> SectionTable:
        ids = [c.id for c in content.certificates]

        def rows() -> Iterator[tuple[Any, ...]]:
            for chunk in chunks(ids, 500):
                stmt = (select(AuditEvent).where(AuditEvent.certificate_id.in_(chunk))
                        .order_by(AuditEvent.seq).execution_options(yield_per=1000))
                for e in session.execute(stmt).scalars():
                    yield (e.seq, _naive_utc(e.occurred_at), e.actor, e.action, f"{e.entity_type} {e.entity_id}",
                           e.certificate_id, describe_change(e.before, e.after, e.details), e.hash)
        # chunks are each ordered; merge into one global order by sequence number
        return SectionTable(self.key, self.title, AUDIT_COLUMNS,
                            sorted(rows(), key=lambda r: r[0]) if len(ids) > 500 else rows(), in_pdf=True)


def chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
    """``items`` in lists of at most ``size`` (the ids of one ``IN (...)`` query)."""
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


# -- sections on validation, permits, renewals and sales --------------------------------------------


class _RowsProvider:
    """A section read by one function over the included certificates."""

    key = ""
    title = ""
    columns: tuple[Column, ...] = ()
    in_pdf = False

    def table(self, session: Session, content: PackContent) -> SectionTable:
        return SectionTable(self.key, self.title, self.columns, self.rows(session, content), in_pdf=self.in_pdf)

    def rows(self, session: Session, content: PackContent) -> Iterable[Sequence[Any]]:
        raise NotImplementedError


FINDING_COLUMNS = (
    Column("Certificate ID", "int", 10), Column("Customer", width=28), Column("State", width=7),
    Column("Run at (UTC)", "datetime", 19), Column("Rules pack", width=11), Column("Rule", width=22),
    Column("Severity", width=9), Column("Field", width=18), Column("Message", width=70),
    Column("Source", width=30), Column("Confidence", width=10), Column("Acknowledged by", width=16),
)

PERMIT_COLUMNS = (
    Column("Certificate ID", "int", 10), Column("Customer", width=28), Column("State", width=7),
    Column("Checked at (UTC)", "datetime", 19), Column("Checked by", width=14), Column("Method", width=14),
    Column("Number checked", width=18), Column("Result", width=14), Column("Source", width=40),
    Column("Evidence", width=40),
)

RENEWAL_COLUMNS = (
    Column("Certificate ID", "int", 10), Column("Customer", width=28), Column("State", width=7),
    Column("Date", "date", 12), Column("Step", width=14), Column("E-mail status", width=12),
    Column("To", width=28), Column("Detail", width=60),
)

COVERAGE_COLUMNS = (
    Column("Invoice", width=14), Column("Line", "int", 6), Column("Invoice date", "date", 12),
    Column("Customer number", width=14), Column("Ship-to state", width=8), Column("Amount", "money", 12),
    Column("Tax collected", "money", 12), Column("Exempt claimed", "bool", 9), Column("Exempt", "bool", 8),
    Column("Exempt amount", "money", 12), Column("Certificate ID", "int", 10),
    Column("Certificate number", width=18), Column("Also eligible", width=16), Column("Explanation", width=80),
)


class ValidationFindingsProvider(_RowsProvider):
    key, title = "findings", "Validation findings"
    columns = FINDING_COLUMNS
    in_pdf = True

    def rows(self, session: Session, content: PackContent) -> Iterable[Sequence[Any]]:
        return _finding_rows(session, content)


class PermitChecksProvider(_RowsProvider):
    key, title = "permit_checks", "Permit checks"
    columns = PERMIT_COLUMNS
    in_pdf = True

    def rows(self, session: Session, content: PackContent) -> Iterable[Sequence[Any]]:
        return _permit_rows(session, content)


class RenewalHistoryProvider(_RowsProvider):
    key, title = "renewals", "Renewal history"
    columns = RENEWAL_COLUMNS

    def rows(self, session: Session, content: PackContent) -> Iterable[Sequence[Any]]:
        return _renewal_rows(session, content)


class CoverageProvider(_RowsProvider):
    key, title = "coverage", "Coverage"
    columns = COVERAGE_COLUMNS

    def rows(self, session: Session, content: PackContent) -> Iterable[Sequence[Any]]:
        return _coverage_rows(session, content)


# The readers of the sections above, and the one-cell summaries of the certificates sheet.


def _customers_by_cert(content: PackContent) -> dict[int, str]:
    return {c.id: c.customer_name for c in content.certificates}


def _selected_states(content: PackContent) -> dict[int, set[str]]:
    return {c.id: {line.state for line in c.lines} for c in content.certificates}


def _latest_runs(session: Session, cert_ids: Sequence[int]) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for chunk in chunks(list(cert_ids), 500):
        latest = (select(func.max(ValidationRun.id)).where(ValidationRun.certificate_id.in_(chunk))
                  .group_by(ValidationRun.certificate_id))
        for run in session.execute(select(ValidationRun).where(ValidationRun.id.in_(latest))).scalars():
            out[run.certificate_id] = run
    return out


def _finding_rows(session: Session, content: PackContent) -> Iterable[Sequence[Any]]:
    names, states = _customers_by_cert(content), _selected_states(content)
    runs = _latest_runs(session, list(names))
    by_run = {run.id: cid for cid, run in runs.items()}
    acks: dict[int, str] = {}
    findings: dict[int, list[Any]] = defaultdict(list)
    for chunk in chunks(sorted(by_run), 500):
        for ack in session.execute(select(WarningAcknowledgement).where(WarningAcknowledgement.run_id.in_(chunk))
                                   .order_by(WarningAcknowledgement.id)).scalars():
            acks[ack.run_id] = f"{ack.acknowledged_by} {_naive_utc(ack.acknowledged_at):%Y-%m-%d %H:%M}"
        for f in session.execute(select(Finding).where(Finding.run_id.in_(chunk)).order_by(Finding.id)).scalars():
            findings[f.run_id].append(f)
    rows: list[tuple[Any, ...]] = []
    order = {"error": 0, "warning": 1, "info": 2}
    for cid in names:
        run = runs.get(cid)
        if run is None:
            continue
        for f in sorted(findings.get(run.id, []), key=lambda f: (f.state, order.get(f.severity, 9), f.rule, f.id)):
            if f.state and f.state not in states[cid]:
                continue
            ack_text = acks.get(run.id, "") if f.severity == "warning" else ""
            rows.append((cid, names[cid], f.state, _naive_utc(run.ran_at), run.rules_version, f.rule, f.severity,
                         f.field, f.message, f.source, f.confidence, ack_text))
    return rows


def validation_results(session: Session, cert_ids: Sequence[int]) -> dict[int, str]:
    """The latest validation run of each certificate, in words."""
    out: dict[int, str] = {}
    for cid, run in _latest_runs(session, cert_ids).items():
        parts = [f"{n} {label}{'s' if n != 1 else ''}" for n, label in
                 ((run.error_count, "error"), (run.warning_count, "warning")) if n]
        verdict = "passed" if not parts else ", ".join(parts)
        out[cid] = f"{verdict} ({run.as_of.isoformat()}, rules {run.rules_version})"
    return out


def _permit_rows(session: Session, content: PackContent) -> Iterable[Sequence[Any]]:
    names, states = _customers_by_cert(content), _selected_states(content)
    rows: list[tuple[Any, ...]] = []
    for chunk in chunks(list(names), 500):
        for c in session.execute(select(PermitCheck).where(PermitCheck.certificate_id.in_(chunk))
                                 .order_by(PermitCheck.certificate_id, PermitCheck.state, PermitCheck.id)).scalars():
            if c.state and c.state not in states[c.certificate_id]:
                continue
            evidence = c.message
            if c.evidence_sha256:
                evidence = (evidence + "; " if evidence else "") + f"evidence file sha256 {c.evidence_sha256}"
            rows.append((c.certificate_id, names[c.certificate_id], c.state, _naive_utc(c.checked_at), c.checked_by,
                         c.method, c.number_checked, c.result,
                         c.source + (f" (data as of {c.as_of.isoformat()})" if c.as_of else ""), evidence))
    order = {cid: i for i, cid in enumerate(names)}
    rows.sort(key=lambda r: (order[r[0]], r[2], r[3] or dt.datetime.min))
    return rows


def permit_results(session: Session, cert_ids: Sequence[int]) -> dict[tuple[int, str], str]:
    """The latest permit check of each certificate line (certificate id, state), in words."""
    out: dict[tuple[int, str], str] = {}
    for chunk in chunks(list(cert_ids), 500):
        for c in session.execute(select(PermitCheck).where(PermitCheck.certificate_id.in_(chunk))
                                 .order_by(PermitCheck.id)).scalars():
            text = f"{c.result} ({c.method}, {_naive_utc(c.checked_at):%Y-%m-%d})"
            out[(c.certificate_id, c.state)] = text  # the latest check per line wins (ordered by id)
    return out


def _renewal_rows(session: Session, content: PackContent) -> Iterable[Sequence[Any]]:
    names, states = _customers_by_cert(content), _selected_states(content)
    rows: list[tuple[Any, ...]] = []
    for chunk in chunks(list(names), 500):
        stmt = (select(RenewalStep, RenewalRequest, OutboxMessage)
                .outerjoin(RenewalRequest, RenewalRequest.id == RenewalStep.request_id)
                .outerjoin(OutboxMessage, OutboxMessage.id == RenewalStep.outbox_id)
                .where(RenewalStep.certificate_id.in_(chunk))
                .order_by(RenewalStep.certificate_id, RenewalStep.state, RenewalStep.step_on, RenewalStep.id))
        for step, req, msg in session.execute(stmt):
            cert_id = step.certificate_id  # never None here: first requests' steps have no certificate
            if cert_id is None or step.state not in states[cert_id]:
                continue
            what = step.kind + (f" {step.number}" if step.number else "")
            status = msg.state if msg is not None else ("recorded" if step.kind == "suspension" else "not sent")
            detail = []
            if req is not None:
                detail.append(f"request {req.token} ({req.status}"
                              + (f": {req.closed_reason}" if req.closed_reason else "") + ")")
            if msg is not None:
                detail.append(f"subject: {msg.subject}")
                if msg.last_error:
                    detail.append(f"last error: {msg.last_error}")
            if step.note:
                detail.append(step.note)
            rows.append((cert_id, names[cert_id], step.state, step.step_on, what, status,
                         msg.to_address if msg is not None else "", "; ".join(detail)))
    return rows


def explanation_text(explanation: Any) -> str:
    """The determination's explanation in words: the summary, then why each candidate applied or not."""
    if not isinstance(explanation, dict):
        return _text(explanation)
    parts = [str(explanation.get("summary") or "")]
    if explanation.get("conflict"):
        parts.append(f"Conflict: {explanation['conflict']}")
    for cand in explanation.get("candidates") or ():
        if isinstance(cand, dict):
            label = f"certificate {cand.get('certificate_id')}"
            if cand.get("certificate_number"):
                label += f" ({cand['certificate_number']})"
            reasons = "; ".join(str(r) for r in cand.get("reasons") or ())
            parts.append(f"{label}: {cand.get('outcome', '')}" + (f" - {reasons}" if reasons else ""))
    for note in explanation.get("notes") or ():
        parts.append(str(note))
    return " | ".join(p for p in parts if p)


def _coverage_rows(session: Session, content: PackContent) -> Iterator[Sequence[Any]]:
    sel = content.selection
    stmt = (select(TransactionLine.invoice_number, TransactionLine.line, TransactionLine.invoice_date,
                   TransactionLine.customer_number, TransactionLine.ship_to_state, TransactionLine.amount,
                   TransactionLine.tax_collected, TransactionLine.exempt_claimed, Determination.exempt,
                   Determination.exempt_amount, Determination.certificate_id, Determination.certificate_number,
                   Determination.also_eligible, Determination.explanation)
            .outerjoin(Determination, Determination.transaction_line_id == TransactionLine.id)
            .where(TransactionLine.company_id == content.company.id,
                   TransactionLine.invoice_date >= sel.date_from, TransactionLine.invoice_date <= sel.date_to)
            .order_by(TransactionLine.invoice_date, TransactionLine.invoice_number, TransactionLine.line)
            .execution_options(yield_per=5000))
    if sel.states:
        stmt = stmt.where(TransactionLine.ship_to_state.in_(sel.states))
    if sel.customers:
        keys = sorted({customer_number_key(c.customer_number) for c in content.certificates} |
                      {customer_number_key(c) for c in sel.customers})
        stmt = stmt.where(TransactionLine.customer_key.in_(keys))
    for row in session.execute(stmt):
        (inv, ln, day, cust, state, amount, tax, claimed, exempt, ex_amount, cid, cnum, also, expl) = row
        if exempt is None:
            yield (inv, ln, day, cust, state, amount, tax, claimed, None, None, None, "",
                   "", "not determined yet")
            continue
        yield (inv, ln, day, cust, state, amount, tax, claimed, exempt, ex_amount, cid, cnum or "",
               ", ".join(str(x) for x in also or ()), explanation_text(expl))


def default_providers() -> list[SectionProvider]:
    """The pack's tables in workbook order (after the summary sheet)."""
    return [CertificatesProvider(), CoverageProvider(), ValidationFindingsProvider(), PermitChecksProvider(),
            RenewalHistoryProvider(), AuditTrailProvider()]

