"""Running the determination engine over imported sales, the exposure report, and reprocessing.

* :meth:`DeterminationService.run` decides every imported line that has no determination yet, in
  windows of consecutive line ids (each window one transaction; a cancelled or interrupted run keeps
  the finished windows and a new run continues). Certificates are loaded once and indexed in memory
  by customer and state. Lines whose customer has no certificate in their state are decided by SQL
  (``INSERT ... SELECT``, the same values the engine gives them); the others go through the engine,
  in a worker process and in this one, and are written with bulk ``executemany``.
* Each determination keeps its evidence snapshot (certificate id, number and version, coverage line
  and its expiry, review state, rules-pack version, explanation), so a later edit of the certificate
  never rewrites why a past sale was exempt.
* :meth:`DeterminationService.exposure`: sales sold exempt without a covering certificate, and
  sales taxed although a valid certificate existed, by state, filing period and customer.
* :meth:`DeterminationService.preview_reprocess` / :meth:`reprocess`: apply a certificate to the
  customer's sales in a date range. A sale in a filed period is never changed: a negating entry and a
  new entry go into the current open period. In an open period the determination is updated. Every
  change is audited.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, Table, and_, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ecms_desktop.models import Certificate, Customer, utcnow
from ecms_desktop.models.transactions import Determination, DeterminationAdjustment, TransactionLine
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.core import audit, json_text
from ecms_desktop.services.core.bulk import BulkInsert, SqliteBulkCache, paused_gc, worker_start_method
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import Cancelled, DatabaseError, NotFoundError, ValidationError
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.exports.safe_export import SheetWriter, new_workbook
from ecms_desktop.services.sales.candidates import (
    CandidateIndex,
    candidate_rows,
    index_candidates,
    load_candidates,
)
from ecms_desktop.services.sales.determination import (
    Result,
    SaleLine,
    default_refusals,
    determine,
)
from ecms_desktop.services.sales.periods import PeriodBook

_TL = cast(Table, TransactionLine.__table__)
_DET = cast(Table, Determination.__table__)
_ADJ = cast(Table, DeterminationAdjustment.__table__)
_ZERO = Decimal(0)
_CENT = Decimal("0.01")


def _money(value: Decimal | None) -> Decimal:
    """Amounts as shown to users: to the cent (stored with 4 decimals)."""
    return (value or _ZERO).quantize(_CENT, ROUND_HALF_UP)

EXPOSURE_UNSUPPORTED = "unsupported_claim"
EXPOSURE_TAX_ON_EXEMPT = "tax_on_exempt"
EXPOSURE_LABELS = {
    EXPOSURE_UNSUPPORTED: "sold exempt without a covering certificate",
    EXPOSURE_TAX_ON_EXEMPT: "tax collected although a valid certificate existed",
}

_LINE_COLS = (_TL.c.id, _TL.c.invoice_number, _TL.c.line, _TL.c.invoice_date, _TL.c.customer_key,
              _TL.c.ship_to_state, _TL.c.amount, _TL.c.ship_to_county, _TL.c.ship_to_city, _TL.c.ship_to_zip,
              _TL.c.product_code, _TL.c.commodity_code, _TL.c.currency, _TL.c.exempt_reason, _TL.c.po_number,
              _TL.c.exempt_claimed, _TL.c.tax_collected)


def _same_company(company_id: int) -> Any:
    """``company_id = ?`` written so that the planner walks the primary key for keyset batches
    (``ORDER BY id LIMIT n``) instead of sorting the whole company through the company/date index."""
    return (_TL.c.company_id + 0) == company_id


def sale_of(row: Any) -> SaleLine:
    """The engine's view of a stored transaction line (a Core row)."""
    return SaleLine(row.invoice_number, row.line, row.invoice_date, row.customer_key, row.ship_to_state,
                    row.amount, row.ship_to_county, row.ship_to_city, row.ship_to_zip, row.product_code,
                    row.commodity_code, row.currency, row.exempt_reason, row.po_number)


def classify_exposure(result: Result, exempt_claimed: bool, tax_collected: Decimal) -> tuple[str, Decimal]:
    """(kind, amount) of the audit exposure of a determined sale, or ("", 0)."""
    if exempt_claimed and result.taxable_amount > 0:
        return EXPOSURE_UNSUPPORTED, result.taxable_amount
    if result.exempt and tax_collected > 0:
        return EXPOSURE_TAX_ON_EXEMPT, tax_collected
    return "", _ZERO


def _snapshot(result: Result, rules_version: str) -> dict[str, Any]:
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


def _determination_row(line_id: int, company_id: int, result: Result, rules_version: str, claimed: bool,
                       tax: Decimal, origin: str, now: dt.datetime, state: str) -> dict[str, Any]:
    row = _snapshot(result, rules_version)
    kind, amount = classify_exposure(result, claimed, tax)
    row.update(transaction_line_id=line_id, company_id=company_id, coverage_state=state if result.exempt else "",
               also_eligible=list(result.also_eligible), conflict=bool(result.also_eligible),
               exposure_kind=kind, exposure_amount=amount, origin=origin, determined_at=now)
    return row


# -- bulk run -----------------------------------------------------------------------------------------

#: The columns :func:`_decide_batch` fills, in order (company, rules-pack version, origin and time are
#: the same for a whole batch).
_DET_COLUMNS = ("transaction_line_id", "exempt", "certificate_id", "certificate_number", "certificate_version",
                "coverage_line_id", "coverage_state", "coverage_expiry", "certificate_status", "exempt_amount",
                "taxable_amount", "also_eligible", "conflict", "explanation", "exposure_kind", "exposure_amount")
