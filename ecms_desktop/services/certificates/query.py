"""Finding certificates: filters and sort run in SQL; rows load in primary-key batches.

The grid asks :func:`matching_ids` once per filter change, then :func:`load_rows` for each batch it
shows (two statements per batch, however many rows), through :class:`CertificateQueryService` (one
short read each). ``ecms list`` streams the same rows (:meth:`~CertificateQueryService.with_names_resolved`,
then :meth:`~CertificateQueryService.stream_rows`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, Select, and_, case, exists, false, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from ecms_desktop.models import (
    Certificate,
    CertificateClaim,
    CoverageLine,
    Customer,
    CustomerNumberAlias,
    ReviewState,
    Status,
    customer_number_key,
)
from ecms_desktop.models.validation import PermitCheck, ValidationRun, WarningAcknowledgement
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.core import people
from ecms_desktop.services.core.company_lookup import find_company
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.expiry import (
    DEFAULT_EXPIRING_SOON_DAYS,
    days_left,
    line_status,
)
from ecms_desktop.services.core.settings import business_settings
from ecms_desktop.services.customers.service import find_customer
from ecms_desktop.services.sales.sales_history import LapseFinder
from ecms_desktop.vocabulary import CheckFilter as CheckFilter  # with the other vocabularies

SORT_KEYS = ("customer", "customer_number", "states", "form", "certificate_number", "exempt_reason",
             "expiry", "days_left", "status", "review_state", "id", "created", "errors", "warnings", "claimed_by")


class ClaimFilter(StrEnum):
    """Whose certificates to see (services/certificates/claims.py): those the person acting claimed, or the
    pending ones nobody claimed (no filter: all)."""

    MINE = "mine"
    UNCLAIMED = "unclaimed"

    @property
    def label(self) -> str:
        return {"mine": "Mine", "unclaimed": "Unclaimed"}[self.value]


@dataclass(frozen=True)
class CertificateQuery:
    """What the accountant asked to see. Empty fields do not filter."""

    text: str = ""
    states: tuple[str, ...] = ()
    statuses: tuple[Status, ...] = ()
    form_code: str = ""
    expiring_within_days: int | None = None
    company_id: int | None = None
    customer_id: int | None = None
    exempt_reason: str = ""
    #: Only the certificates this check leaves work on (None: no such filter).
    check: CheckFilter | None = None
    #: Only the certificates claimed by the person acting, or the pending ones nobody claimed (None: all).
    claim: ClaimFilter | None = None
    sort: str = "customer"
    descending: bool = False
    as_of: dt.date = field(default_factory=dt.date.today)
    window_days: int = DEFAULT_EXPIRING_SOON_DAYS


@dataclass(frozen=True)
class LineRow:
    state: str
    expiry_date: dt.date | None
    status: Status


@dataclass(frozen=True)
class CertificateRow:
    """One grid row / one ``ecms list`` entry."""

    id: int
    version: int
    company_id: int
    customer_id: int
    customer_number: str
    customer_name: str
    form_code: str
    certificate_number: str
    exempt_reason: str
    certificate_type: str
    review_state: str
    expiry_date: dt.date | None
    days_left: int | None
    status: Status
    lines: tuple[LineRow, ...]
    #: Errors and warnings of the latest validation run (None: never validated).
    errors: int | None = None
    warnings: int | None = None
    #: Who claimed the certificate to work on it (None: nobody).
    claimed_by: str | None = None

    @property
    def states(self) -> str:
        return ", ".join(line.state for line in self.lines)


def status_expression(as_of: dt.date, window_days: int) -> ColumnElement[str]:
    """The certificate's status as SQL (earliest line expiry decides for approved certificates)."""
    soon = as_of + dt.timedelta(days=window_days)
    c = Certificate
    return case(
        (c.review_state == ReviewState.PENDING.value, literal(Status.PENDING_REVIEW.value)),
        (c.review_state == ReviewState.REJECTED.value, literal(Status.REJECTED.value)),
        (c.review_state == ReviewState.ARCHIVED.value, literal(Status.ARCHIVED.value)),
        (c.expiry_date.is_(None), literal(Status.ACTIVE.value)),
        (c.expiry_date < as_of, literal(Status.EXPIRED.value)),
        (c.expiry_date <= soon, literal(Status.EXPIRING_SOON.value)),
        else_=literal(Status.ACTIVE.value),
    )


