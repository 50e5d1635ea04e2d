"""The exposure report: sales sold exempt without a covering certificate, and sales taxed although a
valid certificate existed, by state, filing period and customer (:func:`exposure_report`), and the
report as an Excel workbook (:func:`write_exposure_xlsx`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from ecms_desktop.models.transactions import Determination, DeterminationAdjustment, TransactionLine
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.exports.safe_export import SheetWriter, new_workbook
from ecms_desktop.services.sales.determination_records import (
    EXPOSURE_TAX_ON_EXEMPT,
    EXPOSURE_UNSUPPORTED,
    rounded_to_cent,
)
from ecms_desktop.services.sales.periods import PeriodBook

_TL = cast(Table, TransactionLine.__table__)
_DET = cast(Table, Determination.__table__)
_ADJ = cast(Table, DeterminationAdjustment.__table__)
_ZERO = Decimal(0)

EXPOSURE_LABELS = {
    EXPOSURE_UNSUPPORTED: "sold exempt without a covering certificate",
    EXPOSURE_TAX_ON_EXEMPT: "tax collected although a valid certificate existed",
}


@dataclass(frozen=True)
class ExposureRow:
    """Exposure of one customer in one state and filing period, of one kind."""

    state: str
    period: str
    customer_number: str
    kind: str
    lines: int
    sales_amount: Decimal
    exposure_amount: Decimal
    tax_collected: Decimal


@dataclass(frozen=True)
class ExposureReport:
    date_from: dt.date
    date_to: dt.date
    rows: tuple[ExposureRow, ...]

    @property
    def total(self) -> Decimal:
        return sum((r.exposure_amount for r in self.rows), _ZERO)

    def totals_by(self, dimension: str) -> list[tuple[str, Decimal]]:
        """Exposure summed by ``state``, ``period`` or ``customer``, largest first."""
        attr = {"state": "state", "period": "period", "customer": "customer_number"}[dimension]
        sums: dict[str, Decimal] = defaultdict(lambda: _ZERO)
        for r in self.rows:
            sums[getattr(r, attr)] += r.exposure_amount
        return sorted(sums.items(), key=lambda kv: (-kv[1], kv[0]))


def exposure_report(session: Session, company_id: int, date_from: dt.date, date_to: dt.date, *,
                    state: str | None = None) -> ExposureReport:
    """Audit exposure by state, filing period and customer. Where a sale in a filed period was
    corrected by reprocessing, the latest correction counts."""
    if date_to < date_from:
        raise ValidationError(f"The period ends ({date_to}) before it starts ({date_from}).")
    groups: dict[tuple[str, str, str, str], list[Decimal]] = {}
    book = PeriodBook.load(session, company_id)
    latest = _latest_recreations(session, company_id, date_from, date_to)
    stmt = (select(_TL.c.id, _TL.c.invoice_date, _TL.c.ship_to_state, _TL.c.customer_number, _TL.c.amount,
                   _TL.c.tax_collected, _TL.c.exempt_claimed, _DET.c.exposure_kind, _DET.c.exposure_amount)
            .select_from(_TL.join(_DET, _DET.c.transaction_line_id == _TL.c.id))
            .where(_TL.c.company_id == company_id, _TL.c.invoice_date.between(date_from, date_to)))
    if state:
        stmt = stmt.where(_TL.c.ship_to_state == state.upper())
    if not latest:
        stmt = stmt.where(_DET.c.exposure_kind != "")
    for r in session.execute(stmt):
        kind, amount = r.exposure_kind, r.exposure_amount
        adj = latest.get(r.id)
        if adj is not None:
            kind, amount = _exposure_of_entry(adj, r.exempt_claimed, r.tax_collected)
        if not kind:
            continue
        key = (r.ship_to_state, book.period(r.ship_to_state, r.invoice_date).label, r.customer_number, kind)
        acc = groups.setdefault(key, [_ZERO, _ZERO, _ZERO, _ZERO])
        acc[0] += 1
        acc[1] += r.amount
        acc[2] += amount
        acc[3] += r.tax_collected
    rows = tuple(ExposureRow(k[0], k[1], k[2], k[3], int(v[0]), rounded_to_cent(v[1]), rounded_to_cent(v[2]),
                             rounded_to_cent(v[3]))
                 for k, v in sorted(groups.items()))
    return ExposureReport(date_from, date_to, rows)


def _latest_recreations(session: Session, company_id: int, date_from: dt.date, date_to: dt.date
                        ) -> dict[int, Any]:
    sub = (select(func.max(_ADJ.c.id)).where(_ADJ.c.company_id == company_id, _ADJ.c.kind == "recreation")
           .group_by(_ADJ.c.transaction_line_id))
    stmt = (select(_ADJ.c.transaction_line_id, _ADJ.c.exempt, _ADJ.c.exempt_amount, _ADJ.c.taxable_amount)
            .select_from(_ADJ.join(_TL, _TL.c.id == _ADJ.c.transaction_line_id))
            .where(_ADJ.c.id.in_(sub), _TL.c.invoice_date.between(date_from, date_to)))
    return {r.transaction_line_id: r for r in session.execute(stmt)}


def _exposure_of_entry(entry: Any, claimed: bool, tax: Decimal) -> tuple[str, Decimal]:
    if claimed and entry.taxable_amount > 0:
        return EXPOSURE_UNSUPPORTED, entry.taxable_amount
    if entry.exempt and tax > 0:
        return EXPOSURE_TAX_ON_EXEMPT, tax
    return "", _ZERO


def write_exposure_xlsx(report: ExposureReport, path: Path) -> None:
    """The exposure report as an Excel workbook: the detail sheet and one summary sheet per dimension.
    Customer and invoice text is never a formula (:mod:`ecms_desktop.services.exports.safe_export`); amounts
    are numbers. Written to a temporary file and moved into place, so a failed run leaves no
    half-written file."""
    from openpyxl.styles import Font

    bold = Font(bold=True)
    money = ("text", "text", "text", "text", "int", "money", "money", "money")
    wb = new_workbook()
    ws = wb.create_sheet("Exposure")
    for col, width in zip("ABCDEFGH", (7, 9, 16, 48, 7, 14, 15, 14), strict=True):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A3"
    sheet = SheetWriter(ws)
    sheet.raw([sheet.text_cell(f"Exposure {report.date_from} to {report.date_to}", font=Font(bold=True, size=13))])
    sheet.header(["State", "Period", "Customer", "Exposure", "Lines", "Sales amount", "Amount at risk",
                  "Tax collected"], font=bold)
    for r in report.rows:
        sheet.append([r.state, r.period, r.customer_number, EXPOSURE_LABELS[r.kind], r.lines, r.sales_amount,
                      r.exposure_amount, r.tax_collected], money)
    sheet.raw([sheet.text_cell("Total", font=bold), None, None, None, sum(r.lines for r in report.rows), None,
               sheet.value(report.total, "money"), None])
    for dimension in ("state", "period", "customer"):
        ws = wb.create_sheet(f"By {dimension}")
        ws.column_dimensions["A"].width = 16
        ws.column_dimensions["B"].width = 16
        sheet = SheetWriter(ws)
        sheet.header([dimension.capitalize(), "Amount at risk"], font=bold)
        for key, amount in report.totals_by(dimension):
            sheet.append([key, amount], ("text", "money"))
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    wb.save(tmp)
    os.replace(tmp, path)
