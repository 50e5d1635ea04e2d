"""A determination as stored: the row written for a decided sale, with its evidence snapshot
(certificate id, number and version, coverage line and its expiry, review state, rules-pack version,
explanation) and its audit exposure, so that a later edit of the certificate never rewrites why a past
sale was exempt; and the engine's view of a stored sale line.

The bulk run (:mod:`~ecms_desktop.services.sales.determination_run`), reprocessing
(:mod:`~ecms_desktop.services.sales.reprocessing`) and the exposure report
(:mod:`~ecms_desktop.services.sales.exposure`) all build on these.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from sqlalchemy import Table

from ecms_desktop.models.transactions import TransactionLine
from ecms_desktop.services.sales.determination import RULE_PAST_POLICY, Result, SaleLine

_TL = cast(Table, TransactionLine.__table__)
_ZERO = Decimal(0)
_CENT = Decimal("0.01")


def rounded_to_cent(value: Decimal | None) -> Decimal:
    """Amounts as shown to users: to the cent (stored with 4 decimals)."""
    return (value or _ZERO).quantize(_CENT, ROUND_HALF_UP)


#: The kinds of audit exposure of a determined sale.
EXPOSURE_UNSUPPORTED = "unsupported_claim"
EXPOSURE_TAX_ON_EXEMPT = "tax_on_exempt"
#: Not an exposure: a sale sold exempt that a certificate covered in law, past our renewal policy (the
#: report's third measure, never added to the other two).
EXPOSURE_PAST_POLICY = "past_policy"

#: The columns of a stored sale line the engine and the evidence need.
LINE_COLUMNS = (_TL.c.id, _TL.c.invoice_number, _TL.c.line, _TL.c.invoice_date, _TL.c.customer_key,
                _TL.c.ship_to_state, _TL.c.amount, _TL.c.ship_to_county, _TL.c.ship_to_city, _TL.c.ship_to_zip,
                _TL.c.product_code, _TL.c.commodity_code, _TL.c.currency, _TL.c.exempt_reason, _TL.c.po_number,
                _TL.c.exempt_claimed, _TL.c.tax_collected, _TL.c.taxed_amount)


def same_company(company_id: int) -> Any:
    """``company_id = ?`` written so that the planner walks the primary key for keyset batches
    (``ORDER BY id LIMIT n``) instead of sorting the whole company through the company/date index."""
    return (_TL.c.company_id + 0) == company_id


def sale_of(row: Any) -> SaleLine:
    """The engine's view of a stored transaction line (a Core row)."""
    return SaleLine(row.invoice_number, row.line, row.invoice_date, row.customer_key, row.ship_to_state,
                    row.amount, row.ship_to_county, row.ship_to_city, row.ship_to_zip, row.product_code,
                    row.commodity_code, row.currency, row.exempt_reason, row.po_number)


def classify_exposure(result: Result, exempt_claimed: bool, tax_collected: Decimal,
                      taxed_amount: Decimal | None = None) -> tuple[str, Decimal]:
    """(kind, amount) of the audit exposure of a determined sale, or ("", 0) (see :func:`exposure_of`)."""
    return exposure_of(result.exempt, result.exempt_amount, result.taxable_amount, result.rule, exempt_claimed,
                       tax_collected, taxed_amount)


def exposure_of(exempt: bool, exempt_amount: Decimal, taxable_amount: Decimal, rule: str, exempt_claimed: bool,
                tax_collected: Decimal, taxed_amount: Decimal | None) -> tuple[str, Decimal]:
    """(kind, amount) of a decided sale (a determination or a correction entry), or ("", 0):

    * sold exempt but (partly) taxable: :data:`EXPOSURE_UNSUPPORTED`, the taxable amount (a sale to a
      state without a sales tax has none: nothing is at risk);
    * sold exempt and covered only in law, past our renewal policy: :data:`EXPOSURE_PAST_POLICY`, the
      exempt amount (a sale taxed under that policy is what the policy wants: nothing to report);
    * covered, with tax on the exempt portion: :data:`EXPOSURE_TAX_ON_EXEMPT`, that tax
      (:func:`over_collected`).
    """
    if exempt_claimed and taxable_amount > 0:
        return EXPOSURE_UNSUPPORTED, taxable_amount
    if rule == RULE_PAST_POLICY:
        return (EXPOSURE_PAST_POLICY, exempt_amount) if exempt_claimed and exempt_amount > 0 else ("", _ZERO)
    if exempt:
        over = over_collected(exempt_amount, taxable_amount, tax_collected, taxed_amount)
        if over > 0:
            return EXPOSURE_TAX_ON_EXEMPT, over
    return "", _ZERO


def over_collected(exempt_amount: Decimal, taxable_amount: Decimal, tax_collected: Decimal,
                   taxed_amount: Decimal | None) -> Decimal:
    """The part of the tax collected on a covered sale that fell on its exempt portion (tax the customer
    could ask back), to the cent.

    The sale line says how much tax was collected, not on what base nor at what rate, so the tax is
    attributed to the taxable portion first: with a fully exempt sale all of it is over-collected; with a
    partial exemption only what the exempt portion demonstrably carried. That is known where the ERP
    sends the amount it charged tax on (``taxed_amount``): the share of the tax on the part of that base
    beyond the taxable portion (a 1,000 sale, 300 exempt, tax charged on 1,000: 300/1,000 of the tax).
    Without it, tax on a partly exempt sale is taken to be the taxable portion's (43.75 on a 1,000 sale
    of which 700 is taxable is correct tax at 6.25%, not over-collection)."""
    if tax_collected <= 0 or exempt_amount <= 0:
        return _ZERO
    if taxed_amount is None:
        return rounded_to_cent(tax_collected) if taxable_amount <= 0 else _ZERO
    if taxed_amount <= 0:
        return _ZERO
    on_exempt = min(exempt_amount, max(_ZERO, taxed_amount - max(taxable_amount, _ZERO)))
    return rounded_to_cent(tax_collected * on_exempt / taxed_amount)


def evidence_snapshot(result: Result, rules_version: str) -> dict[str, Any]:
    """Why a sale was decided as it was, kept with it: the certificate, coverage line and rules pack
    behind the result, the amounts and the explanation."""
    cert, cov = result.certificate, result.coverage
    return {
        "exempt": result.exempt,
        "certificate_id": cert.certificate_id if cert else None,
        "certificate_number": cert.certificate_number if cert else "",
        "certificate_version": cert.version if cert else None,
        "coverage_line_id": cov.coverage_line_id if cov and cert else None,
        "coverage_expiry": cov.expiry_date if cov and cert else None,
        "certificate_status": cert.review_state if cert else "",
        "rules_pack_version": rules_version,
        "exempt_amount": result.exempt_amount,
        "taxable_amount": result.taxable_amount,
        "explanation": result.explanation(),
    }


def determination_row(line_id: int, company_id: int, result: Result, rules_version: str, claimed: bool,
                      tax: Decimal, origin: str, now: dt.datetime, state: str,
                      taxed_amount: Decimal | None = None) -> dict[str, Any]:
    """The ``determination`` row of a decided sale: its evidence snapshot, the state it is exempt in,
    the other certificates that would also cover it, and its audit exposure."""
    row = evidence_snapshot(result, rules_version)
    kind, amount = classify_exposure(result, claimed, tax, taxed_amount)
    row.update(transaction_line_id=line_id, company_id=company_id, coverage_state=state if result.exempt else "",
               also_eligible=list(result.also_eligible), conflict=bool(result.also_eligible),
               exposure_kind=kind, exposure_amount=amount, origin=origin, determined_at=now)
    return row

