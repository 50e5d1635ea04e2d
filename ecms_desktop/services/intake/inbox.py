"""The intake inbox: documents that arrived for a company and have no home yet, and what the accountant
does with them.

A document is in its company's inbox when it arrived without a certificate (``ecms intake``, the
watched folder, an e-mail attachment or a returned packet that matched no request), was not matched to
a renewal request, is not the evidence of a permit check, was not split into page ranges and was not
discarded. From the inbox a document is

- **assigned** to a customer (found by number or name, or created on the spot): attached to one of
  that customer's certificates, or made into a new *pending* certificate of the customer. A new
  certificate carries only what the accountant said the paper shows (states, form, exempt reason and
  type, each optional) and nothing else: every other field stays empty, not known yet, and validation
  says what is missing;
- **discarded** with a reason (who and when are kept; the document and its file stay stored);
- **split** into page ranges, one new inbox document per range: each is a view of the same stored
  file (its bytes are kept as they arrived) and names the document it was split from.

Each step is one transaction with its audit event (``document.assigned``, ``document.discarded``,
``document.split``). Two desks acting on the same document at once are serialised on the document's
row: the second finds it no longer in the inbox and gets a :class:`ConflictError` saying what
happened to it, by whom and when; nothing is written twice.
"""

from __future__ import annotations

import builtins
import datetime as dt
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from ecms_desktop.models import AuditEvent, Certificate, Company, Customer, Document, DocumentFile, ReviewState, utcnow
from ecms_desktop.models.renewal import IntakeRecord
from ecms_desktop.models.validation import PermitCheck
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.services.certificates.service import certificate_for_change, create_certificate
from ecms_desktop.services.core import audit, people
from ecms_desktop.services.core.certificate_records import CertificateInput, LineInput
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import ConflictError, NotFoundError, ValidationError
from ecms_desktop.services.core.field_limits import limits_of
from ecms_desktop.services.customers.service import find_customer, upsert_customer
from ecms_desktop.services.intake.reading import read_page_ranges


@dataclass(frozen=True)
class InboxItem:
    """A document waiting in the intake inbox."""

    id: int
    company_id: int
    name: str
    media_type: str
    #: Pages of this document (of its page range, for a document split from another).
    pages: int
    #: The page range of the stored file this document is (1-based, inclusive); None: the whole file.
    first_page: int | None
    last_page: int | None
    #: Pages of the stored file.
    file_pages: int
    size: int
    sha256: str
    received_via: str
    received_at: dt.datetime
    received_by: str
    #: For e-mailed files, the message's Date header.
    sent_at: dt.datetime | None
    #: The document this one was split from.
    split_from_id: int | None
    #: What was read from the document when it arrived (see intake.reading.DocumentReading.to_json); None:
    #: it was never read.
    extraction: dict[str, Any] | None = None

    @property
    def page_range(self) -> str:
        """``1-2`` for a page range, empty for the whole file."""
        if self.first_page is None or self.last_page is None:
            return ""
        return str(self.first_page) if self.first_page == self.last_page else f"{self.first_page}-{self.last_page}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``ecms inbox --format json``)."""
        return audit.jsonable({
            "id": self.id, "company_id": self.company_id, "name": self.name, "media_type": self.media_type,
            "pages": self.pages, "first_page": self.first_page, "last_page": self.last_page,
            "file_pages": self.file_pages, "size": self.size, "sha256": self.sha256,
            "received_via": self.received_via, "received_at": self.received_at, "received_by": self.received_by,
            "sent_at": self.sent_at, "split_from_id": self.split_from_id, "extraction": self.extraction,
        })


@dataclass(frozen=True)
class Assignment:
    """What assigning an inbox document did."""

    document_id: int
    certificate_id: int
    customer_id: int
    customer_number: str
    #: A new pending certificate was made from the document (else it was attached to an existing one).
    created_certificate: bool
    #: The customer was created on the spot.
    created_customer: bool
    message: str


