"""Bulk import of existing certificates from .csv or .xlsx (migration from spreadsheets or another system).

Every row is checked first, documents included; if any row is bad nothing is imported and every
bad row is reported with its row number, column and reason. With ``skip_invalid`` the good rows
are imported and the bad ones reported. A known form used where the state does not accept it is
imported: that is a finding for the validation engine, not an import error - but such a
certificate never becomes approved silently: a row asked for as approved (the default for migrated
records) passes the same approval gate as at the desk, and lands pending review with its findings
unless the user accepts the findings explicitly, with a reason recorded per certificate.

A ``document`` is read only from inside the import file's folder (or the folder the user names),
as a regular file within the size limit, once however many rows name it.

A large import does not lock the other desks out: every row is checked and every certificate decided
and turned into what it writes before the write begins (in worker processes side by side for a large
file, see :mod:`~ecms_desktop.services.certificates.import_rows`); the write is then one short transaction of bulk
statements. What other desks change meanwhile is taken into account: if the company's policies or the
customers the file names changed, the rows are checked again; if only other records changed, the
duplicates are checked again before the write.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ecms_desktop.models import Certificate, Company, DocumentFile, customer_number_key, utcnow
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.services.certificates.bulk import (
    CUSTOMER_DEFAULTS,
    DOCUMENT_DEFAULTS,
    FILE_DEFAULTS,
    IdSource,
    RowEncoder,
    WriteSet,
    highest_ids,
    write_set,
)
from ecms_desktop.services.certificates.import_rows import (
    PARALLEL_MIN_ROWS,
    KnownCustomer,
    StagedRow,
    StageJob,
    stage_chunks,
)
from ecms_desktop.services.certificates.service import CompanyExpiryPolicy, ExpiryContext
from ecms_desktop.services.core import audit, people
from ecms_desktop.services.core.bulk import SqliteBulkCache, paused_gc
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import ConflictError, DocumentError, NotFoundError, Problem, ValidationError
from ecms_desktop.services.core.people import Permission
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.core.tabular import Table, read_table
from ecms_desktop.services.customers.service import customer_keys, customer_problems
from ecms_desktop.services.documents.storage import CheckedFile, check_file
from ecms_desktop.services.validation.engine import seller_of
from ecms_desktop.services.validation.runs import permit_max_age

REQUIRED_COLUMNS = ("customer_number", "customer_name", "customer_email", "state", "form", "certificate_number",
                    "exempt_reason", "purchaser_tax_id", "certificate_type", "po_number", "signed_date",
                    "effective_date", "expiry_date", "review_status", "document")
OPTIONAL_COLUMNS = ("product_codes", "commodity_codes", "exempt_percent", "exempt_amount", "currency",
                    "purchaser_name", "purchaser_address", "purchaser_ein", "business_type", "business_description",
                    "property_description", "exemption_detail", "signed", "signer_name", "signer_title",
                    "expiry_override_reason", "notes")



@dataclass
class ImportResult:
    """What an import did, and what the validation found in what it imported."""

    imported: int = 0
    customers_created: int = 0
    documents_stored: int = 0
    skipped_rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    certificate_ids: list[int] = field(default_factory=list)
    #: Imported certificates whose validation found at least one error / at least one warning.
    with_errors: int = 0
    with_warnings: int = 0
    #: Rows asked for as approved that were stored pending review because of their findings.
    held_for_review: int = 0
    #: Rows stored approved although validation found errors or warnings, accepted with the reason.
    accepted_with_findings: int = 0
    #: Seconds the write took: how long the database's writer and the audit trail were held.
    write_seconds: float = 0.0


class _Documents:
    """The documents an import names: each resolved inside one folder, read and probed once.

    A path that leads outside the folder (``../``, an absolute path elsewhere, a symbolic link that
    points out) is refused before anything is opened: a file received from someone else must not pull
    other files of the user into the database and on into an audit pack. The same file named by many
    rows is read once, and files with the same content share one copy in memory."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self._by_path: dict[Path, CheckedFile | DocumentError] = {}
        self._by_hash: dict[str, CheckedFile] = {}

    def get(self, text: str) -> CheckedFile:
        """The checked file a row names; DocumentError says what is wrong."""
        if "\x00" in text:
            raise DocumentError(f"{text!r}: the path contains a NUL character")
        try:
            path = (self.folder / text).resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a loop of symbolic links
            raise DocumentError(f"{text}: the path cannot be followed ({exc})") from exc
        if not path.is_relative_to(self.folder):
            raise DocumentError(f"{text}: is outside the folder {self.folder}; documents are read only from "
                                "the import file's folder (or the folder given with --documents)")
        found = self._by_path.get(path)
        if found is None:
            try:
                checked = check_file(path, display_name=text)
            except DocumentError as exc:
                found = exc
            else:
                same = self._by_hash.setdefault(checked.sha256, checked)
                found = checked if same is checked else dataclasses.replace(same, name=checked.name)
            self._by_path[path] = found
        if isinstance(found, DocumentError):
            raise found
        return found if found.name == text else dataclasses.replace(found, name=text)

    def probe(self, text: str) -> CheckedFile | str:
        """The checked file (without its bytes, for a worker process) or what is wrong with it."""
        try:
            return dataclasses.replace(self.get(text), data=b"")
        except DocumentError as exc:
            return str(exc)


