"""The exposure report: by state, filing period and customer, two measures an auditor looks at and a
third that is not exposure, kept apart and never added together (:func:`exposure_report`), and the sales
lines behind a row of it, each with why it was decided as it was and the rule that put it in its measure
(:func:`exposure_lines`, :func:`exposed_lines`).

* :class:`UncoveredExemptSales`: sales sold exempt (the customer claimed exemption) that no certificate
  covers: the untaxed amount is what the state could assess tax on.
* :class:`TaxOnCoveredSales`: tax collected on the exempt portion of sales a valid certificate covered:
  tax the customer could ask back (on a partly exempt sale, only tax the exempt portion demonstrably
  carried: :func:`~ecms_desktop.services.sales.determination_records.over_collected`).
* :class:`CoveredPastPolicy`: sales sold exempt that a certificate covered in law although our renewal
  policy had expired it: not exposure (the state cannot assess them), shown so the renewal work is seen.

The first and third are amounts of sales, the second an amount of tax, and the third is no risk at all:
a sum of any two means nothing, so the report has no such total. A sale to a state without a sales tax
is in none of them. The workbook is written by :mod:`~ecms_desktop.services.sales.exposure_workbook`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from ecms_desktop.models import Customer
from ecms_desktop.models.transactions import Determination, DeterminationAdjustment, TransactionLine
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.sales.determination import (
    RULE_CERTIFICATE,
    RULE_GOOD_FAITH,
    RULE_PAST_POLICY,
)
from ecms_desktop.services.sales.determination_records import (
    EXPOSURE_PAST_POLICY,
    EXPOSURE_TAX_ON_EXEMPT,
    EXPOSURE_UNSUPPORTED,
    exposure_of,
    rounded_to_cent,
)
from ecms_desktop.services.sales.periods import PeriodBook

_TL = cast(Table, TransactionLine.__table__)
_DET = cast(Table, Determination.__table__)
_ADJ = cast(Table, DeterminationAdjustment.__table__)
_ZERO = Decimal(0)
#: Zero as an amount to the cent, as the report shows amounts.
_NIL = Decimal("0.00")

#: The measures, by the key the report and its readers use, with their names for people.
UNCOVERED = "uncovered_exempt_sales"
TAX_ON_COVERED = "tax_on_covered_sales"
PAST_POLICY = "covered_in_law_past_policy"
MEASURE_LABELS = {
    UNCOVERED: "Exempt sales without a covering certificate (untaxed amount)",
    TAX_ON_COVERED: "Tax collected on the exempt portion although a certificate covered the sale (tax)",
    PAST_POLICY: "Covered in law, past our renewal policy (untaxed amount; not exposure)",
}
#: The stored exposure kind of a determination, as a measure.
_MEASURE_OF_KIND = {EXPOSURE_UNSUPPORTED: UNCOVERED, EXPOSURE_TAX_ON_EXEMPT: TAX_ON_COVERED,
                    EXPOSURE_PAST_POLICY: PAST_POLICY}
#: The rule ids that put a line in a measure beyond the engine's own (see :func:`measure_rule`).
RULE_UNCOVERED_PORTION = "partial.uncovered_portion"
RULE_TAX_ON_EXEMPT_SALE = "over_collection.exempt_sale"
RULE_TAX_ON_EXEMPT_PORTION = "over_collection.exempt_portion"
_COVERING = frozenset({RULE_CERTIFICATE, RULE_GOOD_FAITH, RULE_PAST_POLICY})
DIMENSIONS = ("state", "period", "customer")


@dataclass(frozen=True)
class UncoveredExemptSales:
    """Sales sold exempt without a covering certificate: how many lines, their invoice amount, and the
    part of it left untaxed that no certificate covers (the amount at risk of assessment)."""

    lines: int = 0
    sales_amount: Decimal = _NIL
    untaxed_amount: Decimal = _NIL

    def __add__(self, other: UncoveredExemptSales) -> UncoveredExemptSales:
        return UncoveredExemptSales(self.lines + other.lines, self.sales_amount + other.sales_amount,
                                    self.untaxed_amount + other.untaxed_amount)


@dataclass(frozen=True)
class TaxOnCoveredSales:
    """Sales taxed although a valid certificate covered them: how many lines, their invoice amount, and
    the tax collected on them (tax the customer could claim back)."""

    lines: int = 0
    sales_amount: Decimal = _NIL
    tax_collected: Decimal = _NIL

    def __add__(self, other: TaxOnCoveredSales) -> TaxOnCoveredSales:
        return TaxOnCoveredSales(self.lines + other.lines, self.sales_amount + other.sales_amount,
                                 self.tax_collected + other.tax_collected)


@dataclass(frozen=True)
class CoveredPastPolicy:
    """Sales sold exempt that a certificate covered in law, past our renewal policy's expiry: how many
    lines, their invoice amount and the untaxed amount (not exposure; never added to the others)."""

    lines: int = 0
    sales_amount: Decimal = _NIL
    untaxed_amount: Decimal = _NIL

    def __add__(self, other: CoveredPastPolicy) -> CoveredPastPolicy:
        return CoveredPastPolicy(self.lines + other.lines, self.sales_amount + other.sales_amount,
                                 self.untaxed_amount + other.untaxed_amount)


@dataclass(frozen=True)
class ExposureRow:
    """One customer in one state and filing period, with both measures side by side."""

    state: str
    period: str
    customer_number: str
    #: The customer's legal name from the customer list ("" when the ERP's number is not in it).
    customer_name: str
    uncovered: UncoveredExemptSales
    tax_on_covered: TaxOnCoveredSales
    past_policy: CoveredPastPolicy = CoveredPastPolicy()

    def key_of(self, dimension: str) -> str:
        """The row's state, period or customer (number and name)."""
        if dimension == "customer":
            return f"{self.customer_number} {self.customer_name}".strip()
        return {"state": self.state, "period": self.period}[dimension]

    def figure(self, measure: str) -> Decimal:
        """The row's amount of one measure: the untaxed amount, or the tax collected."""
        if measure == PAST_POLICY:
            return self.past_policy.untaxed_amount
        return self.uncovered.untaxed_amount if measure == UNCOVERED else self.tax_on_covered.tax_collected