def _status_condition(status: Status, as_of: dt.date, window_days: int) -> ColumnElement[bool]:
    c = Certificate
    approved = c.review_state == ReviewState.APPROVED.value
    soon = as_of + dt.timedelta(days=window_days)
    match status:
        case Status.PENDING_REVIEW:
            return c.review_state == ReviewState.PENDING.value
        case Status.REJECTED:
            return c.review_state == ReviewState.REJECTED.value
        case Status.ARCHIVED:
            return c.review_state == ReviewState.ARCHIVED.value
        case Status.EXPIRED:
            return and_(approved, c.expiry_date < as_of)
        case Status.EXPIRING_SOON:
            return and_(approved, c.expiry_date >= as_of, c.expiry_date <= soon)
        case Status.ACTIVE:
            return and_(approved, or_(c.expiry_date.is_(None), c.expiry_date > soon))
    return false()


def latest_run_id(certificate: Any = Certificate) -> ScalarSelect[int]:
    """The id of the certificate's latest validation run, as a correlated subquery (NULL when it was
    never validated); ix_validation_run_certificate_latest answers it with one index lookup."""
    run = aliased(ValidationRun)
    return select(func.max(run.id)).where(run.certificate_id == certificate.id).correlate(certificate) \
        .scalar_subquery()


def _latest_run_count(column: str) -> ScalarSelect[int]:
    run = aliased(ValidationRun)
    return select(getattr(run, column)).where(run.id == latest_run_id()).scalar_subquery()


def _latest_runs_where(conditions: Callable[[Any], tuple[ColumnElement[bool], ...]]) -> Select[Any]:
    """The certificates whose latest validation run meets ``conditions``: one pass over the runs (the
    few that meet them then look up whether a later run exists), which the grid's index-ordered walk
    then probes; cheaper than looking up every certificate's latest run when most runs are clean."""
    run, later = aliased(ValidationRun), aliased(ValidationRun)
    newer = exists().where(later.certificate_id == run.certificate_id, later.id > run.id)
    return select(run.certificate_id).where(*conditions(run), ~newer)


def _check_condition(check: CheckFilter) -> ColumnElement[bool]:
    c = Certificate
    match check:
        case CheckFilter.ERRORS:
            return c.id.in_(_latest_runs_where(lambda run: (run.error_count > 0,)))
        case CheckFilter.WARNINGS:
            def unacknowledged_warnings(run: Any) -> tuple[ColumnElement[bool], ...]:
                acknowledged = exists().where(WarningAcknowledgement.run_id == run.id)
                return run.error_count == 0, run.warning_count > 0, ~acknowledged

            return and_(c.review_state == ReviewState.PENDING.value,
                        c.id.in_(_latest_runs_where(unacknowledged_warnings)))
        case CheckFilter.PERMIT_UNCHECKED:
            checked = exists().where(PermitCheck.certificate_id == CoverageLine.certificate_id,
                                     PermitCheck.state == CoverageLine.state,
                                     PermitCheck.result != "unavailable")
            return and_(c.review_state.in_((ReviewState.PENDING.value, ReviewState.APPROVED.value)),
                        exists().where(CoverageLine.certificate_id == c.id, ~checked))
    return false()


def _claim_condition(session: Session, claim: ClaimFilter) -> ColumnElement[bool]:
    c = Certificate
    claimed = select(CertificateClaim.certificate_id)
    if claim is ClaimFilter.MINE:
        return c.id.in_(claimed.where(CertificateClaim.claimed_by == people.actor_name(session)))
    return and_(c.review_state == ReviewState.PENDING.value, c.id.not_in(claimed))


def _conditions(session: Session, q: CertificateQuery, *, with_status: bool = True) -> list[ColumnElement[bool]]:
    c = Certificate
    conds: list[ColumnElement[bool]] = []
    if q.claim is not None:
        conds.append(_claim_condition(session, q.claim))
    if q.company_id is not None:
        conds.append(c.company_id == q.company_id)
    if q.customer_id is not None:
        conds.append(c.customer_id == q.customer_id)
    if q.form_code:
        conds.append(c.form_code == q.form_code)
    if q.exempt_reason:
        conds.append(c.exempt_reason == q.exempt_reason)
    if q.states:
        conds.append(exists().where(CoverageLine.certificate_id == c.id,
                                    CoverageLine.state.in_([s.upper() for s in q.states])))
    if q.expiring_within_days is not None:
        conds.append(and_(c.review_state == ReviewState.APPROVED.value, c.expiry_date >= q.as_of,
                          c.expiry_date <= q.as_of + dt.timedelta(days=q.expiring_within_days)))
    text = q.text.strip()
    if text:
        # Two narrow scans instead of one over the wide joined rows: the customers whose name or
        # number matches, and the certificates whose number or permit number matches (an index
        # holds both in lower case).
        like = f"%{text.casefold()}%"
        customers = select(Customer.id).where(or_(func.lower(Customer.legal_name).like(like),
                                                  Customer.number_key.like(f"%{customer_number_key(text)}%")))
        numbers = select(c.id).where(or_(func.lower(c.certificate_number).like(like),
                                         func.lower(c.purchaser_tax_id).like(like)))
        # A number merged into another customer finds the surviving customer's certificates.
        merged = select(CustomerNumberAlias.customer_id).where(
            CustomerNumberAlias.number_key.like(f"%{customer_number_key(text)}%"))
        if q.company_id is not None:
            customers = customers.where(Customer.company_id == q.company_id)
            merged = merged.where(CustomerNumberAlias.company_id == q.company_id)
            numbers = numbers.where(c.company_id == q.company_id)
        conds.append(or_(c.customer_id.in_(customers.union(merged)), c.id.in_(numbers)))
    if q.check is not None:
        conds.append(_check_condition(q.check))
    if with_status and q.statuses:
        conds.append(or_(*[_status_condition(s, q.as_of, q.window_days) for s in q.statuses]))
    return conds


