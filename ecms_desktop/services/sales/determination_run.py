"""The bulk determination run: every imported line of a company that has no determination yet.

:func:`run_determination` decides them in windows of consecutive line ids (each window one
transaction; a cancelled or interrupted run keeps the finished windows and a new run continues).
Certificates are loaded once and indexed in memory by customer and state. Lines whose customer has no
certificate in their state are decided by SQL (``INSERT ... SELECT`` with the run's temporary tables,
the same values the engine gives them); the others go through the engine, in a worker process and in
this one, and are written with bulk ``executemany``. Each row is what
:func:`~ecms_desktop.services.sales.determination_records.determination_row` gives the line.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, cast

from sqlalchemy import Connection, Table, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from ecms_desktop.models import utcnow
from ecms_desktop.models.transactions import Determination, TransactionLine
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.core import audit, json_text
from ecms_desktop.services.core.bulk import BulkInsert, SqliteBulkCache, copy_rows, paused_gc, worker_start_method
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import Cancelled, DatabaseError
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.sales.candidates import CandidateIndex, candidate_rows, index_candidates
from ecms_desktop.services.sales.determination import RULE_NO_SALES_TAX, SaleLine, default_refusals, determine
from ecms_desktop.services.sales.determination_records import (
    EXPOSURE_PAST_POLICY,
    EXPOSURE_UNSUPPORTED,
    classify_exposure,
    same_company,
)
from ecms_desktop.services.sales.late_lines import book_late_determinations
from ecms_desktop.services.sales.recurring import SalesHistory
from ecms_desktop.services.sales.sales_history import HistoryRows, index_histories, sales_history_rows

_TL = cast(Table, TransactionLine.__table__)
_DET = cast(Table, Determination.__table__)
_ZERO = Decimal(0)
_CENT = Decimal("0.01")

#: The columns :func:`_decide_batch` fills, in order (company, rules-pack version, origin and time are
#: the same for a whole batch).
_DET_COLUMNS = ("transaction_line_id", "exempt", "certificate_id", "certificate_number", "certificate_version",
                "coverage_line_id", "coverage_state", "coverage_expiry", "certificate_status", "exempt_amount",
                "taxable_amount", "also_eligible", "conflict", "explanation", "exposure_kind", "exposure_amount")
_LINE_SQL_COLUMNS = ("id", "invoice_number", "line", "invoice_date", "customer_key", "ship_to_state", "amount",
                     "ship_to_county", "ship_to_city", "ship_to_zip", "product_code", "commodity_code", "currency",
                     "exempt_reason", "po_number", "exempt_claimed", "tax_collected", "taxed_amount")


#: A stored explanation's JSON text (ASCII, compact).
_json = json_text.compact_ascii


#: Temporary tables of a run (on its own connection): the (customer key, state) pairs that have candidate
#: certificates, and the stored explanation of a line of each state whose customer has none there, with
#: whether the state taxes sales at all (a sale to a state without a sales tax is neither taxable nor
#: exposure: see :func:`~ecms_desktop.services.sales.determination.determine`).
_KEY_TABLE = "ecms_run_candidate_key"
_TEXT_TABLE = "ecms_run_no_certificate"


class _RunTables:
    """The temporary tables of one run, created on its connection from the run's candidate index (so
    that what SQL decides and what the engine decides come from the same snapshot of certificates)
    and dropped at the end."""

    def __init__(self, conn: Connection, keys: Iterable[tuple[str, str]], texts: dict[str, tuple[str, bool]]
                 ) -> None:
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
                                 f"explanation {'JSONB' if pg else 'TEXT'} NOT NULL, "
                                 f"taxes_sales {'BOOLEAN' if pg else 'INTEGER'} NOT NULL)")
            rows = list(keys)
            if pg:  # a hundred thousand keys: one COPY, not a statement each
                copy_rows(conn, f"COPY {_KEY_TABLE} (customer_key, state) FROM STDIN", rows)
            elif rows:  # a company without certificates: every line is decided by SQL
                conn.exec_driver_sql(f"INSERT INTO {_KEY_TABLE} (customer_key, state) VALUES ({mark}, {mark})", rows)
            conn.exec_driver_sql(f"INSERT INTO {_TEXT_TABLE} (state, explanation, taxes_sales) VALUES ({mark}, "
                                 f"{'CAST(%s AS JSONB)' if pg else '?'}, {mark})",
                                 [(state, text, taxes if pg else int(taxes)) for state, (text, taxes) in texts.items()])
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
        # The insert of lines without candidates.
        if pg:
            taxable, false, empty = "round(t.amount, 2)", "false", "CAST('[]' AS JSONB)"
            claimed_and_taxable = f"(t.exempt_claimed AND {taxable} > 0)"
        else:
            tenths = "CAST(round(t.amount * 10000) AS INTEGER)"  # ten-thousandths: the stored scale
            taxable = (f"((CASE WHEN {tenths} >= 0 THEN ({tenths} + 50) / 100 ELSE -((50 - {tenths}) / 100) END) "
                       "/ 100.0)")
            false, empty = "0", "'[]'"
            claimed_and_taxable = f"(t.exempt_claimed AND {tenths} >= 50)"
        # A state without a sales tax: nothing taxable, nothing at risk.
        taxable = f"(CASE WHEN x.taxes_sales THEN {taxable} ELSE 0 END)"
        claimed_and_taxable = f"(x.taxes_sales AND {claimed_and_taxable})"
        names = ("transaction_line_id", "exempt", "certificate_id", "certificate_number", "certificate_version",
                 "coverage_line_id", "coverage_state", "coverage_expiry", "certificate_status", "exempt_amount",
                 "taxable_amount", "also_eligible", "conflict", "explanation", "exposure_kind", "exposure_amount",
                 *constants)
        constant_values = BulkInsert(None, _DET, (), constants, dialect=dialect).suffix
        insert = (f"INSERT INTO determination ({', '.join(names)}) "
                  f"SELECT t.id, {false}, NULL, '', NULL, NULL, '', NULL, '', 0, {taxable}, {empty}, {false}, "
                  f"x.explanation, {{kind}}, {{amount}}, {', '.join(mark for _ in constants)} "
                  f"FROM transaction_line t JOIN {_TEXT_TABLE} x ON x.state = t.ship_to_state "
                  f"WHERE {base}{{anti}} AND NOT {has_key}{{exposed}}")
        if pg:
            # One statement that reads the window once and counts the exposures among the rows it
            # inserted: the server's work is the run's critical path on PostgreSQL, and two statements
            # read the window and looked up every line's key twice.
            kind = f"CASE WHEN {claimed_and_taxable} THEN {mark} ELSE {mark} END"
            amount = f"CASE WHEN {claimed_and_taxable} THEN {taxable} ELSE 0 END"
            self.insert_sql: tuple[tuple[str, ...], ...] = tuple(
                (f"WITH ins AS ({insert.format(kind=kind, amount=amount, exposed='', anti=anti)} "
                 "RETURNING exposure_kind) SELECT count(*), count(*) FILTER (WHERE exposure_kind <> '') FROM ins",)
                for anti in ("", undetermined))
        else:
            # Two statements, so that the exposures can be counted: sold exempt with a taxable amount
            # above zero, and the rest.
            self.insert_sql = tuple(
                (insert.format(kind=mark, amount=taxable, exposed=f" AND {claimed_and_taxable}", anti=anti),
                 insert.format(kind=mark, amount="0", exposed=f" AND NOT {claimed_and_taxable}", anti=anti))
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
        statements = self.insert_sql[after_id < self.determined_through]
        params = self._params(after_id, through_id)
        if len(statements) == 1:  # PostgreSQL: one statement that counts both
            lines, exposed = self.conn.exec_driver_sql(
                statements[0], (EXPOSURE_UNSUPPORTED, "", *self.constants, *params)).one()
            return int(lines), int(exposed)
        exposed_sql, rest_sql = statements
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


def _decide_batch(rows: Sequence[Any], converters: tuple[Any, Any], index: CandidateIndex, counts: list[int],
                  histories: _Histories | None = None) -> Iterator[tuple[Any, ...]]:
    """Decide each line; yield its row of :data:`_DET_COLUMNS` and count lines, exempt, conflicts and
    exposures into ``counts``. ``converters``: :attr:`_Windows.converters`; ``histories``: the customers'
    sales, for the SST recurring-relationship rule."""
    no_certificate: dict[str, tuple[str, bool]] = {}
    empty_list = _json([])
    n = exempt_n = conflicts = exposures = 0
    cents, cent, half_up = Decimal.quantize, _CENT, ROUND_HALF_UP
    to_date, to_decimal = converters
    refusals = default_refusals()
    dates: dict[Any, Any] = {}
    for (line_id, invoice, number, day, key, state, amount, county, city, zip_code, product, commodity, currency,
         reason, po, claimed, tax, taxed) in rows:
        n += 1
        if to_decimal is not None:
            amount = to_decimal(amount)
        candidates = index.get((key, state))
        if not candidates:
            # What determine() returns for a line without candidates, without building its objects.
            known = no_certificate.get(state)
            if known is None:
                known = no_certificate[state] = _no_certificate(state)
            text, taxes = known
            taxable = cents(amount, cent, half_up) if taxes else _ZERO
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
            if taxed is not None:
                taxed = to_decimal(taxed)
        result = determine(SaleLine(invoice, number, day, key, state, amount, county, city, zip_code, product,
                                    commodity, currency, reason, po, histories.of(key) if histories else None),
                           candidates, refusals)
        kind, at_stake = classify_exposure(result, bool(claimed), tax, taxed)
        cert, cov = result.certificate, result.coverage
        exempt_n += result.exempt
        conflicts += bool(result.also_eligible)
        exposures += bool(kind) and kind != EXPOSURE_PAST_POLICY
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


class _Histories:
    """The customers' sales histories of a run (SST recurring relationship), built from the same rows in
    the parent and in the worker process; a customer without a sale of its own gets an empty one."""

    def __init__(self, rows: HistoryRows) -> None:
        self.by_customer = index_histories(rows)
        self.empty = SalesHistory((), rows[1])

    def of(self, customer_key: str) -> SalesHistory:
        return self.by_customer.get(customer_key) or self.empty


# The second CPU: a worker process reads and decides the first part of each window (the engine is
# pure Python and bound by one core); the parent runs the SQL part, reads and decides the rest. On
# SQLite (one writer) the parent writes every result; on PostgreSQL the worker writes its own, on its
# own connection and in its own transaction, so that the server inserts on two backends at once
# (inserting a million determinations is most of the server's work there, and was the run's critical
# path on the parent's one connection). The worker gets the candidate rows once and builds the same
# index (and the same temporary key tables, on its own connection), so that both sides decide from one
# snapshot of the certificates.
_worker_state: dict[str, Any] = {}


def _worker_init(candidate_rows: list[tuple[Any, ...]], url: str, company_id: int, date_from: dt.date | None,
                 date_to: dt.date | None, determined_through: int, texts: dict[str, tuple[str, bool]],
                 history_rows: HistoryRows | None = None, constants: dict[str, Any] | None = None) -> None:
    import gc

    # This process only reads and decides lines: it holds the candidate index and builds tuples and
    # strings without reference cycles, so the cyclic collector (which would walk the whole index again
    # and again) stays off for its life, as in the parent's run (:func:`paused_gc`).
    gc.disable()
    _worker_state.update(index=index_candidates(candidate_rows), url=url, company_id=company_id, date_from=date_from,
                         date_to=date_to, determined_through=determined_through, texts=texts,
                         histories=_Histories(history_rows) if history_rows is not None else None,
                         constants=constants or {})


def _worker_windows() -> tuple[Any, _Windows]:
    """The worker's connection, with the run's temporary tables, and its window reader."""
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
        writes = conn.dialect.name == "postgresql"
        st.update(db=db, conn=conn, windows=windows, writes=writes,
                  writer=BulkInsert(conn if writes else None, _DET, _DET_COLUMNS, st["constants"] if writes else None,
                                    dialect=conn.dialect))
    return _worker_state["conn"], _worker_state["windows"]


def _worker_decide(after_id: int, through_id: int) -> tuple[list[tuple[Any, ...]], list[int], float]:
    """Read the lines with candidates in ``(after_id, through_id]`` and decide them; on PostgreSQL write
    the results (in one transaction, committed before the counts are returned), else convert them for
    the driver (the parent writes them). Also says how long that took (for :class:`_Balance`)."""
    started = time.perf_counter()
    conn, windows = _worker_windows()
    counts = [0, 0, 0, 0]
    writer, index, histories = _worker_state["writer"], _worker_state["index"], _worker_state["histories"]
    if _worker_state["writes"]:
        with conn.begin():
            rows = windows.read_with_candidates(after_id, through_id)
            writer.execute(_decide_batch(rows, windows.converters, index, counts, histories))
        return [], counts, time.perf_counter() - started
    with conn.begin():
        rows = windows.read_with_candidates(after_id, through_id)
    process = writer.process
    out = [process(r) for r in _decide_batch(rows, windows.converters, index, counts, histories)]
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


@dataclass(frozen=True)
class RunSummary:
    """What a determination run did."""

    lines: int
    exempt: int
    taxable: int
    conflicts: int
    exposures: int
    rules_pack_version: str
    #: Lines dated in a filed period whose determination went into the current open period.
    booked_in_open_periods: int = 0


def run_determination(db: Database, rules_version: str, company_id: int, *, date_from: dt.date | None = None,
                      date_to: dt.date | None = None, batch: int = 50_000, progress: Progress | None = None,
                      cancel: CancelCheck | None = None, workers: int | None = None, as_of: dt.date | None = None
                      ) -> RunSummary:
    """Decide every imported line (in the date range) that has no determination yet.

    Built for a million lines: the candidates are loaded once; the lines are taken in windows of
    ``batch`` consecutive ids, each window one transaction (a cancelled or interrupted run keeps the
    finished windows and a new run continues). In a window, the lines whose customer has no
    certificate in their state are decided by one ``INSERT ... SELECT`` (see :class:`_Windows`); the
    others are read as plain tuples through the driver, decided by the engine and written with one
    ``executemany``. ``workers``: extra processes that decide part of each window (default: one
    on a machine with two or more CPUs when there are at least :data:`PARALLEL_MIN_LINES` lines;
    0: none).

    Lines dated inside a filed period are booked in the state's current open period as of ``as_of``
    (default: today) at the end (:func:`~ecms_desktop.services.sales.late_lines.book_late_determinations`).
    """
    with db.reader() as s:
        rows_of_candidates = candidate_rows(s, company_id)
        history_rows = sales_history_rows(s, company_id)
        todo, first = s.execute(_pending(company_id, date_from, date_to,
                                         select(func.count(), func.min(_TL.c.id)))).one()
        last = s.execute(select(func.max(_TL.c.id)).where(same_company(company_id))).scalar() or 0
        determined_through = s.execute(select(func.max(_DET.c.transaction_line_id))
                                       .where(_DET.c.company_id == company_id)).scalar_one() or 0
    if workers is None:
        workers = 1 if (os.cpu_count() or 1) >= 2 and todo >= PARALLEL_MIN_LINES else 0
    if db.dialect == "sqlite" and make_url(db.url).database in (None, "", ":memory:"):
        workers = 0  # a worker could not open the same database
    texts = _texts()
    constants = {"company_id": company_id, "rules_pack_version": rules_version, "origin": "determine",
                 "determined_at": utcnow()}
    pool = None
    if workers > 0 and todo:
        import multiprocessing

        pool = multiprocessing.get_context(worker_start_method()).Pool(
            workers, _worker_init, (rows_of_candidates, db.url, company_id, date_from, date_to,
                                    determined_through, texts, history_rows, constants))
    try:
        with paused_gc():
            index = index_candidates(rows_of_candidates)
            del rows_of_candidates
            span = (first - 1, last) if todo else (last, last)
            summary = _run(db, rules_version, constants, date_from, date_to, batch, progress, cancel, index, todo,
                           span, determined_through, texts, pool, workers, _Histories(history_rows))
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    with db.transaction() as s:
        booked = book_late_determinations(s, company_id, as_of or dt.date.today())
    return replace(summary, booked_in_open_periods=len(booked)) if booked else summary


def _no_certificate(state: str) -> tuple[str, bool]:
    """The explanation stored for a line of ``state`` whose customer has no certificate there, and
    whether the state taxes sales (where it does not, the line is neither taxable nor exposure)."""
    result = determine(SaleLine("", 1, dt.date.min, "", state), ())
    return _json(result.explanation()), result.rule != RULE_NO_SALES_TAX


def _texts() -> dict[str, tuple[str, bool]]:
    """:func:`_no_certificate` of every state of the rules pack."""
    return {state: _no_certificate(state) for state in load_rules_pack().states}


def _run(db: Database, rules_version: str, constants: dict[str, Any], date_from: dt.date | None,
         date_to: dt.date | None, batch: int, progress: Progress | None, cancel: CancelCheck | None,
         index: CandidateIndex, todo: int, span: tuple[int, int], determined_through: int,
         texts: dict[str, tuple[str, bool]], pool: Any, workers: int, histories: _Histories | None = None
         ) -> RunSummary:
    counts = [0, 0, 0, 0]  # lines, exempt, conflicts, exposures
    version = rules_version
    after, last = span
    company_id = constants["company_id"]
    with db.write_connection() as conn:
        tables = _RunTables(conn, index.keys(), texts)
        try:
            windows = _Windows(conn, company_id, date_from, date_to, determined_through, constants)
            writer = BulkInsert(conn, _DET, _DET_COLUMNS, constants)
            # With workers the windows are pipelined: the workers read and decide the first part of
            # window k while the parent runs its SQL part and decides the rest; their results are
            # written in window k+1's transaction (on PostgreSQL the workers commit their own). A stop
            # loses at most the workers' part of one window; a new run takes it up (a window below
            # the highest determined line is read with the anti-join: its other part may be missing).
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
                                writer.execute(_decide_batch(rows, windows.converters, index, counts, histories))
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
        with db.transaction() as s:
            audit.record(s, "determination.run", "company", company_id, company_id=company_id,
                         details={**summary.__dict__, "from": date_from, "to": date_to})
    return summary


def _pending(company_id: int, date_from: dt.date | None, date_to: dt.date | None, stmt: Any) -> Any:
    stmt = (stmt.select_from(_TL.outerjoin(_DET, _DET.c.transaction_line_id == _TL.c.id))
            .where(same_company(company_id), _DET.c.transaction_line_id.is_(None)))
    if date_from:
        stmt = stmt.where(_TL.c.invoice_date >= date_from)
    if date_to:
        stmt = stmt.where(_TL.c.invoice_date <= date_to)
    return stmt
