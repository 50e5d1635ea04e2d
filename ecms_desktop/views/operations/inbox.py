"""The intake inbox at the desk: what waits in it, a document's bytes for the viewer, the customers and
their certificates to assign a document to, and assigning, discarding and splitting (each through
:class:`~ecms_desktop.services.intake.inbox.InboxService`, audited there)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from ecms_desktop.rules import RulesPack
from ecms_desktop.services.certificates.query import CertificateQuery, CertificateQueryService, CertificateRow
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.customers.service import CustomerInfo, CustomerService
from ecms_desktop.services.documents.storage import DocumentService
from ecms_desktop.services.intake.inbox import Assignment, InboxItem, InboxService
from ecms_desktop.views.operations import Operation


@dataclass(frozen=True)
class InboxDocument:
    """An inbox document as the viewer shows it: the item and its stored file's bytes."""

    item: InboxItem
    sha256: str
    data: bytes


def list_inbox(db: Database, company_id: int) -> Operation[list[InboxItem]]:
    """The documents waiting in the company's inbox, oldest first."""
    return Operation(lambda _p, _c: InboxService(db).list(company_id))


def open_inbox_document(db: Database, item: InboxItem) -> Operation[InboxDocument]:
    """The stored file of an inbox document, for the viewer."""

    def work(_p: object, _c: object) -> InboxDocument:
        sha256, data = DocumentService(db).file_bytes(item.id)
        return InboxDocument(item, sha256, data)

    return Operation(work)


def list_customers(db: Database, company_id: int) -> Operation[list[CustomerInfo]]:
    """The company's customers, by name (to find whose a document is)."""
    return Operation(lambda _p, _c: CustomerService(db).list(company_id))


def list_certificates_of(db: Database, company_id: int, customer_id: int, as_of: dt.date
                         ) -> Operation[list[CertificateRow]]:
    """A customer's certificates (to attach a document to one of them)."""

    def work(_p: object, _c: object) -> list[CertificateRow]:
        service = CertificateQueryService(db)
        ids = service.matching_ids(CertificateQuery(company_id=company_id, customer_id=customer_id, as_of=as_of))
        return service.load_rows(ids, as_of)

    return Operation(work)


def assign_document(db: Database, rules: RulesPack, document_id: int, *, customer: str,
                    new_customer_name: str | None, certificate_id: int | None, expected_version: int | None,
                    as_of: dt.date) -> Operation[Assignment]:
    """Give an inbox document to a customer: a new pending certificate made from it (the fields not known
    stay empty), or attached to one of the customer's certificates."""
    return Operation(lambda _p, _c: InboxService(db, rules).assign(
        document_id, customer=customer, create_customer_name=new_customer_name, certificate_id=certificate_id,
        expected_version=expected_version, as_of=as_of), title="Assigning the document")


def discard_document(db: Database, document_id: int, reason: str) -> Operation[InboxItem]:
    """Take a document out of the inbox for good, with the reason."""
    return Operation(lambda _p, _c: InboxService(db).discard(document_id, reason))


def split_document(db: Database, document_id: int, ranges: Sequence[tuple[int, int]]) -> Operation[list[InboxItem]]:
    """One inbox document per page range, each read (OCR may take a while: progress and Cancel)."""
    return Operation(lambda _p, _c: InboxService(db).split(document_id, ranges), title="Splitting and reading")
