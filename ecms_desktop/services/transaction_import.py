"""Import of the ERP's invoice lines (.csv or .xlsx) for exemption determination.

Same discipline as the certificate import: every row is checked first and every bad row is
reported with its row number, column and reason; if any row is bad nothing is imported. A line is
identified by company, invoice number and line number: importing the same file again adds nothing;
a line whose values changed is updated and its determination is cleared so that the next
``ecms determine`` decides it again - unless it lies in a filed period, which is refused (filed
returns are corrected by reprocessing, never by overwriting).

Written for volume (a million lines): rows are parsed with a fast path and only a row that fails
is parsed again with :class:`~ecms_desktop.services.tabular.RowErrors` to say exactly what is wrong;
lines are inserted with bulk Core ``executemany`` in one transaction, never as ORM objects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, delete, insert, select, tuple_, update
from sqlalchemy.orm import Session

from ecms_desktop.errors import Cancelled, Problem, ValidationError
from ecms_desktop.models import ExemptReason, customer_number_key, utcnow
from ecms_desktop.models.transactions import Determination, TransactionLine
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services import audit
from ecms_desktop.services.database import Database
from ecms_desktop.services.periods import PeriodBook
from ecms_desktop.services.tabular import Row, RowErrors, read_table

REQUIRED_COLUMNS = ("invoice_number", "line", "invoice_date", "customer_number", "ship_to_state", "amount")
OPTIONAL_COLUMNS = ("ship_to_county", "ship_to_city", "ship_to_zip", "product_code", "commodity_code",
                    "currency", "tax_collected", "exempt_claimed", "exempt_reason", "po_number")

Progress = Callable[[int, int, str], None]
CancelCheck = Callable[[], bool]

_YES = {"yes": True, "y": True, "true": True, "1": True, "x": True,
        "no": False, "n": False, "false": False, "0": False, "": False}
_REASONS = frozenset(r.value for r in ExemptReason)
_ZERO = Decimal(0)
#: Columns compared to decide whether a re-imported line changed.
_VALUE_COLUMNS = ("invoice_date", "customer_number", "ship_to_state", "ship_to_county", "ship_to_city",
                  "ship_to_zip", "product_code", "commodity_code", "amount", "currency", "tax_collected",
                  "exempt_claimed", "exempt_reason", "po_number")
_BATCH = 20_000
_TL = cast(Table, TransactionLine.__table__)


@dataclass
class TransactionImportResult:
    """What an import did: lines added, changed, already present."""

    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    determinations_cleared: int = 0
    problems: list[Problem] = field(default_factory=list)


class _RowError(Exception):
    pass


def _text(cells: dict[str, Any], column: str) -> str:
    value = cells.get(column)
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    text = str(value).strip().replace(",", "").replace("$", "")
    if not text:
        return _ZERO
    return Decimal(text)


def _fast(cells: dict[str, Any], states: frozenset[str]) -> dict[str, Any]:
    """Parse a row; raise on anything unusual (the slow path then says what). CSV cells are text:
    they take the inline path; other cell types (xlsx numbers, dates) go through :func:`_text`."""
    g = cells.get
    v = g("invoice_number")
    invoice = v.strip() if v.__class__ is str else _text(cells, "invoice_number")
    v = g("customer_number")
    customer = v.strip() if v.__class__ is str else _text(cells, "customer_number")
    v = g("ship_to_state")
    state = (v.strip() if v.__class__ is str else _text(cells, "ship_to_state")).upper()
    if not invoice or not customer or state not in states or len(invoice) > 64 or len(customer) > 64:
        raise _RowError
    line_value: Any = cells["line"]
    if line_value.__class__ is str:
        line = int(line_value)
    else:
        line = int(line_value)
        if isinstance(line_value, float) and not line_value.is_integer():
            raise _RowError
    if line < 1:
        raise _RowError
    date_value = g("invoice_date")
    if date_value.__class__ is str:
        invoice_date = dt.date.fromisoformat(date_value.strip())
    elif isinstance(date_value, dt.datetime):
        invoice_date = date_value.date()
    elif isinstance(date_value, dt.date):
        invoice_date = date_value
    else:
        raise _RowError
    v = g("amount")
    try:
        amount = Decimal(v) if v.__class__ is str else _decimal(v)
    except InvalidOperation:
        amount = _decimal(v)
    tax_value = g("tax_collected")
    if not tax_value:
        tax = _ZERO
    else:
        try:
            tax = Decimal(tax_value) if tax_value.__class__ is str else _decimal(tax_value)
        except InvalidOperation:
            tax = _decimal(tax_value)
    if not amount.is_finite() or not tax.is_finite() or tax < 0:
        raise _RowError
    v = g("currency")
    currency = ((v.strip() if v.__class__ is str else _text(cells, "currency")) or "USD").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise _RowError
    v = g("exempt_claimed")
    claimed = _YES[(v.strip() if v.__class__ is str else _text(cells, "exempt_claimed")).casefold()]
    v = g("exempt_reason")
    reason = v.strip() if v.__class__ is str else _text(cells, "exempt_reason")
    if reason:
        reason = reason.casefold().replace(" ", "_").replace("-", "_")
        if reason not in _REASONS:
            raise _RowError
    out = {"invoice_number": invoice, "line": line, "invoice_date": invoice_date, "customer_number": customer,
           "customer_key": customer_number_key(customer), "ship_to_state": state, "amount": amount,
           "currency": currency, "tax_collected": tax, "exempt_claimed": claimed, "exempt_reason": reason}
    for column, limit in _TEXT_LIMITS:
        v = g(column)
        value = "" if v is None else (v.strip() if v.__class__ is str else _text(cells, column))
        if len(value) > limit:
            raise _RowError
        out[column] = value
    return out


_TEXT_LIMITS = (("ship_to_county", 100), ("ship_to_city", 100), ("ship_to_zip", 20), ("product_code", 64),
                ("commodity_code", 64), ("po_number", 64))


def _explain(row: Row, errs: RowErrors, states: frozenset[str]) -> None:
    """The slow path: name every problem of a row the fast path refused."""
    for column, limit in (("invoice_number", 64), ("customer_number", 64), ("po_number", 64),
                          ("product_code", 64), ("commodity_code", 64), ("ship_to_county", 100),
                          ("ship_to_city", 100), ("ship_to_zip", 20)):
        if len(row.text(column)) > limit:
            errs.add(column, f"longer than {limit} characters")
    if not row.text("invoice_number"):
        errs.add("invoice_number", "an invoice number is required")
    if not row.text("customer_number"):
        errs.add("customer_number", "a customer number is required")
    state = row.text("ship_to_state").upper()
    if state not in states:
        errs.add("ship_to_state", f"{row.text('ship_to_state')!r} is not a US state or DC code"
                 if state else "a two-letter ship-to state is required")
    line_text = row.text("line")
    try:
        value = float(line_text)
        if value < 1 or not value.is_integer():
            raise ValueError
    except ValueError:
        errs.add("line", f"{line_text!r} is not a line number (1, 2, ...)" if line_text
                 else "a line number is required")
    errs.date(row, "invoice_date", required=True)
    amount = errs.decimal(row, "amount")
    if amount is None and not any(p.column == "amount" for p in errs.problems):
        errs.add("amount", "an amount is required")
    elif amount is not None and not amount.is_finite():
        errs.add("amount", f"{row.text('amount')!r} is not a number")
    tax = errs.decimal(row, "tax_collected")
    if tax is not None and (not tax.is_finite() or tax < 0):
        errs.add("tax_collected", f"{row.text('tax_collected')!r} is not a tax amount (0 or more)")
    currency = (row.text("currency") or "USD").upper()
    if len(currency) != 3 or not currency.isalpha():
        errs.add("currency", f"{currency!r} is not a 3-letter currency code")
    if row.text("exempt_claimed").casefold() not in _YES:
        errs.add("exempt_claimed", f"{row.text('exempt_claimed')!r} is not yes or no")
    errs.choice(row, "exempt_reason", sorted(_REASONS), default="")
    if not errs.problems:  # pragma: no cover - the fast path and this one disagree
        errs.add("", "this row cannot be read")


def _existing(session: Session, company_id: int, keys: list[tuple[str, int]]) -> dict[tuple[str, int], Any]:
    """Stored lines with these keys (looked up in chunks; for an empty table a single cheap query)."""
    table = _TL
    cols = [table.c.id, table.c.invoice_number, table.c.line, *(table.c[c] for c in _VALUE_COLUMNS)]
    count = session.execute(select(table.c.id).where(table.c.company_id == company_id).limit(1)).first()
    if count is None:
        return {}
    found: dict[tuple[str, int], Any] = {}
    if len(keys) > 50_000:  # cheaper to read all of the company's keys than to look them up
        wanted = set(keys)
        for row in session.execute(select(*cols).where(table.c.company_id == company_id)):
            k = (row.invoice_number, row.line)
            if k in wanted:
                found[k] = row
        return found
    for i in range(0, len(keys), 500):
        chunk = keys[i:i + 500]
        for row in session.execute(select(*cols).where(
                table.c.company_id == company_id, tuple_(table.c.invoice_number, table.c.line).in_(chunk))):
            found[(row.invoice_number, row.line)] = row
    return found


class TransactionImporter:
    """Imports invoice lines for one company."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.states = frozenset(load_rules_pack().states)

    def import_file(self, path: Path, *, company_id: int, progress: Progress | None = None,
                    cancel: CancelCheck | None = None) -> TransactionImportResult:
        """Check every row, then store them all in one transaction (or nothing)."""
        table = read_table(path, required=REQUIRED_COLUMNS, optional=OPTIONAL_COLUMNS)
        total = len(table.rows)
        if not total:
            raise ValidationError(f"{table.name}: there are no data rows.")
        parsed: list[dict[str, Any]] = []
        problems: list[Problem] = []
        seen: dict[tuple[str, int], int] = {}
        states = self.states
        for i, row in enumerate(table.rows):
            if i % 50_000 == 0:
                if cancel and cancel():
                    raise Cancelled("Import cancelled; nothing was imported.")
                if progress:
                    progress(i, total, f"Checking row {row.number}")
            try:
                item = _fast(row.cells, states)
            except (_RowError, ValueError, KeyError, InvalidOperation, TypeError, AttributeError):
                errs = RowErrors(table.name, row.number)
                _explain(row, errs, states)
                problems.extend(errs.problems)
                continue
            key = (item["invoice_number"], item["line"])
            first = seen.get(key)
            if first is not None:
                problems.append(Problem(f"invoice {key[0]} line {key[1]} is already on row {first}",
                                        file=table.name, row=row.number, column="line"))
                continue
            seen[key] = row.number
            item["_row"] = row.number
            parsed.append(item)
        if problems:
            bad = len({p.row for p in problems})
            raise ValidationError(f"{table.name}: {bad} of {total} rows have problems; nothing was imported.",
                                  problems)
        result = TransactionImportResult(rows=total)
        now = utcnow()
        tbl = _TL
        with self.db.transaction() as s:
            existing = _existing(s, company_id, list(seen))
            new_rows: list[dict[str, Any]] = []
            changed: list[tuple[int, dict[str, Any], Any]] = []
            for item in parsed:
                old = existing.get((item["invoice_number"], item["line"]))
                if old is None:
                    item.pop("_row")
                    item["company_id"] = company_id
                    item["imported_at"] = now
                    new_rows.append(item)
                elif any(getattr(old, c) != item[c] for c in _VALUE_COLUMNS):
                    changed.append((old.id, item, old))
                else:
                    result.unchanged += 1
            if changed:
                self._check_changes(s, company_id, table.name, changed)
                for line_id, item, _old in changed:
                    values = {c: item[c] for c in (*_VALUE_COLUMNS, "customer_key")}
                    s.execute(update(tbl).where(tbl.c.id == line_id).values(**values, imported_at=now))
                ids = [c[0] for c in changed]
                for i in range(0, len(ids), 500):
                    res = s.execute(delete(Determination).where(Determination.transaction_line_id.in_(ids[i:i + 500])))
                    result.determinations_cleared += res.rowcount or 0  # type: ignore[attr-defined]
                result.updated = len(changed)
            for i in range(0, len(new_rows), _BATCH):
                if cancel and cancel():
                    raise Cancelled("Import cancelled; nothing was imported.")
                if progress:
                    progress(i, len(new_rows), "Storing lines")
                s.execute(insert(tbl), new_rows[i:i + _BATCH])
            result.inserted = len(new_rows)
            audit.record(s, "import.transactions", "import", path.name, company_id=company_id,
                         details={"file": path.name, "rows": total, "inserted": result.inserted,
                                  "updated": result.updated, "unchanged": result.unchanged,
                                  "determinations_cleared": result.determinations_cleared})
        return result

    @staticmethod
    def _check_changes(session: Session, company_id: int, name: str,
                       changed: list[tuple[int, dict[str, Any], Any]]) -> None:
        """Refuse changes to lines whose sale lies in a filed period."""
        book = PeriodBook.load(session, company_id)
        problems = []
        for _line_id, item, old in changed:
            filed = book.filed_period(old.ship_to_state, old.invoice_date) or book.filed_period(
                item["ship_to_state"], item["invoice_date"])
            if filed:
                problems.append(Problem(
                    f"invoice {item['invoice_number']} line {item['line']} changed, but its sale is in the filed "
                    f"period {old.ship_to_state} {filed}: filed returns are never changed (use reprocessing)",
                    file=name, row=item["_row"], column="invoice_number"))
        if problems:
            raise ValidationError(f"{name}: {len(problems)} rows change sales in filed periods; nothing was "
                                  "imported.", problems)
