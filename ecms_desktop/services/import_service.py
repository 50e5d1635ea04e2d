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
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ecms_desktop.errors import Cancelled, ConflictError, DocumentError, NotFoundError, Problem, ValidationError
from ecms_desktop.models import (
    Certificate,
    CertificateType,
    Company,
    Customer,
    DocumentFile,
    ExemptReason,
    ReviewState,
    customer_number_key,
    utcnow,
)
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.rules.pack import UnknownFormError, UnknownStateError
from ecms_desktop.services import audit
from ecms_desktop.services.certificate_bulk import (
    BulkPlan,
    IdSource,
    NewCustomer,
    PreparedCertificate,
    highest_ids,
    plan_certificates,
    prepare_certificate,
    write_plan,
)
from ecms_desktop.services.certificate_service import (
    CertificateInput,
    ExpiryContext,
    LineInput,
    check_input,
    normalized_input,
)
from ecms_desktop.services.customer_service import customer_problems
from ecms_desktop.services.database import Database
from ecms_desktop.services.document_service import CheckedFile, check_file
from ecms_desktop.services.tabular import Row, RowErrors, read_table, split_list
from ecms_desktop.services.validation_service import ValidationEngine, permit_max_age, seller_of

REQUIRED_COLUMNS = ("customer_number", "customer_name", "customer_email", "state", "form", "certificate_number",
                    "exempt_reason", "purchaser_tax_id", "certificate_type", "po_number", "signed_date",
                    "effective_date", "expiry_date", "review_status", "document")
OPTIONAL_COLUMNS = ("product_codes", "commodity_codes", "exempt_percent", "exempt_amount", "currency",
                    "purchaser_name", "purchaser_address", "purchaser_ein", "business_type", "business_description",
                    "property_description", "exemption_detail", "signed", "signer_name", "signer_title",
                    "expiry_override_reason", "notes")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_YES_NO = {"yes": True, "y": True, "true": True, "1": True, "x": True, "signed": True,
           "no": False, "n": False, "false": False, "0": False, "unsigned": False}

Progress = Callable[[int, int, str], None]
CancelCheck = Callable[[], bool]


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


@dataclass
class _Parsed:
    row: int
    customer_number: str
    customer_name: str
    customer_email: str
    data: CertificateInput
    review_state: str
    document: CheckedFile | None


@dataclass(frozen=True)
class _KnownCustomer:
    id: int
    legal_name: str
    email: str


def _known_name(known: dict[str, _KnownCustomer], number: str) -> str:
    customer = known.get(customer_number_key(number))
    return customer.legal_name if customer is not None else ""


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


class _Restage(Exception):
    """What the rows were checked against changed before the write began: check them again."""


@dataclass(frozen=True)
class _Context:
    """What the checking of an import's rows read from the database (all of it copied, none of it live)."""

    head: int
    known: dict[str, _KnownCustomer]
    existing: set[tuple[int, str, str, object]]
    seller: tuple[str, str]
    expiry: ExpiryContext
    permit_max_age: int
    highest: dict[str, int]

    @classmethod
    def read(cls, s: Session, rules: RulesPack, company_id: int) -> _Context:
        company = s.get(Company, company_id)
        if company is None:
            raise NotFoundError(f"There is no company {company_id}.")
        return cls(head=audit.head_seq(s), known=CertificateImporter._known_customers(s, company_id),
                   existing=CertificateImporter._stored_keys(s, company_id), seller=seller_of(company),
                   expiry=ExpiryContext.load(s, rules, company_id), permit_max_age=permit_max_age(s, company_id),
                   highest=highest_ids(s.connection()))

    def same_for(self, other: _Context, keys: set[str]) -> bool:
        """Whether the certificates of these customers would be decided the same under ``other``."""
        return (self.seller == other.seller and self.permit_max_age == other.permit_max_age
                and self.expiry.overrides == other.expiry.overrides
                and {k: self.known.get(k) for k in keys} == {k: other.known.get(k) for k in keys})


@dataclass
class _Staged:
    context: _Context
    parsed: list[_Parsed]
    prepared: list[PreparedCertificate]
    new_customers: dict[str, NewCustomer]  # number key -> the customer to create
    emails: dict[str, str]                 # number key of a known customer -> e-mail to fill in
    problems: list[Problem]
    stored_files: set[str]                 # the documents' SHA-256 already stored
    plan: BulkPlan | None = None


