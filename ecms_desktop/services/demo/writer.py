"""Writing the demo's plans inside its one transaction: companies, customers, certificates, coverage
lines and document arrivals with bulk inserts in chunks, each created record with its audit event
(see :mod:`ecms_desktop.services.demo.service` for what is audited how).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from ecms_desktop.models import (
    Certificate,
    Company,
    CompanyRegistration,
    CoverageLine,
    Customer,
    DocumentSource,
    ReviewState,
    customer_number_key,
    utcnow,
)
from ecms_desktop.rules import RulesPack
from ecms_desktop.services.core import audit, people, state_digest
from ecms_desktop.services.core.errors import Cancelled
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.core.settings import business_settings
from ecms_desktop.services.demo.document_files import DemoFile
from ecms_desktop.services.demo.plans import CertPlan, CustomerPlan, DemoOptions
from ecms_desktop.services.demo.reference import COMPANIES, KIND_BUSINESS_TYPE
from ecms_desktop.services.documents.storage import store_checked

#: Certificates written per bulk insert (and per progress report / cancel check).
CHUNK = 2000


class Writer:
    """Writes the plans inside the demo's transaction, in bulk, with their audit events."""

    def __init__(self, session: Session, rules: RulesPack, options: DemoOptions, names: Sequence[str],
                 registrations: Sequence[dict[str, str]], customers: Sequence[CustomerPlan],
                 files: Sequence[tuple[int, DemoFile]], progress: Progress | None, cancel: CancelCheck | None,
                 total: int, done: int) -> None:
        self.s = session
        self.rules = rules
        self.options = options
        self.names = names
        self.registrations = registrations
        self.plans = customers
        self.files = files
        self.progress = progress
        self.cancel = cancel
        self.total = total
        self.done = done
        self.company_ids: list[int] = []
        self.customer_ids: list[int] = [0] * len(customers)
        self.actor = people.actor_name(session)
        self.n_lines = 0
        self.n_documents = 0
        self.n_events = 0
        #: The certificates whose document deliberately differs from the record: id -> what differs.
        self.slips: dict[int, str] = {}
        self.drawn_from = {plan_index: f for plan_index, f in files}

    def _tick(self, step: int, text: str) -> None:
        if self.cancel and self.cancel():
            raise Cancelled("Demo data cancelled; nothing was written.")
        self.done += step
        if self.progress:
            self.progress(min(self.done, self.total), self.total, text)

    def window_of_default(self) -> int:
        return business_settings(self.s, self.company_ids[0]).expiring_soon_days

    def companies(self) -> None:
        events = []
        for k, (name, spec) in enumerate(zip(self.names, COMPANIES, strict=True)):
            company = self.s.execute(select(Company).where(Company.name == name)).scalar_one_or_none()
            if company is None:
                company = Company(name=name, legal_name=spec["legal_name"] if k or not self.options.company
                                  else name, address_line1=spec["address_line1"],
                                  address_line2=spec["address_line2"], city=spec["city"], state=spec["state"],
                                  postal_code=spec["postal_code"], reply_to_email=spec["reply_to_email"],
                                  brand_color=spec["brand_color"])
                for st, number in sorted(self.registrations[k].items()):
                    company.registrations.append(CompanyRegistration(state=st, number=number))
                self.s.add(company)
                self.s.flush()
                events.append(audit.NewEvent("company.created", "company", company.id, company_id=company.id,
                                             after={"name": company.name, "legal_name": company.legal_name,
                                                    "state": company.state, "reply_to_email": company.reply_to_email,
                                                    "registrations": dict(sorted(self.registrations[k].items()))},
                                             details={"origin": "demo", "default": k == 0}))
            self.company_ids.append(company.id)
        audit.record_many(self.s, events, actor=self.actor)
        self.n_events += len(events)

    def customers(self) -> None:
        table = cast(Table, Customer.__table__)
        now = utcnow()
        # Parents before subsidiaries, so that parent ids are known.
        for wave in ([p for p in self.plans if p.parent is None], [p for p in self.plans if p.parent is not None]):
            for start in range(0, len(wave), CHUNK * 2):
                part = wave[start:start + CHUNK * 2]
                rows = [{
                    "company_id": self.company_ids[p.company], "number": p.number,
                    "number_key": customer_number_key(p.number), "legal_name": p.legal_name, "email": p.email,
                    "bill_to_line1": p.bill[0], "bill_to_city": p.bill[1], "bill_to_state": p.bill[2],
                    "bill_to_zip": p.bill[3], "ship_to_line1": p.ship[0], "ship_to_city": p.ship[1],
                    "ship_to_state": p.ship[2], "ship_to_zip": p.ship[3], "owner_email": p.owner_email,
                    "parent_id": self.customer_ids[p.parent] if p.parent is not None else None,
                    "notes": p.notes, "created_at": now,
                } for p in part]
                ids = self.s.execute(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                                     rows).scalars().all()
                state_digest.touch(self.s, "customer", ids)
                for p, new_id in zip(part, ids, strict=True):
                    self.customer_ids[p.index] = new_id
                events = [audit.NewEvent("customer.created", "customer", new_id,
                                         company_id=self.company_ids[p.company],
                                         after={"number": p.number, "legal_name": p.legal_name, "email": p.email,
                                                "parent": self.plans[p.parent].number if p.parent is not None
                                                else None}, details={"origin": "demo"})
                          for p, new_id in zip(part, ids, strict=True)]
                audit.record_many(self.s, events, actor=self.actor)
                self.n_events += len(events)
                self.s.expunge_all()
                self._tick(len(part), f"Customers ({start + len(part)} of {len(wave)})")

    def _file_for(self, plan: CertPlan) -> DemoFile | None:
        """The certificate's own document, if one was drawn for it."""
        return self.drawn_from.get(plan.index) if plan.has_document else None

    def certificates(self, plans: Sequence[CertPlan]) -> None:
        s = self.s
        now = utcnow()
        cert_table = cast(Table, Certificate.__table__)
        line_table = cast(Table, CoverageLine.__table__)
        rows = []
        for p in plans:
            customer = self.plans[p.customer]
            reviewed = p.review_state != ReviewState.PENDING.value
            rows.append({
                "company_id": self.company_ids[p.company], "customer_id": self.customer_ids[p.customer],
                "form_code": p.form.code, "certificate_number": p.certificate_number,
                "purchaser_name": customer.legal_name,
                "purchaser_address": f"{customer.bill[0]}, {customer.bill[1]}, {customer.bill[2]} {customer.bill[3]}",
                "purchaser_tax_id": p.purchaser_tax_id, "purchaser_ein": p.purchaser_ein,
                "business_type": KIND_BUSINESS_TYPE[customer.kind], "business_description": customer.trade[1],
                "property_description": customer.trade[2], "exempt_reason": p.reason,
                "exemption_detail": p.exemption_detail, "certificate_type": p.certificate_type,
                "po_number": p.po_number, "signed": True, "signer_name": customer.contact[0],
                "signer_title": customer.contact[1], "signed_date": p.signed_date, "effective_date": p.effective_date,
                "expiry_override": p.expiry_override, "expiry_override_reason": p.expiry_override_reason,
                "expiry_date": p.expiry_date, "review_state": p.review_state, "review_reason": p.review_reason,
                "state_before_archive": ReviewState.APPROVED.value if p.review_state == ReviewState.ARCHIVED.value
                else None,
                "reviewed_by": self.actor if reviewed else "",
                "reviewed_at": _at(p.signed_date + dt.timedelta(days=3 + p.index % 9), p.index) if reviewed else None,
                "product_codes": p.product_codes, "commodity_codes": p.commodity_codes,
                "exempt_percent": p.exempt_percent, "exempt_amount": p.exempt_amount, "currency": "USD",
                "notes": p.notes, "owner_email": "", "origin": "demo", "created_at": now, "updated_at": now,
                "version": 1,
            })
        ids = s.execute(insert(cert_table).returning(cert_table.c.id, sort_by_parameter_order=True),
                        rows).scalars().all()
        state_digest.touch(s, "certificate", ids)
        line_rows = []
        events = []
        for p, cert_id in zip(plans, ids, strict=True):
            for line in p.lines:
                line_rows.append({"certificate_id": cert_id, "state": line.state, "state_tax_id": line.state_tax_id,
                                  "local_jurisdictions": [], "expiry_date": line.expiry_date,
                                  "expiry_basis": line.expiry_basis, "expiry_source": line.expiry_source,
                                  "expiry_origin": line.expiry_origin})
            company_id = self.company_ids[p.company]
            demo_file = self._file_for(p)
            doc_sha = None
            if demo_file is not None:
                doc_sha = demo_file.checked.sha256
                received = _at(p.signed_date + dt.timedelta(days=1 + p.index % 11), p.index)
                # Through the normal document storage (stored by hash, audited as document.received),
                # with what the reader read from it.
                doc = store_checked(s, demo_file.checked, received_via=DocumentSource.DEMO.value,
                                    certificate_id=cert_id, received_at=received, company_id=company_id)
                doc.extraction = demo_file.extraction
                if demo_file.slip:
                    self.slips[cert_id] = demo_file.slip
                self.n_events += 1
                self.n_documents += 1
            events.append(audit.NewEvent(
                "certificate.created", "certificate", cert_id, company_id=company_id, certificate_id=cert_id,
                after={"customer_number": self.plans[p.customer].number, "form_code": p.form.code,
                       "certificate_number": p.certificate_number, "exempt_reason": p.reason,
                       "certificate_type": p.certificate_type, "po_number": p.po_number or None,
                       "purchaser_tax_id": p.purchaser_tax_id, "signed_date": p.signed_date,
                       "effective_date": p.effective_date,
                       "lines": [[line.state, line.expiry_date] for line in p.lines],
                       "review_state": p.review_state, "review_reason": p.review_reason or None,
                       "document_sha256": doc_sha},
                details={"origin": "demo"}))
        s.execute(insert(line_table), line_rows)
        self.n_lines += len(line_rows)
        audit.record_many(s, events, actor=self.actor)
        self.n_events += len(events)
        s.flush()  # the documents' readings, before the session lets go of them
        s.expunge_all()
        self._tick(len(plans), f"Certificates ({plans[-1].index + 1} of {self.options.certificates})")


def _at(day: dt.date, salt: int) -> dt.datetime:
    """A working-hours UTC time on ``day`` (deterministic, so the data repeats with the seed)."""
    minutes = 13 * 60 + (salt * 37) % (8 * 60)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC) + dt.timedelta(minutes=minutes)