@dataclass(frozen=True)
class ExposureReport:
    """The exposure of a company over a date range (optionally one state). ``sales_lines``: the invoice
    lines imported for that range at all; none means there is nothing to report on, which is not the
    same as no exposure. Lines imported but not decided yet count in ``undecided_lines`` only."""

    date_from: dt.date
    date_to: dt.date
    rows: tuple[ExposureRow, ...]
    sales_lines: int = 0
    state: str | None = None
    #: Imported lines of the range not decided yet (no determination): not in the figures until decided.
    undecided_lines: int = 0

    @property
    def has_sales(self) -> bool:
        return self.sales_lines > 0

    @property
    def uncovered(self) -> UncoveredExemptSales:
        """Exempt sales without a covering certificate, over the whole report."""
        return sum((r.uncovered for r in self.rows), UncoveredExemptSales())

    @property
    def tax_on_covered(self) -> TaxOnCoveredSales:
        """Tax collected on covered sales, over the whole report."""
        return sum((r.tax_on_covered for r in self.rows), TaxOnCoveredSales())

    @property
    def past_policy(self) -> CoveredPastPolicy:
        """Sales covered in law past our renewal policy, over the whole report (not exposure)."""
        return sum((r.past_policy for r in self.rows), CoveredPastPolicy())

    def totals_by(self, dimension: str, measure: str) -> list[tuple[str, Decimal]]:
        """One measure summed by ``state``, ``period`` or ``customer``, largest first (keys where the
        measure is zero left out)."""
        if dimension not in DIMENSIONS or measure not in MEASURE_LABELS:
            raise ValueError(f"no totals by {dimension!r} of {measure!r}")
        sums: dict[str, Decimal] = defaultdict(lambda: _ZERO)
        for r in self.rows:
            value = r.figure(measure)
            if value:
                sums[r.key_of(dimension)] += value
        return sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))


@dataclass(frozen=True)
class ExposureLine:
    """A sale behind a row of the report: its invoice, the measure it counts in and by how much, the
    certificate the decision rests on, and why it was decided as it was."""

    transaction_line_id: int
    invoice_number: str
    line: int
    invoice_date: dt.date
    amount: Decimal
    tax_collected: Decimal
    measure: str
    figure: Decimal
    certificate_number: str
    #: Decided again by reprocessing after its period was filed: the latest correction counts.
    corrected: bool
    explanation: str
    candidates: tuple[str, ...] = field(default=())
    #: The rule that put the line in its measure (:func:`measure_rule`; "" for a decision kept before
    #: rules were recorded).
    rule: str = ""
    state: str = ""
    period: str = ""
    customer_number: str = ""


@dataclass(frozen=True)
class _Exposed:
    row: Any
    measure: str
    figure: Decimal
    period: str
    correction: Any