def in_inbox() -> ColumnElement[bool]:
    """The condition on :class:`Document` rows that are in their company's intake inbox."""
    part = aliased(Document)
    return and_(
        Document.company_id.is_not(None),
        Document.certificate_id.is_(None),
        Document.discarded_at.is_(None),
        ~exists().where(part.split_from_id == Document.id),
        ~exists().where(IntakeRecord.document_id == Document.id, IntakeRecord.request_id.is_not(None)),
        ~exists().where(PermitCheck.evidence_document_id == Document.id),
    )


@dataclass(frozen=True)
class StoredCopy:
    """The document already received with the same bytes as an arriving file, and where it is now."""

    document_id: int
    certificate_id: int | None
    #: What was read from it when it arrived (None: never read).
    extraction: dict[str, Any] | None
    #: Where it is, as the tail of a sentence: " with certificate 12", ", waiting in the intake inbox ...".
    where: str

    def message(self, name: str) -> str:
        """What to tell about the file ``name`` that arrived again."""
        return f"{name}: already received as document {self.document_id}{self.where}; nothing new was stored."


def stored_copy(s: Session, sha256: str) -> StoredCopy | None:
    """The first document received with these bytes (None: they never arrived), and where it is: with its
    certificate, waiting in the intake inbox, split there, or discarded from it."""
    doc = s.execute(select(Document).where(Document.sha256 == sha256).order_by(Document.id).limit(1)
                    ).unique().scalar_one_or_none()
    if doc is None:
        return None
    parts = s.execute(select(Document.id).where(Document.split_from_id == doc.id).order_by(Document.id)
                      ).scalars().all()
    if doc.certificate_id is not None:
        where = f" with certificate {doc.certificate_id}"
    elif doc.discarded_at is not None:
        where = (f" (discarded from the intake inbox on {doc.discarded_at.astimezone(dt.UTC):%Y-%m-%d}: "
                 f"{doc.discard_reason})")
    elif parts:
        where = f" (split in the intake inbox into documents {', '.join(map(str, parts))})"
    elif s.execute(select(Document.id).where(Document.id == doc.id, in_inbox())).first() is not None:
        where = ", waiting in the intake inbox (the desk's Inbox pane; ecms inbox)"
    else:
        where = ""
    return StoredCopy(doc.id, doc.certificate_id, doc.extraction, where)


def _item(doc: Document, file: DocumentFile) -> InboxItem:
    pages = (doc.last_page - doc.first_page + 1 if doc.first_page is not None and doc.last_page is not None
             else file.page_count)
    assert doc.company_id is not None
    return InboxItem(doc.id, doc.company_id, doc.original_name, file.media_type, pages, doc.first_page,
                     doc.last_page, file.page_count, file.size, doc.sha256, doc.received_via, doc.received_at,
                     doc.received_by, doc.sent_at, doc.split_from_id, doc.extraction)


_RANGE = re.compile(r"(\d+)(?:-(\d+))?")


def parse_page_ranges(text: str) -> builtins.list[tuple[int, int]]:
    """Page ranges as the accountant types them: ``1-2, 3-4`` or ``1-2 3`` (1-based, inclusive); a
    ValidationError says which part is not a range."""
    parts = [p for p in re.split(r"[,;\s]+", re.sub(r"\s*-\s*", "-", text.strip())) if p]
    if not parts:
        raise ValidationError("Give the page ranges to split the document into, e.g. 1-2, 3-4.")
    ranges = []
    for part in parts:
        m = _RANGE.fullmatch(part)
        if m is None:
            raise ValidationError(f"{part!r} is not a page range such as 3 or 1-2.")
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else first
        if first < 1 or last < first:
            raise ValidationError(f"{part!r} is not a page range: pages count from 1 and the last page is "
                                  "not before the first.")
        ranges.append((first, last))
    return ranges


def _range_text(first: int, last: int) -> str:
    return f"page {first}" if first == last else f"pages {first}-{last}"


