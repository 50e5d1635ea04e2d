"""Reprocessing: applying a certificate (and the customer's other current certificates, by the
precedence) to the customer's sales in a date range.

:func:`plan_reprocessing` says what would change without changing anything (a :class:`ReprocessPlan`,
shown before confirming); :func:`apply_reprocessing` makes the changes in the caller's transaction. A
sale in a filed period is never changed: a negating entry and a new entry go into the current open
period. In an open period the determination is updated. Every change is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, and_, func, insert, select, update
from sqlalchemy.orm import Session

from ecms_desktop.models import Certificate, Customer, utcnow
from ecms_desktop.models.transactions import Determination, DeterminationAdjustment, TransactionLine
from ecms_desktop.services.core import audit, people
from ecms_desktop.services.core.errors import NotFoundError, ValidationError
from ecms_desktop.services.core.people import Permission
from ecms_desktop.services.sales.candidates import load_candidates
from ecms_desktop.services.sales.determination import SaleLine, determine
from ecms_desktop.services.sales.determination_records import (
    LINE_COLUMNS,
    determination_row,
    evidence_snapshot,
    sale_of,
)
from ecms_desktop.services.sales.late_lines import book_late_determinations
from ecms_desktop.services.sales.periods import PeriodBook
from ecms_desktop.services.sales.sales_history import load_sales_histories

_TL = cast(Table, TransactionLine.__table__)
_DET = cast(Table, Determination.__table__)
_ADJ = cast(Table, DeterminationAdjustment.__table__)
_ZERO = Decimal(0)


@dataclass(frozen=True)
class ReprocessItem:
    """The effect of reprocessing on one sale."""

    transaction_line_id: int
    invoice_number: str
    line: int
    invoice_date: dt.date
    state: str
    #: ``update`` (open period), ``adjust`` (filed period: negation + new entry), ``determine`` (first
    #: determination) or ``unchanged``.
    action: str
    filed_period: str | None
    adjustment_period: str | None
    old_exempt: bool | None
    old_certificate: str | None
    old_exempt_amount: Decimal
    new_exempt: bool
    new_certificate: str | None
    new_exempt_amount: Decimal


@dataclass(frozen=True)
class ReprocessPlan:
    """What reprocessing a certificate over a date range would do (shown before confirming)."""

    certificate_id: int
    certificate_number: str
    customer_number: str
    date_from: dt.date
    date_to: dt.date
    prefer_customer_address: bool
    as_of: dt.date
    items: tuple[ReprocessItem, ...]

    @property
    def changes(self) -> list[ReprocessItem]:
        return [i for i in self.items if i.action != "unchanged"]

    def count(self, action: str) -> int:
        return sum(1 for i in self.items if i.action == action)

    @property
    def exempt_delta(self) -> Decimal:
        """Change in exempt sales amount (positive: more sales become exempt)."""
        return sum((i.new_exempt_amount - i.old_exempt_amount for i in self.changes), _ZERO)

    def to_json(self) -> dict[str, Any]:
        return audit.jsonable({
            "certificate_id": self.certificate_id, "certificate_number": self.certificate_number,
            "customer_number": self.customer_number, "from": self.date_from, "to": self.date_to,
            "prefer_customer_address": self.prefer_customer_address, "as_of": self.as_of,
            "lines": len(self.items), "updated_in_open_periods": self.count("update"),
            "adjusted_from_filed_periods": self.count("adjust"), "first_determinations": self.count("determine"),
            "unchanged": self.count("unchanged"), "exempt_amount_change": self.exempt_delta,
            "changes": [i.__dict__ for i in self.changes],
        })


def plan_reprocessing(session: Session, certificate_id: int, date_from: dt.date, date_to: dt.date, *,
                      as_of: dt.date, prefer_customer_address: bool = False) -> ReprocessPlan:
    """What reprocessing would change, without changing anything."""
    plan, _ = _plan(session, certificate_id, date_from, date_to, as_of, prefer_customer_address)
    return plan


def apply_reprocessing(session: Session, rules_version: str, certificate_id: int, date_from: dt.date,
                       date_to: dt.date, *, as_of: dt.date, prefer_customer_address: bool = False,
                       reason: str = "") -> ReprocessPlan:
    """Apply the certificate (and the customer's other current certificates, by the precedence) to
    the customer's sales in the range, in the caller's transaction, audited line by line."""
    people.require(session, Permission.REPROCESS, f"apply certificate {certificate_id} to sales again")
    plan, computed = _plan(session, certificate_id, date_from, date_to, as_of, prefer_customer_address)
    company_id = session.execute(select(Certificate.company_id).where(Certificate.id == certificate_id)).scalar_one()
    now = utcnow()
    actor = people.actor_name(session)
    events: list[audit.NewEvent] = []
    why = reason or f"reprocessing certificate {plan.certificate_number or certificate_id}"
    for item in plan.changes:
        result, old, claimed, tax, taxed = computed[item.transaction_line_id]
        new_row = determination_row(item.transaction_line_id, company_id, result, rules_version,
                                    claimed, tax, "reprocess", now, item.state, taxed)
        if item.action == "determine":
            session.execute(insert(_DET), [new_row])
        elif item.action == "update":
            values = {k: v for k, v in new_row.items() if k != "transaction_line_id"}
            session.execute(update(_DET).where(_DET.c.transaction_line_id == item.transaction_line_id)
                            .values(**values))
        else:  # adjust: the filed determination stays as it is
            base = {"company_id": company_id, "transaction_line_id": item.transaction_line_id,
                    "state": item.state, "period": item.adjustment_period, "posted_on": as_of,
                    "reason": why, "created_by": actor, "created_at": now}
            negation = {**base, "kind": "negation", "exempt": old["exempt"],
                        "certificate_id": old["certificate_id"],
                        "certificate_number": old["certificate_number"] or "",
                        "certificate_version": old["certificate_version"],
                        "coverage_line_id": old["coverage_line_id"], "coverage_expiry": old["coverage_expiry"],
                        "certificate_status": old["certificate_status"] or "",
                        "rules_pack_version": old["rules_pack_version"] or "",
                        "exempt_amount": -old["exempt_amount"], "taxable_amount": -old["taxable_amount"],
                        "explanation": {"summary": "reverses the entry reported in the filed period "
                                        f"{item.filed_period}", "reversed": audit.jsonable(old["explanation"])}}
            snap = evidence_snapshot(result, rules_version)
            recreation = {**base, "kind": "recreation", **{k: snap[k] for k in (
                "exempt", "certificate_id", "certificate_version", "coverage_line_id", "coverage_expiry",
                "rules_pack_version", "exempt_amount", "taxable_amount", "explanation")},
                "certificate_number": snap["certificate_number"] or "",
                "certificate_status": snap["certificate_status"] or ""}
            session.execute(insert(_ADJ), [negation, recreation])
        events.append(audit.NewEvent(
            f"determination.reprocessed.{item.action}", "transaction_line", item.transaction_line_id,
            company_id=company_id, certificate_id=certificate_id,
            before={"exempt": item.old_exempt, "certificate": item.old_certificate,
                    "exempt_amount": item.old_exempt_amount},
            after={"exempt": item.new_exempt, "certificate": item.new_certificate,
                   "exempt_amount": item.new_exempt_amount},
            details={"invoice_number": item.invoice_number, "line": item.line,
                     "filed_period": item.filed_period, "posted_to": item.adjustment_period}))
    if plan.count("determine"):  # a first decision of a line dated in a filed period goes to the open period
        book_late_determinations(session, company_id, as_of)
    events.append(audit.NewEvent(
        "certificate.reprocessed", "certificate", certificate_id, company_id=company_id,
        certificate_id=certificate_id,
        details={k: v for k, v in plan.to_json().items() if k != "changes"} | {"reason": why}))
    audit.record_many(session, events)
    return plan


def _plan(s: Session, certificate_id: int, date_from: dt.date, date_to: dt.date, as_of: dt.date,
          prefer_customer_address: bool) -> tuple[ReprocessPlan, dict[int, Any]]:
    if date_to < date_from:
        raise ValidationError(f"The range ends ({date_to}) before it starts ({date_from}).")
    cert = s.get(Certificate, certificate_id)
    if cert is None:
        raise NotFoundError(f"There is no certificate {certificate_id}.")
    customer = s.get(Customer, cert.customer_id)
    assert customer is not None
    company_id = cert.company_id
    states = {line.state for line in cert.lines}
    index = load_candidates(s, company_id, customer.number_key)
    sales = load_sales_histories(s, company_id, customer.number_key)[customer.number_key]
    book = PeriodBook.load(s, company_id)
    rows = s.execute(select(*LINE_COLUMNS).where(
        _TL.c.company_id == company_id, _TL.c.customer_key == customer.number_key,
        _TL.c.invoice_date.between(date_from, date_to)).order_by(_TL.c.invoice_date, _TL.c.id)).all()
    ids = [r.id for r in rows]
    current = _current(s, company_id, ids)
    items: list[ReprocessItem] = []
    computed: dict[int, Any] = {}
    for r in rows:
        line = sale_of(r)
        if prefer_customer_address and customer.ship_to_state:
            line = SaleLine(line.invoice_number, line.line, line.invoice_date, line.customer_key,
                            customer.ship_to_state.upper(), line.amount, "", customer.ship_to_city,
                            customer.ship_to_zip, line.product_code, line.commodity_code, line.currency,
                            line.exempt_reason, line.po_number)
        if line.ship_to_state not in states:
            continue
        result = determine(replace(line, sales=sales), index.get((line.customer_key, line.ship_to_state), ()))
        old = current.get(r.id)
        filed = book.filed_period(r.ship_to_state, r.invoice_date)
        new_cert = result.certificate_number if result.certificate else None
        if old is None:
            action = "determine"
            old_exempt, old_cert, old_amount = None, None, _ZERO
        else:
            old_exempt, old_amount = old["exempt"], old["exempt_amount"]
            old_cert = old["certificate_number"] or None
            same = (old["exempt"] == result.exempt and old["certificate_id"] == result.certificate_id
                    and old["exempt_amount"] == result.exempt_amount
                    and old["taxable_amount"] == result.taxable_amount)
            action = "unchanged" if same else ("adjust" if filed else "update")
        # a correction, or the first decision of a line dated in a filed period: booked in the open period
        booked_later = action == "adjust" or (action == "determine" and filed is not None)
        adjustment_period = book.current_open(r.ship_to_state, as_of).label if booked_later else None
        items.append(ReprocessItem(r.id, r.invoice_number, r.line, r.invoice_date, r.ship_to_state, action,
                                   filed, adjustment_period, old_exempt, old_cert, old_amount, result.exempt,
                                   new_cert or (str(result.certificate_id) if result.certificate_id else None),
                                   result.exempt_amount))
        computed[r.id] = (result, old, r.exempt_claimed, r.tax_collected, r.taxed_amount)
    plan = ReprocessPlan(certificate_id, cert.certificate_number, customer.number, date_from, date_to,
                         prefer_customer_address, as_of, tuple(items))
    return plan, computed


def _current(s: Session, company_id: int, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """What each line currently reports: its latest re-creation entry if it was corrected, else its
    determination."""
    out: dict[int, dict[str, Any]] = {}
    cols = ("exempt", "certificate_id", "certificate_number", "certificate_version", "coverage_line_id",
            "coverage_expiry", "certificate_status", "rules_pack_version", "exempt_amount", "taxable_amount",
            "explanation")
    for i in range(0, len(ids), 500):
        chunk = list(ids[i:i + 500])
        for r in s.execute(select(_DET).where(_DET.c.transaction_line_id.in_(chunk))):
            out[r.transaction_line_id] = {c: getattr(r, c) for c in cols}
        sub = (select(func.max(_ADJ.c.id)).where(_ADJ.c.kind == "recreation",
                                                 _ADJ.c.transaction_line_id.in_(chunk))
               .group_by(_ADJ.c.transaction_line_id))
        for r in s.execute(select(_ADJ).where(and_(_ADJ.c.id.in_(sub), _ADJ.c.company_id == company_id))):
            out[r.transaction_line_id] = {c: getattr(r, c) for c in cols}
    return out
