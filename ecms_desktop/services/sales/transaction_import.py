"""Import of the ERP's invoice lines (.csv or .xlsx) for exemption determination.

Same discipline as the certificate import: every row is checked first and every bad row is
reported with its row number, column and reason; if any row is bad nothing is imported. A line is
identified by company, invoice number and line number: importing the same file again adds nothing;
a line whose values changed is updated and its determination is cleared so that the next
``ecms determine`` decides it again - unless it lies in a filed period, which is refused (filed
returns are corrected by reprocessing, never by overwriting).

Written for volume (a million lines): a CSV file is read row by row as plain lists with the
:mod:`csv` module (the generic :func:`~ecms_desktop.services.core.tabular.read_table` builds a dict per row);
every row goes through a fast parser, and only a row that fails is parsed again through
:class:`~ecms_desktop.services.core.tabular.RowErrors` (the same path and messages as for .xlsx files) to
say exactly what is wrong. The rows are checked in chunks, and the new lines of each chunk are
inserted as soon as it is checked, as plain tuples through the driver's ``executemany``
(:class:`~ecms_desktop.services.core.bulk.BulkInsert`, with the column types' own conversions), all in
one transaction: a bad row anywhere, or a cancel, rolls everything back (the rest of the file is
still checked, so that every problem is reported). A large file is read and checked by a worker
process while this one stores what it has already checked. Amounts are kept to four decimals
(rounded half up), as the column holds them on every database.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import mmap
import os
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Index, Table, delete, func, select, text, tuple_, update
from sqlalchemy.orm import Session

from ecms_desktop.models import ExemptReason, customer_number_key, utcnow
from ecms_desktop.models.transactions import Determination, TransactionLine
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.core import audit, state_digest
from ecms_desktop.services.core.bulk import BulkInsert, SqliteBulkCache, paused_gc, worker_start_method
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import Cancelled, EcmsError, Problem, ValidationError
from ecms_desktop.services.core.field_limits import (
    FIRST_DATE,
    LAST_DATE,
    FieldLimit,
    currency_problem,
    date_problem,
    limit,
    limits_of,
)
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.core.tabular import Row, RowErrors, header_key, layout_problems, parse_number, read_table
from ecms_desktop.services.core.user_files import refuse_database_file
from ecms_desktop.services.customers.service import match_sales_to_merged_numbers
from ecms_desktop.services.sales.late_lines import LineInFiledPeriod, filed_period_warning, new_lines_in_filed_periods
from ecms_desktop.services.sales.periods import PeriodBook

REQUIRED_COLUMNS = ("invoice_number", "line", "invoice_date", "customer_number", "ship_to_state", "amount")
OPTIONAL_COLUMNS = ("ship_to_county", "ship_to_city", "ship_to_zip", "product_code", "commodity_code",
                    "currency", "tax_collected", "exempt_claimed", "exempt_reason", "po_number", "taxed_amount")


_YES = {"yes": True, "y": True, "true": True, "1": True, "x": True,
        "no": False, "n": False, "false": False, "0": False, "": False}
_REASONS = frozenset(r.value for r in ExemptReason)
_ZERO = Decimal(0)
#: Amounts are stored as the ``amount`` column keeps them (``Numeric(18, 4)``: four decimals, at most 14
#: digits before the point): rounded half up on import, on every database alike.
_AMOUNT = limit(TransactionLine, "amount")
_SCALE = Decimal(1).scaleb(-(_AMOUNT.scale or 0))
_LIMIT = Decimal(10) ** ((_AMOUNT.precision or 0) - (_AMOUNT.scale or 0))
#: The largest line number the ``line`` column holds.
_LINE_MAX = limit(TransactionLine, "line").max_int or 0
#: Columns compared to decide whether a re-imported line changed.
_VALUE_COLUMNS = ("invoice_date", "customer_number", "ship_to_state", "ship_to_county", "ship_to_city",
                  "ship_to_zip", "product_code", "commodity_code", "amount", "currency", "tax_collected",
                  "exempt_claimed", "exempt_reason", "po_number", "taxed_amount")
#: Stored columns of a line, in the order of the parsed tuples.
_FIELDS = ("invoice_number", "line", "invoice_date", "customer_number", "customer_key", "ship_to_state",
           "ship_to_county", "ship_to_city", "ship_to_zip", "product_code", "commodity_code", "amount", "currency",
           "tax_collected", "exempt_claimed", "exempt_reason", "po_number", "taxed_amount")
_INVOICE, _LINE = 0, 1
_TL = cast(Table, TransactionLine.__table__)


#: Fewest new lines for which the secondary indexes are dropped and built again after the insert.
_REBUILD_MIN = 50_000
#: Rows of the file checked and stored together (and the unit of progress and cancel).
_CHUNK = 20_000
#: From this size on, a CSV file is read and checked by a worker process while this one stores the
#: lines it has already checked (starting the worker costs ~0.1 s with fork, ~1 s with spawn).
PARALLEL_MIN_BYTES = 8_000_000
#: The fewest bytes a data row of a CSV file takes (for estimating a file's lines from its size).
_MIN_LINE_BYTES = 40


def _indexes_to_rebuild(inserted: int, stored_before: int) -> list[Index]:
    """The secondary indexes of ``transaction_line`` to drop during a bulk insert and build afterwards,
    inside the same transaction (measured: building them once after a large insert costs less than
    keeping them up to date row by row; on PostgreSQL a million lines took 13.4 s to insert with them
    and 5.1 s + 1.5 s to build them without). Only once the import has at least doubled the table
    (``inserted`` lines so far against ``stored_before``, the highest line id before it): the first
    load of a ledger, not a month's file. The unique key that stops duplicate lines is never dropped.

    DDL is transactional on both databases: a failed or cancelled import rolls the drop back with the
    lines. On SQLite readers keep seeing the committed schema; on PostgreSQL ``DROP INDEX`` locks the
    table until the import commits, so a desk reading sales lines meanwhile waits for it (at most the
    lock timeout, then it is told the database is busy)."""
    if inserted < _REBUILD_MIN or inserted < stored_before:
        return []
    return sorted(_TL.indexes, key=lambda ix: str(ix.name))


def _owns_lines(conn: Connection) -> bool:
    """Whether this login may drop and build the lines' indexes and refresh their statistics: on PostgreSQL
    only the table's owner (or a member of its role) may. A person's own login in team mode is not: their
    large imports keep the indexes up to date row by row (slower, the same lines) and leave the statistics to
    autovacuum."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(conn.execute(text("SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c "
                                  "WHERE c.oid = 'transaction_line'::regclass")).scalar())


