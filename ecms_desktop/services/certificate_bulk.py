"""Many new certificates at once: decided in memory first, then written in one short transaction.

An import of 100,000 certificates must neither take minutes nor hold the database's writer (and the
audit trail's head) for minutes while every desk waits. So the work is split in three:

1. :func:`prepare_certificate`, outside any transaction: every value of the certificate row and of its
   coverage lines (expiries computed as :func:`~ecms_desktop.services.certificate_service.apply_expiry`
   does), the validation findings (as :func:`~ecms_desktop.services.validation_service.evaluate_certificate`
   finds them for a certificate not stored yet), and the approval gate's decision (as
   :func:`~ecms_desktop.services.certificate_service.create_certificate` decides it). Pure.
2. :func:`plan_certificates`, still before the write: ids (:class:`IdSource`), every row of the
   certificates, their lines, validation runs with findings, acknowledgements of accepted findings,
   documents and new customers; the records' digests (see :mod:`~ecms_desktop.services.state_digest`);
   and the audit events, prepared up to their numbers (see :func:`~ecms_desktop.services.audit.prepare_event`).
3. :func:`write_plan`, in the write transaction: bulk statements, and the events chained from the
   head (one SHA-256 each).

The rows and events written are those :func:`~ecms_desktop.services.certificate_service.create_certificate`
writes for the same certificate (the customers created come first); ``tests/services/test_certificate_bulk.py``
compares the two paths.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, cast

from sqlalchemy import Connection, Table, func, insert, select, text, update
from sqlalchemy.orm import Session

from ecms_desktop.errors import Cancelled
from ecms_desktop.models import Certificate, CoverageLine, Customer, Document, DocumentFile, ReviewState
from ecms_desktop.models.validation import Finding as FindingRow
from ecms_desktop.models.validation import ValidationRun, WarningAcknowledgement
from ecms_desktop.services import audit, state_digest
from ecms_desktop.services.certificate_service import (
    CertificateInput,
    ExpiryContext,
    gate_decision,
    snapshot_values,
)
from ecms_desktop.services.document_service import CheckedFile
from ecms_desktop.services.state_digest import VALIDATION_RUN
from ecms_desktop.services.validation_service import (
    Finding,
    ValidationEngine,
    acknowledged_findings,
    audit_payload_of,
    fingerprint,
    subject_of_new,
)

Progress = Callable[[int, int, str], None]
CancelCheck = Callable[[], bool]

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
_BATCH = 5000


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
    document: CheckedFile | None = None
    #: Set by :func:`plan_certificates`: the certificate's id and its validation run's row.
    id: int | None = None
    run: dict[str, Any] | None = None


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
_LINE_DEFAULTS = _Defaults(_LINE)
_RUN_DEFAULTS = _Defaults(_RUN)
_ACK_DEFAULTS = _Defaults(_ACK)
_DOCUMENT_DEFAULTS = _Defaults(cast(Table, Document.__table__))
_FILE_DEFAULTS = _Defaults(cast(Table, DocumentFile.__table__))


def prepare_certificate(engine: ValidationEngine, data: CertificateInput, *, ctx: ExpiryContext,
                        customer_name: str, seller: tuple[str, str], permit_max_age_days: int, origin: str,
                        review_state: str, as_of: dt.date, trigger: str, gate: bool, accept_findings_reason: str,
                        actor: str, now: dt.datetime) -> PreparedCertificate:
    """Decide everything about one new certificate (``data`` normalised and checked, as
    :func:`~ecms_desktop.services.certificate_service.check_input` accepts it) without touching the
    database: what :func:`~ecms_desktop.services.certificate_service.create_certificate` would store."""
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

    def still_free(self, conn: Connection) -> bool:
        """Whether the ids handed out are still unused (always, when drawn from sequences)."""
        if self._conn is not None:
            return True
        return all(top < self.first[name] for name, top in highest_ids(conn).items())


def highest_ids(conn: Connection) -> dict[str, int]:
    """The highest id of each table a bulk write of certificates inserts into (0 when empty)."""
    return {name: int(conn.execute(select(func.max(table.c.id))).scalar() or 0)
            for name, table in _TABLES.items() if "id" in table.c}


@dataclass
class NewCustomer:
    """A customer an import creates (its id from the :class:`IdSource`)."""

    number: str
    number_key: str
    legal_name: str
    email: str


@dataclass
class BulkPlan:
    """Every row, digest and audit event of a bulk write, computed before the write (see
    :func:`plan_certificates`); :func:`write_plan` only executes it."""

    rows: dict[str, list[dict[str, Any]]]           # table name -> rows, in the order they are inserted
    digests: dict[str, dict[int, str]]              # record kind -> id -> digest, computed here
    touched: dict[str, list[int]]                   # record kind -> ids digested from the database at commit
    events: list[audit.PreparedEvent]
    customer_ids: dict[str, int]                    # number key -> id, of every customer the rows name
    updates: list[tuple[int, str]] = field(default_factory=list)  # (customer id, e-mail filled in)
    documents: int = 0
    ids: IdSource | None = None


def plan_certificates(items: Sequence[PreparedCertificate], customer_keys: Sequence[str], *,
                      known_customers: Mapping[str, int], new_customers: Mapping[str, NewCustomer],
                      emails: Mapping[str, str], company_id: int, ids: IdSource, stored_files: set[str],
                      rules_version: str, as_of: dt.date, received_via: str, actor: str, now: dt.datetime,
                      cancel: CancelCheck | None = None) -> BulkPlan:
    """Compute the bulk write of prepared certificates (``customer_keys[i]`` the customer number key of
    ``items[i]``, either known or new) without writing: ids, rows, the records' digests and the audit
    events in the order the one-by-one path writes them (the customers created and edited first).
    ``stored_files``: which of the documents' SHA-256 are stored already."""
    customer_ids = dict(known_customers)
    events: list[audit.PreparedEvent] = []

    def event(new: audit.NewEvent) -> None:
        events.append(audit.prepare_event(new, actor=actor, at=now, json_safe=True))

    new_rows: list[dict[str, Any]] = []
    for customer, cid in zip(new_customers.values(), ids.take(_CUSTOMER, len(new_customers)), strict=True):
        customer_ids[customer.number_key] = cid
        new_rows.append({"id": cid, "company_id": company_id, "number": customer.number,
                         "number_key": customer.number_key, "legal_name": customer.legal_name,
                         "email": customer.email, "created_at": now})
        event(audit.NewEvent("customer.created", "customer", cid, company_id=company_id,
                             after={"number": customer.number, "legal_name": customer.legal_name,
                                    "email": customer.email}))
    updates: list[tuple[int, str]] = []
    for key, email in emails.items():
        updates.append((known_customers[key], email))
        event(audit.NewEvent("customer.edited", "customer", known_customers[key], company_id=company_id,
                             before={"email": ""}, after={"email": email}))

    cert_ids = ids.take(_CERTIFICATE, len(items))
    run_ids = ids.take(_RUN, len(items))
    accepted = [item for item in items if item.accept_reason]
    ack_ids = iter(ids.take(_ACK, len(accepted)))
    with_docs = [item for item in items if item.document is not None]
    doc_ids = iter(ids.take(_DOCUMENT, len(with_docs)))
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in _TABLES}
    rows["customer"] = new_rows
    cert_digests: dict[int, str] = {}
    run_digests: dict[int, str] = {}
    files_seen = set(stored_files)
    for n, (item, key, cid, rid) in enumerate(zip(items, customer_keys, cert_ids, run_ids, strict=True)):
        if cancel is not None and n % 1000 == 0 and cancel():
            raise Cancelled("Import cancelled; nothing was imported.")
        customer_id = customer_ids[key]
        item.id = cid
        row = {**item.row, "id": cid, "customer_id": customer_id}
        rows["certificate"].append(row)
        lines = [{**ln, "certificate_id": cid} for ln in item.lines]
        rows["coverage_line"].extend(lines)
        cert_digests[cid] = state_digest.certificate_digest(row, item.lines)
        fs = item.findings
        run = _RUN_DEFAULTS.row({
            "id": rid, "certificate_id": cid, "company_id": company_id, "rules_version": rules_version,
            "as_of": as_of, "trigger": item.trigger, "ran_at": now, "ran_by": actor, "fingerprint": fingerprint(fs),
            "error_count": sum(f.severity == "error" for f in fs),
            "warning_count": sum(f.severity == "warning" for f in fs),
            "info_count": sum(f.severity == "info" for f in fs)})
        item.run = run
        rows["validation_run"].append(run)
        mine = [{"run_id": rid, "rule": f.rule, "severity": f.severity, "state": f.state, "field": f.field,
                 "message": f.message, "source": f.source, "confidence": f.confidence} for f in fs]
        rows["validation_finding"].extend(mine)
        run_digests[rid] = VALIDATION_RUN.digest(run, [mine])

        event(audit.NewEvent("certificate.created", "certificate", cid, after={**item.snapshot,
                                                                              "customer_id": customer_id},
                             details=item.created_details, company_id=company_id, certificate_id=cid))
        validated = audit_payload_of(run, fs)
        validated["as_of"] = as_of.isoformat()
        event(audit.NewEvent("certificate.validated", "certificate", cid, company_id=company_id, certificate_id=cid,
                             after=validated))
        if item.accept_reason:
            ack_id = next(ack_ids)
            listed = acknowledged_findings([f for f in fs if f.severity in ("error", "warning")], with_severity=True)
            rows["warning_acknowledgement"].append(_ACK_DEFAULTS.row({
                "id": ack_id, "certificate_id": cid, "run_id": rid, "acknowledged_by": actor, "acknowledged_at": now,
                "note": item.accept_reason, "warnings": listed}))
            event(audit.NewEvent("certificate.findings_accepted", "certificate", cid, company_id=company_id,
                                 certificate_id=cid, after={"run_id": rid, "acknowledgement_id": ack_id,
                                                            "findings": listed, "note": item.accept_reason}))
        doc = item.document
        if doc is not None:
            doc_id = next(doc_ids)
            if doc.sha256 not in files_seen:
                rows["document_file"].append(_FILE_DEFAULTS.row({
                    "sha256": doc.sha256, "size": len(doc.data), "media_type": doc.media_type,
                    "page_count": doc.page_count, "data": doc.data, "created_at": now}))
            rows["document"].append(_DOCUMENT_DEFAULTS.row({
                "id": doc_id, "certificate_id": cid, "sha256": doc.sha256, "original_name": doc.name[:255],
                "received_via": received_via, "received_at": now, "sent_at": None, "received_by": actor}))
            event(audit.NewEvent("document.received", "document", doc_id, company_id=company_id, certificate_id=cid,
                                 after=audit.jsonable({
                                     "sha256": doc.sha256, "original_name": doc.name[:255],
                                     "media_type": doc.media_type, "pages": doc.page_count, "size": len(doc.data),
                                     "received_via": received_via, "received_at": now, "sent_at": None}),
                                 details={"already_stored": doc.sha256 in files_seen}))
            files_seen.add(doc.sha256)
    touched = {"customer": [r["id"] for r in new_rows] + [cid for cid, _ in updates],
               "warning_acknowledgement": [r["id"] for r in rows["warning_acknowledgement"]],
               "document": [r["id"] for r in rows["document"]]}
    return BulkPlan(rows=rows, digests={"certificate": cert_digests, "validation_run": run_digests},
                    touched=touched, events=events, customer_ids=customer_ids, updates=updates,
                    documents=len(rows["document"]), ids=ids)