class InboxService:
    """The intake inbox's use cases for the desk and the CLI (``ecms inbox``)."""

    def __init__(self, db: Database, rules: RulesPack | None = None) -> None:
        self.db = db
        self._rules = rules

    @property
    def rules(self) -> RulesPack:
        """The rules pack (loaded when a certificate is first made from a document)."""
        if self._rules is None:
            self._rules = load_rules_pack()
        return self._rules

    def list(self, company_id: int | None = None) -> builtins.list[InboxItem]:
        """The documents waiting in the inbox (of one company, or of all), oldest arrival first."""
        with self.db.reader() as s:
            stmt = (select(Document, DocumentFile).join(DocumentFile, DocumentFile.sha256 == Document.sha256)
                    .where(in_inbox()).order_by(Document.received_at, Document.id))
            if company_id is not None:
                stmt = stmt.where(Document.company_id == company_id)
            return [_item(doc, file) for doc, file in s.execute(stmt).all()]

    def get(self, document_id: int) -> InboxItem:
        """One document of the inbox; NotFoundError / ConflictError say why it is not there."""
        with self.db.reader() as s:
            doc = self._inbox_document(s, document_id, lock=False)
            return _item(doc, doc.file)

    # -- assign

    def assign(self, document_id: int, *, customer: str, certificate_id: int | None = None,
               create_customer_name: str | None = None, expected_version: int | None = None,
               states: Sequence[str] = (), form_code: str | None = None, exempt_reason: str | None = None,
               certificate_type: str | None = None, as_of: dt.date | None = None) -> Assignment:
        """Give an inbox document to a customer of its company (``customer``: the number, or the exact
        name; a new customer is created with ``create_customer_name`` as its name when there is none
        with that number).

        With ``certificate_id`` the document is attached to that certificate of the customer (as of
        ``expected_version`` when given: refused as a conflict when the certificate changed since).
        Without it a new pending certificate of the customer is made from the document with what the
        accountant said the paper shows (``states``, ``form_code``, ``exempt_reason``, ``certificate_type``,
        each optional) and nothing else: a field not given stays empty, not known yet (no value is guessed;
        validation says what is missing, and the certificate cannot be approved until it is filled in). The
        new certificate is validated at once (trigger ``intake``), in the same transaction."""
        number = customer.strip()
        if not number:
            raise ValidationError("Say whose document it is: give the customer's number or name.")
        new_name = (create_customer_name or "").strip()
        if create_customer_name is not None and not new_name:
            raise ValidationError("The name of the new customer is empty.")
        with self.db.transaction() as s:
            doc = self._inbox_document(s, document_id)
            company_id = doc.company_id
            assert company_id is not None
            who, created_customer = self._customer(s, company_id, number, new_name)
            if certificate_id is not None:
                cert = self._target(s, certificate_id, expected_version, company_id, who)
                created = False
            else:
                notes = (f"Made from document {doc.id} ({doc.original_name}) of the intake inbox; the fields "
                         "not given are empty until they are filled in from the document.")
                data = CertificateInput(
                    company_id=company_id, customer_id=who.id, form_code=form_code or "",
                    lines=tuple(LineInput(st.strip().upper()) for st in states if st.strip()),
                    exempt_reason=(exempt_reason or "").strip(), certificate_type=(certificate_type or "").strip(),
                    notes=notes)
                cert = create_certificate(s, self.rules, data, origin="intake",
                                          review_state=ReviewState.PENDING.value, validate="intake",
                                          as_of=as_of or dt.date.today())
                created = True
            doc.certificate_id = cert.id
            s.flush()
            audit.record(s, "document.assigned", "document", doc.id, company_id=company_id, certificate_id=cert.id,
                         before={"certificate_id": None},
                         after={"certificate_id": cert.id, "customer_id": who.id, "customer_number": who.number,
                                "original_name": doc.original_name},
                         details={"new_certificate": created, "new_customer": created_customer})
            how = "made into pending certificate" if created else "attached to certificate"
            message = (f"Document {doc.id} ({doc.original_name}) was {how} {cert.id} of customer {who.number} "
                       f"({who.legal_name}).")
            return Assignment(doc.id, cert.id, who.id, who.number, created, created_customer, message)

    def _customer(self, s: Session, company_id: int, number: str, new_name: str) -> tuple[Customer, bool]:
        if new_name:
            return upsert_customer(s, company_id, number, legal_name=new_name)
        try:
            return find_customer(s, company_id, number), False
        except NotFoundError:
            company = s.get(Company, company_id)
            name = company.name if company is not None else str(company_id)
            raise NotFoundError(f"Company {name!r} has no customer with number or name {number!r}; give the "
                                "name of a new customer to create it.") from None

    def _target(self, s: Session, cert_id: int, expected_version: int | None, company_id: int,
                who: Customer) -> Certificate:
        if expected_version is not None:
            cert = certificate_for_change(s, cert_id, expected_version)
        else:
            found = s.execute(select(Certificate).where(Certificate.id == cert_id).with_for_update()
                              ).scalar_one_or_none()
            if found is None:
                raise NotFoundError(f"There is no certificate {cert_id}.")
            cert = found
        if cert.company_id != company_id:
            raise ValidationError(f"Certificate {cert_id} belongs to another company than the document.")
        if cert.customer_id != who.id:
            owner = s.get(Customer, cert.customer_id)
            owner_text = f"{owner.number} ({owner.legal_name})" if owner is not None else str(cert.customer_id)
            raise ValidationError(f"Certificate {cert_id} is customer {owner_text}'s, not {who.number} "
                                  f"({who.legal_name})'s.")
        return cert

    # -- discard

    def discard(self, document_id: int, reason: str) -> InboxItem:
        """Take a document out of the inbox for good, saying why (the document and its file stay stored)."""
        why = reason.strip()
        if not why:
            raise ValidationError(f"Say why document {document_id} is discarded.")
        found = limits_of(Document)["discard_reason"].text_problem(why)
        if found is not None:
            raise ValidationError(f"The reason cannot be stored: {found}.")
        with self.db.transaction() as s:
            doc = self._inbox_document(s, document_id)
            item = _item(doc, doc.file)
            doc.discarded_at, doc.discarded_by, doc.discard_reason = utcnow(), people.actor_name(s)[:100], why
            s.flush()
            audit.record(s, "document.discarded", "document", doc.id, company_id=doc.company_id,
                         after={"discarded_at": doc.discarded_at, "discarded_by": doc.discarded_by,
                                "discard_reason": why, "original_name": doc.original_name})
            return item

    # -- split

    def split(self, document_id: int, ranges: Sequence[tuple[int, int]]) -> builtins.list[InboxItem]:
        """One new inbox document per page range (1-based, inclusive, in the stored file's pages, within
        the document's own pages, not overlapping), each a view of the same stored file. The document
        split leaves the inbox; the new ones wait in it, each with its own reading (its pages read in the
        document sandbox, before the transaction)."""
        wanted = sorted((int(a), int(b)) for a, b in ranges)
        if not wanted:
            raise ValidationError("Give the page ranges to split the document into, e.g. 1-2 and 3-4.")
        with self.db.reader() as s:  # checked first: a wrong range is told before anything is read
            doc = self._inbox_document(s, document_id, lock=False)
            self._check_ranges(doc, wanted, doc.first_page or 1, doc.last_page or doc.file.page_count)
            data, name = doc.file.data, doc.original_name
        readings = read_page_ranges(data, name, self.rules, wanted)
        with self.db.transaction() as s:
            doc = self._inbox_document(s, document_id)
            low = doc.first_page or 1
            high = doc.last_page or doc.file.page_count
            self._check_ranges(doc, wanted, low, high)
            parts = []
            # The range goes before the extension: the name stays a file name of the file's type.
            stem, ext = os.path.splitext(doc.original_name)
            for (first, last), reading in zip(wanted, readings, strict=True):
                suffix = f" ({_range_text(first, last)}){ext}"
                part = Document(certificate_id=None, sha256=doc.sha256,
                                original_name=stem[:255 - len(suffix)] + suffix, received_via=doc.received_via,
                                received_at=doc.received_at, sent_at=doc.sent_at, received_by=doc.received_by,
                                view_rotation=doc.view_rotation, company_id=doc.company_id, first_page=first,
                                last_page=last, split_from_id=doc.id)
                part.file = doc.file
                part.extraction = reading.to_json()
                s.add(part)
                parts.append(part)
            s.flush()
            audit.record(s, "document.split", "document", doc.id, company_id=doc.company_id,
                         after={"documents": [{"id": p.id, "first_page": p.first_page, "last_page": p.last_page,
                                               "original_name": p.original_name} for p in parts]},
                         details={"sha256": doc.sha256, "file_pages": doc.file.page_count})
            return [_item(p, doc.file) for p in parts]

    @staticmethod
    def _check_ranges(doc: Document, wanted: Sequence[tuple[int, int]], low: int, high: int) -> None:
        own = _range_text(low, high)
        if low == high:
            raise ValidationError(f"Document {doc.id} has one page ({own} of its file): there is nothing to split.")
        problems = []
        for first, last in wanted:
            if first < 1 or last < first:
                problems.append(f"{first}-{last} is not a page range (first page 1 or more, last not before first)")
            elif first < low or last > high:
                problems.append(f"{_range_text(first, last)} is outside the document ({own} of its file)")
        for (a1, b1), (a2, b2) in pairwise(wanted):
            if a2 <= b1:
                problems.append(f"{_range_text(a1, b1)} and {_range_text(a2, b2)} overlap")
        if not problems and wanted == [(low, high)]:
            problems.append(f"the one range {_range_text(low, high)} is the whole document")
        if problems:
            raise ValidationError(f"Document {doc.id} cannot be split that way: " + "; ".join(problems) + ".")

    # -- the document acted on

    def _inbox_document(self, s: Session, document_id: int, *, lock: bool = True) -> Document:
        """The document, in the inbox, locked for the rest of the transaction (every audited writer
        takes the audit chain first, then the row): NotFoundError when there is no such document,
        ConflictError saying what happened to it when it left the inbox, ValidationError when it never
        was in one."""
        if lock:
            audit.head_seq(s, lock=True)
        stmt = select(Document).where(Document.id == document_id)
        doc = s.execute(stmt.with_for_update(of=Document) if lock else stmt).unique().scalar_one_or_none()
        if doc is None:
            raise NotFoundError(f"There is no document {document_id}.")
        if doc.discarded_at is not None:
            raise ConflictError(f"Document {doc.id} ({doc.original_name}) was discarded by {doc.discarded_by} on "
                                f"{doc.discarded_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC ({doc.discard_reason}); "
                                "it is no longer in the inbox.")
        if doc.certificate_id is not None:
            raise ConflictError(f"Document {doc.id} ({doc.original_name}) is already attached to certificate "
                                f"{doc.certificate_id}{self._by_whom(s, doc.id, 'document.assigned')}; it is not in "
                                "the inbox.")
        parts = s.execute(select(Document.id).where(Document.split_from_id == doc.id).order_by(Document.id)
                          ).scalars().all()
        if parts:
            raise ConflictError(f"Document {doc.id} ({doc.original_name}) was split into documents "
                                f"{', '.join(map(str, parts))}{self._by_whom(s, doc.id, 'document.split')}; it is "
                                "not in the inbox.")
        if doc.company_id is None or not s.execute(select(func.count()).select_from(Document).where(
                Document.id == doc.id, in_inbox())).scalar_one():
            raise ValidationError(f"Document {doc.id} ({doc.original_name}) is not an intake document waiting "
                                  "in an inbox (it is a request's returned form or a permit check's evidence).")
        return doc

    @staticmethod
    def _by_whom(s: Session, document_id: int, action: str) -> str:
        event = s.execute(select(AuditEvent).where(AuditEvent.entity_type == "document",
                                                   AuditEvent.entity_id == str(document_id),
                                                   AuditEvent.action == action)
                          .order_by(AuditEvent.seq.desc()).limit(1)).scalar_one_or_none()
        if event is None:
            return ""
        return f" by {event.actor} on {event.occurred_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


__all__ = ["Assignment", "InboxItem", "InboxService", "StoredCopy", "in_inbox", "parse_page_ranges", "stored_copy"]
