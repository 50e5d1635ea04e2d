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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ecms_desktop.errors import Cancelled, ConflictError, DocumentError, Problem, ValidationError
from ecms_desktop.models import Certificate, CertificateType, Customer, ExemptReason, ReviewState, customer_number_key
from ecms_desktop.models.validation import ValidationRun
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.rules.pack import UnknownFormError, UnknownStateError
from ecms_desktop.services import audit
from ecms_desktop.services.certificate_service import (
    CertificateInput,
    ExpiryContext,
    LineInput,
    check_input,
    create_certificate,
    normalized_input,
)
from ecms_desktop.services.customer_service import customer_problems, upsert_customer
from ecms_desktop.services.database import Database
from ecms_desktop.services.document_service import CheckedFile, check_file, store_checked
from ecms_desktop.services.tabular import Row, RowErrors, read_table, split_list

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


class CertificateImporter:
    """Imports certificates for one company."""

    def __init__(self, db: Database, rules: RulesPack | None = None) -> None:
        self.db = db
        self.rules = rules or load_rules_pack()

    def import_file(self, path: Path, *, company_id: int, skip_invalid: bool = False,
                    as_of: dt.date | None = None, documents_dir: Path | None = None,
                    accept_findings_reason: str = "",
                    progress: Progress | None = None, cancel: CancelCheck | None = None) -> ImportResult:
        """Check every row, then store them all in one transaction (or nothing).

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
        parsed: list[_Parsed] = []
        problems: list[Problem] = []
        with self.db.reader() as s:
            seen_seq = audit.head_seq(s)
            known = self._known_customers(s, company_id)
            existing = self._stored_keys(s, company_id)
        new_names: dict[str, str] = {}
        for i, row in enumerate(table.rows):
            if cancel and cancel():
                raise Cancelled("Import cancelled; nothing was imported.")
            if progress:
                progress(i, len(table.rows), f"Checking row {row.number}")
            errs = RowErrors.for_row(table.name, row)
            item = self._parse_row(row, errs, documents, company_id, known, new_names)
            if errs.problems:
                problems.extend(errs.problems)
            elif item is not None:
                parsed.append(item)
        parsed = self._without_duplicates(table.name, parsed, known, existing, problems)
        bad_rows = len({p.row for p in problems})
        if problems and not skip_invalid:
            raise ValidationError(f"{table.name}: {bad_rows} of {len(table.rows)} rows have problems; "
                                  "nothing was imported.", problems)
        result = ImportResult(skipped_rows=bad_rows, problems=problems)
        if not parsed:
            return result
        try:
            with self.db.transaction() as s:
                # Serialised with every other writer from here on; if anyone wrote since the rows were
                # checked (another import of the same file, say), the duplicates are checked again.
                if audit.head_seq(s, lock=True) != seen_seq:
                    known = self._known_customers(s, company_id)
                    late: list[Problem] = []
                    parsed = self._without_duplicates(table.name, parsed, known, self._stored_keys(s, company_id),
                                                      late, meanwhile=True)
                    if late and not skip_invalid:
                        raise ValidationError(f"{table.name}: {len({p.row for p in late})} rows were imported by "
                                              "someone else meanwhile; nothing was imported.", late)
                    problems.extend(late)
                    result.skipped_rows = len({p.row for p in problems})
                self._store(s, parsed, company_id, day, accept_findings_reason, result, progress, cancel)
                audit.record(s, "import.certificates", "import", path.name, company_id=company_id,
                             details={"file": path.name, "source": table.source, "rows": len(table.rows),
                                      "imported": result.imported, "skipped_rows": result.skipped_rows,
                                      "customers_created": result.customers_created,
                                      "with_errors": result.with_errors, "with_warnings": result.with_warnings,
                                      "held_for_review": result.held_for_review,
                                      "accepted_with_findings": result.accepted_with_findings,
                                      "accept_findings_reason": accept_findings_reason.strip()})
        except IntegrityError as exc:
            raise ConflictError(f"{table.name}: another import or desk stored the same records while this one "
                                "ran; nothing was imported. Run the import again.") from exc
        return result

    # -- checking ---------------------------------------------------------------------------------

    @staticmethod
    def _known_customers(s: Session, company_id: int) -> dict[str, _KnownCustomer]:
        return {key: _KnownCustomer(cid, name) for cid, key, name in s.execute(
            select(Customer.id, Customer.number_key, Customer.legal_name).where(Customer.company_id == company_id))}

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
        for problem in check_input(normalized_input(data, self.rules), self.rules):
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

    def _store(self, s: Session, parsed: list[_Parsed], company_id: int, day: dt.date, accept_findings_reason: str,
               result: ImportResult, progress: Progress | None, cancel: CancelCheck | None) -> None:
        cache: dict[str, Customer] = {}
        ctx = ExpiryContext.load(s, self.rules, company_id)
        for n, item in enumerate(parsed):
            if cancel and cancel():
                raise Cancelled("Import cancelled; nothing was imported.")
            if progress:
                progress(n, len(parsed), f"Importing row {item.row}")
            customer, created = upsert_customer(s, company_id, item.customer_number,
                                                legal_name=item.customer_name, email=item.customer_email,
                                                cache=cache)
            result.customers_created += int(created)
            data = dataclasses.replace(item.data, customer_id=customer.id)
            cert = create_certificate(s, self.rules, data, origin="import", review_state=item.review_state,
                                      ctx=ctx, validate="import", as_of=day, gate=True,
                                      accept_findings_reason=accept_findings_reason)
            if item.document is not None:
                store_checked(s, item.document, received_via="import", certificate_id=cert.id,
                              company_id=company_id)
                result.documents_stored += 1
            result.certificate_ids.append(cert.id)
            result.imported += 1
            if item.review_state == ReviewState.APPROVED and cert.review_state != ReviewState.APPROVED:
                result.held_for_review += 1
        self._count_findings(s, result)

    @staticmethod
    def _count_findings(s: Session, result: ImportResult) -> None:
        """How many imported certificates have errors / warnings (from their stored import runs)."""
        approved: set[int] = set()
        for chunk in _chunks(result.certificate_ids, 500):
            for cid, errors, warnings, state in s.execute(
                    select(ValidationRun.certificate_id, ValidationRun.error_count, ValidationRun.warning_count,
                           Certificate.review_state)
                    .join(Certificate, Certificate.id == ValidationRun.certificate_id)
                    .where(ValidationRun.certificate_id.in_(chunk), ValidationRun.trigger == "import")):
                result.with_errors += int(errors > 0)
                result.with_warnings += int(warnings > 0)
                if state == ReviewState.APPROVED and (errors or warnings):
                    approved.add(cid)
        result.accepted_with_findings = len(approved)


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
