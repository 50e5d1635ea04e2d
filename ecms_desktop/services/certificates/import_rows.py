"""Checking and deciding the rows of a certificate import, in this process or in worker processes.

An import of 100,000 certificates spends most of its time here: each row is checked (every column,
as the desk's form checks it), its certificate is decided (expiries, validation, the approval gate, see
:func:`~ecms_desktop.services.certificates.bulk.prepare_certificate`) and turned into the rows, digests
and audit events it writes (:func:`~ecms_desktop.services.certificates.bulk.certificate_rows`). None of
this reads or writes the database, so a large file is split into chunks decided by worker processes
side by side (:func:`stage_chunks`), while the importing process only writes the result.

Everything a chunk needs from outside is in its :class:`StageJob`: what the importing process read
from the database (the company's customers, expiry policies and settings), the documents it probed,
the ids it reserved, and what spans rows (the first row naming each new customer).
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Dialect

from ecms_desktop.models import CertificateType, ExemptReason, ReviewState, customer_number_key
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.rules.pack import UnknownFormError, UnknownStateError
from ecms_desktop.services.certificates.bulk import CertificateRows, RowEncoder, certificate_rows, prepare_certificate
from ecms_desktop.services.certificates.service import CompanyExpiryPolicy, ExpiryContext, check_input, normalized_input
from ecms_desktop.services.core.bulk import paused_gc, worker_start_method
from ecms_desktop.services.core.certificate_records import CertificateInput, LineInput
from ecms_desktop.services.core.errors import Cancelled, DocumentError, EcmsError, Problem
from ecms_desktop.services.core.field_limits import EMAIL_ADDRESS
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.core.tabular import Row, RowErrors, split_list
from ecms_desktop.services.customers.service import customer_problems
from ecms_desktop.services.documents.storage import CheckedFile
from ecms_desktop.services.validation.engine import ValidationEngine

_YES_NO = {"yes": True, "y": True, "true": True, "1": True, "x": True, "signed": True,
           "no": False, "n": False, "false": False, "0": False, "unsigned": False}


@dataclass(frozen=True)
class KnownCustomer:
    """A stored customer of the company, as the import read it."""

    id: int
    legal_name: str
    email: str


@dataclass
class _Parsed:
    row: int
    customer_number: str
    customer_name: str
    customer_email: str
    data: CertificateInput
    review_state: str
    document: CheckedFile | None


@dataclass
class StageJob:
    """A chunk of rows to check and decide, with everything it needs (picklable)."""

    file_name: str
    rows: list[Row]
    first_index: int                                  # the place of ``rows[0]`` among the file's rows
    company_id: int
    known: dict[str, KnownCustomer]                   # number key -> stored customer
    first_named: dict[str, int]                       # number key of a new customer -> first row naming it
    customer_ids: dict[str, int]                      # number key -> id (stored, or reserved for a new one)
    new_names: dict[str, str]                         # number key of a new customer -> its legal name
    documents: dict[str, CheckedFile | str]           # document text -> the probed file (no bytes) or why not
    seller: tuple[str, str]
    expiry_policies: dict[tuple[str, str], CompanyExpiryPolicy]
    permit_max_age: int
    as_of: dt.date
    accept_findings_reason: str
    actor: str
    now: dt.datetime
    ids: dict[str, list[int]]                         # table -> ids reserved for this chunk's rows, in order
    dialect: type[Dialect]
    rules: RulesPack | None = None                    # None: the worker's own (see :func:`stage_chunks`)


@dataclass
class StagedRow:
    """A row whose certificate is decided and turned into what it writes."""

    row: int
    customer_key: str
    customer_number: str
    customer_name: str
    customer_email: str
    #: (customer key, form, certificate number, effective date) when the certificate has a number.
    duplicate_key: tuple[str, str, str, object] | None
    asked_state: str
    document: str | None
    written: CertificateRows


@dataclass
class StageResult:
    problems: list[Problem] = field(default_factory=list)
    rows: list[StagedRow] = field(default_factory=list)


class RowChecker:
    """Checks the rows of a certificate file for one company (see :meth:`parse`)."""

    def __init__(self, rules: RulesPack, job: StageJob) -> None:
        self.rules = rules
        self.company_id = job.company_id
        self.known = job.known
        self.first_named = job.first_named
        self.documents = job.documents

    def document(self, text: str) -> CheckedFile:
        found = self.documents[text]
        if isinstance(found, str):
            raise DocumentError(found)
        return found

    def parse(self, index: int, row: Row, errs: RowErrors) -> _Parsed | None:
        """The row's certificate, or None with its problems in ``errs`` (``index``: its place in the file)."""
        known, company_id = self.known, self.company_id
        number = row.text("customer_number")
        name = row.text("customer_name")
        email = row.text("customer_email")
        for problem in customer_problems(number, name, email):
            errs.add(problem.column or "", problem.message)
        if not number:
            errs.add("customer_number", "a customer number is required")
        elif not errs.has("customer_number"):
            key = customer_number_key(number)
            first = self.first_named.get(key)
            if key not in known and not name and (first is None or first > index):
                errs.add("customer_name", f"customer {number!r} is new and needs a name")
        if email and not errs.has("customer_email") and not EMAIL_ADDRESS.match(email):
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
                document = self.document(doc_text)
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