def write_plan(session: Session, plan: BulkPlan, *, progress: Progress | None = None,
               cancel: CancelCheck | None = None) -> int:
    """Execute a :class:`BulkPlan` in the caller's transaction: the rows, the customers' e-mails, the
    records' digests and the audit events (chained from the head, locked). Returns the number of the
    last event appended."""
    total = sum(len(r) for r in plan.rows.values())
    done = 0
    for name in _ORDER:
        rows = plan.rows[name]
        for start in range(0, len(rows), _BATCH):
            if cancel is not None and cancel():
                raise Cancelled("Import cancelled; nothing was imported.")
            if progress is not None:
                progress(done, total, "Writing")
            session.execute(insert(_TABLES[name]), rows[start:start + _BATCH])
            done += len(rows[start:start + _BATCH])
    for customer_id, email in plan.updates:
        session.execute(update(_TABLES["customer"]).where(_TABLES["customer"].c.id == customer_id,
                                                         _TABLES["customer"].c.email == "").values(email=email))
    for kind, digests in plan.digests.items():
        state_digest.touch(session, kind, digests)
    for kind, keys in plan.touched.items():
        if keys:
            state_digest.touch(session, kind, keys)
    if progress is not None:
        progress(total, total, "Writing the audit trail")
    return audit.append_prepared(session, plan.events)
