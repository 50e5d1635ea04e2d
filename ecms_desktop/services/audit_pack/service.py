"""Offline audit packs: everything a state auditor asks for, for a period, in one folder and one zip.

A pack holds ``audit-pack.xlsx`` (summary, certificates, coverage, findings, permit checks, renewal
history, audit trail), ``audit-pack.pdf`` (a book: cover, contents, per customer and state a summary
page followed by the certificate's own pages, appendices), the original certificate files under
``certificates/<customer>/<state>/<file>`` byte for byte, ``manifest.json`` and ``SHA256SUMS``. Later,
:func:`ecms_desktop.services.audit_pack.verify.verify_pack` proves that nothing in it was changed.

Which certificates: those of the company whose validity (effective or signed date through the
line's expiry) overlaps the period in a selected state, and that held one of the selected review
states at some time during that overlap (by default ``approved``: the certificates that were in
force). The review history comes from the audit trail, so a certificate archived since, or expired
since, is included where it was in force, and its status *during the period* is stated.

Each table of the pack (certificates, sales coverage, validation findings, permit checks, renewal
history, audit trail) is read by a small **section provider**.

Determinism: rows and sheets are in a fixed order, reportlab runs in invariant mode, the zip
entries and the workbook's parts carry the generation time, so two runs over unchanged data with
the same ``generated_at`` give byte-identical files (``manifest.json`` additionally records the
audit-trail head, which the previous run's own audit event has moved).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import unicodedata
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from ecms_desktop import __version__
from ecms_desktop.models import (
    AuditEvent,
    Certificate,
    Company,
    CoverageLine,
    Customer,
    Document,
    DocumentFile,
    ReviewState,
    Status,
    customer_number_key,
)
from ecms_desktop.models.renewal import OutboxMessage, RenewalRequest, RenewalStep
from ecms_desktop.models.transactions import Determination, TransactionLine
from ecms_desktop.models.validation import Finding, PermitCheck, ValidationRun, WarningAcknowledgement
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.services.audit_pack.content import (
    CERTIFICATES_DIR,
    IN_FORCE_LABEL,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    PDF_NAME,
    SUMS_NAME,
    WORKBOOK_NAME,
    AuditPackSelection,
    Column,
    CompanyBrand,
    PackCertificate,
    PackContent,
    PackDocument,
    PackLine,
    SectionTable,
    zip_date_time,
)
from ecms_desktop.services.audit_pack.pdf import ProbeJob, write_pdf
from ecms_desktop.services.audit_pack.workbook import write_workbook
from ecms_desktop.services.core import audit
from ecms_desktop.services.core.company_lookup import find_company
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import Cancelled, ValidationError
from ecms_desktop.services.core.expiry import line_status
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.core.settings import business_settings
from ecms_desktop.services.customers.service import find_customer

#: The audit-trail action written when a pack has been generated.
PACK_EVENT = "audit_pack.generated"
#: Review-state changes read from the audit trail to know a certificate's state on each day.
REVIEW_ACTIONS = ("certificate.created", "certificate.approved", "certificate.rejected",
                  "certificate.archived", "certificate.unarchived")


def _no_progress(done: int, total: int, text: str = "") -> None:
    return None


def _never() -> bool:
    return False


# ================================================================================ section providers


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
            for chunk in _chunks(ids, 500):
                stmt = (select(AuditEvent).where(AuditEvent.certificate_id.in_(chunk))
                        .order_by(AuditEvent.seq).execution_options(yield_per=1000))
                for e in session.execute(stmt).scalars():
                    yield (e.seq, _naive_utc(e.occurred_at), e.actor, e.action, f"{e.entity_type} {e.entity_id}",
                           e.certificate_id, describe_change(e.before, e.after, e.details), e.hash)
        # chunks are each ordered; merge into one global order by sequence number
        return SectionTable(self.key, self.title, AUDIT_COLUMNS,
                            sorted(rows(), key=lambda r: r[0]) if len(ids) > 500 else rows(), in_pdf=True)


def _chunks(items: Sequence[int], size: int) -> Iterator[list[int]]:
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
    for chunk in _chunks(list(cert_ids), 500):
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
    for chunk in _chunks(sorted(by_run), 500):
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


def _validation_results(session: Session, cert_ids: Sequence[int]) -> dict[int, str]:
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
    for chunk in _chunks(list(names), 500):
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


def _permit_results(session: Session, cert_ids: Sequence[int]) -> dict[tuple[int, str], str]:
    """The latest permit check of each certificate line (certificate id, state), in words."""
    out: dict[tuple[int, str], str] = {}
    for chunk in _chunks(list(cert_ids), 500):
        for c in session.execute(select(PermitCheck).where(PermitCheck.certificate_id.in_(chunk))
                                 .order_by(PermitCheck.id)).scalars():
            text = f"{c.result} ({c.method}, {_naive_utc(c.checked_at):%Y-%m-%d})"
            out[(c.certificate_id, c.state)] = text  # the latest check per line wins (ordered by id)
    return out


def _renewal_rows(session: Session, content: PackContent) -> Iterable[Sequence[Any]]:
    names, states = _customers_by_cert(content), _selected_states(content)
    rows: list[tuple[Any, ...]] = []
    for chunk in _chunks(list(names), 500):
        stmt = (select(RenewalStep, RenewalRequest, OutboxMessage)
                .outerjoin(RenewalRequest, RenewalRequest.id == RenewalStep.request_id)
                .outerjoin(OutboxMessage, OutboxMessage.id == RenewalStep.outbox_id)
                .where(RenewalStep.certificate_id.in_(chunk))
                .order_by(RenewalStep.certificate_id, RenewalStep.state, RenewalStep.step_on, RenewalStep.id))
        for step, req, msg in session.execute(stmt):
            if step.state not in states[step.certificate_id]:
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
            rows.append((step.certificate_id, names[step.certificate_id], step.state, step.step_on, what, status,
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


# ================================================================================ safe names

_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
                     *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()&,+'-]+")
_SPACES = re.compile(r"\s+")


def safe_name(raw: str, *, max_length: int = 80, fallback: str = "unnamed") -> str:
    """A file or folder name that is safe on every system and in a zip: ASCII letters, digits and a
    few punctuation marks; no path separators, no ``..``, no leading dot, no reserved Windows device
    names, at most ``max_length`` characters (the extension is kept)."""
    text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
    text = _UNSAFE.sub("_", text.replace("/", "_").replace("\\", "_"))
    text = _SPACES.sub(" ", text)
    while ".." in text:
        text = text.replace("..", ".")
    text = text.strip(" ._-")
    if not text:
        text = fallback
    stem, dot, ext = text.rpartition(".")
    if not dot or len(ext) > 8 or not stem:
        stem, ext = text, ""
    if stem.split(".")[0].strip().upper() in _WINDOWS_RESERVED:
        stem = "_" + stem
    ext = ("." + ext) if ext else ""
    stem = stem[: max(1, max_length - len(ext))].rstrip(" .")
    return (stem or fallback) + ext


def unique_name(name: str, taken: set[str]) -> str:
    """``name`` or ``name (2)``, ``name (3)`` ... so that no two files in a folder collide (compared
    case-insensitively, as on Windows and macOS)."""
    candidate, n = name, 1
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{stem} ({n})" + (f".{ext}" if ext else "")
    taken.add(candidate.casefold())
    return candidate


# ================================================================================ status in the period


def review_timeline(events: Sequence[tuple[dt.datetime, str]], current: str,
                    fallback_since: dt.datetime | None) -> tuple[tuple[dt.date, str], ...]:
    """The certificate's review state changes as (UTC date, state), oldest first. Without audit
    events (old data) the current state is assumed since ``fallback_since``."""
    if not events:
        since = (fallback_since or dt.datetime(1900, 1, 1, tzinfo=dt.UTC)).astimezone(dt.UTC).date()
        return ((since, current),)
    out: list[tuple[dt.date, str]] = []
    for when, state in sorted(events, key=lambda e: e[0]):
        day = when.astimezone(dt.UTC).date()
        if not out or out[-1][1] != state:
            out.append((day, state))  # several changes on one day: the last one holds from that day
    return tuple(out)


def effective_timeline(timeline: Sequence[tuple[dt.date, str]]) -> tuple[tuple[dt.date, str], ...]:
    """The review timeline as it bears on sales: the first approval of a certificate that was only
    pending before applies from the certificate's own validity start (an accepted certificate covers
    the sales from its effective date, even when it was entered or approved later: legacy imports);
    later changes (archive, rejection, unarchive) apply from the day they were made."""
    for i, (_day, state) in enumerate(timeline):
        if state == ReviewState.APPROVED:
            if all(s == ReviewState.PENDING for _d, s in timeline[:i]):
                return ((dt.date.min, state), *timeline[i + 1:])
            break
        if state != ReviewState.PENDING:
            break
    return tuple(timeline)


def state_on(timeline: Sequence[tuple[dt.date, str]], day: dt.date) -> str | None:
    """The review state held on ``day`` (None: the certificate did not exist yet)."""
    found = None
    for since, state in timeline:
        if since <= day:
            found = state
        else:
            break
    return found


def in_force_ranges(timeline: Sequence[tuple[dt.date, str]], start: dt.date | None, expiry: dt.date | None,
                    suspended: dt.date | None, date_from: dt.date,
                    date_to: dt.date) -> list[tuple[dt.date, dt.date]]:
    """The day ranges within [date_from, date_to] when a line was in force: approved on that day,
    on or after its start and through its expiry, and not suspended."""
    lo = max(date_from, start) if start else date_from
    hi = min(date_to, expiry) if expiry else date_to
    if suspended is not None:
        hi = min(hi, suspended - dt.timedelta(days=1))
    if lo > hi:
        return []
    # breakpoints: the period ends and every review change inside it
    points = sorted({lo, *[d for d, _ in timeline if lo < d <= hi]})
    ranges: list[tuple[dt.date, dt.date]] = []
    for i, begin in enumerate(points):
        end = points[i + 1] - dt.timedelta(days=1) if i + 1 < len(points) else hi
        if state_on(timeline, begin) == ReviewState.APPROVED:
            if ranges and ranges[-1][1] + dt.timedelta(days=1) == begin:
                ranges[-1] = (ranges[-1][0], end)
            else:
                ranges.append((begin, end))
    return ranges


def describe_period(timeline: Sequence[tuple[dt.date, str]], start: dt.date | None, expiry: dt.date | None,
                    suspended: dt.date | None, ranges: Sequence[tuple[dt.date, dt.date]], date_from: dt.date,
                    date_to: dt.date) -> tuple[str, str]:
    """(code, words) for a line's status during the period."""
    notes: list[str] = []
    if start is None:
        notes.append("no effective or signed date on the certificate")
    elif start > date_from:
        notes.append(f"effective {start.isoformat()}")
    for day, state in timeline:
        if date_from < day <= date_to:
            notes.append(f"{state} {day.isoformat()}")
    if expiry is not None and expiry < date_to:
        notes.append(f"expired after {expiry.isoformat()}")
    if suspended is not None and suspended <= date_to:
        notes.append(f"suspended {suspended.isoformat()}")
    if ranges and ranges[0][0] == date_from and ranges[-1][1] == date_to and len(ranges) == 1:
        return "in_force", "; ".join(["In force throughout the period", *notes])
    if ranges:
        spans = ", ".join(f"{a.isoformat()} to {b.isoformat()}" for a, b in ranges)
        return "partly", "; ".join([f"In force {spans}", *notes])
    held = sorted({s for s in (state_on(timeline, date_from), *[s for d, s in timeline if date_from < d <= date_to])
                   if s})
    what = ", ".join(held) if held else "not yet received"
    return "not_in_force", "; ".join([f"Not in force in the period ({what})", *notes])