def _order(q: CertificateQuery) -> list[Any]:
    c = Certificate
    first_state = (select(func.min(CoverageLine.state)).where(CoverageLine.certificate_id == c.id)
                   .correlate(c).scalar_subquery())
    keys: dict[str, list[Any]] = {
        # customer sorts follow ix_customer_company_sort_name and ix_certificate_customer_company, so
        # the database walks the indexes in order instead of sorting every certificate
        "customer": [func.lower(Customer.legal_name), Customer.id],
        "customer_number": [Customer.number_key, Customer.id],
        "states": [first_state],
        "form": [c.form_code],
        "certificate_number": [c.certificate_number],
        "exempt_reason": [c.exempt_reason],
        "expiry": [c.expiry_date],
        "days_left": [c.expiry_date],
        "status": [status_expression(q.as_of, q.window_days)],
        "review_state": [c.review_state],
        "id": [],
        "created": [c.created_at],
        # never validated sorts with none found (ascending: first), then by id
        "errors": [func.coalesce(_latest_run_count("error_count"), 0)],
        "warnings": [func.coalesce(_latest_run_count("warning_count"), 0)],
        "claimed_by": [select(CertificateClaim.claimed_by).where(CertificateClaim.certificate_id == c.id)
                       .correlate(c).scalar_subquery()],
    }
    if q.sort not in keys:
        raise ValueError(f"unknown sort {q.sort!r}; one of {', '.join(SORT_KEYS)}")
    order = [k.desc() if q.descending else k.asc() for k in keys[q.sort]]
    if q.sort in ("expiry", "days_left"):
        # Certificates without expiry sort after every date (ascending), before them descending.
        nulls = case((c.expiry_date.is_(None), 1), else_=0)
        return [nulls.desc() if q.descending else nulls.asc(), *order, c.id.asc()]
    return [*order, c.id.desc() if q.descending else c.id.asc()]


def _needs_customer(q: CertificateQuery) -> bool:
    return q.sort in ("customer", "customer_number")


def matching_ids(session: Session, q: CertificateQuery) -> list[int]:
    """The ids of every certificate matching the query, in display order."""
    stmt = select(Certificate.id)
    if _needs_customer(q):
        stmt = stmt.select_from(Customer).join(Certificate, Customer.id == Certificate.customer_id)
        if q.company_id is not None:  # lets the database walk the company's customers in name order
            stmt = stmt.where(Customer.company_id == q.company_id)
    stmt = stmt.where(*_conditions(session, q)).order_by(*_order(q))
    # Core execution: a list of plain ints without the ORM's per-row bookkeeping (100k ids).
    return list(session.connection().execute(stmt).scalars())


def count_by_status(session: Session, q: CertificateQuery) -> dict[Status, int]:
    """How many certificates of each status match the query's other filters (the status strip)."""
    expr = status_expression(q.as_of, q.window_days)
    stmt = (select(expr, func.count()).select_from(Certificate)
            .where(*_conditions(session, q, with_status=False)).group_by(expr))
    counts = {s: 0 for s in Status}
    for status, n in session.execute(stmt):
        counts[Status(status)] = n
    return counts