#: How many times an import checks its rows again when what they were checked against changed before
#: its write could begin (a colleague changed the company's expiry policy or a customer meanwhile).
_ATTEMPTS = 3


class CertificateImporter:
    """Imports certificates for one company."""

    def __init__(self, db: Database, rules: RulesPack | None = None) -> None:
        self.db = db
        self.rules = rules or load_rules_pack()
        self.engine = ValidationEngine(self.rules)

    def import_file(self, path: Path, *, company_id: int, skip_invalid: bool = False,
                    as_of: dt.date | None = None, documents_dir: Path | None = None,
                    accept_findings_reason: str = "",
                    progress: Progress | None = None, cancel: CancelCheck | None = None) -> ImportResult:
        """Check every row, then store them all in one transaction (or nothing).

        Everything is decided before the write begins (rows checked, documents read, expiries computed,
        certificates validated, the approval gate applied), so the write itself is short and holds the
        database's writer and the audit trail for seconds, not minutes, while other desks work.

        ``documents_dir``: the folder ``document`` paths are read from (default: the import file's).
        ``accept_findings_reason``: store rows asked for as approved as approved even when validation
        finds errors or warnings, recording this reason per certificate with who and when; without it
        such rows are stored pending review."""
        day = as_of or dt.date.today()
        table = read_table(path, required=REQUIRED_COLUMNS, optional=OPTIONAL_COLUMNS)
        if not table.rows:
            raise ValidationError(f"{table.name}: there are no data rows.")
        folder = documents_dir if documents_dir is not None else path.parent
        if not folder.is_dir():
            raise ValidationError(f"The documents folder {folder} does not exist.")
        documents = _Documents(folder)
        for _attempt in range(_ATTEMPTS):
            staged = self._stage(table, documents, company_id, day, accept_findings_reason, progress, cancel)
            bad_rows = len({p.row for p in staged.problems})
            if staged.problems and not skip_invalid:
                raise ValidationError(f"{table.name}: {bad_rows} of {len(table.rows)} rows have problems; "
                                      "nothing was imported.", staged.problems)
            result = ImportResult(skipped_rows=bad_rows, problems=staged.problems)
            if not staged.parsed:
                return result
            try:
                started = time.perf_counter()
                with self.db.transaction() as s:
                    self._write(s, table, staged, company_id, day, skip_invalid, accept_findings_reason, result,
                                progress, cancel)
                    audit.record(s, "import.certificates", "import", path.name, company_id=company_id,
                                 details={"file": path.name, "source": table.source, "rows": len(table.rows),
                                          "imported": result.imported, "skipped_rows": result.skipped_rows,
                                          "customers_created": result.customers_created,
                                          "with_errors": result.with_errors, "with_warnings": result.with_warnings,
                                          "held_for_review": result.held_for_review,
                                          "accepted_with_findings": result.accepted_with_findings,
                                          "accept_findings_reason": accept_findings_reason.strip()})
                result.write_seconds = time.perf_counter() - started
                return result
            except _Restage:
                continue
            except IntegrityError as exc:
                raise ConflictError(f"{table.name}: another import or desk stored the same records while this "
                                    "one ran; nothing was imported. Run the import again.") from exc
        raise ConflictError(f"{table.name}: the company's settings or customers kept changing while the rows were "
                            "checked; nothing was imported. Run the import again.")

    # -- staging ----------------------------------------------------------------------------------

    def _stage(self, table: Any, documents: _Documents, company_id: int, day: dt.date, accept_findings_reason: str,
               progress: Progress | None, cancel: CancelCheck | None) -> _Staged:
        """Check every row and decide every certificate, reading the database but writing nothing."""
        with self.db.reader() as s:
            context = _Context.read(s, self.rules, company_id)
        known = context.known
        parsed: list[_Parsed] = []
        problems: list[Problem] = []
        new_names: dict[str, str] = {}
        total = len(table.rows)
        for i, row in enumerate(table.rows):
            if i % 200 == 0:
                if cancel and cancel():
                    raise Cancelled("Import cancelled; nothing was imported.")
                if progress:
                    progress(i, total, f"Checking row {row.number}")
            errs = RowErrors.for_row(table.name, row)
            item = self._parse_row(row, errs, documents, company_id, known, new_names)
            if errs.problems:
                problems.extend(errs.problems)
            elif item is not None:
                parsed.append(item)
        parsed = self._without_duplicates(table.name, parsed, known, context.existing, problems)
        new_customers: dict[str, NewCustomer] = {}
        emails: dict[str, str] = {}
        for item in parsed:
            key = customer_number_key(item.customer_number)
            customer = known.get(key)
            if customer is None:
                found = new_customers.setdefault(key, NewCustomer(item.customer_number.strip(), key,
                                                                  item.customer_name.strip(), ""))
                found.email = found.email or item.customer_email.strip()
            elif item.customer_email.strip() and not customer.email and key not in emails:
                emails[key] = item.customer_email.strip()
        actor, now = audit.current_actor(), utcnow()
        prepared: list[PreparedCertificate] = []
        for n, item in enumerate(parsed):
            if n % 200 == 0:
                if cancel and cancel():
                    raise Cancelled("Import cancelled; nothing was imported.")
                if progress:
                    progress(n, len(parsed), f"Validating row {item.row}")
            key = customer_number_key(item.customer_number)
            customer = known.get(key)
            prepared.append(prepare_certificate(
                self.engine, item.data, ctx=context.expiry,
                customer_name=customer.legal_name if customer is not None else new_customers[key].legal_name,
                seller=context.seller, permit_max_age_days=context.permit_max_age, origin="import",
                review_state=item.review_state, as_of=day, trigger="import", gate=True,
                accept_findings_reason=accept_findings_reason, actor=actor, now=now))
            prepared[-1].document = item.document
        hashes = sorted({item.document.sha256 for item in parsed if item.document is not None})
        with self.db.reader() as s:
            stored_files = _stored_files(s, hashes)
        staged = _Staged(context, parsed, prepared, new_customers, emails, problems, stored_files)
        if parsed:
            if progress:
                progress(len(parsed), len(parsed), "Preparing the write")
            if self.db.dialect == "postgresql":  # ids drawn from the sequences now are this import's
                with self.db.write_connection() as conn:
                    staged.plan = self._plan(staged, company_id, day, IdSource(conn=conn), actor, now, cancel)
            else:
                staged.plan = self._plan(staged, company_id, day, IdSource(highest=context.highest), actor, now,
                                         cancel)
        return staged

    def _plan(self, staged: _Staged, company_id: int, day: dt.date, ids: IdSource, actor: str, now: dt.datetime,
              cancel: CancelCheck | None) -> BulkPlan:
        keys = [customer_number_key(item.customer_number) for item in staged.parsed]
        wanted = set(keys)
        return plan_certificates(
            staged.prepared, keys,
            known_customers={k: c.id for k, c in staged.context.known.items() if k in wanted},
            new_customers={k: c for k, c in staged.new_customers.items() if k in wanted},
            emails={k: e for k, e in staged.emails.items() if k in wanted}, company_id=company_id, ids=ids,
            stored_files=staged.stored_files, rules_version=self.rules.version, as_of=day, received_via="import",
            actor=actor, now=now, cancel=cancel)

    # -- checking ---------------------------------------------------------------------------------

    @staticmethod
    def _known_customers(s: Session, company_id: int) -> dict[str, _KnownCustomer]:
        return {key: _KnownCustomer(cid, name, email) for cid, key, name, email in s.execute(
            select(Customer.id, Customer.number_key, Customer.legal_name, Customer.email)
            .where(Customer.company_id == company_id))}

    @staticmethod
    def _stored_keys(s: Session, company_id: int) -> set[tuple[int, str, str, object]]:
        return {(cid, form, num, eff) for cid, form, num, eff in s.execute(
            select(Certificate.customer_id, Certificate.form_code, Certificate.certificate_number,
                   Certificate.effective_date).where(Certificate.company_id == company_id,
                                                     Certificate.certificate_number != ""))}

    @staticmethod
    def _without_duplicates(name: str, parsed: list[_Parsed], known: dict[str, _KnownCustomer],
                            existing: set[tuple[int, str, str, object]], problems: list[Problem], *,
                            meanwhile: bool = False) -> list[_Parsed]:
        """The rows that are neither stored already nor repeat an earlier row (those become problems)."""
        kept: list[_Parsed] = []
        seen_in_file: dict[tuple[str, str, str, object], int] = {}
        for item in parsed:
            data = item.data
            if not data.certificate_number:
                kept.append(item)
                continue
            key = (customer_number_key(item.customer_number), data.form_code, data.certificate_number,
                   data.effective_date)
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

    def _parse_row(self, row: Row, errs: RowErrors, documents: _Documents, company_id: int,
                   known: dict[str, _KnownCustomer], new_names: dict[str, str]) -> _Parsed | None:
        number = row.text("customer_number")
        name = row.text("customer_name")
        email = row.text("customer_email")
        for problem in customer_problems(number, name, email):
            errs.add(problem.column or "", problem.message)
        if not number:
            errs.add("customer_number", "a customer number is required")
        elif not errs.has("customer_number"):
            key = customer_number_key(number)
            if key not in known and not name and key not in new_names:
                errs.add("customer_name", f"customer {number!r} is new and needs a name")
            if name and key not in known:
                new_names.setdefault(key, name)
        if email and not errs.has("customer_email") and not _EMAIL.match(email):
            errs.add("customer_email", f"{email!r} is not an e-mail address")
        states = [s.upper() for s in split_list(row.text("state"))]
        if not states:
            errs.add("state", "at least one two-letter state code is required")
        for st in states:
            try:
                self.rules.state(st)
            except UnknownStateError:
                errs.add("state", f"{st[:20]!r} is not a US state or DC code")
        form_code = row.text("form")
        form = None
        if not form_code:
            errs.add("form", "a form code is required (e.g. TX-01-339, SST-F0003, MTC-UNIFORM)")
        else:
            try:
                form = self.rules.form(form_code)
            except UnknownFormError as exc:
                errs.add("form", str(exc))
        if form is not None and len(states) > 1 and not form.is_multistate:
            errs.add("state", f"{form.code} covers one state; several states need the SST or MTC form")
        reason = errs.choice(row, "exempt_reason", [r.value for r in ExemptReason], default=None)
        ctype = errs.choice(row, "certificate_type", [t.value for t in CertificateType],
                            default=CertificateType.BLANKET.value)
        review = errs.choice(row, "review_status", ["approved", "pending"], default="approved")
        signed = errs.date(row, "signed_date")
        effective = errs.date(row, "effective_date")
        expiry = errs.date(row, "expiry_date")
        if not row.text("signed_date") and not row.text("effective_date"):
            errs.add("signed_date", "a signed date or an effective date is required")
        if expiry and (effective or signed) and expiry < (effective or signed):  # type: ignore[operator]
            errs.add("expiry_date", f"{expiry} is before the effective date {effective or signed}")
        signature = row.text("signed").casefold()
        if signature and signature not in _YES_NO:
            errs.add("signed", f"{row.text('signed')!r} is not yes or no")
        percent = errs.decimal(row, "exempt_percent", percent=True)
        amount = errs.decimal(row, "exempt_amount", money=True)
        if percent is not None and amount is not None:
            errs.add("exempt_amount", "give an exempt percent or an exempt amount, not both")
        document = None
        doc_text = row.text("document")
        if doc_text:
            try:
                document = documents.get(doc_text)
            except DocumentError as exc:
                errs.add("document", str(exc))
        override_reason = row.text("expiry_override_reason") or (
            "expiry date imported from the previous system" if expiry else "")
        data = CertificateInput(
            company_id=company_id, customer_id=0, form_code=form.code if form is not None else form_code,
            lines=tuple(LineInput(st) for st in states), exempt_reason=reason or ExemptReason.RESALE.value,
            certificate_type=ctype or CertificateType.BLANKET.value,
            certificate_number=row.text("certificate_number"), purchaser_tax_id=row.text("purchaser_tax_id"),
            purchaser_name=row.text("purchaser_name") or name or _known_name(known, number),
            purchaser_address=row.text("purchaser_address"), purchaser_ein=row.text("purchaser_ein"),
            business_type=row.text("business_type"), business_description=row.text("business_description"),
            property_description=row.text("property_description"),
            exemption_detail=row.text("exemption_detail"), po_number=row.text("po_number"),
            signed=_YES_NO.get(signature, bool(signed)), signer_name=row.text("signer_name"),
            signer_title=row.text("signer_title"), signed_date=signed, effective_date=effective,
            expiry_override=expiry, expiry_override_reason=override_reason if expiry else "",
            product_codes=split_list(row.text("product_codes")),
            commodity_codes=split_list(row.text("commodity_codes")),
            exempt_percent=percent, exempt_amount=amount, currency=(row.text("currency") or "USD").upper(),
            notes=row.text("notes"),
        )
        # What the certificate service refuses to store (the desk's form gets the same messages).
        data = normalized_input(data, self.rules)
        for problem in check_input(data, self.rules):
            column = problem.column or ""
            if column == "purchaser_name" and not row.text("purchaser_name"):
                column = "customer_name"  # the purchaser's name was taken from the customer's
            if not errs.has(column):
                errs.add(column, problem.message)
        if errs.problems or form is None or reason is None or ctype is None or review is None:
            return None
        return _Parsed(row.number, number, name, email, data,
                       ReviewState.APPROVED.value if review == "approved" else ReviewState.PENDING.value, document)

    # -- storing ----------------------------------------------------------------------------------

    def _write(self, s: Session, table: Any, staged: _Staged, company_id: int, day: dt.date, skip_invalid: bool,
               accept_findings_reason: str, result: ImportResult, progress: Progress | None,
               cancel: CancelCheck | None) -> None:
        """The short write of what the staging planned, in the caller's transaction."""
        # Serialised with every other writer from here on. If anyone wrote since the rows were checked,
        # what they were decided against is read again: if it changed for these rows they are checked
        # again (outside this transaction); else the duplicates are checked again (another import of the
        # same file, say), and the plan is made again here only if its ids or documents were taken.
        context = staged.context
        plan = cast(BulkPlan, staged.plan)
        if audit.head_seq(s, lock=True) != context.head:
            now_context = _Context.read(s, self.rules, company_id)
            keys = {customer_number_key(item.customer_number) for item in staged.parsed}
            if not context.same_for(now_context, keys):
                raise _Restage
            late: list[Problem] = []
            kept = self._without_duplicates(table.name, staged.parsed, now_context.known, now_context.existing,
                                            late, meanwhile=True)
            if late and not skip_invalid:
                raise ValidationError(f"{table.name}: {len({p.row for p in late})} rows were imported by "
                                      "someone else meanwhile; nothing was imported.", late)
            hashes = sorted({item.document.sha256 for item in kept if item.document is not None})
            files = _stored_files(s, hashes)
            conn = s.connection()
            if late or files != staged.stored_files & set(hashes) or not cast(IdSource, plan.ids).still_free(conn):
                keep = {id(item) for item in kept}
                staged.prepared = [p for item, p in zip(staged.parsed, staged.prepared, strict=True)
                                   if id(item) in keep]
                staged.parsed = kept
                staged.stored_files = files
                result.problems.extend(late)
                result.skipped_rows = len({p.row for p in result.problems})
                if not kept:
                    return
                ids = IdSource(conn=conn) if self.db.dialect == "postgresql" else IdSource(highest=highest_ids(conn))
                plan = self._plan(staged, company_id, day, ids, audit.current_actor(), utcnow(), cancel)
        write_plan(s, plan, progress=progress, cancel=cancel)
        result.customers_created = len(plan.rows["customer"])
        result.documents_stored = plan.documents
        for item, prep in zip(staged.parsed, staged.prepared, strict=True):
            result.certificate_ids.append(cast(int, prep.id))
            result.imported += 1
            errors = any(f.severity == "error" for f in prep.findings)
            warnings = any(f.severity == "warning" for f in prep.findings)
            result.with_errors += int(errors)
            result.with_warnings += int(warnings)
            state = prep.row["review_state"]
            if item.review_state == ReviewState.APPROVED and state != ReviewState.APPROVED:
                result.held_for_review += 1
            if state == ReviewState.APPROVED and (errors or warnings):
                result.accepted_with_findings += 1


def _stored_files(s: Session, hashes: list[str]) -> set[str]:
    """Which of these document SHA-256 are stored already."""
    found: set[str] = set()
    for start in range(0, len(hashes), 500):
        found.update(s.execute(select(DocumentFile.sha256).where(DocumentFile.sha256.in_(hashes[start:start + 500])))
                     .scalars())
    return found