_LINE_SQL_COLUMNS = ("id", "invoice_number", "line", "invoice_date", "customer_key", "ship_to_state", "amount",
                     "ship_to_county", "ship_to_city", "ship_to_zip", "product_code", "commodity_code", "currency",
                     "exempt_reason", "po_number", "exempt_claimed", "tax_collected")


#: A stored explanation's JSON text (ASCII, compact).
_json = json_text.compact_ascii


#: Temporary tables of a run (on its own connection): the (customer key, state) pairs that have candidate
#: certificates, and the stored explanation of a line of each state whose customer has none there.
_KEY_TABLE = "ecms_run_candidate_key"
_TEXT_TABLE = "ecms_run_no_certificate"


class _RunTables:
    """The temporary tables of one run, created on its connection from the run's candidate index (so
    that what SQL decides and what the engine decides come from the same snapshot of certificates)
    and dropped at the end."""

    def __init__(self, conn: Connection, keys: Iterable[tuple[str, str]], texts: dict[str, str]) -> None:
        self.conn = conn
        pg = conn.dialect.name == "postgresql"
        self.schema = "pg_temp" if pg else "temp"
        mark = "%s" if pg else "?"
        self.driver = None if pg else conn.connection.driver_connection
        if self.driver is not None:
            # SQLite keeps temporary tables in a file with its own small cache unless told otherwise (a
            # pragma set on the driver's connection, outside any transaction, and restored in drop()).
            self.temp_store = self.driver.execute("PRAGMA temp_store").fetchone()[0]
            self.driver.execute("PRAGMA temp_store=MEMORY")
        with conn.begin():
            self._drop()
            conn.exec_driver_sql(f"CREATE TEMP TABLE {_KEY_TABLE} (customer_key VARCHAR(64) NOT NULL, "
                                 "state VARCHAR(2) NOT NULL, PRIMARY KEY (customer_key, state))"
                                 + ("" if pg else " WITHOUT ROWID"))
            conn.exec_driver_sql(f"CREATE TEMP TABLE {_TEXT_TABLE} (state VARCHAR(2) PRIMARY KEY, "
                                 f"explanation {'JSONB' if pg else 'TEXT'} NOT NULL)")
            rows = list(keys)
            if rows:  # a company without certificates: every line is decided by SQL
                conn.exec_driver_sql(f"INSERT INTO {_KEY_TABLE} (customer_key, state) VALUES ({mark}, {mark})", rows)
            conn.exec_driver_sql(f"INSERT INTO {_TEXT_TABLE} (state, explanation) VALUES ({mark}, "
                                 f"{'CAST(%s AS JSONB)' if pg else '?'})", list(texts.items()))
            if pg:
                conn.exec_driver_sql(f"ANALYZE {_KEY_TABLE}")
                conn.exec_driver_sql(f"ANALYZE {_TEXT_TABLE}")

    def _drop(self) -> None:
        for name in (_KEY_TABLE, _TEXT_TABLE):
            self.conn.exec_driver_sql(f"DROP TABLE IF EXISTS {self.schema}.{name}")

    def drop(self) -> None:
        if self.conn.in_transaction():
            self.conn.rollback()
        with self.conn.begin():
            self._drop()
        if self.driver is not None:
            self.driver.execute(f"PRAGMA temp_store={int(self.temp_store)}")


