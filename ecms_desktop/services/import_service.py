"""Bulk import of existing certificates from .csv or .xlsx (migration from spreadsheets or another system).

Every row is checked first, documents included; if any row is bad nothing is imported and every
bad row is reported with its row number, column and reason. With ``skip_invalid`` the good rows
are imported and the bad ones reported. A known form used where the state does not accept it is
imported: that is a finding for the validation engine, not an import error.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from ecms_desktop.errors import Cancelled, DocumentError, Problem, ValidationError
from ecms_desktop.models import Certificate, CertificateType, Customer, ExemptReason, ReviewState, customer_number_key
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.rules.pack import UnknownFormError, UnknownStateError
from ecms_desktop.services import audit
from ecms_desktop.services.certificate_service import (
    CertificateInput,
    ExpiryContext,
    LineInput,
    create_certificate,
)
from ecms_desktop.services.customer_service import upsert_customer
from ecms_desktop.services.database import Database
from ecms_desktop.services.document_service import CheckedFile, check_file, store_checked
from ecms_desktop.services.tabular import Row, RowErrors, read_table, split_list

REQUIRED_COLUMNS = ("customer_number", "customer_name", "customer_email", "state", "form", "certificate_number",
                    "exempt_reason", "purchaser_tax_id", "certificate_type", "po_number", "signed_date",
                    "effective_date", "expiry_date", "review_status", "document")
OPTIONAL_COLUMNS = ("product_codes", "commodity_codes", "exempt_percent", "exempt_amount", "currency",
                    "purchaser_name", "purchaser_address", "signer_name", "signer_title",
                    "property_description", "business_description", "expiry_override_reason", "notes")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

Progress = Callable[[int, int, str], None]
CancelCheck = Callable[[], bool]


@dataclass
class ImportResult:
    """What an import did."""

    imported: int = 0
    customers_created: int = 0
    documents_stored: int = 0
    skipped_rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    certificate_ids: list[int] = field(default_factory=list)


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


class CertificateImporter:
    """Imports certificates for one company."""

    def __init__(self, db: Database, rules: RulesPack | None = None) -> None:
        self.db = db
        self.rules = rules or load_rules_pack()

    def import_file(self, path: Path, *, company_id: int, skip_invalid: bool = False,
                    as_of: dt.date | None = None,
                    progress: Progress | None = None, cancel: CancelCheck | None = None) -> ImportResult:
        table = read_table(path, required=REQUIRED_COLUMNS, optional=OPTIONAL_COLUMNS)
        if not table.rows:
            raise ValidationError(f"{table.name}: there are no data rows.")
        parsed: list[_Parsed] = []
        problems: list[Problem] = []
        with self.db.reader() as s:
            known = {key: _KnownCustomer(cid, name) for cid, key, name in s.execute(
                select(Customer.id, Customer.number_key, Customer.legal_name)
                .where(Customer.company_id == company_id))}
            existing = {(cid, form, num, eff) for cid, form, num, eff in s.execute(
                select(Certificate.customer_id, Certificate.form_code, Certificate.certificate_number,
                       Certificate.effective_date).where(Certificate.company_id == company_id,
                                                         Certificate.certificate_number != ""))}
        new_names: dict[str, str] = {}
        seen_in_file: dict[tuple[str, str, str, object], int] = {}
        for i, row in enumerate(table.rows):
            if cancel and cancel():
                raise Cancelled("Import cancelled; nothing was imported.")
            if progress:
                progress(i, len(table.rows), f"Checking row {row.number}")
            errs = RowErrors(table.name, row.number)
            item = self._parse_row(row, errs, path.parent, company_id, known, new_names)
            if item is not None and not errs.problems and item.data.certificate_number:
                key = (customer_number_key(item.customer_number), item.data.form_code,
                       item.data.certificate_number, item.data.effective_date)
                cust = known.get(key[0])
                if cust is not None and (cust.id, key[1], key[2], key[3]) in existing:
                    errs.add("certificate_number", f"certificate {key[2]} of customer {item.customer_number} "
                             f"({key[1]}, effective {key[3]}) is already stored")
                elif key in seen_in_file:
                    errs.add("certificate_number", f"duplicates row {seen_in_file[key]} of this file")
                else:
                    seen_in_file[key] = row.number
            if errs.problems:
                problems.extend(errs.problems)
            elif item is not None:
                parsed.append(item)
        bad_rows = len({p.row for p in problems})
        if problems and not skip_invalid:
            raise ValidationError(f"{table.name}: {bad_rows} of {len(table.rows)} rows have problems; "
                                  "nothing was imported.", problems)
        result = ImportResult(skipped_rows=bad_rows, problems=problems)
        if not parsed:
            return result
        with self.db.transaction() as s:
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
                data = CertificateInput(**{**item.data.__dict__, "customer_id": customer.id})
                cert = create_certificate(s, self.rules, data, origin="import", review_state=item.review_state,
                                          ctx=ctx, validate="import", as_of=as_of or dt.date.today())
                if item.document is not None:
                    store_checked(s, item.document, received_via="import", certificate_id=cert.id,
                                  company_id=company_id)
                    result.documents_stored += 1
                result.certificate_ids.append(cert.id)
                result.imported += 1
            audit.record(s, "import.certificates", "import", path.name, company_id=company_id,
                         details={"file": path.name, "rows": len(table.rows), "imported": result.imported,
                                  "skipped_rows": bad_rows, "customers_created": result.customers_created})
        return result

    def _parse_row(self, row: Row, errs: RowErrors, base: Path, company_id: int,
                   known: dict[str, _KnownCustomer], new_names: dict[str, str]) -> _Parsed | None:
        number = row.text("customer_number")
        name = row.text("customer_name")
        email = row.text("customer_email")
        if not number:
            errs.add("customer_number", "a customer number is required")
        else:
            key = customer_number_key(number)
            if key not in known and not name and key not in new_names:
                errs.add("customer_name", f"customer {number!r} is new and needs a name")
            if name and key not in known:
                new_names.setdefault(key, name)
        if email and not _EMAIL.match(email):
            errs.add("customer_email", f"{email!r} is not an e-mail address")
        states = [s.upper() for s in split_list(row.text("state"))]
        if not states:
            errs.add("state", "at least one two-letter state code is required")
        for st in states:
            try:
                self.rules.state(st)
            except UnknownStateError:
                errs.add("state", f"{st!r} is not a US state or DC code")
        form_code = row.text("form")
        form = None
        if not form_code:
            errs.add("form", "a form code is required (e.g. TX-01-339, SST-F0003, MTC-UNIFORM)")
        else:
            try:
                form = self.rules.form(form_code)
            except UnknownFormError as exc:
                errs.add("form", str(exc))
        if form is not None and len(states) > 1 and form.code not in ("SST-F0003", "MTC-UNIFORM"):
            errs.add("state", f"{form.code} covers one state; several states need the SST or MTC form")
        reason = errs.choice(row, "exempt_reason", [r.value for r in ExemptReason], default=None)
        ctype = errs.choice(row, "certificate_type", [t.value for t in CertificateType],
                            default=CertificateType.BLANKET.value)
        review = errs.choice(row, "review_status", ["approved", "pending"], default="approved")
        po = row.text("po_number")
        signed = errs.date(row, "signed_date")
        effective = errs.date(row, "effective_date")
        expiry = errs.date(row, "expiry_date")
        if not row.text("signed_date") and not row.text("effective_date"):
            errs.add("signed_date", "a signed date or an effective date is required")
        if expiry and (effective or signed) and expiry < (effective or signed):  # type: ignore[operator]
            errs.add("expiry_date", f"{expiry} is before the effective date {effective or signed}")
        percent = errs.decimal(row, "exempt_percent") if "exempt_percent" in row.cells else None
        amount = errs.decimal(row, "exempt_amount") if "exempt_amount" in row.cells else None
        if percent is not None and not (0 < percent <= 100):
            errs.add("exempt_percent", f"{percent} is not a percentage above 0 and at most 100")
        if amount is not None and amount <= 0:
            errs.add("exempt_amount", f"{amount} must be positive")
        if percent is not None and amount is not None:
            errs.add("exempt_amount", "give an exempt percent or an exempt amount, not both")
        currency = (row.text("currency") or "USD").upper()
        if len(currency) != 3 or not currency.isalpha():
            errs.add("currency", f"{currency!r} is not a 3-letter currency code")
        document = None
        doc_text = row.text("document")
        if doc_text:
            doc_path = (base / doc_text) if not Path(doc_text).is_absolute() else Path(doc_text)
            try:
                document = check_file(doc_path, display_name=doc_text)
            except DocumentError as exc:
                errs.add("document", str(exc))
        if errs.problems or form is None or reason is None or ctype is None or review is None:
            return None
        override_reason = row.text("expiry_override_reason") or (
            "expiry date imported from the previous system" if expiry else "")
        data = CertificateInput(
            company_id=company_id, customer_id=0, form_code=form.code,
            lines=tuple(LineInput(st) for st in states), exempt_reason=reason, certificate_type=ctype,
            certificate_number=row.text("certificate_number"), purchaser_tax_id=row.text("purchaser_tax_id"),
            purchaser_name=row.text("purchaser_name") or name or _known_name(known, number),
            purchaser_address=row.text("purchaser_address"), signer_name=row.text("signer_name"),
            signer_title=row.text("signer_title"), property_description=row.text("property_description"),
            business_description=row.text("business_description"), po_number=po,
            signed=bool(signed), signed_date=signed, effective_date=effective, expiry_override=expiry,
            expiry_override_reason=override_reason if expiry else "",
            product_codes=split_list(row.text("product_codes")) if "product_codes" in row.cells else (),
            commodity_codes=split_list(row.text("commodity_codes")) if "commodity_codes" in row.cells else (),
            exempt_percent=percent, exempt_amount=amount, currency=currency, notes=row.text("notes"),
        )
        return _Parsed(row.number, number, name, email, data,
                       ReviewState.APPROVED.value if review == "approved" else ReviewState.PENDING.value, document)