# ================================================================================ gathering


def gather(session: Session, selection: AuditPackSelection, *, generated_at: dt.datetime, database: str,
           rules: RulesPack | None = None, window_days: int = 30) -> PackContent:
    """Read everything the pack needs in one session. Certificates in pack order: customer number,
    then certificate id; lines in state order."""
    rules = rules or load_rules_pack()
    sel = selection.checked()
    company = find_company(session, sel.company)
    customer_ids: list[int] = []
    for wanted in sel.customers:
        customer_ids.append(find_customer(session, company.id, wanted).id)
    window_days = business_settings(session, company.id).expiring_soon_days or window_days

    start_col = Certificate.effective_date
    stmt = (
        select(Certificate.id).join(CoverageLine, CoverageLine.certificate_id == Certificate.id)
        .where(Certificate.company_id == company.id)
        .where(or_(CoverageLine.expiry_date.is_(None), CoverageLine.expiry_date >= sel.date_from))
        .where(or_(start_col.is_(None), start_col <= sel.date_to))
        .where(or_(Certificate.effective_date.is_not(None), Certificate.signed_date.is_(None),
                   Certificate.signed_date <= sel.date_to))
        .distinct()
    )
    if sel.states:
        stmt = stmt.where(CoverageLine.state.in_(sel.states))
    if customer_ids:
        stmt = stmt.where(Certificate.customer_id.in_(customer_ids))
    ids = sorted(session.execute(stmt).scalars().all())

    validation = _validation_results(session, ids)
    permits = _permit_results(session, ids)

    history: dict[int, list[tuple[dt.datetime, str]]] = defaultdict(list)
    for chunk in _chunks(ids, 500):
        for cid, when, after in session.execute(
                select(AuditEvent.certificate_id, AuditEvent.occurred_at, AuditEvent.after)
                .where(AuditEvent.certificate_id.in_(chunk), AuditEvent.action.in_(REVIEW_ACTIONS))
                .order_by(AuditEvent.seq)):
            state = (after or {}).get("review_state")
            if cid is not None and state:
                history[cid].append((when, str(state)))

    certs: list[Certificate] = []
    for chunk in _chunks(ids, 500):
        certs.extend(session.execute(
            select(Certificate).where(Certificate.id.in_(chunk))
            .options(selectinload(Certificate.lines), selectinload(Certificate.documents),
                     selectinload(Certificate.customer))).scalars())
    certs.sort(key=lambda c: (c.customer.number_key, c.customer.id, c.id))

    folders: dict[int, str] = {}
    taken_folders: set[str] = set()
    files_taken: dict[tuple[str, str], set[str]] = defaultdict(set)
    included: list[PackCertificate] = []
    for cert in certs:
        recorded = review_timeline(history.get(cert.id, []), cert.review_state, cert.created_at)
        timeline = effective_timeline(recorded)
        start = cert.effective_date or cert.signed_date
        lines: list[PackLine] = []
        for line in cert.lines:
            if sel.states and line.state not in sel.states:
                continue
            suspended = line.suspended_at.astimezone(dt.UTC).date() if line.suspended_at else None
            lo = max(sel.date_from, start) if start else sel.date_from
            hi = min(sel.date_to, line.expiry_date) if line.expiry_date else sel.date_to
            if lo > hi:
                continue  # this line's validity does not overlap the period
            held = {state_on(timeline, lo), *[s for d, s in timeline if lo < d <= hi]}
            if not held & set(sel.review_states):
                continue
            ranges = in_force_ranges(timeline, start, line.expiry_date, suspended, sel.date_from, sel.date_to)
            code, words = describe_period(timeline, start, line.expiry_date, suspended, ranges,
                                          sel.date_from, sel.date_to)
            accepted = next((d for d, st in recorded if st == ReviewState.APPROVED), None)
            if accepted is not None:
                words += f"; accepted (approved) {accepted.isoformat()}"
            end_state = state_on(timeline, sel.date_to) or cert.review_state
            status = line_status(end_state, line.expiry_date, sel.date_to, window_days)
            if suspended is not None and suspended <= sel.date_to and status in (Status.ACTIVE,
                                                                                 Status.EXPIRING_SOON):
                status = Status.EXPIRED
            permit = permits.get((cert.id, line.state), "not checked")
            lines.append(PackLine(line.state, line.state_tax_id, line.expiry_date, line.expiry_basis, status,
                                  code, tuple(ranges), words, permit))
        if not lines:
            continue
        if cert.customer_id not in folders:
            folders[cert.customer_id] = unique_name(
                safe_name(f"{cert.customer.number} {cert.customer.legal_name}", max_length=60), taken_folders)
        folder = folders[cert.customer_id]
        docs: list[PackDocument] = []
        for doc in cert.documents:
            paths: list[tuple[str, str]] = []
            base = safe_name(f"{cert.id}-{cert.certificate_number + '-' if cert.certificate_number else ''}"
                             f"{doc.original_name}", max_length=90)
            if "." not in base:
                base += _extension(doc.file.media_type)
            for pack_line in lines:
                name = unique_name(base, files_taken[(folder, pack_line.state)])
                paths.append((pack_line.state, f"{CERTIFICATES_DIR}/{folder}/{safe_name(pack_line.state)}/{name}"))
            docs.append(PackDocument(doc.id, doc.sha256, doc.original_name, doc.file.media_type,
                                     doc.file.page_count, doc.file.size, doc.received_at, doc.received_via,
                                     tuple(paths)))
        try:
            form_name = rules.form(cert.form_code).name
        except Exception:
            form_name = ""
        included.append(PackCertificate(
            id=cert.id, version=cert.version, customer_id=cert.customer_id, customer_number=cert.customer.number,
            customer_name=cert.customer.legal_name, customer_folder=folder, form_code=cert.form_code,
            form_name=form_name, certificate_number=cert.certificate_number, purchaser_name=cert.purchaser_name,
            purchaser_address=cert.purchaser_address, purchaser_tax_id=cert.purchaser_tax_id,
            purchaser_ein=cert.purchaser_ein, exempt_reason=cert.exempt_reason,
            certificate_type=cert.certificate_type, po_number=cert.po_number, signed=cert.signed,
            signer_name=cert.signer_name, signed_date=cert.signed_date, effective_date=cert.effective_date,
            review_state=cert.review_state, review_reason=cert.review_reason,
            all_states=tuple(line.state for line in cert.lines), lines=tuple(lines), documents=tuple(docs),
            review_history=recorded,
            validation_result=validation.get(cert.id, "not validated")))
    brand = CompanyBrand(company.id, company.name, company.legal_name or company.name, company.address_text(),
                         company.brand_color or "#1F4E79", company.logo, company.logo_media_type,
                         company.reply_to_email, tuple((r.state, r.number) for r in company.registrations))
    session.expunge_all()
    content = PackContent(sel, brand, tuple(sel.customers), tuple(included), generated_at, __version__,
                          rules.version, database)
    return content