class _Windows:
    """Pending lines of a company in windows of consecutive ids, each decided in one transaction.

    In each window, a line whose customer has no certificate in its ship-to state (most lines, in a
    real ledger) is decided by SQL (:meth:`insert_without_candidates`: taxable, its state's
    explanation, exposure where it was sold exempt) without being read into Python; the others are
    read as plain driver tuples (:meth:`read_with_candidates`) for the engine. The amounts SQL
    stores are those :func:`_decide_batch` stores: the amount to the cent, half up (exact: SQLite
    works on the amount in ten-thousandths as an integer; PostgreSQL's ``round`` on numeric rounds half
    away from zero).

    ``determined_through`` is the highest line id of the company that had a determination when the
    run started: above it no line can have one yet (the run goes up in id order), so those windows are
    read without the anti-join. :attr:`converters` say how to turn the driver's values into dates,
    Decimals and booleans the way the column types do (nothing to do on PostgreSQL)."""

    def __init__(self, conn: Connection, company_id: int, date_from: dt.date | None, date_to: dt.date | None,
                 determined_through: int, constants: dict[str, Any]) -> None:
        dialect = conn.dialect
        self.conn = conn
        self.determined_through = determined_through
        pg = dialect.name == "postgresql"
        mark = "%s" if pg else "?"
        self.mark = mark
        where = [f"t.company_id + 0 = {mark}", f"t.id > {mark}", f"t.id <= {mark}"]
        self.extra: list[Any] = []
        date_bind = _TL.c.invoice_date.type.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)
        if date_from:
            where.append(f"t.invoice_date >= {mark}")
            self.extra.append(date_bind(date_from))
        if date_to:
            where.append(f"t.invoice_date <= {mark}")
            self.extra.append(date_bind(date_to))
        self.company_id = company_id
        base = " AND ".join(where)
        undetermined = " AND NOT EXISTS (SELECT 1 FROM determination d WHERE d.transaction_line_id = t.id)"
        has_key = (f"EXISTS (SELECT 1 FROM {_KEY_TABLE} k WHERE k.customer_key = t.customer_key "
                   "AND k.state = t.ship_to_state)")
        has_text = f"EXISTS (SELECT 1 FROM {_TEXT_TABLE} x WHERE x.state = t.ship_to_state)"
        columns = ", ".join("t." + c for c in _LINE_SQL_COLUMNS)
        read = (f"SELECT {columns} FROM transaction_line t WHERE {base}{{anti}} AND ({has_key} OR NOT {has_text}) "
                "ORDER BY t.id")
        self.read_sql = (read.format(anti=""), read.format(anti=undetermined))
        self.window_sql = (f"SELECT t.id FROM transaction_line t WHERE t.company_id + 0 = {mark} AND t.id > {mark} "
                           f"ORDER BY t.id LIMIT 1 OFFSET {mark}")
        # The insert of lines without candidates, split in two statements so that the exposures can be
        # counted: sold exempt with a taxable amount above zero, and the rest.
        if pg:
            taxable, false, empty = "round(t.amount, 2)", "false", "CAST('[]' AS JSONB)"
            claimed_and_taxable = f"(t.exempt_claimed AND {taxable} > 0)"
        else:
            tenths = "CAST(round(t.amount * 10000) AS INTEGER)"  # ten-thousandths: the stored scale
            taxable = (f"((CASE WHEN {tenths} >= 0 THEN ({tenths} + 50) / 100 ELSE -((50 - {tenths}) / 100) END) "
                       "/ 100.0)")
            false, empty = "0", "'[]'"
            claimed_and_taxable = f"(t.exempt_claimed AND {tenths} >= 50)"
        names = ("transaction_line_id", "exempt", "certificate_id", "certificate_number", "certificate_version",
                 "coverage_line_id", "coverage_state", "coverage_expiry", "certificate_status", "exempt_amount",
                 "taxable_amount", "also_eligible", "conflict", "explanation", "exposure_kind", "exposure_amount",
                 *constants)
        constant_values = BulkInsert(None, _DET, (), constants, dialect=dialect).suffix
        insert = (f"INSERT INTO determination ({', '.join(names)}) "
                  f"SELECT t.id, {false}, NULL, '', NULL, NULL, '', NULL, '', 0, {taxable}, {empty}, {false}, "
                  f"x.explanation, {{kind}}, {{amount}}, {', '.join(mark for _ in constants)} "
                  f"FROM transaction_line t JOIN {_TEXT_TABLE} x ON x.state = t.ship_to_state "
                  f"WHERE {base}{{anti}} AND NOT {has_key} AND {{exposed}}")
        self.insert_sql = tuple(
            (insert.format(kind=mark, amount=taxable, exposed=claimed_and_taxable, anti=anti),
             insert.format(kind=mark, amount="0", exposed=f"NOT {claimed_and_taxable}", anti=anti))
            for anti in ("", undetermined))
        self.constants = constant_values
        self.sqlite = not pg
        self.to_date = _TL.c.invoice_date.type.dialect_impl(dialect).result_processor(dialect, None) \
            if self.sqlite else None
        self.to_decimal = _TL.c.amount.type.dialect_impl(dialect).result_processor(dialect, None) \
            if self.sqlite else None

    @property
    def converters(self) -> tuple[Any, Any]:
        return self.to_date, self.to_decimal

    def end_after(self, after_id: int, size: int, last_id: int) -> int:
        """The last id of the window of ``size`` lines of the company after ``after_id``."""
        row = self.conn.exec_driver_sql(self.window_sql, (self.company_id, after_id, size - 1)).first()
        return min(row[0], last_id) if row else last_id

    def _params(self, after_id: int, through_id: int) -> tuple[Any, ...]:
        return (self.company_id, after_id, through_id, *self.extra)

    def insert_without_candidates(self, after_id: int, through_id: int) -> tuple[int, int]:
        """Decide the window's lines without candidates in SQL; (lines, exposures)."""
        exposed_sql, rest_sql = self.insert_sql[after_id < self.determined_through]
        params = self._params(after_id, through_id)
        exposed = self.conn.exec_driver_sql(exposed_sql, (EXPOSURE_UNSUPPORTED, *self.constants, *params)).rowcount
        rest = self.conn.exec_driver_sql(rest_sql, ("", *self.constants, *params)).rowcount
        return exposed + rest, exposed

    def read_with_candidates(self, after_id: int, through_id: int) -> list[tuple[Any, ...]]:
        """The window's lines with candidates, as the driver's own tuples (read on the driver's
        connection, in the same transaction; no result rows built for them)."""
        sql = self.read_sql[after_id < self.determined_through]
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, self._params(after_id, through_id))
            return list(cursor.fetchall())
        finally:
            cursor.close()


def _decide_batch(rows: Sequence[Any], converters: tuple[Any, Any], index: CandidateIndex, counts: list[int]
                  ) -> Iterator[tuple[Any, ...]]:
    """Decide each line; yield its row of :data:`_DET_COLUMNS` and count lines, exempt, conflicts and
    exposures into ``counts``. ``converters``: :attr:`_Windows.converters`."""
    no_certificate: dict[str, str] = {}
    empty_list = _json([])
    n = exempt_n = conflicts = exposures = 0
    cents, cent, half_up = Decimal.quantize, _CENT, ROUND_HALF_UP
    to_date, to_decimal = converters
    refusals = default_refusals()
    dates: dict[Any, Any] = {}
    for (line_id, invoice, number, day, key, state, amount, county, city, zip_code, product, commodity, currency,
         reason, po, claimed, tax) in rows:
        n += 1
        if to_decimal is not None:
            amount = to_decimal(amount)
        candidates = index.get((key, state))
        if not candidates:
            # What determine() returns for a line without candidates, without building its objects.
            text = no_certificate.get(state)
            if text is None:
                text = no_certificate[state] = _json(
                    determine(SaleLine("", 1, dt.date.min, key, state), ()).explanation())
            taxable = cents(amount, cent, half_up)
            if claimed and taxable > 0:
                exposures += 1
                yield (line_id, False, None, "", None, None, "", None, "", _ZERO, taxable, empty_list, False, text,
                       EXPOSURE_UNSUPPORTED, taxable)
            else:
                yield (line_id, False, None, "", None, None, "", None, "", _ZERO, taxable, empty_list, False, text,
                       "", _ZERO)
            continue
        if to_date is not None:
            raw = day
            day = dates.get(raw)
            if day is None:
                day = dates[raw] = to_date(raw)
        if to_decimal is not None:
            tax = to_decimal(tax)
        result = determine(SaleLine(invoice, number, day, key, state, amount, county, city, zip_code, product,
                                    commodity, currency, reason, po), candidates, refusals)
        kind, at_stake = classify_exposure(result, bool(claimed), tax)
        cert, cov = result.certificate, result.coverage
        exempt_n += result.exempt
        conflicts += bool(result.also_eligible)
        exposures += bool(kind)
        if cert is None:
            yield (line_id, result.exempt, None, "", None, None, "", None, "", result.exempt_amount,
                   result.taxable_amount, empty_list, False, _json(result.explanation()), kind, at_stake)
        else:
            also = list(result.also_eligible)
            yield (line_id, result.exempt, cert.certificate_id, cert.certificate_number, cert.version,
                   cov.coverage_line_id if cov else None, state if result.exempt else "",
                   cov.expiry_date if cov else None, cert.review_state, result.exempt_amount, result.taxable_amount,
                   _json(also) if also else empty_list, bool(also), _json(result.explanation()), kind, at_stake)
    counts[0] += n
    counts[1] += exempt_n
    counts[2] += conflicts
    counts[3] += exposures


