"""Merging two customers that are the same business (entered twice, under two numbers).

Everything of the merged customer moves to the surviving one: its certificates, renewal requests, renewal
e-mails, exemption-status events, sales lines and child accounts; empty details of the survivor are
filled in from the merged one. The merged customer's number becomes a number of the survivor
(:class:`~ecms_desktop.models.CustomerNumberAlias`), so imports, intake and sales that still use it find
the survivor. One audit event records the merge and what moved; the certificates' new owner is in their
tamper-evident state like any other edit.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ecms_desktop.models import Certificate, Customer, CustomerNumberAlias
from ecms_desktop.models.renewal import OutboxMessage, RenewalRequest
from ecms_desktop.models.transactions import ExemptionStatusEvent, TransactionLine
from ecms_desktop.services.core import audit
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import NotFoundError, ValidationError
from ecms_desktop.services.customers.service import rekey_sales

#: Details of the survivor filled in from the merged customer when the survivor has none.
_FILLED = ("email", "bill_to_line1", "bill_to_city", "bill_to_state", "bill_to_zip", "ship_to_line1",
           "ship_to_city", "ship_to_state", "ship_to_zip", "owner_email")


@dataclass(frozen=True)
class MergePlan:
    """What a merge would move, for the accountant to confirm."""

    merged_id: int
    merged_number: str
    merged_name: str
    survivor_id: int
    survivor_number: str
    survivor_name: str
    certificates: int
    renewal_requests: int
    sales_lines: int
    child_customers: int
    #: Numbers merged into the merged customer before, which follow it to the survivor.
    earlier_numbers: tuple[str, ...]
    #: Fields of the survivor that are empty and would be filled in from the merged customer.
    filled_in: tuple[str, ...]

    def summary(self) -> str:
        """The merge in one sentence."""
        moved = [f"{self.certificates} certificate(s)", f"{self.renewal_requests} renewal request(s)",
                 f"{self.sales_lines} sales line(s)", f"{self.child_customers} child customer(s)"]
        return (f"{self.merged_number} {self.merged_name} is merged into {self.survivor_number} {self.survivor_name}: "
                + ", ".join(moved) + f" move; number {self.merged_number} will mean {self.survivor_number}.")


def _pair(s: Session, merged_id: int, survivor_id: int) -> tuple[Customer, Customer]:
    if merged_id == survivor_id:
        raise ValidationError("A customer cannot be merged into itself: choose another customer to keep.")
    merged, survivor = s.get(Customer, merged_id), s.get(Customer, survivor_id)
    if merged is None or survivor is None:
        raise NotFoundError(f"There is no customer {merged_id if merged is None else survivor_id} (it may have been "
                            "merged already).")
    if merged.company_id != survivor.company_id:
        raise ValidationError(f"{merged.number} {merged.legal_name} and {survivor.number} {survivor.legal_name} belong "
                              "to different companies: only customers of one company can be merged.")
    return merged, survivor


def _count(s: Session, stmt: object) -> int:
    return int(s.execute(stmt).scalar_one())  # type: ignore[call-overload]


def _plan(s: Session, merged: Customer, survivor: Customer) -> MergePlan:
    return MergePlan(
        merged.id, merged.number, merged.legal_name, survivor.id, survivor.number, survivor.legal_name,
        certificates=_count(s, select(func.count()).where(Certificate.customer_id == merged.id)),
        renewal_requests=_count(s, select(func.count()).where(RenewalRequest.customer_id == merged.id)),
        sales_lines=_count(s, select(func.count()).where(TransactionLine.company_id == merged.company_id,
                                                         TransactionLine.customer_key == merged.number_key)),
        child_customers=_count(s, select(func.count()).where(Customer.parent_id == merged.id,
                                                             Customer.id != survivor.id)),
        earlier_numbers=tuple(s.execute(select(CustomerNumberAlias.number).where(
            CustomerNumberAlias.customer_id == merged.id).order_by(CustomerNumberAlias.id)).scalars()),
        filled_in=tuple(f for f in _FILLED if not getattr(survivor, f) and getattr(merged, f)))


class CustomerMergeService:
    """Merging customers that are the same business, for the Customers view and ``ecms customers merge``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def plan(self, merged_id: int, survivor_id: int) -> MergePlan:
        """What merging ``merged_id`` into ``survivor_id`` would move (nothing is changed)."""
        with self.db.reader() as s:
            return _plan(s, *_pair(s, merged_id, survivor_id))

    def merge(self, merged_id: int, survivor_id: int) -> MergePlan:
        """Merge customer ``merged_id`` into ``survivor_id`` in one transaction (see the module); the
        merged customer is removed and its number keeps matching the survivor. Returns what moved."""
        with self.db.transaction() as s:
            # The certificates first, in id order, then the audit trail's head, as every change does.
            cert_ids = s.execute(select(Certificate.id).where(Certificate.customer_id == merged_id)
                                 .order_by(Certificate.id).with_for_update()).scalars().all()
            audit.head_seq(s, lock=True)
            merged, survivor = _pair(s, merged_id, survivor_id)
            plan = _plan(s, merged, survivor)
            for cert in s.execute(select(Certificate).where(Certificate.id.in_(cert_ids))).scalars():
                cert.customer_id = survivor.id
            s.execute(update(RenewalRequest).where(RenewalRequest.customer_id == merged.id)
                      .values(customer_id=survivor.id).execution_options(synchronize_session=False))
            s.execute(update(OutboxMessage).where(OutboxMessage.customer_id == merged.id)
                      .values(customer_id=survivor.id).execution_options(synchronize_session=False))
            s.execute(update(ExemptionStatusEvent).where(ExemptionStatusEvent.customer_id == merged.id)
                      .values(customer_id=survivor.id).execution_options(synchronize_session=False))
            for child in s.execute(select(Customer).where(Customer.parent_id == merged.id)).scalars():
                child.parent_id = None if child.id == survivor.id else survivor.id
            if survivor.parent_id == merged.id:
                survivor.parent_id = merged.parent_id if merged.parent_id != survivor.id else None
            filled = {f: getattr(merged, f) for f in plan.filled_in}
            for f, value in filled.items():
                setattr(survivor, f, value)
            if merged.notes.strip():
                survivor.notes = "\n".join(n for n in (survivor.notes.rstrip(), f"From {merged.number} "
                                                       f"{merged.legal_name}: {merged.notes.strip()}") if n)
            rekey_sales(s, merged.company_id, merged.number_key, survivor.number_key)
            for alias in s.execute(select(CustomerNumberAlias).where(
                    CustomerNumberAlias.customer_id == merged.id)).scalars():
                alias.customer_id = survivor.id
                rekey_sales(s, merged.company_id, alias.number_key, survivor.number_key)
            number, key, name, company_id = merged.number, merged.number_key, merged.legal_name, merged.company_id
            s.flush()
            s.delete(merged)
            s.flush()  # the merged customer's number is free before it becomes the survivor's
            s.add(CustomerNumberAlias(company_id=company_id, number=number, number_key=key,
                                      customer_id=survivor.id, merged_name=name))
            audit.record(s, "customer.merged", "customer", survivor.id, company_id=company_id,
                         before={"merged_customer_id": merged_id, "merged_number": number, "merged_name": name},
                         after={f: filled[f] for f in filled},
                         details={"certificates_moved": list(cert_ids), "renewal_requests_moved": plan.renewal_requests,
                                  "sales_lines_moved": plan.sales_lines, "child_customers_moved": plan.child_customers,
                                  "numbers_now_meaning_survivor": [number, *plan.earlier_numbers]})
            return plan