def _extension(media_type: str) -> str:
    return {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg", "image/tiff": ".tif",
            "image/gif": ".gif", "image/bmp": ".bmp", "image/webp": ".webp"}.get(media_type, ".bin")


# ================================================================================ files, hashes, zip


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pack_files(root: Path) -> list[str]:
    """Every file under ``root`` as a POSIX path relative to it, sorted."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def write_zip(root: Path, target: Path, *, generated_at: dt.datetime, top: str) -> None:
    """Zip the pack deterministically: sorted entries under ``top/``, the generation time as every
    entry's date, fixed permissions."""
    stamp = zip_date_time(generated_at)
    tmp = target.with_name(target.name + ".partial")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for rel in pack_files(root):
            info = zipfile.ZipInfo(f"{top}/{rel}", date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            with (root / rel).open("rb") as src, zf.open(info, "w") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(tmp, target)


# ================================================================================ orchestration


@dataclass(frozen=True)
class AuditPackResult:
    """What was generated: where, how much, and the manifest's hash (also in the audit trail)."""

    folder: Path
    zip_path: Path | None
    certificates: int
    lines: int
    documents: int
    pdf_pages: int
    files: int
    manifest_sha256: str
    audit_seq: int
    generated_at: dt.datetime
    problems: tuple[str, ...]


@dataclass(frozen=True)
class PackChoices:
    """What the dialog offers: companies, their customers, states and review states."""

    companies: tuple[tuple[int, str], ...]
    customers: tuple[tuple[int, str, str], ...]  # (company id, number, name)
    states: tuple[str, ...]
    review_states: tuple[str, ...]


class _Steps:
    """Progress over weighted steps, with cancel checks."""

    def __init__(self, progress: Progress, cancel: CancelCheck, total: int) -> None:
        self.progress, self.cancel, self.total, self.done = progress, cancel, max(total, 1), 0

    def tick(self, text: str, n: int = 1) -> None:
        if self.cancel():
            raise Cancelled("The audit pack was cancelled; nothing was kept.")
        self.done = min(self.done + n, self.total)
        self.progress(self.done, self.total, text)


class AuditPackService:
    """Generate and describe audit packs (the GUI dialog and ``ecms audit-pack`` use this)."""

    def __init__(self, db: Database, rules: RulesPack | None = None) -> None:
        self.db = db
        self.rules = rules or load_rules_pack()

    def choices(self) -> PackChoices:
        """Companies, customers and states to choose from."""
        with self.db.reader() as s:
            companies = tuple((c.id, c.name) for c in s.execute(select(Company).order_by(Company.name)).scalars())
            customers = tuple((c.company_id, c.number, c.legal_name) for c in s.execute(
                select(Customer).order_by(Customer.company_id, Customer.number_key)).scalars())
            states = tuple(sorted(s.execute(select(CoverageLine.state).distinct()).scalars().all()))
        return PackChoices(companies, customers, states, tuple(r.value for r in ReviewState))

    def generate(self, selection: AuditPackSelection, out_dir: Path, *, make_zip: bool = True,
                 generated_at: dt.datetime | None = None, progress: Progress | None = None,
                 cancel: CancelCheck | None = None) -> AuditPackResult:
        """Build the pack in ``out_dir`` (which must be new or empty) and ``<out_dir>.zip``.

        The files are written to a temporary sibling folder and moved into place only when complete;
        a cancel or an error leaves nothing behind. Generating is recorded in the audit trail in its
        own transaction after the files are complete; the manifest records the chain head before it.
        """
        progress = progress or _no_progress
        cancel = cancel or _never
        when = (generated_at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
        out_dir = Path(out_dir).expanduser().resolve()
        if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
            raise ValidationError(f"{out_dir} already exists and is not an empty folder: choose a new folder "
                                  "for the audit pack (a pack is never mixed with other files).")
        if not out_dir.parent.is_dir():
            raise ValidationError(f"The folder {out_dir.parent} does not exist.")
        zip_path = out_dir.with_name(out_dir.name + ".zip") if make_zip else None
        if zip_path is not None and zip_path.exists():
            raise ValidationError(f"{zip_path} already exists: choose another folder name or move it away.")
        work = out_dir.with_name(f".{out_dir.name}.partial-{os.getpid()}")
        if work.exists():
            shutil.rmtree(work)
        work.mkdir()
        try:
            result = self._generate(selection, out_dir, work, zip_path, when, progress, cancel)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            if zip_path is not None:
                zip_path.with_name(zip_path.name + ".partial").unlink(missing_ok=True)
            raise
        return result

    def _generate(self, selection: AuditPackSelection, out_dir: Path, work: Path, zip_path: Path | None,
                  when: dt.datetime, progress: Progress, cancel: CancelCheck) -> AuditPackResult:
        problems: list[str] = []
        progress(0, 1, "Reading the certificates…")
        with self.db.reader() as s:
            chain = audit.verify_chain(s)
            s.expunge_all()
            content = gather(s, selection, generated_at=when, database=self.db.display_url, rules=self.rules)
            if not chain.ok:
                problems.append(f"The audit trail did not verify at generation time: {chain.problem}")
            docs = {d.sha256: d for c in content.certificates for d in c.documents}
            steps = _Steps(progress, cancel, total=3 * len(docs) + 2 * len(content.certificates) + 20)
            # 1. the original files, byte for byte
            targets: dict[str, list[str]] = defaultdict(list)
            for cert in content.certificates:
                for d in cert.documents:
                    targets[d.sha256].extend(rel for _state, rel in d.paths)
            for sha in sorted(docs):
                data = s.execute(select(DocumentFile.data).where(DocumentFile.sha256 == sha)).scalar_one()
                if hashlib.sha256(data).hexdigest() != sha:
                    problems.append(f"Stored file {docs[sha].original_name} no longer matches its recorded hash "
                                    f"{sha[:12]}…; it is included as stored.")
                for rel in targets[sha]:
                    target = work / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                steps.tick(f"Copying certificate files ({docs[sha].original_name})")
            # 2. the workbook (sections stream from this session), while the document sandbox checks
            # the copied files for the PDF book on the other core
            probes = ProbeJob(content, work, cancel)
            try:
                content.sections = [p.table(s, content) for p in default_providers()]
                steps.tick("Writing the workbook…")
                pdf_tables = write_workbook(work / WORKBOOK_NAME, content, cancel=cancel)  # dated ``when``
                steps.tick("Workbook written", 5)
            except BaseException:
                probes.stop()
                raise
        # 3. the PDF book (reads the stored files from the pack folder, not the database)
        try:
            probes.result()
        except BaseException:
            probes.stop()
            raise
        steps.tick("Checked the certificate files", len(docs))
        pdf = write_pdf(work / PDF_NAME, content, pdf_tables, files_root=work,
                        progress=lambda text: steps.tick(text), cancel=cancel, probed=probes)
        problems.extend(pdf.problems)
        steps.tick("PDF written", 5)
        # 4. manifest and SHA256SUMS
        manifest = self._manifest(work, content, chain, problems)
        manifest_bytes = (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
        (work / MANIFEST_NAME).write_bytes(manifest_bytes)
        sums = [(f["sha256"], f["path"]) for f in manifest["files"]]
        sums.append((hashlib.sha256(manifest_bytes).hexdigest(), MANIFEST_NAME))
        (work / SUMS_NAME).write_text("".join(f"{h}  {p}\n" for h, p in sorted(sums, key=lambda x: x[1])),
                                      encoding="utf-8", newline="\n")
        steps.tick("Manifest written", 2)
        if cancel():
            raise Cancelled("The audit pack was cancelled; nothing was kept.")
        # 5. into place, then the zip
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(work, out_dir)
        try:
            if zip_path is not None:
                write_zip(out_dir, zip_path, generated_at=when, top=out_dir.name)
                steps.tick("Zip written", 3)
        except BaseException:
            shutil.rmtree(out_dir, ignore_errors=True)
            raise
        # 6. the audit event, in its own transaction, after the files are complete
        manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
        with self.db.transaction() as s:
            event = audit.record(
                s, PACK_EVENT, "audit_pack", manifest_sha[:16], company_id=content.company.id,
                after={"manifest_sha256": manifest_sha, "folder": str(out_dir),
                       "zip": str(zip_path) if zip_path else None,
                       "zip_sha256": sha256_file(zip_path) if zip_path else None},
                details={"selection": manifest["selection"], "counts": manifest["counts"],
                         "chain_head_before": manifest["audit_chain"]["head_seq"],
                         "generated_at": when})
            seq = event.seq
        steps.tick("Recorded in the audit trail", 0)
        lines = sum(len(c.lines) for c in content.certificates)
        return AuditPackResult(out_dir, zip_path, len(content.certificates), lines, len(docs), pdf.pages,
                               len(manifest["files"]) + 2, manifest_sha, seq, when, tuple(problems))

    def _manifest(self, root: Path, content: PackContent, chain: audit.ChainReport,
                  problems: Sequence[str]) -> dict[str, Any]:
        files = [{"path": rel, "sha256": sha256_file(root / rel), "size": (root / rel).stat().st_size}
                 for rel in pack_files(root) if rel not in (MANIFEST_NAME, SUMS_NAME)]
        sel = content.selection
        return {
            "format": MANIFEST_FORMAT,
            "generated_at": content.generated_at.isoformat(),
            "program": {"name": "ECMS Desktop", "version": content.program_version},
            "rules_pack_version": content.rules_version,
            "database": content.database,
            "company": {"id": content.company.id, "name": content.company.name,
                        "legal_name": content.company.legal_name},
            "selection": {
                "company": content.company.name, "from": sel.date_from.isoformat(), "to": sel.date_to.isoformat(),
                "customers": list(sel.customers), "states": list(sel.states),
                "review_states": list(sel.review_states),
                "rule": "certificates whose validity (effective or signed date through the line's expiry) "
                        "overlaps the period in a selected state and that held a selected review state "
                        "at some time during that overlap (review history from the audit trail)",
            },
            "audit_chain": {
                "head_seq": chain.head_seq, "head_hash": chain.head_hash, "verified": chain.ok,
                "problem": chain.problem,
                "note": "Head of the audit trail read BEFORE this pack's own 'audit_pack.generated' event "
                        "was written; that event (the next sequence number or later) records this "
                        "manifest's SHA-256.",
            },
            "counts": {
                "certificates": len(content.certificates),
                "certificate_lines": sum(len(c.lines) for c in content.certificates),
                "documents": len({d.sha256 for c in content.certificates for d in c.documents}),
                "by_state_and_status": [{"state": s, "status_at_end": st, "in_force": f, "lines": n}
                                        for s, st, f, n in content.counts_by_state_status()],
            },
            # "available" and "note" stay in the manifest format (ecms-audit-pack/1): every section is.
            "sections": [{"key": t.key, "title": t.title, "available": True, "note": ""}
                         for t in content.sections],
            "problems": list(problems),
            "files": files,
        }


def find_pack_events(db: Database, manifest_sha256: str) -> list[audit.AuditEntry]:
    """The audit events that recorded a pack with this manifest hash (usually one)."""
    with db.reader() as s:
        events = audit.list_events(s, entity_type="audit_pack", entity_id=manifest_sha256[:16])
    return [e for e in events if (e.after or {}).get("manifest_sha256") == manifest_sha256]


__all__ = [
    "AuditPackResult",
    "AuditPackService",
    "default_providers",
    "find_pack_events",
    "gather",
    "safe_name",
    "unique_name",
]

_ = Document  # imported for the relationship targets used by selectinload