def _known_name(known: dict[str, KnownCustomer], number: str) -> str:
    customer = known.get(customer_number_key(number))
    return customer.legal_name if customer is not None else ""


def stage_chunk(job: StageJob) -> StageResult:
    """Check and decide one chunk of rows (in a worker process, with the packaged rules pack, or in the
    importing one with its own)."""
    rules = job.rules or load_rules_pack()
    with paused_gc():
        return _stage(rules, job)


def _stage(rules: RulesPack, job: StageJob) -> StageResult:
    checker = RowChecker(rules, job)
    engine = ValidationEngine(rules)
    expiry = ExpiryContext(rules, job.expiry_policies)
    encoder = RowEncoder(job.dialect())
    result = StageResult()
    cert_ids, run_ids, ack_ids = job.ids["certificate"], job.ids["validation_run"], job.ids["warning_acknowledgement"]
    for n, row in enumerate(job.rows):
        errs = RowErrors.for_row(job.file_name, row)
        item = checker.parse(job.first_index + n, row, errs)
        if errs.problems:
            result.problems.extend(errs.problems)
            continue
        if item is None:
            continue
        key = customer_number_key(item.customer_number)
        customer = job.known.get(key)
        prepared = prepare_certificate(
            engine, item.data, ctx=expiry,
            customer_name=customer.legal_name if customer is not None else job.new_names[key],
            seller=job.seller, permit_max_age_days=job.permit_max_age, origin="import",
            review_state=item.review_state, as_of=job.as_of, trigger="import", gate=True,
            accept_findings_reason=job.accept_findings_reason, actor=job.actor, now=job.now)
        written = certificate_rows(prepared, encoder, cert_id=cert_ids[n], run_id=run_ids[n], ack_id=ack_ids[n],
                                   customer_id=job.customer_ids[key], company_id=job.company_id,
                                   rules_version=rules.version, as_of=job.as_of, actor=job.actor, now=job.now)
        data = item.data
        result.rows.append(StagedRow(
            row=item.row, customer_key=key, customer_number=item.customer_number, customer_name=item.customer_name,
            customer_email=item.customer_email,
            duplicate_key=(key, data.form_code, data.certificate_number, data.effective_date)
            if data.certificate_number else None,
            asked_state=item.review_state, document=row.text("document") if item.document is not None else None,
            written=written))
    return result


#: Below this many rows an import stays in one process (starting the workers costs about a second).
PARALLEL_MIN_ROWS = 5_000


def stage_chunks(jobs: list[StageJob], rules: RulesPack, *, workers: int, total: int,
                 progress: Progress | None = None, cancel: CancelCheck | None = None) -> list[StageResult]:
    """Stage every chunk, in ``workers`` worker processes (0: in this process), in order."""
    results: list[StageResult] = []
    done = 0

    def report(result: StageResult, rows: int) -> None:
        nonlocal done
        results.append(result)
        done += rows
        if cancel is not None and cancel():
            raise Cancelled("Import cancelled; nothing was imported.")
        if progress is not None:
            progress(done, total, f"Checking and validating rows ({done:,} of {total:,})")

    if progress is not None:
        progress(0, total, f"Checking and validating rows (0 of {total:,})")
    if workers <= 0 or len(jobs) < 2 or rules is not load_rules_pack():
        # In this process: a small file, or a rules pack other than the packaged one (which is what a
        # worker process loads).
        for job in jobs:
            job.rules = rules
            report(stage_chunk(job), len(job.rows))
        return results
    context: Any = multiprocessing.get_context(worker_start_method())
    # An executor rather than a Pool: a worker that dies (killed, out of memory) breaks it with an
    # error instead of leaving the import waiting for ever.
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        for job, result in zip(jobs, executor.map(stage_chunk, jobs), strict=True):
            report(result, len(job.rows))
    except BrokenProcessPool as exc:
        raise EcmsError("A process checking the rows of the file stopped unexpectedly; nothing was imported. "
                        "Run the import again (a file this large needs about 1 GB of free memory per 100,000 "
                        "rows).") from exc
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    return results
