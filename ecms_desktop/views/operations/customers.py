"""Keeping customers (search, save, merge), their exemption matrix and its renewal steps, the report of
customers buying exempt without a valid certificate, and a new certificate from a file or an inbox
document."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from ecms_desktop.models import DocumentSource
from ecms_desktop.rules import RulesPack
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.customers.editing import CustomerEditService, CustomerRecord, CustomerRow
from ecms_desktop.services.customers.matrix import ExemptionMatrix, ExemptionMatrixService
from ecms_desktop.services.customers.merge import CustomerMergeService, MergePlan
from ecms_desktop.services.customers.report import UncoveredSalesReport
from ecms_desktop.services.customers.service import CustomerInfo, CustomerService
from ecms_desktop.services.intake.inbox import InboxItem, InboxService
from ecms_desktop.services.renewals.customer_steps import take_renewal_step
from ecms_desktop.services.renewals.returned_forms import ReturnedFormsService
from ecms_desktop.services.renewals.service import RenewalService, RunResult
from ecms_desktop.views.operations import Operation


def search_customers(db: Database, company_id: int, text: str) -> Operation[list[CustomerRow]]:
    """The company's customers matching ``text`` (all for an empty text)."""
    return Operation(lambda _p, _c: CustomerEditService(db).search(company_id, text), show_progress=False)


def read_customer(db: Database, customer_id: int) -> Operation[CustomerRecord]:
    """A customer as stored, to edit."""
    return Operation(lambda _p, _c: CustomerEditService(db).get(customer_id), show_progress=False)


def list_customers(db: Database, company_id: int) -> Operation[list[CustomerInfo]]:
    """Every customer of the company, for a customer picker."""
    return Operation(lambda _p, _c: CustomerService(db).list(company_id), show_progress=False)


def save_customer(db: Database, record: CustomerRecord, original: CustomerRecord | None) -> Operation[CustomerRecord]:
    """Store a new customer or the edits of one (refused when someone else changed it meanwhile)."""
    return Operation(lambda _p, _c: CustomerEditService(db).save(record, original=original),
                     title=f"Saving customer {record.number.strip()}")


def plan_merge(db: Database, merged_id: int, survivor_id: int) -> Operation[MergePlan]:
    """What merging one customer into another would move."""
    return Operation(lambda _p, _c: CustomerMergeService(db).plan(merged_id, survivor_id), show_progress=False)


def merge_customers(db: Database, merged_id: int, survivor_id: int) -> Operation[MergePlan]:
    """Merge a customer into the one that stays."""
    return Operation(lambda _p, _c: CustomerMergeService(db).merge(merged_id, survivor_id), title="Merging customers")


def read_matrix(db: Database, customer_id: int, as_of: dt.date) -> Operation[ExemptionMatrix]:
    """A customer's exemption matrix as of a date."""
    return Operation(lambda _p, _c: ExemptionMatrixService(db).matrix(customer_id, as_of=as_of), show_progress=False)


def customer_of_certificate(db: Database, certificate_id: int) -> Operation[int]:
    """The customer a certificate belongs to."""
    return Operation(lambda _p, _c: ExemptionMatrixService(db).customer_of_certificate(certificate_id),
                     show_progress=False)


def take_step(db: Database, rules: RulesPack, customer_id: int, state: str, as_of: dt.date) -> Operation[RunResult]:
    """Send the renewal request or reminder the matrix offers for a state."""
    return Operation(lambda progress, cancel: take_renewal_step(RenewalService(db, rules), customer_id, state,
                                                                as_of=as_of, progress=progress, cancel=cancel),
                     title=f"Renewal step for {state}")


def export_uncovered(db: Database, company_id: int, path: Path, as_of: dt.date) -> Operation[int]:
    """Write the report of customers buying exempt without a valid certificate (.xlsx or .csv)."""
    return Operation(lambda _p, _c: UncoveredSalesReport(db).export(company_id, path, as_of=as_of),
                     title=f"Writing {path.name}")


def list_inbox(db: Database, company_id: int) -> Operation[list[InboxItem]]:
    """The documents waiting in the company's intake inbox."""
    return Operation(lambda _p, _c: InboxService(db).list(company_id), show_progress=False)


@dataclass(frozen=True)
class NewCertificateRequest:
    """What the New certificate dialog gathered: whose certificate (an existing customer's number, or a
    new customer's number and name), the document (a file, or an inbox document) and the states the
    paper shows (may be empty: filled in at review)."""

    company_id: int
    customer: str
    new_customer_name: str | None
    path: Path | None
    document_id: int | None
    states: tuple[str, ...] = ()


def new_certificate(db: Database, rules: RulesPack, request: NewCertificateRequest,
                    as_of: dt.date) -> Operation[int]:
    """Make a pending certificate of the customer from the document; returns its id. A file is first
    received into the intake inbox (read and stored like any arriving document), then assigned."""

    def work(_progress: Progress, _cancel: CancelCheck) -> int:
        document_id = request.document_id
        if request.path is not None:
            [item] = ReturnedFormsService(db, rules).intake([request.path], request.company_id, as_of=as_of,
                                                            received_via=DocumentSource.UPLOAD.value)
            if item.outcome == "answered" and item.certificate_id is not None:
                return item.certificate_id  # a returned renewal form: its request made the certificate
            if item.outcome != "inbox" or item.document_id is None:
                raise ValidationError(f"{request.path.name}: {item.message}")
            document_id = item.document_id
        if document_id is None:
            raise ValidationError("Choose the certificate's document: a file, or a document of the inbox.")
        try:
            done = InboxService(db, rules).assign(document_id, customer=request.customer,
                                                  create_customer_name=request.new_customer_name,
                                                  states=request.states, as_of=as_of)
        except ValidationError as error:
            if request.path is None:
                raise
            raise ValidationError(f"{error.message} The file {request.path.name} was stored: it waits in the "
                                  "intake inbox.",
                                  error.problems) from error
        return done.certificate_id

    return Operation(work, title="Making the certificate")
