"""The customers' sales with the company, as the SST recurring-relationship rule counts them.

:func:`load_sales_histories` reads the distinct (customer, invoice date) pairs of the company's imported
invoice lines (any state) and gives each customer a
:class:`~ecms_desktop.services.sales.recurring.SalesHistory`; the determination run (and its worker
process), reprocessing, the ERP status question and the renewal plan all decide from it, so they agree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from itertools import groupby
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from ecms_desktop.models.transactions import TransactionLine
from ecms_desktop.rules import RulesPack
from ecms_desktop.services.sales.recurring import Lapse, SalesHistory

_TL = cast(Table, TransactionLine.__table__)

#: Rows of :func:`sales_history_rows`: (customer key, distinct sale dates in order), and the first day
#: of the company's imported sales (plain values: they can be sent to a worker process).
HistoryRows = tuple[list[tuple[str, tuple[dt.date, ...]]], dt.date | None]


def sales_history_rows(session: Session, company_id: int, customer_key: str | None = None) -> HistoryRows:
    """The customers' distinct invoice dates (any state), and the first invoice date the company has
    imported (from which sales are known).

    Every imported line counts, a credit note too: the ERP's lines are the record of the dealings between
    the two, and leaving out lines by amount would make this read the table rather than only its index on
    (company, customer, date). Read through the driver, each distinct date text converted once, so that a
    million lines cost about a second."""
    conn = session.connection()
    dialect = conn.dialect
    mark = "%s" if dialect.name == "postgresql" else "?"
    sql = "SELECT DISTINCT customer_key, invoice_date FROM transaction_line WHERE company_id = " + mark
    params: tuple[Any, ...] = (company_id,)
    if customer_key is not None:
        sql += " AND customer_key = " + mark
        params += (customer_key,)
    sql += " ORDER BY customer_key, invoice_date"
    to_date = _TL.c.invoice_date.type.dialect_impl(dialect).result_processor(dialect, None)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
        # Grouped as the rows stream in (never all of them held at once: a million lines are hundreds of
        # thousands of pairs); SQLite hands dates over as text, each distinct one converted once.
        if to_date is not None:
            dates: dict[Any, Any] = {}

            def day(raw: Any) -> Any:
                found = dates.get(raw)
                if found is None:
                    found = dates[raw] = to_date(raw)
                return found

            out = [(key, tuple(day(r[1]) for r in group)) for key, group in groupby(cursor, key=itemgetter(0))]
        else:
            out = [(key, tuple(r[1] for r in group)) for key, group in groupby(cursor, key=itemgetter(0))]
    finally:
        cursor.close()
    known_from = min((d[0] for _, d in out), default=None) if customer_key is None else session.execute(
        select(func.min(_TL.c.invoice_date)).where(_TL.c.company_id == company_id)).scalar()
    return out, known_from


def index_histories(rows: HistoryRows) -> dict[str, SalesHistory]:
    """Each customer's :class:`SalesHistory`, by customer key."""
    pairs, known_from = rows
    return {key: SalesHistory(dates, known_from) for key, dates in pairs}


def load_sales_histories(session: Session, company_id: int, customer_key: str | None = None
                         ) -> dict[str, SalesHistory]:
    """The sales histories of the company's customers (or of one: then it is there even without a sale,
    with no dates), by customer key."""
    rows = sales_history_rows(session, company_id, customer_key)
    out = index_histories(rows)
    if customer_key is not None and customer_key not in out:
        out[customer_key] = SalesHistory((), rows[1])
    return out



class LapseFinder:
    """Where certificates have lapsed for new sales by ``as_of`` under the SST recurring-relationship rule,
    for many certificates: each company's sales are read once (only ``customer``'s, when given: the
    finder is then for that customer's certificates only)."""

    def __init__(self, session: Session, rules: RulesPack, as_of: dt.date, customer: str | None = None) -> None:
        self.session, self.rules, self.as_of, self.customer = session, rules, as_of, customer
        self._sales: dict[int, tuple[dict[str, SalesHistory], SalesHistory]] = {}

    def months_for(self, states: Iterable[str], form_code: str, certificate_type: str) -> dict[str, int]:
        """The states (of ``states``) whose rule applies to a certificate of the type on the form, with the
        rule's months (:meth:`RulesPack.recurring_relationship`)."""
        out = {}
        for state in states:
            rule = self.rules.recurring_relationship(state, form_code, certificate_type)
            if rule is not None:
                out[state] = rule.months
        return out

    def __call__(self, company_id: int, customer_key: str, form_code: str, certificate_type: str,
                 obtained: dt.date | None, states: Iterable[str]) -> dict[str, Lapse]:
        """The states (of ``states``) where a certificate of the customer (of ``certificate_type``, dated
        ``obtained``) has lapsed for new sales by the finder's date, with the lapse. Sales after that date
        cannot undo a lapse before it: a lapse is the first gap, and a later sale does not revive it."""
        ruled = self.months_for(states, form_code, certificate_type)
        if not ruled or obtained is None:
            return {}
        history = self.history(company_id, customer_key)
        if not history.known:
            return {}  # no sale imported: nothing can be said to be missing
        lapses = {state: history.lapse(obtained, months) for state, months in ruled.items()}
        return {state: lapse for state, lapse in lapses.items() if lapse.on <= self.as_of}

    def history(self, company_id: int, customer_key: str) -> SalesHistory:
        """The customer's sales (an empty history when it has none)."""
        known = self._sales.get(company_id)
        if known is None:
            rows = sales_history_rows(self.session, company_id, self.customer)
            known = self._sales[company_id] = (index_histories(rows), SalesHistory((), rows[1]))
        return known[0].get(customer_key, known[1])


def recurring_lapses(session: Session, rules: RulesPack, company_id: int, customer_key: str, form_code: str,
                     certificate_type: str, obtained: dt.date | None, states: Iterable[str], as_of: dt.date
                     ) -> dict[str, Lapse]:
    """:class:`LapseFinder` for one certificate (reads only its customer's sales)."""
    return LapseFinder(session, rules, as_of, customer_key)(company_id, customer_key, form_code, certificate_type,
                                                            obtained, states)
