"""The exposure report as an Excel workbook (:func:`write_exposure_xlsx`): the two measures in their own
columns and with their own totals, never added together."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

from ecms_desktop.services.exports.safe_export import SheetWriter, new_workbook
from ecms_desktop.services.sales.exposure import DIMENSIONS, TAX_ON_COVERED, UNCOVERED, ExposureReport

#: The detail sheet's headings, in column order.
DETAIL_HEADINGS = ("State", "Period", "Customer", "Customer name",
                   "Exempt sales without certificate: lines", "Exempt sales without certificate: sales amount",
                   "Exempt sales without certificate: untaxed amount",
                   "Tax collected on covered sales: lines", "Tax collected on covered sales: sales amount",
                   "Tax collected on covered sales: tax")
#: The summary sheets' measure headings.
SUMMARY_HEADINGS = ("Untaxed amount of exempt sales without certificate", "Tax collected on covered sales")


def write_exposure_xlsx(report: ExposureReport, path: Path) -> None:
    """The exposure report as an Excel workbook: the detail sheet (one row per customer, state and
    period, both measures side by side) and one summary sheet per dimension. The two measures have
    separate totals; no cell adds them. Customer and invoice text is never a formula
    (:mod:`ecms_desktop.services.exports.safe_export`); amounts are numbers. Written to a temporary file
    and moved into place, so a failed run leaves no half-written file."""
    from openpyxl.styles import Alignment, Font

    bold = Font(bold=True)
    kinds = ("text", "text", "text", "text", "int", "money", "money", "int", "money", "money")
    wb = new_workbook()
    ws = wb.create_sheet("Exposure")
    for col, width in zip("ABCDEFGHIJ", (7, 9, 14, 32, 12, 16, 16, 12, 16, 14), strict=True):
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
        u, t = r.uncovered, r.tax_on_covered
        sheet.append([r.state, r.period, r.customer_number, r.customer_name, u.lines, u.sales_amount,
                      u.untaxed_amount, t.lines, t.sales_amount, t.tax_collected], kinds)
    u, t = report.uncovered, report.tax_on_covered
    sheet.raw([sheet.text_cell("Totals (each measure on its own)", font=bold), None, None, None,
               sheet.value(u.lines, "int", font=bold), sheet.value(u.sales_amount, "money", font=bold),
               sheet.value(u.untaxed_amount, "money", font=bold), sheet.value(t.lines, "int", font=bold),
               sheet.value(t.sales_amount, "money", font=bold), sheet.value(t.tax_collected, "money", font=bold)])
    for dimension in DIMENSIONS:
        ws = wb.create_sheet(f"By {dimension}")
        for col, width in zip("ABC", (30, 24, 24), strict=True):
            ws.column_dimensions[col].width = width
        sheet = SheetWriter(ws)
        sheet.header([dimension.capitalize(), *SUMMARY_HEADINGS], font=bold,
                     alignment=Alignment(wrap_text=True, vertical="top"))
        uncovered = dict(report.totals_by(dimension, UNCOVERED))
        taxed = dict(report.totals_by(dimension, TAX_ON_COVERED))
        order = sorted(uncovered.keys() | taxed.keys(),
                       key=lambda k: (-uncovered.get(k, Decimal(0)), -taxed.get(k, Decimal(0)), k))
        for key in order:
            sheet.append([key, uncovered.get(key, Decimal(0)), taxed.get(key, Decimal(0))], ("text", "money", "money"))
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    wb.save(tmp)
    os.replace(tmp, path)