# The second CPU: a worker process reads and decides the first part of each window (the engine is
# pure Python and bound by one core); the parent runs the SQL part, reads and decides the rest, and
# writes every result (SQLite has one writer). The worker gets the candidate rows once and builds the
# same index (and the same temporary key tables, on its own read-only connection), so that both
# sides decide from one snapshot of the certificates.
_worker_state: dict[str, Any] = {}


def _worker_init(candidate_rows: list[tuple[Any, ...]], url: str, company_id: int, date_from: dt.date | None,
                 date_to: dt.date | None, determined_through: int, texts: dict[str, str]) -> None:
    import gc

    # This process only reads and decides lines: it holds the candidate index and builds tuples and
    # strings without reference cycles, so the cyclic collector (which would walk the whole index again
    # and again) stays off for its life, as in the parent's run (:func:`paused_gc`).
    gc.disable()
    _worker_state.update(index=index_candidates(candidate_rows), url=url, company_id=company_id, date_from=date_from,
                         date_to=date_to, determined_through=determined_through, texts=texts)


def _worker_windows() -> tuple[Any, _Windows]:
    """The worker's read-only connection, with the run's temporary tables, and its window reader."""
    if "windows" not in _worker_state:
        st = _worker_state
        db = Database(st["url"])
        try:
            conn = db.engine.connect()
        except OperationalError as exc:
            raise DatabaseError(f"The determination's worker process cannot open {db.display_url}: "
                                f"{str(exc.orig).strip()}") from None
        _RunTables(conn, st["index"].keys(), st["texts"])
        windows = _Windows(conn, st["company_id"], st["date_from"], st["date_to"], st["determined_through"], {})
        st.update(db=db, conn=conn, windows=windows, writer=BulkInsert(None, _DET, _DET_COLUMNS, dialect=conn.dialect))
    return _worker_state["conn"], _worker_state["windows"]


def _worker_decide(after_id: int, through_id: int) -> tuple[list[tuple[Any, ...]], list[int], float]:
    """Read the lines with candidates in ``(after_id, through_id]``, decide them and convert the results
    for the driver (the parent only writes them); also says how long that took (for :class:`_Balance`)."""
    started = time.perf_counter()
    conn, windows = _worker_windows()
    with conn.begin():
        rows = windows.read_with_candidates(after_id, through_id)
    counts = [0, 0, 0, 0]
    process = _worker_state["writer"].process
    out = [process(r) for r in _decide_batch(rows, windows.converters, _worker_state["index"], counts)]
    return out, counts, time.perf_counter() - started