class _Restage(Exception):
    """What the rows were checked against changed before the write began: check them again."""


@dataclass(frozen=True)
class _Context:
    """What the checking of an import's rows read from the database (all of it copied, none of it live)."""

    head: int
    known: dict[str, KnownCustomer]
    existing: set[tuple[int, str, str, object]]
    seller: tuple[str, str]
    expiry_policies: dict[tuple[str, str], CompanyExpiryPolicy]
    permit_max_age: int
    highest: dict[str, int]

    @classmethod
    def read(cls, s: Session, rules: RulesPack, company_id: int) -> _Context:
        company = s.get(Company, company_id)
        if company is None:
            raise NotFoundError(f"There is no company {company_id}.")
        known = {key: KnownCustomer(c.id, c.legal_name, c.email) for key, c in customer_keys(s, company_id).items()}
        existing: set[tuple[int, str, str, object]] = {(cid, form, num, eff) for cid, form, num, eff in s.execute(
            select(Certificate.customer_id, Certificate.form_code, Certificate.certificate_number,
                   Certificate.effective_date).where(Certificate.company_id == company_id,
                                                     Certificate.certificate_number != ""))}
        return cls(head=audit.head_seq(s), known=known, existing=existing, seller=seller_of(company),
                   expiry_policies=ExpiryContext.load(s, rules, company_id).overrides,
                   permit_max_age=permit_max_age(s, company_id), highest=highest_ids(s.connection()))

    def same_for(self, other: _Context, keys: set[str]) -> bool:
        """Whether the certificates of these customers would be decided the same under ``other``."""
        return (self.seller == other.seller and self.permit_max_age == other.permit_max_age
                and self.expiry_policies == other.expiry_policies
                and {k: self.known.get(k) for k in keys} == {k: other.known.get(k) for k in keys})


@dataclass
class _Staged:
    context: _Context
    rows: list[StagedRow]                     # the certificates to write, in file order
    problems: list[Problem]
    new_customers: dict[str, tuple[int, str]]  # number key -> (reserved id, legal name)
    ids: IdSource


#: How many times an import checks its rows again when what they were checked against changed before
#: its write could begin (a colleague changed the company's expiry policy, a customer, or stored
#: certificates under the ids this import had counted on, meanwhile).
_ATTEMPTS = 3


