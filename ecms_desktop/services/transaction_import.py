"""Import of the ERP's invoice lines (.csv or .xlsx) for exemption determination.

Same discipline as the certificate import: every row is checked first and every bad row is
reported with its row number, column and reason; if any row is bad nothing is imported. A line is
identified by company, invoice number and line number: importing the same file again adds nothing;
a line whose values changed is updated and its determination is cleared so that the next
``ecms determine`` decides it again - unless it lies in a filed period, which is refused (filed
returns are corrected by reprocessing, never by overwriting).

Written for volume (a million lines): a CSV file is read row by row as plain lists with the
:mod:`csv` module (the generic :func:`~ecms_desktop.services.tabular.read_table` builds a dict per row);
every row goes through a fast parser, and only a row that fails is parsed again through
:class:`~ecms_desktop.services.tabular.RowErrors` (the same path and messages as for .xlsx files) to
say exactly what is wrong. Lines are inserted as plain tuples through the driver's ``executemany``
(:class:`BulkInsert`, with the column types' own conversions) in one transaction.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, cast

from sqlalchemy import JSON, Boolean, Connection, Dialect, Index, Table, delete, func, select, tuple_, update
from sqlalchemy.orm import Session

from ecms_desktop.errors import Cancelled, Problem, ValidationError
from ecms_desktop.models import ExemptReason, customer_number_key, utcnow
from ecms_desktop.models.transactions import Determination, TransactionLine
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services import audit
from ecms_desktop.services.database import Database
from ecms_desktop.services.periods import PeriodBook
from ecms_desktop.services.tabular import Row, RowErrors, header_key, read_table

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
#: Stored columns of a line, in the order of the parsed tuples.
_FIELDS = ("invoice_number", "line", "invoice_date", "customer_number", "customer_key", "ship_to_state",
           "ship_to_county", "ship_to_city", "ship_to_zip", "product_code", "commodity_code", "amount", "currency",
           "tax_collected", "exempt_claimed", "exempt_reason", "po_number")
_INVOICE, _LINE, _DATE, _STATE = 0, 1, 2, 5
_BATCH = 50_000
_TL = cast(Table, TransactionLine.__table__)


class BulkInsert:
    """``INSERT`` of many rows given as plain tuples, through the driver's ``executemany``.

    Core's ``insert()`` with a list of dicts spends most of its time building and processing one
    parameter dict per row; for hundreds of thousands of rows this writes tuples directly. Each
    column's value is converted by the column type's own bind processor for the dialect (what Core
    would store: dates as ISO text and amounts as numbers on SQLite, native values on PostgreSQL);
    JSON columns take text that the caller has already serialised (cast to JSONB on PostgreSQL).
    """

    def __init__(self, conn: Connection | None, table: Table, columns: Sequence[str],
                 constants: dict[str, Any] | None = None, *, dialect: Dialect | None = None) -> None:
        """``columns``: the values of each row tuple; ``constants``: columns with the same value in every
        row (converted once and appended to each row). Without a connection (``dialect`` given) it
        only converts rows (:meth:`process`), e.g. in a worker process."""
        if dialect is None:
            assert conn is not None
            dialect = conn.dialect
        constants = constants or {}
        self.conn = conn
        mark = "?" if dialect.paramstyle == "qmark" else "%s"
        marks: list[str] = []
        self.processors: list[tuple[int, Callable[[Any], Any]]] = []
        suffix: list[Any] = []
        for i, name in enumerate((*columns, *constants)):
            impl = table.c[name].type.dialect_impl(dialect)
            if i >= len(columns):
                marks.append(mark)
                proc = None if isinstance(impl, Boolean) else impl.bind_processor(dialect)
                suffix.append(proc(constants[name]) if proc else constants[name])
                continue
            if isinstance(impl, JSON):
                marks.append(f"CAST({mark} AS JSONB)" if dialect.name == "postgresql" else mark)
                continue
            marks.append(mark)
            if isinstance(impl, Boolean):  # every driver takes Python booleans as they are
                continue
            proc = impl.bind_processor(dialect)
            if proc is not None:
                self.processors.append((i, proc))
        self.suffix = tuple(suffix)
        self.sql = f"INSERT INTO {table.name} ({', '.join((*columns, *constants))}) VALUES ({', '.join(marks)})"

    def convert(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """One row as the driver takes it."""
        if not self.processors:
            return (*row, *self.suffix)
        out = list(row)
        for i, proc in self.processors:
            out[i] = proc(out[i])
        out.extend(self.suffix)
        return tuple(out)

    def process(self, row: Sequence[Any]) -> tuple[Any, ...]:
        """The row's own columns converted (without the constants): for :meth:`execute_processed`."""
        if not self.processors:
            return tuple(row)
        out = list(row)
        for i, proc in self.processors:
            out[i] = proc(out[i])
        return tuple(out)

    def execute(self, rows: Iterable[Sequence[Any]]) -> None:
        batch = [self.convert(r) for r in rows]
        if batch:
            assert self.conn is not None
            self.conn.exec_driver_sql(self.sql, batch)

    def execute_processed(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Rows already converted by :meth:`process` (of an instance for the same dialect)."""
        suffix = self.suffix
        batch = [(*r, *suffix) for r in rows]
        if batch:
            assert self.conn is not None
            self.conn.exec_driver_sql(self.sql, batch)


#: Fewest new lines for which the secondary indexes are dropped and built again after the insert.
_REBUILD_MIN = 50_000


def _rebuild_indexes(conn: Connection, new_lines: int) -> list[Index]:
    """The secondary indexes of ``transaction_line`` to drop before a bulk insert and build afterwards,
    inside the same transaction (measured: building them once after a large insert costs less than
    keeping them up to date row by row). Only on SQLite, where DDL is transactional and readers keep
    seeing the committed schema, and only when the insert at least doubles the table; the unique key
    that stops duplicate lines is never dropped."""
    if conn.dialect.name != "sqlite" or new_lines < _REBUILD_MIN:
        return []
    highest = conn.execute(select(func.max(_TL.c.id))).scalar() or 0
    if new_lines < highest:
        return []
    return sorted(_TL.indexes, key=lambda ix: str(ix.name))


class _SqliteBulkCache:
    """A larger page cache on the one connection that runs a bulk write (the index B-trees of a
    million-line table do not fit the 2 MB default), restored afterwards. Durability settings (WAL,
    ``synchronous=NORMAL``) are left as they are."""

    def __init__(self, conn: Connection, kib: int = 262_144) -> None:
        self.conn, self.kib = conn, kib
        self.old: Any = None

    def __enter__(self) -> None:
        if self.conn.dialect.name == "sqlite":
            self.old = self.conn.exec_driver_sql("PRAGMA cache_size").scalar()
            self.conn.exec_driver_sql(f"PRAGMA cache_size=-{self.kib}")

    def __exit__(self, *exc: object) -> None:
        if self.old is not None:
            self.conn.exec_driver_sql(f"PRAGMA cache_size={int(self.old)}")


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


#: Input columns in the order :func:`_fast_csv` takes their positions.
_CSV_COLUMNS = ("invoice_number", "line", "invoice_date", "customer_number", "ship_to_state", "ship_to_county",
                "ship_to_city", "ship_to_zip", "product_code", "commodity_code", "amount", "currency",
                "tax_collected", "exempt_claimed", "exempt_reason", "po_number")


def _fast_csv(v: list[str], pos: tuple[int, ...], states: frozenset[str], dates: dict[str, dt.date],
              keys: dict[str, str]) -> tuple[Any, ...]:
    """:func:`_fast` for a CSV row given as a list of text cells (``pos``: the cell of each of
    :data:`_CSV_COLUMNS`, -1 for an absent column, whose cell the caller appended as ``""``); the
    same checks, raising on anything unusual. Returns the values in :data:`_FIELDS` order."""
    (p_inv, p_line, p_date, p_cust, p_state, p_county, p_city, p_zip, p_prod, p_comm, p_amount, p_cur, p_tax,
     p_claim, p_reason, p_po) = pos
    invoice = v[p_inv].strip()
    customer = v[p_cust].strip()
    state = v[p_state].strip().upper()
    if not invoice or not customer or state not in states or len(invoice) > 64 or len(customer) > 64:
        raise _RowError
    line = int(v[p_line])
    if line < 1:
        raise _RowError
    raw = v[p_date]
    invoice_date = dates.get(raw)
    if invoice_date is None:
        invoice_date = dates[raw] = dt.date.fromisoformat(raw.strip())
    raw = v[p_amount]
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        amount = _decimal(raw)
    raw = v[p_tax]
    if not raw:
        tax = _ZERO
    else:
        try:
            tax = Decimal(raw)
        except InvalidOperation:
            tax = _decimal(raw)
    if not amount.is_finite() or not tax.is_finite() or tax < 0:
        raise _RowError
    currency = (v[p_cur].strip() or "USD").upper()
    if currency != "USD" and (len(currency) != 3 or not currency.isalpha()):
        raise _RowError
    claimed = _YES[v[p_claim].strip().casefold()]
    reason = v[p_reason].strip()
    if reason:
        reason = reason.casefold().replace(" ", "_").replace("-", "_")
        if reason not in _REASONS:
            raise _RowError
    county, city, zip_code = v[p_county].strip(), v[p_city].strip(), v[p_zip].strip()
    product, commodity, po = v[p_prod].strip(), v[p_comm].strip(), v[p_po].strip()
    if (len(county) > 100 or len(city) > 100 or len(zip_code) > 20 or len(product) > 64 or len(commodity) > 64
            or len(po) > 64):
        raise _RowError
    key = keys.get(customer)
    if key is None:
        key = keys[customer] = customer_number_key(customer)
    return (invoice, line, invoice_date, customer, key, state, county, city, zip_code, product, commodity, amount,
            currency, tax, claimed, reason, po)


def _as_tuple(item: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(item[c] for c in _FIELDS)


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


@dataclass
class _Checked:
    """Every row of a file checked: the good lines (tuples in :data:`_FIELDS` order) and the problems."""

    name: str
    total: int = 0
    items: list[tuple[Any, ...]] = field(default_factory=list)
    #: (invoice number, line) -> row number of the good lines.
    seen: dict[tuple[str, int], int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, item: tuple[Any, ...], number: int) -> None:
        key = (item[_INVOICE], item[_LINE])
        first = self.seen.get(key)
        if first is not None:
            self.problems.append(Problem(f"invoice {key[0]} line {key[1]} is already on row {first}",
                                         file=self.name, row=number, column="line"))
            return
        self.seen[key] = number
        self.items.append(item)

    def check_slowly(self, row: Row, states: frozenset[str]) -> None:
        """The general path (any cell types): fast parse, else name every problem of the row."""
        try:
            item = _fast(row.cells, states)
        except (_RowError, ValueError, KeyError, InvalidOperation, TypeError, AttributeError):
            errs = RowErrors(self.name, row.number)
            _explain(row, errs, states)
            self.problems.extend(errs.problems)
            return
        self.add(_as_tuple(item), row.number)


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
        checked = self._check_csv(path, progress, cancel) if path.suffix.lower() == ".csv" else None
        if checked is None:  # .xlsx, or a CSV file whose header or encoding read_table must explain
            checked = self._check_table(path, progress, cancel)
        total, name = checked.total, checked.name
        if not total:
            raise ValidationError(f"{name}: there are no data rows.")
        if checked.problems:
            bad = len({p.row for p in checked.problems})
            raise ValidationError(f"{name}: {bad} of {total} rows have problems; nothing was imported.",
                                  checked.problems)
        result = TransactionImportResult(rows=total)
        now = utcnow()
        tbl = _TL
        with self.db.transaction() as s:
            existing = _existing(s, company_id, list(checked.seen))
            new_rows: list[tuple[Any, ...]] = checked.items
            changed: list[tuple[int, dict[str, Any], Any]] = []
            if existing:
                new_rows = []
                for t in checked.items:
                    old = existing.get((t[_INVOICE], t[_LINE]))
                    if old is None:
                        new_rows.append(t)
                        continue
                    item = dict(zip(_FIELDS, t, strict=True))
                    if any(getattr(old, c) != item[c] for c in _VALUE_COLUMNS):
                        item["_row"] = checked.seen[(t[_INVOICE], t[_LINE])]
                        changed.append((old.id, item, old))
                    else:
                        result.unchanged += 1
            if changed:
                self._check_changes(s, company_id, name, changed)
                for line_id, item, _old in changed:
                    values = {c: item[c] for c in (*_VALUE_COLUMNS, "customer_key")}
                    s.execute(update(tbl).where(tbl.c.id == line_id).values(**values, imported_at=now))
                ids = [c[0] for c in changed]
                for i in range(0, len(ids), 500):
                    res = s.execute(delete(Determination).where(Determination.transaction_line_id.in_(ids[i:i + 500])))
                    result.determinations_cleared += res.rowcount or 0  # type: ignore[attr-defined]
                result.updated = len(changed)
            conn = s.connection()
            bulk = BulkInsert(conn, tbl, _FIELDS, {"company_id": company_id, "imported_at": now})
            rebuild = _rebuild_indexes(conn, len(new_rows))
            with _SqliteBulkCache(conn):
                for index in rebuild:
                    index.drop(conn)
                for i in range(0, len(new_rows), _BATCH):
                    _progress_check(i, len(new_rows), "Storing lines", progress, cancel)
                    bulk.execute(new_rows[i:i + _BATCH])
                for index in rebuild:
                    if progress:
                        progress(len(new_rows), len(new_rows), f"Building index {index.name}")
                    index.create(conn)
            result.inserted = len(new_rows)
            audit.record(s, "import.transactions", "import", path.name, company_id=company_id,
                         details={"file": path.name, "rows": total, "inserted": result.inserted,
                                  "updated": result.updated, "unchanged": result.unchanged,
                                  "determinations_cleared": result.determinations_cleared})
        return result

    def _check_table(self, path: Path, progress: Progress | None, cancel: CancelCheck | None) -> _Checked:
        """Any .csv or .xlsx file through :func:`read_table` (which also refuses bad files and headers)."""
        table = read_table(path, required=REQUIRED_COLUMNS, optional=OPTIONAL_COLUMNS)
        checked = _Checked(table.name, len(table.rows))
        for i, row in enumerate(table.rows):
            if i % 50_000 == 0:
                _progress_check(i, checked.total, f"Checking row {row.number}", progress, cancel)
            checked.check_slowly(row, self.states)
        return checked

    def _check_csv(self, path: Path, progress: Progress | None, cancel: CancelCheck | None) -> _Checked | None:
        """A CSV file read as lists of text cells (the fast path for large files). ``None`` when the file
        is missing, empty, not UTF-8, malformed or has a bad header: :func:`read_table` then says what."""
        if not path.is_file():
            return None
        states = self.states
        checked = _Checked(path.name)
        dates: dict[str, dt.date] = {}
        keys: dict[str, str] = {}
        fast_errors = (_RowError, ValueError, KeyError, InvalidOperation, TypeError, AttributeError, IndexError)
        try:
            with path.open(encoding="utf-8-sig") as fh:  # universal newlines, as read_table reads it
                reader = csv.reader(fh)
                header = next(reader, None)
                if header is None:
                    return None
                columns = tuple(header_key(h) for h in header)
                known = {*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS}
                if any(c not in columns for c in REQUIRED_COLUMNS) or any(c and c not in known for c in columns):
                    return None
                where = {c: i for i, c in enumerate(columns) if c}  # the last of repeated columns, as read_table
                pos = tuple(where.get(c, -1) for c in _CSV_COLUMNS)
                width = len(columns)
                total = 0
                for values in reader:
                    if total % 50_000 == 0:
                        _progress_check(total, 0, f"Checking row {reader.line_num}", progress, cancel)
                    number = reader.line_num
                    if len(values) >= width:
                        values.append("")  # the cell of absent optional columns (position -1)
                        try:
                            item = _fast_csv(values, pos, states, dates, keys)
                        except fast_errors:
                            pass
                        else:
                            total += 1
                            checked.add(item, number)
                            continue
                        values.pop()
                    if all(not x.strip() for x in values):
                        continue  # blank rows are skipped, as read_table does
                    total += 1
                    cells = {col: (values[i] if i < len(values) else None) for i, col in enumerate(columns) if col}
                    checked.check_slowly(Row(number, cells), states)
        except (UnicodeDecodeError, csv.Error):
            return None
        checked.total = total
        return checked

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