class _Balance:
    """Which part of a window (by line id) the parent reads and decides itself, so that it and the
    workers finish at the same time. The parent also runs the SQL part and writes every result (its
    "fixed" time per window), so its part is what is left of the workers' time once that is done.
    Learnt from the windows already run: the first goes to the workers alone; a side not yet measured
    is taken to be as fast as the other. On a machine whose other core is busy the workers come out
    slower and the parent takes more."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        #: Seconds per id of the window range: a worker reading and deciding, the parent doing the
        #: same, and the parent's fixed work.
        self.worker: float | None = None
        self.parent: float | None = None
        self.fixed: float | None = None

    @staticmethod
    def _mix(old: float | None, new: float) -> float:
        return new if old is None else (old + new) / 2

    def split(self, after_id: int, through_id: int) -> int:
        """The id up to which the workers take the window ``(after_id, through_id]``; the parent takes
        the rest."""
        if self.worker is None or self.fixed is None:
            return through_id
        w = self.worker / self.workers
        p = self.parent if self.parent is not None else self.worker
        share = max(0.0, min(1.0, (w - self.fixed) / (p + w)))
        return through_id - int((through_id - after_id) * share)

    def learn(self, worker_seconds: float, worker_ids: int, parent_seconds: float, parent_ids: int,
              fixed_seconds: float, window_ids: int) -> None:
        if worker_ids:
            self.worker = self._mix(self.worker, worker_seconds * self.workers / worker_ids)
        if parent_ids:
            self.parent = self._mix(self.parent, parent_seconds / parent_ids)
        if window_ids:
            self.fixed = self._mix(self.fixed, max(fixed_seconds, 0.0) / window_ids)


#: Below this many lines to decide, a run stays in one process (starting a worker costs ~1 s).
PARALLEL_MIN_LINES = 50_000


# -- DTOs ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunSummary:
    """What a determination run did."""

    lines: int
    exempt: int
    taxable: int
    conflicts: int
    exposures: int
    rules_pack_version: str


@dataclass(frozen=True)
class DeterminationRow:
    """A determined sale as the CLI and the views show it."""

    transaction_line_id: int
    invoice_number: str
    line: int
    invoice_date: dt.date
    customer_number: str
    ship_to_state: str
    amount: Decimal
    exempt: bool
    certificate_id: int | None
    certificate_number: str | None
    certificate_version: int | None
    exempt_amount: Decimal
    taxable_amount: Decimal
    also_eligible: list[Any]
    conflict: bool
    exposure_kind: str
    exposure_amount: Decimal
    rules_pack_version: str
    explanation: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return audit.jsonable({
            "invoice_number": self.invoice_number, "line": self.line, "invoice_date": self.invoice_date,
            "customer_number": self.customer_number, "ship_to_state": self.ship_to_state, "amount": self.amount,
            "exempt": self.exempt, "certificate_id": self.certificate_id,
            "certificate_number": self.certificate_number, "certificate_version": self.certificate_version,
            "exempt_amount": self.exempt_amount, "taxable_amount": self.taxable_amount,
            "also_eligible": self.also_eligible, "conflict": self.conflict,
            "exposure": self.exposure_kind or None, "exposure_amount": self.exposure_amount,
            "rules_pack_version": self.rules_pack_version, "explanation": self.explanation,
        })


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


@dataclass(frozen=True)
class ReprocessItem:
    """The effect of reprocessing on one sale."""

    transaction_line_id: int
    invoice_number: str
    line: int
    invoice_date: dt.date
    state: str
    #: ``update`` (open period), ``adjust`` (filed period: negation + new entry), ``determine`` (first
    #: determination) or ``unchanged``.
    action: str
    filed_period: str | None
    adjustment_period: str | None
    old_exempt: bool | None
    old_certificate: str | None
    old_exempt_amount: Decimal
    new_exempt: bool
    new_certificate: str | None
    new_exempt_amount: Decimal


@dataclass(frozen=True)
class ReprocessPlan:
    """What reprocessing a certificate over a date range would do (shown before confirming)."""

    certificate_id: int
    certificate_number: str
    customer_number: str
    date_from: dt.date
    date_to: dt.date
    prefer_customer_address: bool
    as_of: dt.date
    items: tuple[ReprocessItem, ...]

    @property
    def changes(self) -> list[ReprocessItem]:
        return [i for i in self.items if i.action != "unchanged"]

    def count(self, action: str) -> int:
        return sum(1 for i in self.items if i.action == action)

    @property
    def exempt_delta(self) -> Decimal:
        """Change in exempt sales amount (positive: more sales become exempt)."""
        return sum((i.new_exempt_amount - i.old_exempt_amount for i in self.changes), _ZERO)

    def to_json(self) -> dict[str, Any]:
        return audit.jsonable({
            "certificate_id": self.certificate_id, "certificate_number": self.certificate_number,
            "customer_number": self.customer_number, "from": self.date_from, "to": self.date_to,
            "prefer_customer_address": self.prefer_customer_address, "as_of": self.as_of,
            "lines": len(self.items), "updated_in_open_periods": self.count("update"),
            "adjusted_from_filed_periods": self.count("adjust"), "first_determinations": self.count("determine"),
            "unchanged": self.count("unchanged"), "exempt_amount_change": self.exempt_delta,
            "changes": [i.__dict__ for i in self.changes],
        })


# -- service ------------------------------------------------------------------------------------------


class DeterminationService:
    """Determination use cases for the GUI and the CLI."""

    def __init__(self, db: Database, rules_version: str | None = None) -> None:
        self.db = db
        self.rules_version = rules_version or load_rules_pack().version

    # run ------------------------------------------------------------------------------------------

    def run(self, company_id: int, *, date_from: dt.date | None = None, date_to: dt.date | None = None,
            batch: int = 50_000, progress: Progress | None = None, cancel: CancelCheck | None = None,
            workers: int | None = None) -> RunSummary:
        """Decide every imported line (in the date range) that has no determination yet.

        Built for a million lines: the candidates are loaded once; the lines are taken in windows of
        ``batch`` consecutive ids, each window one transaction (a cancelled or interrupted run keeps the
        finished windows and a new run continues). In a window, the lines whose customer has no
        certificate in their state are decided by one ``INSERT ... SELECT`` (see :class:`_Windows`); the
        others are read as plain tuples through the driver, decided by the engine and written with one
        ``executemany``. ``workers``: extra processes that decide part of each window (default: one
        on a machine with two or more CPUs when there are at least :data:`PARALLEL_MIN_LINES` lines;
        0: none).
        """
        with self.db.reader() as s:
            rows_of_candidates = candidate_rows(s, company_id)
            todo, first = s.execute(self._pending(company_id, date_from, date_to,
                                                  select(func.count(), func.min(_TL.c.id)))).one()
            last = s.execute(select(func.max(_TL.c.id)).where(_same_company(company_id))).scalar() or 0
            determined_through = s.execute(select(func.max(_DET.c.transaction_line_id))
                                           .where(_DET.c.company_id == company_id)).scalar_one() or 0
        if workers is None:
            workers = 1 if (os.cpu_count() or 1) >= 2 and todo >= PARALLEL_MIN_LINES else 0
        if self.db.dialect == "sqlite" and make_url(self.db.url).database in (None, "", ":memory:"):
            workers = 0  # a worker could not open the same database
        texts = self._texts()
        pool = None
        if workers > 0 and todo:
            import multiprocessing

            pool = multiprocessing.get_context(worker_start_method()).Pool(
                workers, _worker_init, (rows_of_candidates, self.db.url, company_id, date_from, date_to,
                                        determined_through, texts))
        try:
            with paused_gc():
                index = index_candidates(rows_of_candidates)
                del rows_of_candidates
                span = (first - 1, last) if todo else (last, last)
                return self._run(company_id, date_from, date_to, batch, progress, cancel, index, todo, span,
                                 determined_through, texts, pool, workers)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()

    @staticmethod
    def _texts() -> dict[str, str]:
        """The explanation stored for a line whose customer has no certificate in its state, by state."""
        return {state: _json(determine(SaleLine("", 1, dt.date.min, "", state), ()).explanation())
                for state in load_rules_pack().states}

    def _run(self, company_id: int, date_from: dt.date | None, date_to: dt.date | None, batch: int,
             progress: Progress | None, cancel: CancelCheck | None, index: CandidateIndex, todo: int,
             span: tuple[int, int], determined_through: int, texts: dict[str, str], pool: Any, workers: int
             ) -> RunSummary:
        counts = [0, 0, 0, 0]  # lines, exempt, conflicts, exposures
        version = self.rules_version
        after, last = span
        constants = {"company_id": company_id, "rules_pack_version": version, "origin": "determine",
                     "determined_at": utcnow()}
        with self.db.write_connection() as conn:
            tables = _RunTables(conn, index.keys(), texts)
            try:
                windows = _Windows(conn, company_id, date_from, date_to, determined_through, constants)
                writer = BulkInsert(conn, _DET, _DET_COLUMNS, constants)
                # With workers the windows are pipelined: the workers read and decide the first part of
                # window k while the parent runs its SQL part and decides the rest; their results are
                # written in window k+1's transaction. A stop loses at most the workers' part of one
                # window; a new run takes it up.
                pending: list[Any] = []
                balance = _Balance(workers)
                worker_span = 0  # ids of the window whose workers' results are pending
                while True:
                    if cancel and cancel():
                        raise Cancelled(f"Determination stopped after {counts[0]} lines; those are kept and a "
                                        "new run continues with the rest.")
                    if progress:
                        progress(counts[0], todo, "Determining")
                    started = time.perf_counter()
                    jobs: list[Any] = []
                    through = split = after
                    deciding = waiting = 0.0
                    with conn.begin(), SqliteBulkCache(conn):
                        if after < last:
                            through = windows.end_after(after, batch, last)
                            split = balance.split(after, through) if pool is not None else after
                            step = (split - after) / workers if workers else 0
                            jobs = [pool.apply_async(_worker_decide, (after + int(i * step),
                                                                      split if i == workers - 1 else
                                                                      after + int((i + 1) * step)))
                                    for i in range(workers)] if split > after else []
                            lines, exposures = windows.insert_without_candidates(after, through)
                            counts[0] += lines
                            counts[3] += exposures
                            if split < through:
                                t0 = time.perf_counter()
                                rows = windows.read_with_candidates(split, through)
                                if rows:
                                    writer.execute(_decide_batch(rows, windows.converters, index, counts))
                                deciding = time.perf_counter() - t0
                        worker_seconds = 0.0
                        for job in pending:
                            t0 = time.perf_counter()
                            decided, their_counts, seconds = job.get()
                            waiting += time.perf_counter() - t0
                            worker_seconds = max(worker_seconds, seconds)
                            writer.execute_processed(decided)
                            for k in range(4):
                                counts[k] += their_counts[k]
                    if pool is not None:
                        balance.learn(worker_seconds, worker_span, deciding, through - split,
                                      time.perf_counter() - started - deciding - waiting, through - after)
                    worker_span = split - after
                    pending = jobs
                    if after >= last and not pending:
                        break
                    after = through
            finally:
                tables.drop()
        if progress:
            progress(counts[0], todo, "Done")
        summary = RunSummary(counts[0], counts[1], counts[0] - counts[1], counts[2], counts[3], version)
        if summary.lines:
            with self.db.transaction() as s:
                audit.record(s, "determination.run", "company", company_id, company_id=company_id,
                             details={**summary.__dict__, "from": date_from, "to": date_to})
        return summary

    @staticmethod
    def _pending(company_id: int, date_from: dt.date | None, date_to: dt.date | None, stmt: Any) -> Any:
        stmt = (stmt.select_from(_TL.outerjoin(_DET, _DET.c.transaction_line_id == _TL.c.id))
                .where(_same_company(company_id), _DET.c.transaction_line_id.is_(None)))
        if date_from:
            stmt = stmt.where(_TL.c.invoice_date >= date_from)
        if date_to:
            stmt = stmt.where(_TL.c.invoice_date <= date_to)
        return stmt

    # results ----------------------------------------------------------------------------------------

    def iter_results(self, company_id: int, *, date_from: dt.date | None = None, date_to: dt.date | None = None,
                     batch: int = 10_000) -> Iterator[DeterminationRow]:
        """Stored determinations in invoice order, streamed in primary-key batches."""
        last = 0
        while True:
            with self.db.reader() as s:
                stmt = (select(_TL.c.id, _TL.c.invoice_number, _TL.c.line, _TL.c.invoice_date, _TL.c.customer_number,
                               _TL.c.ship_to_state, _TL.c.amount, _DET)
                        .select_from(_TL.join(_DET, _DET.c.transaction_line_id == _TL.c.id))
                        .where(_same_company(company_id), _TL.c.id > last).order_by(_TL.c.id).limit(batch))
                if date_from:
                    stmt = stmt.where(_TL.c.invoice_date >= date_from)
                if date_to:
                    stmt = stmt.where(_TL.c.invoice_date <= date_to)
                rows = s.execute(stmt).all()
            if not rows:
                return
            for r in rows:
                yield DeterminationRow(r.id, r.invoice_number, r.line, r.invoice_date, r.customer_number,
                                       r.ship_to_state, _money(r.amount), r.exempt, r.certificate_id,
                                       r.certificate_number or None, r.certificate_version, _money(r.exempt_amount),
                                       _money(r.taxable_amount), list(r.also_eligible or []), r.conflict,
                                       r.exposure_kind, _money(r.exposure_amount), r.rules_pack_version,
                                       r.explanation)
            last = rows[-1].id

    def adjustments(self, company_id: int, transaction_line_id: int | None = None) -> list[dict[str, Any]]:
        """Correction entries (negations and re-creations), oldest first."""
        with self.db.reader() as s:
            stmt = select(_ADJ).where(_ADJ.c.company_id == company_id).order_by(_ADJ.c.id)
            if transaction_line_id is not None:
                stmt = stmt.where(_ADJ.c.transaction_line_id == transaction_line_id)
            return [dict(r._mapping) for r in s.execute(stmt)]

    # exposure ---------------------------------------------------------------------------------------

    def exposure(self, company_id: int, date_from: dt.date, date_to: dt.date, *, state: str | None = None
                 ) -> ExposureReport:
        """Audit exposure by state, filing period and customer. Where a sale in a filed period was
        corrected by reprocessing, the latest correction counts."""
        if date_to < date_from:
            raise ValidationError(f"The period ends ({date_to}) before it starts ({date_from}).")
        groups: dict[tuple[str, str, str, str], list[Decimal]] = {}
        with self.db.reader() as s:
            book = PeriodBook.load(s, company_id)
            latest = self._latest_recreations(s, company_id, date_from, date_to)
            stmt = (select(_TL.c.id, _TL.c.invoice_date, _TL.c.ship_to_state, _TL.c.customer_number, _TL.c.amount,
                           _TL.c.tax_collected, _TL.c.exempt_claimed, _DET.c.exposure_kind, _DET.c.exposure_amount)
                    .select_from(_TL.join(_DET, _DET.c.transaction_line_id == _TL.c.id))
                    .where(_TL.c.company_id == company_id, _TL.c.invoice_date.between(date_from, date_to)))
            if state:
                stmt = stmt.where(_TL.c.ship_to_state == state.upper())
            if not latest:
                stmt = stmt.where(_DET.c.exposure_kind != "")
            for r in s.execute(stmt):
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
        rows = tuple(ExposureRow(k[0], k[1], k[2], k[3], int(v[0]), _money(v[1]), _money(v[2]), _money(v[3]))
                     for k, v in sorted(groups.items()))
        return ExposureReport(date_from, date_to, rows)

    @staticmethod
    def _latest_recreations(session: Session, company_id: int, date_from: dt.date, date_to: dt.date
                            ) -> dict[int, Any]:
        sub = (select(func.max(_ADJ.c.id)).where(_ADJ.c.company_id == company_id, _ADJ.c.kind == "recreation")
               .group_by(_ADJ.c.transaction_line_id))
        stmt = (select(_ADJ.c.transaction_line_id, _ADJ.c.exempt, _ADJ.c.exempt_amount, _ADJ.c.taxable_amount)
                .select_from(_ADJ.join(_TL, _TL.c.id == _ADJ.c.transaction_line_id))
                .where(_ADJ.c.id.in_(sub), _TL.c.invoice_date.between(date_from, date_to)))
        return {r.transaction_line_id: r for r in session.execute(stmt)}

    # reprocessing -----------------------------------------------------------------------------------

    def preview_reprocess(self, certificate_id: int, date_from: dt.date, date_to: dt.date, *,
                          as_of: dt.date, prefer_customer_address: bool = False) -> ReprocessPlan:
        """What reprocessing would change, without changing anything."""
        with self.db.reader() as s:
            plan, _ = self._plan(s, certificate_id, date_from, date_to, as_of, prefer_customer_address)
        return plan

    def reprocess(self, certificate_id: int, date_from: dt.date, date_to: dt.date, *, as_of: dt.date,
                  prefer_customer_address: bool = False, reason: str = "") -> ReprocessPlan:
        """Apply the certificate (and the customer's other current certificates, by the precedence) to
        the customer's sales in the range, in one transaction, audited line by line."""
        with self.db.transaction() as s:
            plan, computed = self._plan(s, certificate_id, date_from, date_to, as_of, prefer_customer_address)
            company_id = s.execute(select(Certificate.company_id).where(Certificate.id == certificate_id)).scalar_one()
            now = utcnow()
            actor = audit.current_actor()
            events: list[audit.NewEvent] = []
            why = reason or f"reprocessing certificate {plan.certificate_number or certificate_id}"
            for item in plan.changes:
                result, old, claimed, tax = computed[item.transaction_line_id]
                new_row = _determination_row(item.transaction_line_id, company_id, result, self.rules_version,
                                             claimed, tax, "reprocess", now, item.state)
                if item.action == "determine":
                    s.execute(insert(_DET), [new_row])
                elif item.action == "update":
                    values = {k: v for k, v in new_row.items() if k != "transaction_line_id"}
                    s.execute(update(_DET).where(_DET.c.transaction_line_id == item.transaction_line_id)
                              .values(**values))
                else:  # adjust: the filed determination stays as it is
                    base = {"company_id": company_id, "transaction_line_id": item.transaction_line_id,
                            "state": item.state, "period": item.adjustment_period, "posted_on": as_of,
                            "reason": why, "created_by": actor, "created_at": now}
                    negation = {**base, "kind": "negation", "exempt": old["exempt"],
                                "certificate_id": old["certificate_id"],
                                "certificate_number": old["certificate_number"] or "",
                                "certificate_version": old["certificate_version"],
                                "coverage_line_id": old["coverage_line_id"], "coverage_expiry": old["coverage_expiry"],
                                "certificate_status": old["certificate_status"] or "",
                                "rules_pack_version": old["rules_pack_version"] or "",
                                "exempt_amount": -old["exempt_amount"], "taxable_amount": -old["taxable_amount"],
                                "explanation": {"summary": "reverses the entry reported in the filed period "
                                                f"{item.filed_period}", "reversed": audit.jsonable(old["explanation"])}}
                    snap = _snapshot(result, self.rules_version)
                    recreation = {**base, "kind": "recreation", **{k: snap[k] for k in (
                        "exempt", "certificate_id", "certificate_version", "coverage_line_id", "coverage_expiry",
                        "rules_pack_version", "exempt_amount", "taxable_amount", "explanation")},
                        "certificate_number": snap["certificate_number"] or "",
                        "certificate_status": snap["certificate_status"] or ""}
                    s.execute(insert(_ADJ), [negation, recreation])
                events.append(audit.NewEvent(
                    f"determination.reprocessed.{item.action}", "transaction_line", item.transaction_line_id,
                    company_id=company_id, certificate_id=certificate_id,
                    before={"exempt": item.old_exempt, "certificate": item.old_certificate,
                            "exempt_amount": item.old_exempt_amount},
                    after={"exempt": item.new_exempt, "certificate": item.new_certificate,
                           "exempt_amount": item.new_exempt_amount},
                    details={"invoice_number": item.invoice_number, "line": item.line,
                             "filed_period": item.filed_period, "posted_to": item.adjustment_period}))
            events.append(audit.NewEvent(
                "certificate.reprocessed", "certificate", certificate_id, company_id=company_id,
                certificate_id=certificate_id,
                details={k: v for k, v in plan.to_json().items() if k != "changes"} | {"reason": why}))
            audit.record_many(s, events)
        return plan

    def _plan(self, s: Session, certificate_id: int, date_from: dt.date, date_to: dt.date, as_of: dt.date,
              prefer_customer_address: bool) -> tuple[ReprocessPlan, dict[int, Any]]:
        if date_to < date_from:
            raise ValidationError(f"The range ends ({date_to}) before it starts ({date_from}).")
        cert = s.get(Certificate, certificate_id)
        if cert is None:
            raise NotFoundError(f"There is no certificate {certificate_id}.")
        customer = s.get(Customer, cert.customer_id)
        assert customer is not None
        company_id = cert.company_id
        states = {line.state for line in cert.lines}
        index = load_candidates(s, company_id, customer.number_key)
        book = PeriodBook.load(s, company_id)
        rows = s.execute(select(*_LINE_COLS).where(
            _TL.c.company_id == company_id, _TL.c.customer_key == customer.number_key,
            _TL.c.invoice_date.between(date_from, date_to)).order_by(_TL.c.invoice_date, _TL.c.id)).all()
        ids = [r.id for r in rows]
        current = self._current(s, company_id, ids)
        items: list[ReprocessItem] = []
        computed: dict[int, Any] = {}
        for r in rows:
            line = sale_of(r)
            if prefer_customer_address and customer.ship_to_state:
                line = SaleLine(line.invoice_number, line.line, line.invoice_date, line.customer_key,
                                customer.ship_to_state.upper(), line.amount, "", customer.ship_to_city,
                                customer.ship_to_zip, line.product_code, line.commodity_code, line.currency,
                                line.exempt_reason, line.po_number)
            if line.ship_to_state not in states:
                continue
            result = determine(line, index.get((line.customer_key, line.ship_to_state), ()))
            old = current.get(r.id)
            filed = book.filed_period(r.ship_to_state, r.invoice_date)
            new_cert = result.certificate_number if result.certificate else None
            if old is None:
                action = "determine"
                old_exempt, old_cert, old_amount = None, None, _ZERO
            else:
                old_exempt, old_amount = old["exempt"], old["exempt_amount"]
                old_cert = old["certificate_number"] or None
                same = (old["exempt"] == result.exempt and old["certificate_id"] == result.certificate_id
                        and old["exempt_amount"] == result.exempt_amount
                        and old["taxable_amount"] == result.taxable_amount)
                action = "unchanged" if same else ("adjust" if filed else "update")
            adjustment_period = book.current_open(r.ship_to_state, as_of).label if action == "adjust" else None
            items.append(ReprocessItem(r.id, r.invoice_number, r.line, r.invoice_date, r.ship_to_state, action,
                                       filed, adjustment_period, old_exempt, old_cert, old_amount, result.exempt,
                                       new_cert or (str(result.certificate_id) if result.certificate_id else None),
                                       result.exempt_amount))
            computed[r.id] = (result, old, r.exempt_claimed, r.tax_collected)
        plan = ReprocessPlan(certificate_id, cert.certificate_number, customer.number, date_from, date_to,
                             prefer_customer_address, as_of, tuple(items))
        return plan, computed

    @staticmethod
    def _current(s: Session, company_id: int, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """What each line currently reports: its latest re-creation entry if it was corrected, else its
        determination."""
        out: dict[int, dict[str, Any]] = {}
        cols = ("exempt", "certificate_id", "certificate_number", "certificate_version", "coverage_line_id",
                "coverage_expiry", "certificate_status", "rules_pack_version", "exempt_amount", "taxable_amount",
                "explanation")
        for i in range(0, len(ids), 500):
            chunk = list(ids[i:i + 500])
            for r in s.execute(select(_DET).where(_DET.c.transaction_line_id.in_(chunk))):
                out[r.transaction_line_id] = {c: getattr(r, c) for c in cols}
            sub = (select(func.max(_ADJ.c.id)).where(_ADJ.c.kind == "recreation",
                                                     _ADJ.c.transaction_line_id.in_(chunk))
                   .group_by(_ADJ.c.transaction_line_id))
            for r in s.execute(select(_ADJ).where(and_(_ADJ.c.id.in_(sub), _ADJ.c.company_id == company_id))):
                out[r.transaction_line_id] = {c: getattr(r, c) for c in cols}
        return out


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