def _exposed(session: Session, company_id: int, date_from: dt.date, date_to: dt.date, *, state: str | None,
             customer_number: str | None = None, with_evidence: bool = False) -> Iterator[_Exposed]:
    """Every exposed sale in the range. Where a sale in a filed period was corrected by reprocessing,
    the latest correction counts."""
    book = PeriodBook.load(session, company_id)
    latest = _latest_recreations(session, company_id, date_from, date_to)
    columns = [_TL.c.id, _TL.c.invoice_number, _TL.c.line, _TL.c.invoice_date, _TL.c.ship_to_state,
               _TL.c.customer_number, _TL.c.customer_key, _TL.c.amount, _TL.c.tax_collected, _TL.c.exempt_claimed,
               _TL.c.taxed_amount, _DET.c.exposure_kind, _DET.c.exposure_amount]
    if with_evidence:
        columns += [_DET.c.certificate_number, _DET.c.explanation]
    stmt = (select(*columns).select_from(_TL.join(_DET, _DET.c.transaction_line_id == _TL.c.id))
            .where(_TL.c.company_id == company_id, _TL.c.invoice_date.between(date_from, date_to)))
    if state:
        stmt = stmt.where(_TL.c.ship_to_state == state.upper())
    if customer_number is not None:
        stmt = stmt.where(_TL.c.customer_number == customer_number)
    if not latest:
        stmt = stmt.where(_DET.c.exposure_kind != "")
    for r in session.execute(stmt.order_by(_TL.c.invoice_date, _TL.c.invoice_number, _TL.c.line)):
        kind, amount = r.exposure_kind, r.exposure_amount
        adj = latest.get(r.id)
        if adj is not None:
            kind, amount = _exposure_of_entry(adj, r.exempt_claimed, r.tax_collected, r.taxed_amount)
        if kind:
            yield _Exposed(r, _MEASURE_OF_KIND[kind], amount, book.period(r.ship_to_state, r.invoice_date).label,
                           adj)


def exposure_report(session: Session, company_id: int, date_from: dt.date, date_to: dt.date, *,
                    state: str | None = None) -> ExposureReport:
    """Audit exposure by state, filing period and customer, the two measures side by side (see the
    module). Where a sale in a filed period was corrected by reprocessing, the latest correction counts."""
    if date_to < date_from:
        raise ValidationError(f"The period ends ({date_to}) before it starts ({date_from}).")
    sums: dict[str, dict[tuple[str, str, str], list[Any]]] = {m: {} for m in MEASURE_LABELS}
    keys: dict[str, str] = {}
    for e in _exposed(session, company_id, date_from, date_to, state=state):
        r = e.row
        key = (r.ship_to_state, e.period, r.customer_number)
        keys[r.customer_number] = r.customer_key
        acc = sums[e.measure].setdefault(key, [0, _ZERO, _ZERO])
        acc[0] += 1
        acc[1] += r.amount
        acc[2] += e.figure
    names = _customer_names(session, company_id, set(keys.values()))
    uncovered, taxed, past = sums[UNCOVERED], sums[TAX_ON_COVERED], sums[PAST_POLICY]
    rows = tuple(ExposureRow(k[0], k[1], k[2], names.get(keys[k[2]], ""),
                             UncoveredExemptSales(*_cents(uncovered.get(k))), TaxOnCoveredSales(*_cents(taxed.get(k))),
                             CoveredPastPolicy(*_cents(past.get(k))))
                 for k in sorted(uncovered.keys() | taxed.keys() | past.keys()))
    sales, undecided = _count_sales(session, company_id, date_from, date_to, state)
    return ExposureReport(date_from, date_to, rows, sales, state.upper() if state else None, undecided)


def exposure_lines(session: Session, company_id: int, date_from: dt.date, date_to: dt.date, *, state: str,
                   period: str, customer_number: str) -> tuple[ExposureLine, ...]:
    """The exposed sales behind one row of :func:`exposure_report` (a customer in a state and filing
    period, within the report's dates), in invoice order, each with the certificate its decision rests
    on and the explanation kept with it (for a corrected sale, the correction's)."""
    return tuple(_line(e) for e in _exposed(session, company_id, date_from, date_to, state=state,
                                            customer_number=customer_number, with_evidence=True)
                 if e.period == period)


def exposed_lines(session: Session, company_id: int, date_from: dt.date, date_to: dt.date, *,
                  state: str | None = None) -> tuple[ExposureLine, ...]:
    """Every sale in any measure of :func:`exposure_report` (same range and state), in invoice order, each
    with its state, filing period, customer, measure and the rule that put it there."""
    return tuple(_line(e) for e in _exposed(session, company_id, date_from, date_to, state=state,
                                            with_evidence=True))


def _line(e: _Exposed) -> ExposureLine:
    r, adj = e.row, e.correction
    explanation = (adj.explanation if adj is not None else r.explanation) or {}
    number = (adj.certificate_number if adj is not None else r.certificate_number) or ""
    return ExposureLine(r.id, r.invoice_number, r.line, r.invoice_date, rounded_to_cent(r.amount),
                        rounded_to_cent(r.tax_collected), e.measure, rounded_to_cent(e.figure), number,
                        adj is not None, explanation_text(explanation), candidate_texts(explanation),
                        measure_rule(e.measure, str(explanation.get("rule") or ""), r.taxed_amount),
                        r.ship_to_state, e.period, r.customer_number)


