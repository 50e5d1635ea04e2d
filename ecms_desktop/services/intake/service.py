"""Receiving certificate files at the desk: each file dropped on the window (or chosen with
File > Import documents) becomes evidence with its intake timestamp.

For every file the intake either

- **stores** it and creates a *pending* certificate for it (the accountant fills in the details in
  the review queue), or attaches it to the certificate the accountant selected;
- reports it as a **duplicate** of a document already stored (same SHA-256): nothing new is stored
  and no second certificate is created for the same paper;
- **refuses** it with the reason (damaged, empty, password-protected, not a PDF or image ...):
  nothing is stored for it.

Placeholders for a new pending certificate (a certificate must name a customer, a state and a form):

- customer: the company's own "Unassigned intake" customer (number ``INTAKE``), created on demand;
- state: the company's home state (the company profile's state); a company without a home state
  cannot receive files until one is set in Settings > Companies;
- form: the home state's first own form in the rules pack, else the SST form for an SST member
  state, else the MTC uniform certificate.

The certificate is marked ``origin="intake"`` and its notes say that customer, state and form are
placeholders, so the review queue's form (which is rebuilt when state or form change) is where they
are set. Each file is one transaction: a refused or cancelled file never rolls back the files
before it, and nothing is half-written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecms_desktop.models import (
    Certificate,
    Company,
    Customer,
    Document,
    ReviewState,
    customer_number_key,
    utcnow,
)
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.rules.pack import UnknownStateError
from ecms_desktop.services.certificates.service import certificate_for_change, create_certificate
from ecms_desktop.services.core import audit
from ecms_desktop.services.core.certificate_records import CertificateInput, LineInput
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import Cancelled, DocumentError, NotFoundError, ValidationError
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.documents.storage import CheckedFile, check_file, sha256_of, store_checked

#: Number of the per-company customer that holds certificates received before anyone said whose they are.
INTAKE_CUSTOMER_NUMBER = "INTAKE"
INTAKE_CUSTOMER_NAME = "Unassigned intake"
_SST_FORM = "SST-F0003"
_MTC_FORM = "MTC-UNIFORM"


class IntakeOutcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


@dataclass(frozen=True)
class IntakeItem:
    """What happened to one file."""

    path: Path
    outcome: IntakeOutcome
    message: str
    document_id: int | None = None
    certificate_id: int | None = None
    sha256: str = ""

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class IntakeResult:
    """What an intake did, file by file, in the order given."""

    items: list[IntakeItem] = field(default_factory=list)

    def of(self, outcome: IntakeOutcome) -> list[IntakeItem]:
        return [i for i in self.items if i.outcome is outcome]

    @property
    def stored(self) -> list[IntakeItem]:
        return self.of(IntakeOutcome.STORED)

    @property
    def duplicates(self) -> list[IntakeItem]:
        return self.of(IntakeOutcome.DUPLICATE)

    @property
    def refused(self) -> list[IntakeItem]:
        return self.of(IntakeOutcome.REFUSED)

    @property
    def certificate_ids(self) -> list[int]:
        return [i.certificate_id for i in self.stored if i.certificate_id is not None]

    def summary(self) -> str:
        """One line for a status bar: "2 stored, 1 duplicate, 1 refused"."""
        parts = [f"{len(self.stored)} stored"]
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} duplicate{'s' if len(self.duplicates) > 1 else ''}")
        if self.refused:
            parts.append(f"{len(self.refused)} refused")
        return ", ".join(parts)


def placeholder_form(rules: RulesPack, state: str) -> str:
    """The form a new pending certificate starts with in ``state`` (see the module text)."""
    rule = rules.state(state)
    if rule.forms:
        return rule.forms[0].code
    if rule.sst.membership in ("full", "member", "associate"):
        return _SST_FORM
    return _MTC_FORM


class IntakeService:
    """Receive certificate files for one company (drag and drop, File > Import documents)."""

    def __init__(self, db: Database, rules: RulesPack | None = None) -> None:
        self.db = db
        self.rules = rules or load_rules_pack()

    def receive_files(self, paths: Sequence[Path | str], company_id: int, *, attach_to: int | None = None,
                      expected_version: int | None = None, received_via: str = "upload",
                      progress: Progress | None = None, cancel: CancelCheck | None = None) -> IntakeResult:
        """Probe and store each file; create a pending certificate per new file, or attach every new
        file to certificate ``attach_to`` as the user saw it (``expected_version``, required with
        ``attach_to``: attaching changes the certificate, so it is refused with :class:`ConflictError`
        when someone else changed the certificate meanwhile; each attached file raises the version).
        Returns what happened to each file. Raises :class:`Cancelled` (files already handled stay
        stored) and :class:`NotFoundError` / :class:`ValidationError` when the target certificate or
        the company cannot take files."""
        files = [Path(p) for p in paths]
        result = IntakeResult()
        version = expected_version
        if attach_to is not None:
            if version is None:
                raise ValueError("attaching files to a certificate needs the version the user saw")
            self._check_target(attach_to, company_id)
        else:
            self._home_state(company_id)  # fail early, before probing, when there is none
        for n, path in enumerate(files):
            if cancel and cancel():
                raise Cancelled(f"Intake cancelled after {n} of {len(files)} files; "
                                f"{len(result.stored)} stored.")
            if progress:
                progress(n, len(files), f"Checking {path.name}")
            item, version = self._receive_one(path, company_id, attach_to, version, received_via)
            result.items.append(item)
        if progress:
            progress(len(files), len(files), result.summary())
        return result

    # -- one file

    def _receive_one(self, path: Path, company_id: int, attach_to: int | None, version: int | None,
                     received_via: str) -> tuple[IntakeItem, int | None]:
        """What happened to one file, and the target certificate's version afterwards."""
        try:
            checked = check_file(path)
        except DocumentError as exc:
            return IntakeItem(path, IntakeOutcome.REFUSED, str(exc)), version
        received_at = utcnow()
        with self.db.transaction() as s:
            target = (certificate_for_change(s, attach_to, version)
                      if attach_to is not None and version is not None else None)
            first = s.execute(select(Document.id, Document.certificate_id).where(
                Document.sha256 == checked.sha256).order_by(Document.id).limit(1)).first()
            if first is not None:
                where = f" (certificate {first.certificate_id})" if first.certificate_id else ""
                return IntakeItem(path, IntakeOutcome.DUPLICATE,
                                  f"{path.name}: already stored as document {first.id}{where}; "
                                  "nothing new was stored.", document_id=first.id,
                                  certificate_id=first.certificate_id, sha256=checked.sha256), version
            if target is not None:
                cert_id = target.id
                message = f"{path.name}: stored and attached to certificate {cert_id}."
            else:
                cert_id = self._pending_certificate(s, company_id, checked, received_at.date()).id
                message = f"{path.name}: stored as pending certificate {cert_id}."
            doc = store_checked(s, checked, received_via=received_via, certificate_id=cert_id,
                                received_at=received_at, company_id=company_id)
            if target is not None:
                s.flush()
                version = target.version  # raised by the attachment
            return IntakeItem(path, IntakeOutcome.STORED, message, document_id=doc.id,
                              certificate_id=cert_id, sha256=checked.sha256), version

    def _pending_certificate(self, s: Session, company_id: int, checked: CheckedFile,
                             as_of: dt.date) -> Certificate:
        state = self._home_state(company_id, s)
        customer = self._intake_customer(s, company_id)
        data = CertificateInput(
            company_id=company_id, customer_id=customer.id, form_code=placeholder_form(self.rules, state),
            lines=(LineInput(state),),
            notes=(f"Received as {checked.name}. Customer, state and form are placeholders set at intake: "
                   "fill them in from the document during review."),
        )
        return create_certificate(s, self.rules, data, origin="intake",
                                  review_state=ReviewState.PENDING.value, validate="intake", as_of=as_of)

    # -- checks and placeholders

    def _check_target(self, cert_id: int, company_id: int) -> None:
        with self.db.reader() as s:
            cert = s.get(Certificate, cert_id)
            if cert is None:
                raise NotFoundError(f"There is no certificate {cert_id} to attach the files to.")
            if cert.company_id != company_id:
                raise ValidationError(f"Certificate {cert_id} belongs to another company; "
                                      "switch company before attaching files to it.")

    def _home_state(self, company_id: int, session: Session | None = None) -> str:
        def read(s: Session) -> str:
            company = s.get(Company, company_id)
            if company is None:
                raise NotFoundError(f"There is no company {company_id}.")
            state = (company.state or "").strip().upper()
            if not state:
                raise ValidationError(f"Company {company.name!r} has no home state: set its address in "
                                      "Settings > Companies before receiving documents (new certificates "
                                      "start in the home state).")
            try:
                self.rules.state(state)
            except UnknownStateError as exc:
                raise ValidationError(f"Company {company.name!r} has home state {state!r}, which is not "
                                      "a US state: correct it in Settings > Companies.") from exc
            return state

        if session is not None:
            return read(session)
        with self.db.reader() as s:
            return read(s)

    def _intake_customer(self, s: Session, company_id: int) -> Customer:
        key = customer_number_key(INTAKE_CUSTOMER_NUMBER)
        customer = s.execute(select(Customer).where(Customer.company_id == company_id,
                                                    Customer.number_key == key)).scalar_one_or_none()
        if customer is None:
            customer = Customer(company_id=company_id, number=INTAKE_CUSTOMER_NUMBER, number_key=key,
                                legal_name=INTAKE_CUSTOMER_NAME,
                                notes="Holds certificates received before their customer was identified.")
            s.add(customer)
            s.flush()
            audit.record(s, "customer.created", "customer", customer.id, company_id=company_id,
                         after={"number": customer.number, "legal_name": customer.legal_name},
                         details={"reason": "intake placeholder"})
        return customer


__all__ = ["INTAKE_CUSTOMER_NAME", "INTAKE_CUSTOMER_NUMBER", "IntakeItem", "IntakeOutcome", "IntakeResult",
           "IntakeService", "placeholder_form", "sha256_of"]