class CertificateImporter:
    """Imports certificates for one company."""

    def __init__(self, db: Database, rules: RulesPack | None = None) -> None:
        self.db = db
        self.rules = rules or load_rules_pack()

    def import_file(self, path: Path, *, company_id: int, skip_invalid: bool = False,
                    as_of: dt.date | None = None, documents_dir: Path | None = None,
                    accept_findings_reason: str = "", workers: int | None = None,
                    progress: Progress | None = None, cancel: CancelCheck | None = None) -> ImportResult:
        """Check every row, then store them all in one transaction (or nothing).

        Everything is decided before the write begins (rows checked, documents read, expiries computed,
        certificates validated, the approval gate applied, rows and audit events built), so the write
        itself is short and holds the database's writer and the audit trail for seconds, not minutes.

        ``documents_dir``: the folder ``document`` paths are read from (default: the import file's).
        ``accept_findings_reason``: store rows asked for as approved as approved even when validation
        finds errors or warnings, recording this reason per certificate with who and when; without it
        such rows are stored pending review. ``workers``: processes that check rows side by side
        (default: one per CPU, up to 4, for files of
        :data:`~ecms_desktop.services.certificates.import_rows.PARALLEL_MIN_ROWS` rows or more; 0: all in this
        process)."""
        day = as_of or dt.date.today()
        folder = documents_dir if documents_dir is not None else path.parent
        documents: _Documents | None = None
        with paused_gc():  # hundreds of thousands of small objects, no reference cycles among them
            for _attempt in range(_ATTEMPTS):
                # Read for each attempt, and let go of before the write: 100,000 parsed rows are ~200 MB.
                table = read_table(path, required=REQUIRED_COLUMNS, optional=OPTIONAL_COLUMNS)
                name, source, total = table.name, table.source, len(table.rows)
                if not total:
                    raise ValidationError(f"{name}: there are no data rows.")
                if documents is None:
                    if not folder.is_dir():
                        raise ValidationError(f"The documents folder {folder} does not exist.")
                    documents = _Documents(folder)
                if workers is None:
                    workers = min(os.cpu_count() or 1, 4) if total >= PARALLEL_MIN_ROWS else 0
                staged = self._stage(table, documents, company_id, day, accept_findings_reason, workers, progress,
                                     cancel)
                del table
                bad_rows = len({p.row for p in staged.problems})
                if staged.problems and not skip_invalid:
                    raise ValidationError(f"{name}: {bad_rows} of {total} rows have problems; nothing was imported.",
                                          staged.problems)
                result = ImportResult(skipped_rows=bad_rows, problems=staged.problems)
                if not staged.rows:
                    return result
                try:
                    started = time.perf_counter()
                    with self.db.transaction() as s, SqliteBulkCache(s.connection()):
                        self._write(s, name, staged, company_id, skip_invalid, documents, result, progress, cancel)
                        audit.record(s, "import.certificates", "import", path.name, company_id=company_id,
                                     details={"file": path.name, "source": source, "rows": total,
                                              "imported": result.imported, "skipped_rows": result.skipped_rows,
                                              "customers_created": result.customers_created,
                                              "with_errors": result.with_errors,
                                              "with_warnings": result.with_warnings,
                                              "held_for_review": result.held_for_review,
                                              "accepted_with_findings": result.accepted_with_findings,
                                              "accept_findings_reason": accept_findings_reason.strip()})
                    result.write_seconds = time.perf_counter() - started
                    return result
                except _Restage:
                    continue
                except IntegrityError as exc:
                    raise ConflictError(f"{name}: another import or desk stored the same records while this one "
                                        "ran; nothing was imported. Run the import again.") from exc
        raise ConflictError(f"{path.name}: other desks kept changing the company's settings, its customers or "
                            "its certificates while the rows were checked; nothing was imported. Run the import "
                            "again.")

    # -- staging ----------------------------------------------------------------------------------

    def _stage(self, table: Table, documents: _Documents, company_id: int, day: dt.date,
               accept_findings_reason: str, workers: int, progress: Progress | None,
               cancel: CancelCheck | None) -> _Staged:
        """Check every row and decide every certificate, reading the database but writing nothing."""
        with self.db.reader() as s:
            context = _Context.read(s, self.rules, company_id)
        known = context.known
        # What spans rows: the first row that names each new customer (its name is the customer's).
        first_named: dict[str, int] = {}
        new_names: dict[str, str] = {}
        for i, row in enumerate(table.rows):
            number, name = row.text("customer_number"), row.text("customer_name")
            if not number or not name:
                continue
            key = customer_number_key(number)
            if key in known or key in first_named:
                continue
            if any(p.column == "customer_number" for p in customer_problems(number, name, row.text("customer_email"))):
                continue
            first_named[key], new_names[key] = i, name.strip()
        probed = {text: documents.probe(text) for text in dict.fromkeys(
            row.text("document") for row in table.rows) if text}
        n = len(table.rows)
        if self.db.dialect == "postgresql":  # ids drawn from the sequences now are this import's
            with self.db.write_connection() as conn:
                ids = IdSource(conn=conn)
                reserved = self._reserve(ids, n, len(new_names))
        else:
            ids = IdSource(highest=context.highest)
            reserved = self._reserve(ids, n, len(new_names))
        new_customers = {key: (cid, new_names[key]) for key, cid in zip(new_names, reserved["customer"], strict=True)}
        customer_ids = {key: c.id for key, c in known.items()} | {k: v[0] for k, v in new_customers.items()}
        actor, now = self.db.actor().name, utcnow()
        size = max(1000, math.ceil(n / (4 * workers))) if workers > 0 else n
        jobs = [StageJob(
            file_name=table.name, rows=table.rows[start:start + size], first_index=start, company_id=company_id,
            known=known, first_named=first_named, customer_ids=customer_ids, new_names=new_names,
            documents=probed, seller=context.seller, expiry_policies=context.expiry_policies,
            permit_max_age=context.permit_max_age, as_of=day, accept_findings_reason=accept_findings_reason,
            actor=actor, now=now, ids={name: got[start:start + size] for name, got in reserved.items()
                                       if name != "customer"},
            dialect=type(self.db.engine.dialect)) for start in range(0, n, size)]
        results = stage_chunks(jobs, self.rules, workers=workers if len(jobs) > 1 else 0, total=n,
                               progress=progress, cancel=cancel)
        problems = [p for r in results for p in r.problems]
        rows = self._without_duplicates(table.name, [row for r in results for row in r.rows], known,
                                        context.existing, problems)
        return _Staged(context, rows, problems, new_customers, ids)

    @staticmethod
    def _reserve(ids: IdSource, rows: int, new_customers: int) -> dict[str, list[int]]:
        """Ids for every row's certificate, validation run and (if its findings are accepted)
        acknowledgement, and for the new customers: ids not used (rows with problems, customers no
        kept row names) are left out."""
        return {name: ids.take(table, rows) for name, table in ids.tables(
            "certificate", "validation_run", "warning_acknowledgement")} | {
            "customer": ids.take(ids.table("customer"), new_customers)}

    @staticmethod
    def _without_duplicates(name: str, rows: list[StagedRow], known: dict[str, KnownCustomer],
                            existing: set[tuple[int, str, str, object]], problems: list[Problem], *,
                            meanwhile: bool = False) -> list[StagedRow]:
        """The rows that are neither stored already nor repeat an earlier row (those become problems)."""
        kept: list[StagedRow] = []
        seen_in_file: dict[tuple[str, str, str, object], int] = {}
        for item in rows:
            key = item.duplicate_key
            if key is None:
                kept.append(item)
                continue
            customer = known.get(key[0])
            if customer is not None and (customer.id, key[1], key[2], key[3]) in existing:
                problems.append(Problem(f"certificate {key[2]} of customer {item.customer_number} ({key[1]}, "
                                        f"effective {key[3]}) is already stored"
                                        + (" (imported by someone else meanwhile)" if meanwhile else ""),
                                        file=name, row=item.row, column="certificate_number"))
            elif key in seen_in_file:
                problems.append(Problem(f"duplicates row {seen_in_file[key]} of this file", file=name,
                                        row=item.row, column="certificate_number"))
            else:
                seen_in_file[key] = item.row
                kept.append(item)
        return kept

    # -- storing ----------------------------------------------------------------------------------

    def _write(self, s: Session, name: str, staged: _Staged, company_id: int, skip_invalid: bool,
               documents: _Documents, result: ImportResult, progress: Progress | None,
               cancel: CancelCheck | None) -> None:
        """The short write of what the staging decided, in the caller's transaction."""
        # Serialised with every other writer from here on. If anyone wrote since the rows were checked,
        # what they were decided against is read again: if it changed for these rows, or the ids they
        # counted on were taken, they are checked again (outside this transaction); else only the
        # duplicates are checked again (another import of the same file, say).
        context, rows = staged.context, staged.rows
        if audit.head_seq(s, lock=True) != context.head:
            now_context = _Context.read(s, self.rules, company_id)
            if (not context.same_for(now_context, {r.customer_key for r in rows})
                    or not staged.ids.still_free(s.connection())):
                raise _Restage
            late: list[Problem] = []
            rows = self._without_duplicates(name, rows, now_context.known, now_context.existing, late,
                                            meanwhile=True)
            if late and not skip_invalid:
                raise ValidationError(f"{name}: {len({p.row for p in late})} rows were imported by "
                                      "someone else meanwhile; nothing was imported.", late)
            result.problems.extend(late)
            result.skipped_rows = len({p.row for p in result.problems})
            if not rows:
                return
        decided = sorted({item.written.review_state for item in rows} - {"pending"})
        if decided:  # storing a decision is an approver's (as at the desk); the gate has held the rest pending
            people.require(s, Permission.APPROVE, f"import certificates as {' and '.join(decided)}")
        ws = self._write_set(s, rows, staged, company_id, documents)
        write_set(s, ws, progress=progress, cancel=cancel)
        result.customers_created = len(ws.rows["customer"])
        result.documents_stored = len(ws.rows["document"])
        for item in rows:
            written = item.written
            result.certificate_ids.append(written.id)
            result.imported += 1
            result.with_errors += int(written.errors)
            result.with_warnings += int(written.warnings)
            if item.asked_state == "approved" and written.review_state != "approved":
                result.held_for_review += 1
            if written.review_state == "approved" and (written.errors or written.warnings):
                result.accepted_with_findings += 1

    def _write_set(self, s: Session, rows: list[StagedRow], staged: _Staged, company_id: int,
                   documents: _Documents) -> WriteSet:
        """Everything to insert, in order: the new customers (and e-mails filled in), then each
        certificate with its document."""
        encoder = RowEncoder(s.get_bind().dialect)
        actor, now = people.actor_name(s), utcnow()
        ws = WriteSet()

        def event(new: audit.NewEvent) -> None:
            ws.events.append(encoder.event(audit.prepare_event(new, actor=actor, at=now, json_safe=True)))

        emails: dict[str, str] = {}
        created: dict[str, str] = {}  # number key -> the number as the first row gives it
        for item in rows:
            key, email = item.customer_key, item.customer_email.strip()
            if key in staged.new_customers:
                if key not in created:
                    created[key] = item.customer_number.strip()
                    emails[key] = email
                elif email and not emails[key]:
                    emails[key] = email
            elif email and not staged.context.known[key].email and key not in emails:
                emails[key] = email
        for key, number in created.items():
            cid, name = staged.new_customers[key]
            ws.add_rows("customer", [encoder.row("customer", CUSTOMER_DEFAULTS.row({
                "id": cid, "company_id": company_id, "number": number, "number_key": key, "legal_name": name,
                "email": emails[key], "created_at": now}))])
            ws.touch("customer", cid)
            event(audit.NewEvent("customer.created", "customer", cid, company_id=company_id,
                                 after={"number": number, "legal_name": name, "email": emails[key]}))
        for key, email in emails.items():
            if key in created:
                continue
            cid = staged.context.known[key].id
            ws.updates.append((cid, email))
            ws.touch("customer", cid)
            event(audit.NewEvent("customer.edited", "customer", cid, company_id=company_id,
                                 before={"email": ""}, after={"email": email}))
        hashes = sorted({documents.get(r.document).sha256 for r in rows if r.document is not None})
        files_seen = _stored_files(s, hashes)
        with_documents = [r for r in rows if r.document is not None]
        doc_ids = iter(IdSource(conn=s.connection()).take(IdSource.table("document"), len(with_documents))
                       if s.get_bind().dialect.name == "postgresql"
                       else IdSource(highest=highest_ids(s.connection())).take(IdSource.table("document"),
                                                                                len(with_documents)))
        for item in rows:
            ws.add(item.written)
            if item.document is None:
                continue
            doc = documents.get(item.document)
            doc_id = next(doc_ids)
            if doc.sha256 not in files_seen:
                ws.add_rows("document_file", [encoder.row("document_file", FILE_DEFAULTS.row({
                    "sha256": doc.sha256, "size": len(doc.data), "media_type": doc.media_type,
                    "page_count": doc.page_count, "data": doc.data, "created_at": now}))])
            ws.add_rows("document", [encoder.row("document", DOCUMENT_DEFAULTS.row({
                "id": doc_id, "certificate_id": item.written.id, "sha256": doc.sha256,
                "original_name": doc.name[:255], "received_via": "import", "received_at": now, "sent_at": None,
                "received_by": actor}))])
            ws.touch("document", doc_id)
            event(audit.NewEvent("document.received", "document", doc_id, company_id=company_id,
                                 certificate_id=item.written.id, after=audit.jsonable({
                                     "sha256": doc.sha256, "original_name": doc.name[:255],
                                     "media_type": doc.media_type, "pages": doc.page_count, "size": len(doc.data),
                                     "received_via": "import", "received_at": now, "sent_at": None}),
                                 details={"already_stored": doc.sha256 in files_seen}))
            files_seen.add(doc.sha256)
        return ws


def _stored_files(s: Session, hashes: list[str]) -> set[str]:
    """Which of these document SHA-256 are stored already."""
    found: set[str] = set()
    for start in range(0, len(hashes), 500):
        found.update(s.execute(select(DocumentFile.sha256).where(DocumentFile.sha256.in_(hashes[start:start + 500])))
                     .scalars())
    return found
