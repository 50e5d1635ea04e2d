"""A customer's exemption matrix: each state where the customer buys (its ship-to address, the states its
certificates cover, the states its sales ship to) with what covers it there on a date, and the next thing
to do about it.

What covers a state is decided from the coverage lines' own status (:func:`~ecms_desktop.services.core.
expiry.line_status`, with the company's expiring-soon window): an approved line valid on the date is
*active* (or *expiring* within the window); otherwise a certificate waiting for review makes it *pending*;
otherwise an approved line that ran out makes it *expired*; with none of these it is *missing*.

For an expired or expiring state the next action is the renewal request of the line; for a missing state it
is a first request (the customer is e-mailed the state's form); once a request is open, the reminder. A missing
state also offers adding the certificate by hand, for when the accountant already holds the paper.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecms_desktop.models import Certificate, CoverageLine, Customer, Status
from ecms_desktop.models.renewal import RenewalRequest
from ecms_desktop.models.transactions import TransactionLine
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import NotFoundError
from ecms_desktop.services.core.expiry import line_status
from ecms_desktop.services.core.settings import business_settings
from ecms_desktop.services.customers.editing import CustomerRecord, record_of


class Coverage(StrEnum):
    """What covers a customer in a state on a date."""

    ACTIVE = "active"
    EXPIRING = "expiring"
    PENDING = "pending"
    EXPIRED = "expired"
    MISSING = "missing"

    @property
    def label(self) -> str:
        return {"pending": "Pending review"}.get(self.value, self.value.capitalize())

    @property
    def valid(self) -> bool:
        """Whether an approved certificate covers the state on the date."""
        return self in (Coverage.ACTIVE, Coverage.EXPIRING)


class NextAction(StrEnum):
    """The next thing to do for a state, one click away in the matrix."""

    NONE = ""
    #: Ask the customer for a certificate: the renewal request of the line that runs out, or a first
    #: request for a state no certificate covers.
    REQUEST = "request"
    #: A request is open: remind the customer.
    REMIND = "remind"
    #: A certificate waits for review: open it in the desk.
    REVIEW = "review"
    #: Add the customer's certificate by hand (a missing state's second action: the paper is at hand).
    ADD = "add"

    @property
    def label(self) -> str:
        return {"": "", "request": "Request", "remind": "Remind", "review": "Review",
                "add": "Add certificate"}[self.value]


@dataclass(frozen=True)
class LineFact:
    """One coverage line of a customer's certificate, as the matrix weighs it."""

    state: str
    certificate_id: int
    coverage_line_id: int
    review_state: str
    expiry_date: dt.date | None


@dataclass(frozen=True)
class StateCoverage:
    """One row of the matrix: a state, where it comes from, what covers it and what to do next."""

    state: str
    #: Why the state is in the matrix: ``ship-to``, ``certificate``, ``sales`` (one or more).
    sources: tuple[str, ...]
    coverage: Coverage
    #: The certificate that decides the coverage (none when missing).
    certificate_id: int | None
    coverage_line_id: int | None
    expiry_date: dt.date | None
    next_action: NextAction
    #: The open renewal request for the state, if any.
    request_id: int | None = None
    requested_on: dt.date | None = None
    #: Sales lines in the state the ERP sold as exempt (up to the date), and their amount.
    exempt_sales: int = 0
    exempt_amount: Decimal = Decimal(0)
    last_exempt_sale: dt.date | None = None

    @property
    def other_action(self) -> NextAction:
        """A second action offered beside the next one: adding the certificate of a missing state by hand."""
        return NextAction.ADD if self.coverage is Coverage.MISSING else NextAction.NONE


@dataclass(frozen=True)
class ExemptionMatrix:
    """A customer's exemption matrix as of a date."""

    customer: CustomerRecord
    as_of: dt.date
    expiring_soon_days: int
    rows: tuple[StateCoverage, ...]

    def row(self, state: str) -> StateCoverage:
        """The row of a state (:class:`NotFoundError` when the customer does not buy there)."""
        found = next((r for r in self.rows if r.state == state.upper()), None)
        if found is None:
            raise NotFoundError(f"{self.customer.number} {self.customer.legal_name} does not buy in {state.upper()}.")
        return found


_RANK = {Status.ACTIVE: 0, Status.EXPIRING_SOON: 1, Status.EXPIRED: 2}


def decide(state: str, lines: Iterable[LineFact], as_of: dt.date, window_days: int,
           open_request: tuple[int, dt.date] | None = None) -> tuple[Coverage, LineFact | None, NextAction]:
    """What covers one state given the customer's coverage lines there, which line decides it, and the
    next action (see the module)."""
    approved: list[tuple[Status, LineFact]] = []
    pending: list[LineFact] = []
    for line in lines:
        status = line_status(line.review_state, line.expiry_date, as_of, window_days)
        if status in _RANK:
            approved.append((status, line))
        elif status is Status.PENDING_REVIEW:
            pending.append(line)
    # The best approved line: the best status, then the furthest expiry (None: never expires).
    approved.sort(key=lambda p: (_RANK[p[0]], -(p[1].expiry_date or dt.date.max).toordinal()))
    best = approved[0] if approved else None
    if best is not None and best[0] is Status.ACTIVE:
        return Coverage.ACTIVE, best[1], NextAction.NONE
    if pending:
        return Coverage.PENDING, min(pending, key=lambda line: line.certificate_id), NextAction.REVIEW
    if best is not None:
        coverage = Coverage.EXPIRING if best[0] is Status.EXPIRING_SOON else Coverage.EXPIRED
        return coverage, best[1], NextAction.REMIND if open_request else NextAction.REQUEST
    return Coverage.MISSING, None, NextAction.REMIND if open_request else NextAction.REQUEST


