"""The exposure report as an Excel workbook (:func:`write_exposure_xlsx`): the three measures in their own
columns and with their own totals, never added together."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

from ecms_desktop.services.exports.safe_export import SheetWriter, new_workbook
from ecms_desktop.services.sales.exposure import DIMENSIONS, PAST_POLICY, TAX_ON_COVERED, UNCOVERED, ExposureReport

#: The detail sheet's headings, in column order.
DETAIL_HEADINGS = ("State", "Period", "Customer", "Customer name",
                   "Exempt sales without certificate: lines", "Exempt sales without certificate: sales amount",
                   "Exempt sales without certificate: untaxed amount",
                   "Tax collected on covered sales: lines", "Tax collected on covered sales: sales amount",
                   "Tax collected on covered sales: tax",
                   "Covered in law, past our renewal policy (not exposure): lines",
                   "Covered in law, past our renewal policy: sales amount",
                   "Covered in law, past our renewal policy: untaxed amount")
#: The summary sheets' measure headings.
SUMMARY_HEADINGS = ("Untaxed amount of exempt sales without certificate", "Tax collected on covered sales",
                    "Untaxed amount covered in law, past our renewal policy (not exposure)")


def write_exposure_xlsx(report: ExposureReport, path: Path) -> None:
    """The exposure report as an Excel workbook: the detail sheet (one row per customer, state and
    period, both measures side by side) and one summary sheet per dimension. The two measures have
    separate totals; no cell adds them. Customer and invoice text is never a formula
    (:mod:`ecms_desktop.services.exports.safe_export`); amounts are numbers. Written to a temporary file
    and moved into place, so a failed run leaves no half-written file."""
    from openpyxl.styles import Alignment, Font

    bold = Font(bold=True)
    kinds = ("text", "text", "text", "text", "int", "money", "money", "int", "money", "money", "int", "money", "money")
    wb = new_workbook()
    ws = wb.create_sheet("Exposure")
    for col, width in zip("ABCDEFGHIJKLM", (7, 9, 14, 32, 12, 16, 16, 12, 16, 14, 12, 16, 16), strict=True):
        ws.column_dimensions[col].width = width
    ws.freeze_panes = "A3"
    sheet = SheetWriter(ws)
    where = f", {report.state}" if report.state else ""
    title = f"Exposure {report.date_from} to {report.date_to}{where}"
    if not report.has_sales:
        title += ": no sales imported for this period"
    sheet.raw([sheet.text_cell(title, font=Font(bold=True, size=13))])
    sheet.header(list(DETAIL_HEADINGS), font=bold, alignment=Alignment(wrap_text=True, vertical="top"))
    for r in report.rows:
        u, t, p = r.uncovered, r.tax_on_covered, r.past_policy
        sheet.append([r.state, r.period, r.customer_number, r.customer_name, u.lines, u.sales_amount,
                      u.untaxed_amount, t.lines, t.sales_amount, t.tax_collected, p.lines, p.sales_amount,
                      p.untaxed_amount], kinds)
    u, t, p = report.uncovered, report.tax_on_covered, report.past_policy
    sheet.raw([sheet.text_cell("Totals (each measure on its own)", font=bold), None, None, None,
               sheet.value(u.lines, "int", font=bold), sheet.value(u.sales_amount, "money", font=bold),
               sheet.value(u.untaxed_amount, "money", font=bold), sheet.value(t.lines, "int", font=bold),
               sheet.value(t.sales_amount, "money", font=bold), sheet.value(t.tax_collected, "money", font=bold),
               sheet.value(p.lines, "int", font=bold), sheet.value(p.sales_amount, "money", font=bold),
               sheet.value(p.untaxed_amount, "money", font=bold)])
    for dimension in DIMENSIONS:
        ws = wb.create_sheet(f"By {dimension}")
        for col, width in zip("ABCD", (30, 24, 24, 24), strict=True):
            ws.column_dimensions[col].width = width
        sheet = SheetWriter(ws)
        sheet.header([dimension.capitalize(), *SUMMARY_HEADINGS], font=bold,
                     alignment=Alignment(wrap_text=True, vertical="top"))
        uncovered = dict(report.totals_by(dimension, UNCOVERED))
        taxed = dict(report.totals_by(dimension, TAX_ON_COVERED))
        past = dict(report.totals_by(dimension, PAST_POLICY))
        order = sorted(uncovered.keys() | taxed.keys() | past.keys(),
                       key=lambda k: (-uncovered.get(k, Decimal(0)), -taxed.get(k, Decimal(0)),
                                      -past.get(k, Decimal(0)), k))
        for key in order:
            sheet.append([key, uncovered.get(key, Decimal(0)), taxed.get(key, Decimal(0)), past.get(key, Decimal(0))],
                         ("text", "money", "money", "money"))
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    wb.save(tmp)
    os.replace(tmp, path)
