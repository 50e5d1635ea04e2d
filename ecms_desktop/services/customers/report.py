"""The report of customers without a valid certificate where they buy exempt: every customer and state where
the ERP sold exempt (up to a date) while no approved certificate covers the customer there on that date
(pending review, expired or missing), with the exempt sales at risk and the next action. Exported to
Excel or CSV for the tax team; the same rows as the exemption matrix decides them.
"""

from __future__ import annotations

import datetime as dt
import io
import os
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from ecms_desktop.models import Customer
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.core.settings import business_settings
from ecms_desktop.services.customers.matrix import Coverage, NextAction, decide, exempt_sales, line_facts, open_requests
from ecms_desktop.services.exports.safe_export import CsvWriter, SheetWriter, new_workbook

COLUMNS = ("Customer number", "Customer", "E-mail", "State", "Coverage", "Certificate", "Expired on",
           "Exempt sales lines", "Exempt amount", "Last exempt sale", "Next action")


@dataclass(frozen=True)
class UncoveredSales:
    """A customer buying exempt in a state without a valid certificate there."""

    customer_id: int
    customer_number: str
    customer_name: str
    email: str
    state: str
    coverage: Coverage
    certificate_id: int | None
    expiry_date: dt.date | None
    exempt_lines: int
    exempt_amount: Decimal
    last_exempt_sale: dt.date
    next_action: NextAction

    def values(self) -> tuple[object, ...]:
        """The row as the export writes it (see :data:`COLUMNS`)."""
        return (self.customer_number, self.customer_name, self.email, self.state, self.coverage.label,
                self.certificate_id, self.expiry_date if self.coverage is Coverage.EXPIRED else None,
                self.exempt_lines, self.exempt_amount, self.last_exempt_sale, self.next_action.label)


class UncoveredSalesReport:
    """Customers without a valid certificate where they buy exempt."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def rows(self, company_id: int, *, as_of: dt.date) -> list[UncoveredSales]:
        """The customers and states with exempt sales up to ``as_of`` and no valid certificate on ``as_of``,
        largest exempt amount first."""
        with self.db.reader() as s:
            window = business_settings(s, company_id).expiring_soon_days
            sold = exempt_sales(s, company_id, as_of)
            buying = {k for k, _ in sold}
            customers = {c.number_key: c for c in s.execute(select(Customer).where(
                Customer.company_id == company_id)).scalars() if c.number_key in buying}
            facts = line_facts(s, [c.id for c in customers.values()])
            requests = open_requests(s, company_id)
            out: list[UncoveredSales] = []
            for (key, state), (count, amount, last) in sold.items():
                customer = customers.get(key)
                if customer is None:
                    continue  # a number no customer has: the exposure report lists those sales
                request = requests.get((customer.id, state))
                coverage, line, action = decide(state, (f for f in facts.get(customer.id, []) if f.state == state),
                                                as_of, window, request)
                if coverage.valid:
                    continue
                out.append(UncoveredSales(customer.id, customer.number, customer.legal_name, customer.email, state,
                                          coverage, line.certificate_id if line else None,
                                          line.expiry_date if line else None, count, amount, last, action))
        out.sort(key=lambda r: (-r.exempt_amount, r.customer_name.casefold(), r.state))
        return out

    def export(self, company_id: int, path: Path, *, as_of: dt.date) -> int:
        """Write the report to ``path`` (.xlsx or .csv, by its suffix). Returns the number of rows."""
        suffix = path.suffix.lower()
        if suffix not in (".xlsx", ".csv"):
            raise ValidationError(f"{path.name}: the report is written as .xlsx or .csv.")
        rows = self.rows(company_id, as_of=as_of)
        tmp = path.with_name(f".{path.name}.tmp")  # a failed run leaves no half-written file
        if suffix == ".csv":
            buffer = io.StringIO()
            writer = CsvWriter(buffer)
            writer.writerow(COLUMNS)
            writer.writerows(r.values() for r in rows)
            tmp.write_text(buffer.getvalue(), encoding="utf-8-sig", newline="")
        else:
            from openpyxl.styles import Font

            wb = new_workbook()
            ws = wb.create_sheet("Uncovered exempt sales")
            for col, width in zip("ABCDEFGHIJK", (16, 36, 28, 7, 16, 11, 12, 10, 15, 14, 15), strict=True):
                ws.column_dimensions[col].width = width
            ws.freeze_panes = "A3"
            sheet = SheetWriter(ws)
            sheet.raw([sheet.text_cell(f"Customers without a valid certificate where they buy exempt, as of {as_of}",
                                       font=Font(bold=True, size=13))])
            sheet.header(COLUMNS, font=Font(bold=True))
            kinds = ("text", "text", "text", "text", "text", "int", "text", "int", "money", "text", "text")
            for r in rows:
                sheet.append(r.values(), kinds)
            wb.save(tmp)
        os.replace(tmp, path)
        return len(rows)