def line_facts(s: Session, customer_ids: Iterable[int]) -> dict[int, list[LineFact]]:
    """The coverage lines of these customers' certificates, by customer."""
    out: dict[int, list[LineFact]] = {}
    ids = list(customer_ids)
    for i in range(0, len(ids), 500):
        rows = s.execute(
            select(Certificate.customer_id, CoverageLine.state, Certificate.id, CoverageLine.id,
                   Certificate.review_state, CoverageLine.expiry_date)
            .join(CoverageLine, CoverageLine.certificate_id == Certificate.id)
            .where(Certificate.customer_id.in_(ids[i:i + 500]))
            .order_by(Certificate.customer_id, Certificate.id, CoverageLine.id))
        for customer_id, state, cert_id, line_id, review, expiry in rows:
            out.setdefault(customer_id, []).append(LineFact(state, cert_id, line_id, review, expiry))
    return out


def open_requests(s: Session, company_id: int) -> dict[tuple[int, str], tuple[int, dt.date]]:
    """The open renewal requests of the company: (customer id, state) -> (request id, requested on)."""
    out: dict[tuple[int, str], tuple[int, dt.date]] = {}
    for rid, customer_id, state, on in s.execute(
            select(RenewalRequest.id, RenewalRequest.customer_id, RenewalRequest.state, RenewalRequest.requested_on)
            .where(RenewalRequest.company_id == company_id, RenewalRequest.status == "open")
            .order_by(RenewalRequest.requested_on, RenewalRequest.id)):
        out.setdefault((customer_id, state), (rid, on))
    return out


def exempt_sales(s: Session, company_id: int, as_of: dt.date, customer_key: str | None = None
                 ) -> dict[tuple[str, str], tuple[int, Decimal, dt.date]]:
    """The sales the ERP sold as exempt up to ``as_of``, per (customer number key, state): how many lines,
    their amount, the last invoice date."""
    stmt = (select(TransactionLine.customer_key, TransactionLine.ship_to_state, func.count(),
                   func.sum(TransactionLine.amount), func.max(TransactionLine.invoice_date))
            .where(TransactionLine.company_id == company_id, TransactionLine.exempt_claimed.is_(True),
                   TransactionLine.invoice_date <= as_of)
            .group_by(TransactionLine.customer_key, TransactionLine.ship_to_state))
    if customer_key is not None:
        stmt = stmt.where(TransactionLine.customer_key == customer_key)
    return {(key, state): (int(n), Decimal(total or 0), last) for key, state, n, total, last in s.execute(stmt)}


def matrix_in(s: Session, customer: Customer, as_of: dt.date) -> ExemptionMatrix:
    """The customer's matrix read in the caller's session (see :meth:`ExemptionMatrixService.matrix`)."""
    window = business_settings(s, customer.company_id).expiring_soon_days
    facts = line_facts(s, [customer.id]).get(customer.id, [])
    requests = {state: r for (cid, state), r in open_requests(s, customer.company_id).items() if cid == customer.id}
    sold = {state: v for (_, state), v in exempt_sales(s, customer.company_id, as_of, customer.number_key).items()}
    sales_states = set(s.execute(select(TransactionLine.ship_to_state).distinct().where(
        TransactionLine.company_id == customer.company_id, TransactionLine.customer_key == customer.number_key,
        TransactionLine.invoice_date <= as_of)).scalars())
    sources: dict[str, list[str]] = {}
    if customer.ship_to_state:
        sources.setdefault(customer.ship_to_state, []).append("ship-to")
    for fact in facts:
        if fact.state and "certificate" not in sources.setdefault(fact.state, []):
            sources[fact.state].append("certificate")
    for state in sorted(sales_states):
        sources.setdefault(state, []).append("sales")
    rows = []
    for state in sorted(sources):
        request = requests.get(state)
        coverage, line, action = decide(state, (f for f in facts if f.state == state), as_of, window, request)
        count, amount, last = sold.get(state, (0, Decimal(0), None))
        rows.append(StateCoverage(
            state, tuple(sources[state]), coverage, line.certificate_id if line else None,
            line.coverage_line_id if line else None, line.expiry_date if line else None, action,
            request[0] if request else None, request[1] if request else None, count, amount, last))
    return ExemptionMatrix(record_of(customer), as_of, window, tuple(rows))


class ExemptionMatrixService:
    """The exemption matrix of a customer, for the customer view and ``ecms customers matrix``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def matrix(self, customer_id: int, *, as_of: dt.date) -> ExemptionMatrix:
        """Each state where the customer buys, what covers it on ``as_of`` and the next action."""
        with self.db.reader() as s:
            customer = s.get(Customer, customer_id)
            if customer is None:
                raise NotFoundError(f"There is no customer {customer_id} (it may have been merged).")
            return matrix_in(s, customer, as_of)

    def customer_of_certificate(self, certificate_id: int) -> int:
        """The customer a certificate belongs to."""
        with self.db.reader() as s:
            customer_id = s.execute(select(Certificate.customer_id).where(
                Certificate.id == certificate_id)).scalar_one_or_none()
            if customer_id is None:
                raise NotFoundError(f"There is no certificate {certificate_id}.")
            return int(customer_id)

