"""Bulk writing for a million rows: plain tuples through the driver, a larger SQLite page cache for the
writing connection, and the cyclic garbage collector paused while the rows are built.

Used by the transaction import and the determination run (services, no Qt).
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import JSON, Boolean, Connection, Date, Dialect, Table


def worker_start_method() -> str:
    """How to start a worker process: ``fork`` (cheap, nothing re-imported) from a single-threaded program
    such as the command line; ``spawn`` from a threaded one (the GUI runs long jobs in worker threads of
    a Qt process, and forking a threaded process can deadlock the child)."""
    import threading

    return "fork" if threading.active_count() == 1 and os.name == "posix" else "spawn"


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector off while a bulk job builds millions of tuples, and back on (as it
    was) afterwards.

    Each generation-0 collection walks the young objects and every 10th/100th one walks more; with a
    million parsed rows alive the full collections are repeated as the heap grows (measured on a
    1,000,000-line import: 32.7 s with the collector, 24.3 s without). The rows hold no reference
    cycles, so nothing accumulates that reference counting would not free; one collection runs at the
    end for anything else the job left behind.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect(0)


def _memoized(proc: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``proc`` with its results remembered by value (for columns with few distinct values)."""
    memo: dict[Any, Any] = {}

    def process(value: Any) -> Any:
        try:
            return memo[value]
        except KeyError:
            out = memo[value] = proc(value)
            return out

    return process


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
                # A ledger has a few thousand distinct dates at most: each is converted once.
                self.processors.append((i, _memoized(proc) if isinstance(impl, Date) else proc))
        self.suffix = tuple(suffix)
        names = ", ".join((*columns, *constants))
        self.sql = f"INSERT INTO {table.name} ({names}) VALUES ({', '.join(marks)})"
        #: PostgreSQL through psycopg 3: rows are streamed with COPY (JSON text is read as JSONB).
        self.copy_sql = (f"COPY {table.name} ({names}) FROM STDIN"
                         if dialect.name == "postgresql" and dialect.driver == "psycopg" else None)

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
        """Insert ``rows``. On PostgreSQL they are streamed as they come (``rows`` may be a generator that
        computes them: the server stores the first ones while the rest are computed)."""
        if self.copy_sql is not None:
            assert self.conn is not None
            copy_rows(self.conn, self.copy_sql, map(self.convert, rows))
            return
        self._write([self.convert(r) for r in rows])

    def execute_processed(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Rows already converted by :meth:`process` (of an instance for the same dialect)."""
        suffix = self.suffix
        self._write([(*r, *suffix) for r in rows])

    def _write(self, batch: list[tuple[Any, ...]]) -> None:
        """``executemany`` on SQLite; ``COPY ... FROM STDIN`` on PostgreSQL (psycopg sends the rows in
        one stream instead of one statement each: importing a million lines took 66.2 s with
        ``executemany`` and 34.1 s with ``COPY``), in the connection's transaction either way."""
        if not batch:
            return
        assert self.conn is not None
        if self.copy_sql is not None:
            copy_rows(self.conn, self.copy_sql, batch)
            return
        self.conn.exec_driver_sql(self.sql, batch)


def copy_rows(conn: Connection, copy_sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """Stream rows (values as the driver takes them) with ``COPY ... FROM STDIN`` through psycopg 3, in the
    connection's transaction: one statement for all of them instead of one round trip each (PostgreSQL)."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(copy_sql) as copy:
            write = copy.write_row
            for row in rows:
                write(row)
    finally:
        cursor.close()


class SqliteBulkCache:
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