def _after_bulk_load(conn: Connection, rebuild: list[Index], inserted: int) -> None:
    """Build the dropped indexes again (PostgreSQL: with more sort memory for this transaction, so the
    sort stays in memory) and, on PostgreSQL after a large load, refresh the table's statistics: until
    autovacuum gets to it the planner still takes the table to be as small as before the load and picks
    nested loops and disk sorts for the determination that follows (``ANALYZE`` reads a sample, ~0.3 s,
    and counts this transaction's own new lines)."""
    pg = conn.dialect.name == "postgresql"
    if pg and rebuild:
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")
    for index in rebuild:
        index.create(conn)
    if pg and inserted >= _REBUILD_MIN:
        conn.exec_driver_sql("ANALYZE transaction_line")


@dataclass
class TransactionImportResult:
    """What an import did: lines added, changed, already present."""

    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    determinations_cleared: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: New lines dated inside periods already filed (imported; their determination is booked in the
    #: current open period), and the warning that names them ("" when none).
    in_filed_periods: list[LineInFiledPeriod] = field(default_factory=list)
    warning: str = ""


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
    """An amount from a cell: a number cell, or text as :func:`parse_number` reads it (ValueError)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    text = str(value).strip()
    if not text:
        raise _RowError  # a blank amount is not 0 (the general path says it is required)
    return parse_number(text, money=True)


def _plain_decimal(text: str) -> Decimal:
    """The fast reading of an amount's text: ``Decimal`` itself when the text is plain ASCII without
    ``_`` (``Decimal`` also reads ``1_000`` and other scripts' digits), else :func:`_decimal`."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return _decimal(text)
    if "_" in text or not text.isascii():
        raise _RowError
    return value


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
    if not invoice or not customer or state not in states or len(invoice) > _TEXT_MAX["invoice_number"] \
            or len(customer) > _TEXT_MAX["customer_number"]:
        raise _RowError
    line_value: Any = cells["line"]
    if line_value.__class__ is str:
        line = int(line_value)
        if "_" in line_value or not line_value.isascii():
            raise _RowError
    else:
        line = int(line_value)
        if isinstance(line_value, float) and not line_value.is_integer():
            raise _RowError
    if not 1 <= line <= _LINE_MAX:
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
    if not FIRST_DATE <= invoice_date <= LAST_DATE:
        raise _RowError
    v = g("amount")
    amount = _plain_decimal(v) if v.__class__ is str else _decimal(v)
    tax_value = g("tax_collected")
    if tax_value.__class__ is str:
        tax = _plain_decimal(tax_value) if tax_value.strip() else _ZERO
    else:
        tax = _decimal(tax_value) if tax_value is not None else _ZERO
    if not amount.is_finite() or not tax.is_finite() or tax < 0 or not -_LIMIT < amount < _LIMIT or tax >= _LIMIT:
        raise _RowError
    amount, tax = amount.quantize(_SCALE, ROUND_HALF_UP), tax.quantize(_SCALE, ROUND_HALF_UP)
    v = g("currency")
    currency = ((v.strip() if v.__class__ is str else _text(cells, "currency")) or "USD").upper()
    if currency_problem(currency) is not None:
        raise _RowError
    v = g("exempt_claimed")
    claimed = _YES[(v.strip() if v.__class__ is str else _text(cells, "exempt_claimed")).casefold()]
    v = g("exempt_reason")
    reason = v.strip() if v.__class__ is str else _text(cells, "exempt_reason")
    if reason:
        reason = reason.casefold().replace(" ", "_").replace("-", "_")
        if reason not in _REASONS:
            raise _RowError
    key = customer_number_key(customer)
    out = {"invoice_number": invoice, "line": line, "invoice_date": invoice_date, "customer_number": customer,
           "customer_key": key, "ship_to_state": state, "amount": amount,
           "currency": currency, "tax_collected": tax, "exempt_claimed": claimed, "exempt_reason": reason}
    if len(key) > _TEXT_MAX["customer_key"] or "\x00" in invoice or "\x00" in customer:
        raise _RowError
    v = g("taxed_amount")
    out["taxed_amount"] = _taxed_amount(v if v.__class__ is str else (None if v is None else str(_decimal(v))))
    for column in _OPTIONAL_TEXT:
        v = g(column)
        value = "" if v is None else (v.strip() if v.__class__ is str else _text(cells, column))
        if len(value) > _TEXT_MAX[column] or "\x00" in value:
            raise _RowError
        out[column] = value
    return out


#: The longest text each column holds (from the model).
_TEXT_MAX = {name: lim.max_length for name, lim in limits_of(TransactionLine).items() if lim.max_length is not None}
_OPTIONAL_TEXT = ("ship_to_county", "ship_to_city", "ship_to_zip", "product_code", "commodity_code", "po_number")
# The same as plain names for the CSV fast path (a global name is cheaper than a dict look-up per row).
(_INVOICE_MAX, _CUSTOMER_MAX, _KEY_MAX, _COUNTY_MAX, _CITY_MAX, _ZIP_MAX, _PRODUCT_MAX, _COMMODITY_MAX, _PO_MAX) = (
    _TEXT_MAX[c] for c in ("invoice_number", "customer_number", "customer_key", *_OPTIONAL_TEXT))


#: Input columns in the order :func:`_fast_csv` takes their positions.
_CSV_COLUMNS = ("invoice_number", "line", "invoice_date", "customer_number", "ship_to_state", "ship_to_county",
                "ship_to_city", "ship_to_zip", "product_code", "commodity_code", "amount", "currency",
                "tax_collected", "exempt_claimed", "exempt_reason", "po_number", "taxed_amount")


def _taxed_amount(raw: str | None) -> Decimal | None:
    """The optional amount tax was charged on (empty: not given), as stored; raises on a bad one."""
    if raw is None or not raw.strip():
        return None
    value = _plain_decimal(raw)
    if not value.is_finite() or value < 0 or value >= _LIMIT:
        raise _RowError
    return value.quantize(_SCALE, ROUND_HALF_UP)


def _fast_csv(v: list[str], pos: tuple[int, ...], states: frozenset[str], dates: dict[str, dt.date],
              keys: dict[str, str]) -> tuple[Any, ...]:
    """:func:`_fast` for a CSV row given as a list of text cells (``pos``: the cell of each of
    :data:`_CSV_COLUMNS`, -1 for an absent column, whose cell the caller appended as ``""``); the
    same checks, raising on anything unusual. Returns the values in :data:`_FIELDS` order."""
    (p_inv, p_line, p_date, p_cust, p_state, p_county, p_city, p_zip, p_prod, p_comm, p_amount, p_cur, p_tax,
     p_claim, p_reason, p_po, p_taxed) = pos
    invoice = v[p_inv].strip()
    customer = v[p_cust].strip()
    state = v[p_state].strip().upper()
    if (not invoice or not customer or state not in states or len(invoice) > _INVOICE_MAX
            or len(customer) > _CUSTOMER_MAX):
        raise _RowError
    raw = v[p_line]
    line = int(raw)
    if not 1 <= line <= _LINE_MAX or "_" in raw or not raw.isascii():
        raise _RowError
    raw = v[p_date]
    invoice_date = dates.get(raw)
    if invoice_date is None:
        invoice_date = dt.date.fromisoformat(raw.strip())
        if not FIRST_DATE <= invoice_date <= LAST_DATE:
            raise _RowError
        dates[raw] = invoice_date
    amount = _plain_decimal(v[p_amount])
    raw = v[p_tax]
    tax = _plain_decimal(raw) if raw and raw.strip() else _ZERO
    if not amount.is_finite() or not tax.is_finite() or tax < 0 or not -_LIMIT < amount < _LIMIT or tax >= _LIMIT:
        raise _RowError
    amount, tax = amount.quantize(_SCALE, ROUND_HALF_UP), tax.quantize(_SCALE, ROUND_HALF_UP)
    currency = (v[p_cur].strip() or "USD").upper()
    if currency != "USD" and currency_problem(currency) is not None:
        raise _RowError
    claimed = _YES[v[p_claim].strip().casefold()]
    reason = v[p_reason].strip()
    if reason:
        reason = reason.casefold().replace(" ", "_").replace("-", "_")
        if reason not in _REASONS:
            raise _RowError
    county, city, zip_code = v[p_county].strip(), v[p_city].strip(), v[p_zip].strip()
    product, commodity, po = v[p_prod].strip(), v[p_comm].strip(), v[p_po].strip()
    if (len(county) > _COUNTY_MAX or len(city) > _CITY_MAX or len(zip_code) > _ZIP_MAX or len(product) > _PRODUCT_MAX
            or len(commodity) > _COMMODITY_MAX or len(po) > _PO_MAX):
        raise _RowError
    key = keys.get(customer)
    if key is None:
        key = keys[customer] = customer_number_key(customer)
        if len(key) > _KEY_MAX:
            raise _RowError
    return (invoice, line, invoice_date, customer, key, state, county, city, zip_code, product, commodity, amount,
            currency, tax, claimed, reason, po, _taxed_amount(v[p_taxed]))


def _as_tuple(item: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(item[c] for c in _FIELDS)


def _explain(row: Row, errs: RowErrors, states: frozenset[str]) -> None:
    """The slow path: name every problem of a row the fast path refused."""
    limits = limits_of(TransactionLine)
    for column in ("invoice_number", "customer_number", *_OPTIONAL_TEXT):
        found = limits[column].text_problem(row.text(column))
        if found is not None:
            errs.add(column, found)
    number = row.text("customer_number")
    if not errs.has("customer_number") and limits["customer_key"].text_problem(customer_number_key(number)):
        errs.add("customer_number", f"is {len(customer_number_key(number)):,} characters long once its case is "
                 f"folded for matching; at most {limits['customer_key'].max_length} can be stored")
    if not row.text("invoice_number"):
        errs.add("invoice_number", "an invoice number is required")
    if not number:
        errs.add("customer_number", "a customer number is required")
    state = row.text("ship_to_state").upper()
    if state not in states:
        errs.add("ship_to_state", f"{row.text('ship_to_state')[:20]!r} is not a US state or DC code"
                 if state else "a two-letter ship-to state is required")
    line_text = row.text("line")
    if not line_text:
        errs.add("line", "a line number is required")
    elif not (line_text.isascii() and line_text.isdigit()) or int(line_text) < 1:
        value = row.cells.get("line")
        if not (isinstance(value, float) and value.is_integer() and value >= 1):
            errs.add("line", f"{line_text[:40]!r} is not a line number (1, 2, ...)")
    if line_text and not errs.has("line"):
        found = limits["line"].integer_problem(int(float(line_text)) if "." in line_text else int(line_text))
        if found is not None:
            errs.add("line", f"line number {found}")
    invoice_date = errs.date(row, "invoice_date", required=True)
    found = date_problem(invoice_date)
    if found is not None:
        errs.add("invoice_date", found)
    amount = errs.decimal(row, "amount", money=True)
    if amount is None and not errs.has("amount"):
        errs.add("amount", "an amount is required")
    elif amount is not None:
        found = limits["amount"].number_problem(amount, repr(row.text("amount")))
        if found is not None:
            errs.add("amount", found)
    _amount_not_below_zero(errs, row, limits, "tax_collected", "a tax amount")
    _amount_not_below_zero(errs, row, limits, "taxed_amount", "an amount tax was charged on")
    currency = (row.text("currency") or "USD").upper()
    found = currency_problem(currency)
    if found is not None:
        errs.add("currency", found)
    if row.text("exempt_claimed").casefold() not in _YES:
        errs.add("exempt_claimed", f"{row.text('exempt_claimed')[:20]!r} is not yes or no")
    errs.choice(row, "exempt_reason", sorted(_REASONS), default="")
    if not errs.problems:  # pragma: no cover - the fast path and this one disagree
        errs.add("", "this row cannot be read")


def _amount_not_below_zero(errs: RowErrors, row: Row, limits: Mapping[str, FieldLimit], column: str, what: str) -> None:
    """Say what is wrong with an optional money column that cannot be negative (``what`` it is, in words)
    or too large for the database to hold."""
    value = errs.decimal(row, column, money=True)
    if value is not None and value.is_finite() and value < 0:
        errs.add(column, f"{row.text(column)!r} is not {what} (0 or more)")
    elif value is not None:
        found = limits[column].number_problem(value, repr(row.text(column)))
        if found is not None:
            errs.add(column, found)


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


def _stored_keys(session: Session, company_id: int) -> set[tuple[str, int]]:
    """(invoice number, line) of every line the company has stored."""
    return {(r[0], r[1]) for r in session.execute(
        select(_TL.c.invoice_number, _TL.c.line).where(_TL.c.company_id == company_id))}


def _stored_among(session: Session, company_id: int, keys: list[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which of these (invoice number, line) keys the company has stored (looked up through the unique
    key, 500 at a time)."""
    found: set[tuple[str, int]] = set()
    for i in range(0, len(keys), 500):
        found.update((r[0], r[1]) for r in session.execute(
            select(_TL.c.invoice_number, _TL.c.line).where(
                _TL.c.company_id == company_id, tuple_(_TL.c.invoice_number, _TL.c.line).in_(keys[i:i + 500]))))
    return found


class _NotFast(Exception):
    """The CSV fast path cannot read this file (missing, empty, not UTF-8, malformed, bad header):
    :func:`read_table` then says what is wrong."""


@dataclass
class _Chunk:
    """The checked rows of one stretch of the file."""

    #: Lines whose key is not stored yet, converted for the driver (:meth:`BulkInsert.process`).
    new: list[tuple[Any, ...]] = field(default_factory=list)
    #: Lines whose key is already stored (values in :data:`_FIELDS` order, row number): compared after
    #: the whole file has been checked.
    stored: list[tuple[tuple[Any, ...], int]] = field(default_factory=list)
    #: Lines not sorted into those two yet (when the stored keys are looked up chunk by chunk): values
    #: in :data:`_FIELDS` order and row number.
    unsorted: list[tuple[tuple[Any, ...], int]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: Data rows in this stretch.
    rows: int = 0
    #: Bytes of the file read so far (for progress; 0 when not known).
    position: int = 0


class _RowChecker:
    """What every row goes through after it has been parsed: a line already on an earlier row is a
    problem; a line already stored is kept for comparison; a new one is converted for the driver.
    ``stored_keys``: the keys the company has stored, or ``None`` to leave the lines unsorted (the
    importer then looks their keys up chunk by chunk)."""

    def __init__(self, name: str, states: frozenset[str], stored_keys: set[tuple[str, int]] | None,
                 convert: Callable[[tuple[Any, ...]], tuple[Any, ...]]) -> None:
        self.name, self.states, self.stored_keys, self.convert = name, states, stored_keys, convert
        #: (invoice number, line) -> row number of the good lines.
        self.seen: dict[tuple[str, int], int] = {}

    def add(self, item: tuple[Any, ...], number: int, chunk: _Chunk) -> None:
        key = (item[_INVOICE], item[_LINE])
        first = self.seen.get(key)
        if first is not None:
            chunk.problems.append(Problem(f"invoice {key[0]} line {key[1]} is already on row {first}",
                                          file=self.name, row=number, column="line"))
            return
        self.seen[key] = number
        if self.stored_keys is None:
            chunk.unsorted.append((item, number))
        elif key in self.stored_keys:
            chunk.stored.append((item, number))
        else:
            chunk.new.append(self.convert(item))

    def check_slowly(self, row: Row, chunk: _Chunk) -> None:
        """The general path (any cell types): fast parse, else name every problem of the row."""
        try:
            if row.layout_problems:
                raise _RowError
            item = _fast(row.cells, self.states)
        except (_RowError, ValueError, KeyError, InvalidOperation, TypeError, AttributeError):
            errs = RowErrors.for_row(self.name, row)
            _explain(row, errs, self.states)
            chunk.problems.extend(errs.problems)
            return
        self.add(_as_tuple(item), row.number, chunk)


def _csv_chunks(path: Path, checker: _RowChecker, size: int) -> Generator[_Chunk, None, None]:
    """A CSV file read as lists of text cells (the fast path for large files), checked in chunks.
    Raises :class:`_NotFast` when the file is missing, empty, not UTF-8, malformed or has a bad
    header (possibly after some chunks: the caller then discards them)."""
    if not path.is_file() or _has_nul(path):
        raise _NotFast  # read_table refuses the file, or names each cell with a NUL character
    states = checker.states
    dates: dict[str, dt.date] = {}
    keys: dict[str, str] = {}
    fast_errors = (_RowError, ValueError, KeyError, InvalidOperation, TypeError, AttributeError, IndexError)
    add = checker.add
    try:
        with path.open("rb") as raw, io.TextIOWrapper(raw, encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)  # universal newlines, as read_table reads it
            header = next(reader, None)
            if header is None:
                raise _NotFast
            columns = tuple(header_key(h) for h in header)
            known = {*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS}
            if any(c not in columns for c in REQUIRED_COLUMNS) or any(c and c not in known for c in columns):
                raise _NotFast
            where = {c: i for i, c in enumerate(columns) if c}
            if len(where) != len(columns):
                raise _NotFast  # a column twice or without a name: read_table says so
            pos = tuple(where.get(c, -1) for c in _CSV_COLUMNS)
            width = len(columns)
            chunk = _Chunk()
            number = 1  # rows as a spreadsheet numbers them (a value with a line break is one row)
            for values in reader:
                if chunk.rows >= size:
                    chunk.position = raw.tell()
                    yield chunk
                    chunk = _Chunk()
                number += 1
                if len(values) == width or (len(values) > width and not any(x.strip() for x in values[width:])):
                    values.append("")  # the cell of absent optional columns (position -1)
                    try:
                        item = _fast_csv(values, pos, states, dates, keys)
                    except fast_errors:
                        pass
                    else:
                        chunk.rows += 1
                        add(item, number, chunk)
                        continue
                    values.pop()
                if all(not x.strip() for x in values):
                    continue  # blank rows are skipped, as read_table does
                chunk.rows += 1
                cells = {col: (values[i] if i < len(values) else None) for i, col in enumerate(columns) if col}
                checker.check_slowly(Row(number, cells, layout_problems(values, columns)), chunk)
            chunk.position = raw.tell()
            yield chunk
    except (UnicodeDecodeError, csv.Error) as exc:
        raise _NotFast from exc


def _has_nul(path: Path) -> bool:
    """Whether the file holds a NUL byte anywhere (searched at memory speed, without reading it into
    Python): such a file takes the general path, which names each cell that holds one."""
    with path.open("rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return False
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return view.find(b"\x00") != -1


def _table_chunks(path: Path, checker: _RowChecker, size: int) -> Generator[_Chunk, None, None]:
    """Any .csv or .xlsx file through :func:`read_table` (which also refuses bad files and headers)."""
    table = read_table(path, required=REQUIRED_COLUMNS, optional=OPTIONAL_COLUMNS)
    checker.name = table.name
    for i in range(0, len(table.rows), size):
        chunk = _Chunk(rows=len(table.rows[i:i + size]))
        for row in table.rows[i:i + size]:
            checker.check_slowly(row, chunk)
        yield chunk


def _csv_worker(path: str, states: frozenset[str], stored_keys: set[tuple[str, int]], sqlite: bool,
                size: int, pipe: Any) -> None:
    """Worker process: read and check a CSV file and send its chunks (converted for the driver) to the
    importing process; ``None`` at the end, ``"not-fast"`` for a file :func:`read_table` must explain, or
    ``("error", text)``. It never touches the database."""
    from sqlalchemy.dialects import postgresql as postgresql_dialect
    from sqlalchemy.dialects import sqlite as sqlite_dialect

    dialect: Any = sqlite_dialect.dialect() if sqlite else postgresql_dialect.psycopg.dialect()
    convert = BulkInsert(None, _TL, _FIELDS, dialect=dialect).process
    try:
        with paused_gc():
            for chunk in _csv_chunks(Path(path), _RowChecker(Path(path).name, states, stored_keys, convert), size):
                pipe.send(chunk)
        pipe.send(None)
    except _NotFast:
        pipe.send("not-fast")
    except BaseException as exc:  # reported to the importing process
        pipe.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        pipe.close()


def _from_worker(path: Path, states: frozenset[str], stored_keys: set[tuple[str, int]], sqlite: bool, size: int
                 ) -> Generator[_Chunk, None, None]:
    """The chunks of :func:`_csv_chunks` read and checked by a worker process (pipelined: it reads the
    next chunk while this process stores the last one). Closing the iterator stops the worker."""
    import multiprocessing

    context: Any = multiprocessing.get_context(worker_start_method())
    mine, theirs = context.Pipe(duplex=False)
    worker = context.Process(target=_csv_worker, args=(str(path), states, stored_keys, sqlite, size, theirs),
                             name="ecms-import-reader", daemon=True)
    worker.start()
    theirs.close()
    try:
        while True:
            try:
                message = mine.recv()
            except EOFError:
                raise EcmsError(f"{path.name}: the process reading the file stopped unexpectedly "
                                   f"(exit code {worker.exitcode}); nothing was imported.") from None
            if message is None:
                return
            if message == "not-fast":
                raise _NotFast
            if isinstance(message, tuple):
                raise EcmsError(f"{path.name}: reading the file failed ({message[1]}); nothing was imported.")
            yield message
    finally:
        mine.close()
        if worker.is_alive():
            worker.terminate()
        worker.join()


def _progress_check(i: int, total: int, text: str, progress: Progress | None, cancel: CancelCheck | None) -> None:
    if cancel and cancel():
        raise Cancelled("Import cancelled; nothing was imported.")
    if progress:
        progress(i, total, text)


class TransactionImporter:
    """Imports invoice lines for one company."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.states = frozenset(load_rules_pack().states)

    def import_file(self, path: Path, *, company_id: int, progress: Progress | None = None,
                    cancel: CancelCheck | None = None) -> TransactionImportResult:
        """Check every row, then store them all in one transaction (or nothing)."""
        refuse_database_file(path)
        with paused_gc():
            return self._import_file(path, company_id, progress, cancel)

    def _import_file(self, path: Path, company_id: int, progress: Progress | None, cancel: CancelCheck | None
                     ) -> TransactionImportResult:
        if path.suffix.lower() == ".csv":
            try:
                return self._store(path, company_id, True, progress, cancel)
            except _NotFast:
                pass  # read_table says what is wrong with the file (or reads it, for a header it can map)
        return self._store(path, company_id, False, progress, cancel)

    def _store(self, path: Path, company_id: int, fast: bool, progress: Progress | None,
               cancel: CancelCheck | None) -> TransactionImportResult:
        """Check the rows chunk by chunk and insert the new lines of each chunk as soon as it is checked,
        all in one transaction: a problem anywhere (or a cancel) rolls everything back, and the rest of
        the file is still checked so that every problem is reported. Lines already stored are compared
        at the end: changed ones are updated (refused in filed periods), unchanged ones counted."""
        now = utcnow()
        name = path.name
        size = path.stat().st_size if fast else 0
        with self.db.transaction() as s:
            conn = s.connection()
            stored_before = s.execute(select(func.max(_TL.c.id))).scalar() or 0
            bulk = BulkInsert(conn, _TL, _FIELDS, {"company_id": company_id, "imported_at": now})
            state_digest.note_new_transaction_lines(s)
            # Which lines are stored already: nothing to look up for a company without lines; for a
            # large file read by the worker, all of the company's keys (when that is not far more than
            # the file's lines), so that it can sort the lines itself; otherwise chunk by chunk below.
            has_lines = s.execute(select(_TL.c.id).where(_TL.c.company_id == company_id).limit(1)).first() is not None
            stored_keys: set[tuple[str, int]] | None = None if has_lines else set()
            parallel = fast and size >= PARALLEL_MIN_BYTES and (os.cpu_count() or 1) >= 2
            if parallel and has_lines:
                count = s.execute(select(func.count()).where(_TL.c.company_id == company_id)).scalar_one()
                if count <= 10 * (size // _MIN_LINE_BYTES):
                    stored_keys = _stored_keys(s, company_id)
            checker = _RowChecker(name, self.states, stored_keys, bulk.process)
            if not fast:
                chunks = _table_chunks(path, checker, _CHUNK)
            elif parallel and stored_keys is not None:
                chunks = _from_worker(path, self.states, stored_keys, conn.dialect.name == "sqlite", _CHUNK)
            else:
                chunks = _csv_chunks(path, checker, _CHUNK)
            total = inserted = 0
            problems: list[Problem] = []
            stored: list[tuple[tuple[Any, ...], int]] = []
            rebuild: list[Index] = []
            owner = _owns_lines(conn)
            with SqliteBulkCache(conn), contextlib.closing(chunks):
                _progress_check(0, size, "Checking and storing rows", progress, cancel)
                for chunk in chunks:
                    total += chunk.rows
                    problems.extend(chunk.problems)
                    _progress_check(chunk.position if fast else total, size, f"Checked {total:,} rows",
                                    progress, cancel)
                    if problems:
                        continue  # nothing more is stored; the transaction is rolled back below
                    stored.extend(chunk.stored)
                    if chunk.unsorted:
                        found = _stored_among(s, company_id, [(t[_INVOICE], t[_LINE]) for t, _ in chunk.unsorted])
                        for item, number in chunk.unsorted:
                            if (item[_INVOICE], item[_LINE]) in found:
                                stored.append((item, number))
                            else:
                                chunk.new.append(bulk.process(item))
                    if not chunk.new:
                        continue
                    if not rebuild and owner:
                        rebuild = _indexes_to_rebuild(inserted + len(chunk.new), stored_before)
                        for index in rebuild:
                            index.drop(conn)
                    bulk.execute_processed(chunk.new)
                    inserted += len(chunk.new)
                if not total:
                    raise ValidationError(f"{name}: there are no data rows.")
                if problems:
                    bad = len({p.row for p in problems})
                    raise ValidationError(f"{name}: {bad} of {total} rows have problems; nothing was imported.",
                                          problems)
                result = TransactionImportResult(rows=total, inserted=inserted)
                if stored:
                    self._update_stored(s, company_id, name, stored, now, result)
                if rebuild and progress:
                    progress(size or total, size or total, "Building the indexes")
                _after_bulk_load(conn, rebuild, inserted if owner else 0)
                # Lines that name a customer number merged into another customer match the surviving one.
                match_sales_to_merged_numbers(s, company_id)
                result.in_filed_periods = new_lines_in_filed_periods(s, company_id, now)
                result.warning = filed_period_warning(name, result.in_filed_periods)
            audit.record(s, "import.transactions", "import", name, company_id=company_id,
                         details={"file": name, "rows": total, "inserted": result.inserted,
                                  "updated": result.updated, "unchanged": result.unchanged,
                                  "determinations_cleared": result.determinations_cleared,
                                  "new_lines_in_filed_periods": len(result.in_filed_periods)})
        return result

    def _update_stored(self, s: Session, company_id: int, name: str, stored: list[tuple[tuple[Any, ...], int]],
                       now: dt.datetime, result: TransactionImportResult) -> None:
        """Lines of the file that were already stored: update the changed ones (clearing their
        determinations), refuse changes in filed periods, count the unchanged ones."""
        existing = _existing(s, company_id, [(t[_INVOICE], t[_LINE]) for t, _ in stored])
        changed: list[tuple[int, dict[str, Any], Any]] = []
        for t, number in stored:
            old = existing[(t[_INVOICE], t[_LINE])]
            item = dict(zip(_FIELDS, t, strict=True))
            if any(getattr(old, c) != item[c] for c in _VALUE_COLUMNS):
                item["_row"] = number
                changed.append((old.id, item, old))
            else:
                result.unchanged += 1
        if not changed:
            return
        self._check_changes(s, company_id, name, changed)
        tbl = _TL
        for line_id, item, _old in changed:
            values = {c: item[c] for c in (*_VALUE_COLUMNS, "customer_key")}
            s.execute(update(tbl).where(tbl.c.id == line_id).values(**values, imported_at=now))
        state_digest.touch_transaction_lines(s, [c[0] for c in changed])
        ids = [c[0] for c in changed]
        for i in range(0, len(ids), 500):
            res = s.execute(delete(Determination).where(Determination.transaction_line_id.in_(ids[i:i + 500])))
            result.determinations_cleared += res.rowcount or 0  # type: ignore[attr-defined]
        result.updated = len(changed)

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