def measure_rule(measure: str, rule: str, taxed_amount: Decimal | None) -> str:
    """The rule that put a line in ``measure``, from the rule that decided it (``rule``, kept in its
    explanation): for an uncovered sale the reason nothing covered it (``coverage.none``,
    ``coverage.expired``, ...) or ``partial.uncovered_portion`` (a certificate covered only part of it);
    for tax on a covered sale ``over_collection.exempt_sale`` (fully exempt: all its tax) or
    ``over_collection.exempt_portion`` (the exempt portion's share of the tax on the taxed amount); for
    a sale covered only in law ``coverage.past_policy``. ``""``: a decision kept before rules were."""
    if measure == UNCOVERED:
        return RULE_UNCOVERED_PORTION if rule in _COVERING else rule
    if measure == TAX_ON_COVERED:
        return RULE_TAX_ON_EXEMPT_SALE if taxed_amount is None else RULE_TAX_ON_EXEMPT_PORTION
    return RULE_PAST_POLICY


def explanation_text(explanation: dict[str, Any]) -> str:
    """A stored explanation in one paragraph: the summary, any conflict and notes."""
    parts = [str(explanation.get("summary") or "")]
    if explanation.get("conflict"):
        parts.append(str(explanation["conflict"]))
    parts += [str(n) for n in explanation.get("notes") or ()]
    return " ".join(p for p in parts if p) or "No explanation was kept with this decision."


_OUTCOMES = {"applied": "covers the sale", "eligible": "would also cover it (not chosen)",
             "not_applicable": "does not cover it"}


def candidate_texts(explanation: dict[str, Any]) -> tuple[str, ...]:
    """Each certificate the decision considered, whether it covered the sale, and why."""
    out = []
    for c in explanation.get("candidates") or ():
        name = c.get("certificate_number") or f"certificate {c.get('certificate_id')}"
        verdict = _OUTCOMES.get(c.get("outcome", ""), str(c.get("outcome", "")))
        reasons = "; ".join(str(x) for x in c.get("reasons") or ())
        out.append(f"{name}: {verdict}" + (f": {reasons}" if reasons else ""))
    return tuple(out)


def _cents(acc: list[Any] | None) -> tuple[int, Decimal, Decimal]:
    if acc is None:
        return 0, _NIL, _NIL
    return int(acc[0]), rounded_to_cent(acc[1]), rounded_to_cent(acc[2])


def _customer_names(session: Session, company_id: int, keys: set[str]) -> dict[str, str]:
    if not keys:
        return {}
    stmt = select(Customer.number_key, Customer.legal_name).where(Customer.company_id == company_id,
                                                                   Customer.number_key.in_(keys))
    return {key: name for key, name in session.execute(stmt)}


def _count_sales(session: Session, company_id: int, date_from: dt.date, date_to: dt.date, state: str | None
                 ) -> tuple[int, int]:
    """The lines imported for the range, and how many of them have no determination yet."""
    stmt = (select(func.count(), func.count().filter(_DET.c.transaction_line_id.is_(None)))
            .select_from(_TL.outerjoin(_DET, _DET.c.transaction_line_id == _TL.c.id))
            .where(_TL.c.company_id == company_id, _TL.c.invoice_date.between(date_from, date_to)))
    if state:
        stmt = stmt.where(_TL.c.ship_to_state == state.upper())
    sales, undecided = session.execute(stmt).one()
    return int(sales), int(undecided)


def _latest_recreations(session: Session, company_id: int, date_from: dt.date, date_to: dt.date
                        ) -> dict[int, Any]:
    sub = (select(func.max(_ADJ.c.id)).where(_ADJ.c.company_id == company_id, _ADJ.c.kind == "recreation")
           .group_by(_ADJ.c.transaction_line_id))
    stmt = (select(_ADJ.c.transaction_line_id, _ADJ.c.exempt, _ADJ.c.exempt_amount, _ADJ.c.taxable_amount,
                   _ADJ.c.certificate_number, _ADJ.c.explanation)
            .select_from(_ADJ.join(_TL, _TL.c.id == _ADJ.c.transaction_line_id))
            .where(_ADJ.c.id.in_(sub), _TL.c.invoice_date.between(date_from, date_to)))
    return {r.transaction_line_id: r for r in session.execute(stmt)}


def _exposure_of_entry(entry: Any, claimed: bool, tax: Decimal, taxed: Decimal | None) -> tuple[str, Decimal]:
    """The exposure of a sale as a correction entry decided it (the same rules as a determination's)."""
    rule = str((entry.explanation or {}).get("rule") or "")
    return exposure_of(entry.exempt, entry.exempt_amount, entry.taxable_amount, rule, claimed, tax, taxed)