def load_rows(session: Session, ids: Sequence[int], as_of: dt.date,
              window_days: int = DEFAULT_EXPIRING_SOON_DAYS) -> list[CertificateRow]:
    """Rows for these ids, in the same order: one statement for the certificates (with the counts of
    their latest validation run) and one for their lines, whatever the number of ids (keep batches to a
    few hundred)."""
    if not ids:
        return []
    c = Certificate
    run = aliased(ValidationRun)
    cert_rows = session.execute(
        select(c.id, c.version, c.company_id, c.customer_id, Customer.number, Customer.legal_name, c.form_code,
               c.certificate_number, c.exempt_reason, c.certificate_type, c.review_state, c.expiry_date,
               run.error_count, run.warning_count, CertificateClaim.claimed_by)
        .join(Customer, Customer.id == c.customer_id).outerjoin(run, run.id == latest_run_id())
        .outerjoin(CertificateClaim, CertificateClaim.certificate_id == c.id)
        .where(c.id.in_(ids))
    ).all()
    lines: dict[int, list[tuple[str, dt.date | None]]] = {}
    for cert_id, state, expiry in session.execute(
        select(CoverageLine.certificate_id, CoverageLine.state, CoverageLine.expiry_date)
        .where(CoverageLine.certificate_id.in_(ids)).order_by(CoverageLine.certificate_id, CoverageLine.state)
    ):
        lines.setdefault(cert_id, []).append((state, expiry))
    by_id: dict[int, CertificateRow] = {}
    for r in cert_rows:
        line_rows = tuple(LineRow(state, exp, line_status(r.review_state, exp, as_of, window_days))
                          for state, exp in lines.get(r.id, ()))
        # The worst line is the one with the earliest expiry, which the certificate row keeps.
        status = line_status(r.review_state, r.expiry_date, as_of, window_days)
        by_id[r.id] = CertificateRow(
            r.id, r.version, r.company_id, r.customer_id, r.number, r.legal_name, r.form_code,
            r.certificate_number, r.exempt_reason, r.certificate_type, r.review_state, r.expiry_date,
            days_left(r.expiry_date, as_of), status, line_rows, r.error_count, r.warning_count, r.claimed_by)
    return [by_id[i] for i in ids if i in by_id]


def iter_rows(session: Session, q: CertificateQuery, batch: int = 1000) -> Iterator[CertificateRow]:
    """Every matching row in display order, loaded in batches."""
    ids = matching_ids(session, q)
    for start in range(0, len(ids), batch):
        yield from load_rows(session, ids[start:start + batch], q.as_of, q.window_days)


class CertificateQueryService:
    """The certificate grid's reads, each in its own short read transaction (callable from any thread)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def matching_ids(self, query: CertificateQuery) -> list[int]:
        """The ids of every certificate matching the query, in display order."""
        with self.db.reader() as s:
            return matching_ids(s, query)

    def count_by_status(self, query: CertificateQuery) -> dict[Status, int]:
        """How many certificates of each status match the query's other filters."""
        with self.db.reader() as s:
            return count_by_status(s, query)

    def load_rows(self, ids: Sequence[int], as_of: dt.date,
                  window_days: int = DEFAULT_EXPIRING_SOON_DAYS) -> list[CertificateRow]:
        """The rows of these certificates, in the same order (two statements)."""
        with self.db.reader() as s:
            return load_rows(s, ids, as_of, window_days)

    def with_names_resolved(self, q: CertificateQuery, *, company: str | None = None,
                            customer: str | None = None) -> CertificateQuery:
        """``q`` for the company and the customer given by name or number (none: every company, every
        customer), with the expiring-soon window of that company (or the one set for all companies).
        Raises :class:`~ecms_desktop.services.core.errors.NotFoundError` for a name that matches nothing."""
        with self.db.reader() as s:
            company_id = find_company(s, company).id if company else None
            customer_id = find_customer(s, company_id, customer).id if customer else None
            window = business_settings(s, company_id).expiring_soon_days
        return replace(q, company_id=company_id, customer_id=customer_id, window_days=window)

    def lapses(self, ids: Sequence[int], as_of: dt.date) -> dict[int, dict[str, str]]:
        """For these certificates, the states where the SST recurring relationship has lapsed for new sales
        by ``as_of``: "lapsed for new sales on D (no purchase since ...)" by state, by certificate id (only
        those with a lapse). One statement, and each company's sales read once."""
        out: dict[int, dict[str, str]] = {}
        if not ids:
            return out
        with self.db.reader() as s:
            find = LapseFinder(s, load_rules_pack(), as_of)
            rows = s.execute(
                select(Certificate.id, Certificate.company_id, Customer.number_key, Certificate.form_code,
                       Certificate.certificate_type, Certificate.effective_date, Certificate.signed_date,
                       CoverageLine.state)
                .join(Customer, Customer.id == Certificate.customer_id)
                .join(CoverageLine, CoverageLine.certificate_id == Certificate.id)
                .where(Certificate.id.in_(list(ids)))
                .order_by(Certificate.id)).all()
            for r in rows:
                for state, lapse in find(r.company_id, r.number_key, r.form_code, r.certificate_type,
                                         r.effective_date or r.signed_date, (r.state,)).items():
                    out.setdefault(r.id, {})[state] = lapse.text()
        return out

    def stream_rows(self, q: CertificateQuery, batch: int = 1000) -> Iterator[CertificateRow]:
        """Every matching row in display order, loaded in batches within one read transaction, so that
        a very long list is never held in memory at once (``ecms list``)."""
        with self.db.reader() as s:
            yield from iter_rows(s, q, batch)
