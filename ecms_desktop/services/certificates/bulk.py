"""Many new certificates at once: decided in memory first, then written in one short transaction.

An import of 100,000 certificates must neither take minutes nor hold the database's writer (and the
audit trail's head) for minutes while every desk waits. So the work is split:

1. :func:`prepare_certificate`, outside any transaction: every value of the certificate row and of its
   coverage lines (expiries computed as :func:`~ecms_desktop.services.certificates.service.apply_expiry`
   does), the validation findings (as :func:`~ecms_desktop.services.validation.runs.evaluate_certificate`
   finds them for a certificate not stored yet), and the approval gate's decision (as
   :func:`~ecms_desktop.services.certificates.service.create_certificate` decides it). Pure.
2. :func:`certificate_rows`, still before the write, with ids reserved beforehand (:class:`IdSource`):
   the rows of the certificate, its lines, its validation run with findings and the acknowledgement of
   accepted findings, as tuples the driver takes (:class:`RowEncoder`); the records' digests (see
   :mod:`~ecms_desktop.services.core.state_digest`); and the audit events, prepared up to their numbers
   (see :func:`~ecms_desktop.services.core.audit.prepare_event`). Both steps run in worker processes for a
   large import (:mod:`~ecms_desktop.services.certificates.import_rows`).
3. :func:`write_set`, in the write transaction: the rows through the driver in bulk, and the events
   chained from the head (one SHA-256 each).

The rows and events written are those :func:`~ecms_desktop.services.certificates.service.create_certificate`
writes for the same certificate (the customers created come first);
``tests/services/certificates/test_certificate_bulk.py`` compares the two paths.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, cast

from sqlalchemy import JSON, Connection, Dialect, Table, func, select, text, update
from sqlalchemy.orm import Session

from ecms_desktop.models import (
    AuditEvent,
    Certificate,
    CoverageLine,
    Customer,
    Document,
    DocumentFile,
    ReviewState,
)
from ecms_desktop.models.validation import Finding as FindingRow
from ecms_desktop.models.validation import ValidationRun, WarningAcknowledgement
from ecms_desktop.services.certificates.service import ExpiryContext, gate_decision, snapshot_values
from ecms_desktop.services.core import audit, json_text, people, state_digest
from ecms_desktop.services.core.bulk import BulkInsert
from ecms_desktop.services.core.certificate_records import CertificateInput
from ecms_desktop.services.core.errors import Cancelled
from ecms_desktop.services.core.people import Permission
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.core.state_digest import VALIDATION_RUN, RecordKind
from ecms_desktop.services.validation.engine import Finding, ValidationEngine, fingerprint, subject_of_new
from ecms_desktop.services.validation.runs import acknowledged_findings, audit_payload_of

_CERTIFICATE = cast(Table, Certificate.__table__)
_LINE = cast(Table, CoverageLine.__table__)
_RUN = cast(Table, ValidationRun.__table__)
_FINDING = cast(Table, FindingRow.__table__)
_ACK = cast(Table, WarningAcknowledgement.__table__)
_CUSTOMER = cast(Table, Customer.__table__)
_DOCUMENT = cast(Table, Document.__table__)
_TABLES: dict[str, Table] = {t.name: t for t in (
    _CUSTOMER, _CERTIFICATE, _LINE, _RUN, _FINDING, _ACK, cast(Table, DocumentFile.__table__), _DOCUMENT)}
#: The order the rows are inserted in (each after the rows it refers to).
_ORDER = ("customer", "certificate", "coverage_line", "validation_run", "validation_finding", "warning_acknowledgement",
          "document_file", "document")
#: The columns each table's row tuples hold: all, but the ids of coverage lines and findings, which the
#: database assigns (no digest or event names them).
_COLUMNS = {name: tuple(c.name for c in table.columns
                        if not (c.name == "id" and name in ("coverage_line", "validation_finding")))
            for name, table in _TABLES.items()}
_BATCH = 5000
_ACK_KIND = cast(RecordKind, state_digest.KINDS["warning_acknowledgement"])


@dataclass
class PreparedCertificate:
    """A certificate decided in memory, ready to be written (the customer's id is set at the write)."""

    row: dict[str, Any]                  # every column of the certificate row but id and customer_id
    lines: list[dict[str, Any]]          # every column of each coverage line but id and certificate_id
    findings: list[Finding]
    trigger: str
    created_details: dict[str, Any]
    accept_reason: str                   # non-empty: the findings are accepted with this reason
    snapshot: dict[str, Any]             # the ``after`` of ``certificate.created`` (customer_id set later)


class _Defaults:
    """The Python-side defaults of a table's columns, for rows written with Core statements: each row
    carries every column, so that the record's digest can be computed from the values written."""

    def __init__(self, table: Table) -> None:
        self.scalars: dict[str, Any] = {}
        self.callables: list[tuple[str, Any]] = []
        for column in table.columns:
            default = column.default
            if default is None:
                if column.nullable and not column.primary_key:
                    self.scalars[column.name] = None
            elif getattr(default, "is_callable", False):
                self.callables.append((column.name, default.arg))  # type: ignore[attr-defined]
            elif getattr(default, "is_scalar", False):
                self.scalars[column.name] = default.arg  # type: ignore[attr-defined]

    def row(self, values: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(self.scalars)
        for name, make in self.callables:
            if name not in values:
                out[name] = make(None)
        out.update(values)
        return out


#: The certificate columns a ``CertificateInput`` gives as they are.
_SCALARS = tuple(f.name for f in fields(CertificateInput)
                 if f.name not in ("lines", "customer_id", "product_codes", "commodity_codes"))
CERTIFICATE_DEFAULTS = _Defaults(_CERTIFICATE)
CUSTOMER_DEFAULTS = _Defaults(_CUSTOMER)
DOCUMENT_DEFAULTS = _Defaults(_DOCUMENT)
FILE_DEFAULTS = _Defaults(cast(Table, DocumentFile.__table__))
_LINE_DEFAULTS = _Defaults(_LINE)
_RUN_DEFAULTS = _Defaults(_RUN)
_ACK_DEFAULTS = _Defaults(_ACK)


def prepare_certificate(engine: ValidationEngine, data: CertificateInput, *, ctx: ExpiryContext,
                        customer_name: str, seller: tuple[str, str], permit_max_age_days: int, origin: str,
                        review_state: str, as_of: dt.date, trigger: str, gate: bool, accept_findings_reason: str,
                        actor: str, now: dt.datetime) -> PreparedCertificate:
    """Decide everything about one new certificate (``data`` normalised and checked, as
    :func:`~ecms_desktop.services.certificates.service.check_input` accepts it) without touching the
    database: what :func:`~ecms_desktop.services.certificates.service.create_certificate` would store."""
    lines: list[dict[str, Any]] = []
    for line in data.lines:
        decision = ctx.decide(line.state, data.form_code, data.exempt_reason, effective=data.effective_date,
                              signed=data.signed_date, override=data.expiry_override,
                              override_reason=data.expiry_override_reason)
        lines.append(_LINE_DEFAULTS.row({"state": line.state, "state_tax_id": line.state_tax_id,
                      "local_jurisdictions": list(line.local_jurisdictions), "expiry_date": decision.expiry_date,
                      "expiry_basis": decision.basis, "expiry_source": decision.source,
                      "expiry_origin": decision.origin}))
    expiries = {ln["state"]: ln["expiry_date"] for ln in lines}
    findings = engine.evaluate(subject_of_new(data, expiries, customer_name=customer_name, seller=seller), as_of,
                               permits={}, permit_max_age_days=permit_max_age_days)
    state, details, accepted = gate_decision(review_state, gate=gate, findings=findings,
                                             accept_findings_reason=accept_findings_reason)
    values = {name: getattr(data, name) for name in _SCALARS}
    dates = [d for d in expiries.values() if d is not None]
    values.update(product_codes=list(data.product_codes), commodity_codes=list(data.commodity_codes),
                  expiry_date=min(dates) if dates else None, review_state=state, origin=origin,
                  created_at=now, updated_at=now, version=1)
    if state != ReviewState.PENDING:
        values["reviewed_by"], values["reviewed_at"] = actor, now
    row = CERTIFICATE_DEFAULTS.row(values)
    details = {"origin": origin, **details}
    return PreparedCertificate(row=row, lines=lines, findings=findings, trigger=trigger, created_details=details,
                               accept_reason=accept_findings_reason.strip() if accepted else "",
                               snapshot=snapshot_values(data, lines, state, row["review_reason"]))


class IdSource:
    """Ids for new rows, handed out in order per table, so that rows can be written with their ids given
    (plain bulk statements, no id asked back per row) and everything that names them (digests, audit
    events) can be computed before the write.

    On PostgreSQL (``conn`` given) the ids are drawn from each column's sequence: once drawn they are
    this import's, whatever else is written meanwhile. On SQLite (no sequences) they follow the highest
    ids read beforehand (``highest``, see :func:`highest_ids`): :meth:`still_free` tells, in the write
    transaction (the writer's lock held), whether nobody has inserted rows since."""

    def __init__(self, *, highest: Mapping[str, int] | None = None, conn: Connection | None = None) -> None:
        self._conn = conn
        self._next = {name: top + 1 for name, top in (highest or {}).items()}
        self.first = dict(self._next)

    def take(self, table: Table, n: int) -> list[int]:
        if n <= 0:
            return []
        if self._conn is not None:
            sequence = self._conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"),
                                          {"t": table.name}).scalar_one()
            return list(self._conn.execute(text("SELECT nextval(CAST(:s AS regclass)) FROM generate_series(1, :n)"),
                                           {"s": sequence, "n": n}).scalars())
        start = self._next[table.name]
        self._next[table.name] = start + n
        return list(range(start, start + n))

    @staticmethod
    def table(name: str) -> Table:
        return _TABLES[name]

    @staticmethod
    def tables(*names: str) -> list[tuple[str, Table]]:
        return [(name, _TABLES[name]) for name in names]

    def still_free(self, conn: Connection) -> bool:
        """Whether the ids handed out are still unused (always, when drawn from sequences)."""
        if self._conn is not None:
            return True
        return all(top < self.first[name] for name, top in highest_ids(conn).items())


def highest_ids(conn: Connection) -> dict[str, int]:
    """The highest id of each table a bulk write of certificates inserts into (0 when empty)."""
    return {name: int(conn.execute(select(func.max(table.c.id))).scalar() or 0)
            for name, table in _TABLES.items() if "id" in table.c}


#: The columns of ``audit_event`` a row tuple of :class:`RowEncoder` holds (its number and hashes are
#: put in front when the events are chained, see :func:`~ecms_desktop.services.core.audit.append_encoded`).
EncodedEvent = tuple[tuple[Any, ...], bytes]


class RowEncoder:
    """Rows of the tables a bulk write of certificates fills, as tuples the database driver takes:
    every column in table order, JSON values serialised, each value converted by its column type's own
    bind processor for the dialect (see :class:`~ecms_desktop.services.core.bulk.BulkInsert`). Needs no
    connection, so worker processes encode the rows they prepare."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.columns = _COLUMNS
        self._json = {name: tuple(i for i, column in enumerate(columns)
                                  if isinstance(_TABLES[name].c[column].type.dialect_impl(dialect), JSON))
                      for name, columns in _COLUMNS.items()}
        self._inserts = {name: BulkInsert(None, table, self.columns[name], dialect=dialect)
                         for name, table in _TABLES.items()}
        self._event_insert = BulkInsert(None, cast(Table, AuditEvent.__table__), audit.ENCODED_EVENT_COLUMNS,
                                        dialect=dialect)

    def row(self, table: str, values: Mapping[str, Any]) -> tuple[Any, ...]:
        out = [values[name] for name in self.columns[table]]
        for i in self._json[table]:
            out[i] = _json_text(out[i])
        return self._inserts[table].process(out)

    def event(self, event: audit.PreparedEvent) -> EncodedEvent:
        texts = event.json
        out = [texts[name] if name in texts else event.row[name] for name in audit.ENCODED_EVENT_COLUMNS]
        return self._event_insert.process(out), event.body


def _json_text(value: Any) -> str:
    """A JSON column's value as stored (``None`` is JSON ``null``, as the ORM stores it)."""
    return json_text.compact(value)


@dataclass
class CertificateRows:
    """One new certificate's rows, records' digests and audit events, ready to write."""

    id: int
    rows: dict[str, list[tuple[Any, ...]]]
    events: list[EncodedEvent]
    digests: list[tuple[str, int, str]]       # (record kind, id, digest) computed from the values written
    review_state: str
    errors: bool
    warnings: bool


def certificate_rows(item: PreparedCertificate, encoder: RowEncoder, *, cert_id: int, run_id: int, ack_id: int,
                     customer_id: int, company_id: int, rules_version: str, as_of: dt.date, actor: str,
                     now: dt.datetime) -> CertificateRows:
    """Everything one prepared certificate writes (its document aside): its row and lines, its
    validation run with findings, the acknowledgement of accepted findings (``ack_id`` then used), their
    digests and the audit events ``certificate.created``, ``certificate.validated`` and
    ``certificate.findings_accepted``, as :func:`~ecms_desktop.services.certificates.service.create_certificate`
    writes them."""
    row = item.row
    row["id"], row["customer_id"] = cert_id, customer_id
    for ln in item.lines:
        ln["certificate_id"] = cert_id
    fs = item.findings
    run = _RUN_DEFAULTS.row({
        "id": run_id, "certificate_id": cert_id, "company_id": company_id, "rules_version": rules_version,
        "as_of": as_of, "trigger": item.trigger, "ran_at": now, "ran_by": actor, "fingerprint": fingerprint(fs),
        "error_count": sum(f.severity == "error" for f in fs),
        "warning_count": sum(f.severity == "warning" for f in fs),
        "info_count": sum(f.severity == "info" for f in fs)})
    findings = [{"run_id": run_id, "rule": f.rule, "severity": f.severity, "state": f.state, "field": f.field,
                 "message": f.message, "source": f.source, "confidence": f.confidence} for f in fs]
    rows: dict[str, list[tuple[Any, ...]]] = {
        "certificate": [encoder.row("certificate", row)],
        "coverage_line": [encoder.row("coverage_line", ln) for ln in item.lines],
        "validation_run": [encoder.row("validation_run", run)],
        "validation_finding": [encoder.row("validation_finding", f) for f in findings],
    }
    digests = [("certificate", cert_id, state_digest.certificate_digest(row, item.lines)),
               ("validation_run", run_id, VALIDATION_RUN.digest(run, [findings]))]
    item.snapshot["customer_id"] = customer_id
    validated = audit_payload_of(run, fs)
    validated["as_of"] = as_of.isoformat()
    new_events = [
        audit.NewEvent("certificate.created", "certificate", cert_id, after=item.snapshot,
                       details=item.created_details, company_id=company_id, certificate_id=cert_id),
        audit.NewEvent("certificate.validated", "certificate", cert_id, company_id=company_id,
                       certificate_id=cert_id, after=validated)]
    if item.accept_reason:
        listed = acknowledged_findings([f for f in fs if f.severity in ("error", "warning")], with_severity=True)
        ack = _ACK_DEFAULTS.row({"id": ack_id, "certificate_id": cert_id, "run_id": run_id, "acknowledged_by": actor,
                                 "acknowledged_at": now, "note": item.accept_reason, "warnings": listed})
        rows["warning_acknowledgement"] = [encoder.row("warning_acknowledgement", ack)]
        digests.append(("warning_acknowledgement", ack_id, _ACK_KIND.digest(ack)))
        new_events.append(audit.NewEvent("certificate.findings_accepted", "certificate", cert_id,
                                         company_id=company_id, certificate_id=cert_id,
                                         after={"run_id": run_id, "acknowledgement_id": ack_id, "findings": listed,
                                                "note": item.accept_reason}))
    # Every value above is JSON-safe as built (the snapshot and payloads), so it is not copied again.
    events = [encoder.event(audit.prepare_event(e, actor=actor, at=now, json_safe=True)) for e in new_events]
    return CertificateRows(cert_id, rows, events, digests, row["review_state"],
                           any(f.severity == "error" for f in fs), any(f.severity == "warning" for f in fs))


@dataclass
class WriteSet:
    """Everything a bulk write inserts, in order: rows per table, audit events, records' digests."""

    rows: dict[str, list[tuple[Any, ...]]] = field(default_factory=lambda: {name: [] for name in _ORDER})
    events: list[EncodedEvent] = field(default_factory=list)
    digests: dict[str, dict[int, str]] = field(default_factory=dict)
    touched: dict[str, list[int]] = field(default_factory=dict)
    updates: list[tuple[int, str]] = field(default_factory=list)   # (customer id, e-mail filled in)
    #: New certificates stored already decided (approved in another system): an approver's decision.
    decided: int = 0

    def add_rows(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        self.rows[table].extend(rows)

    def add(self, part: CertificateRows) -> None:
        for table, rows in part.rows.items():
            self.rows[table].extend(rows)
        self.events.extend(part.events)
        if part.review_state != "pending":
            self.decided += 1
        for kind, key, digest in part.digests:
            self.digests.setdefault(kind, {})[key] = digest

    def touch(self, kind: str, key: int) -> None:
        self.touched.setdefault(kind, []).append(key)


def write_set(session: Session, ws: WriteSet, *, progress: Progress | None = None,
              cancel: CancelCheck | None = None) -> int:
    """Execute a :class:`WriteSet` in the caller's transaction: the rows (plain tuples through the
    driver), the customers' e-mails, the records' digests and the audit events, chained from the head
    (locked). Returns the number of the last event appended."""
    if ws.decided:
        people.require(session, Permission.APPROVE, f"store {ws.decided} imported certificate(s) as approved "
                       "(import them as pending for an approver to review, or ask an approver to import them)")
    conn = session.connection()
    total = sum(len(r) for r in ws.rows.values())
    done = 0
    for name in _ORDER:
        rows = ws.rows[name]
        if not rows:
            continue
        insert_ = BulkInsert(conn, _TABLES[name], _COLUMNS[name])
        for start in range(0, len(rows), _BATCH):
            if cancel is not None and cancel():
                raise Cancelled("Import cancelled; nothing was imported.")
            if progress is not None:
                progress(done, total, "Writing")
            insert_.execute_processed(rows[start:start + _BATCH])
            done += len(rows[start:start + _BATCH])
    customers = _TABLES["customer"]
    for customer_id, email in ws.updates:
        session.execute(update(customers).where(customers.c.id == customer_id, customers.c.email == "")
                        .values(email=email))
    for kind, digests in ws.digests.items():
        state_digest.touch(session, kind, digests)
    for kind, keys in ws.touched.items():
        if keys:
            state_digest.touch(session, kind, keys)
    if progress is not None:
        progress(total, total, "Writing the audit trail")
    return audit.append_encoded(session, ws.events)
