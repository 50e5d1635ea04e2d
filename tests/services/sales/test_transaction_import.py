"""Importing ERP invoice lines: all rows checked first, clear row/column errors, no duplicates on re-import."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import String, func, select

from ecms_desktop.models.transactions import Determination, TransactionLine
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.sales.periods import PeriodService
from ecms_desktop.services.sales.transaction_import import TransactionImporter

HEADER = ("invoice_number,line,invoice_date,customer_number,ship_to_state,ship_to_county,ship_to_city,"
          "ship_to_zip,product_code,commodity_code,amount,currency,tax_collected,exempt_claimed,exempt_reason,"
          "po_number\n")


def write(tmp_path: Path, *rows: str, name: str = "lines.csv") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


GOOD = ("INV-1,1,2026-06-15, c-1001 ,tx,Travis,Austin,78701,P1,C1,\"1,250.50\",usd,0,yes,resale,PO-9",
        "INV-1,2,2026-06-15,C-1001,TX,,,,P2,,99.99,USD,8.25,no,,")


def count(db) -> int:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return s.execute(select(func.count()).select_from(TransactionLine)).scalar_one()


def test_import_stores_lines_with_normalised_values(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = TransactionImporter(db).import_file(write(tmp_path, *GOOD), company_id=company_id)
    assert (result.inserted, result.updated, result.unchanged) == (2, 0, 0)
    with db.reader() as s:
        first = s.execute(select(TransactionLine).order_by(TransactionLine.line)).scalars().first()
        assert first.customer_key == "c-1001" and first.ship_to_state == "TX" and first.currency == "USD"
        assert first.amount == Decimal("1250.50") and first.exempt_claimed is True
        assert first.invoice_date == dt.date(2026, 6, 15) and first.exempt_reason == "resale"


def test_reimport_does_not_duplicate_and_updates_changed_lines(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    importer = TransactionImporter(db)
    importer.import_file(write(tmp_path, *GOOD), company_id=company_id)
    again = importer.import_file(write(tmp_path, *GOOD), company_id=company_id)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert count(db) == 2
    changed = importer.import_file(write(tmp_path, GOOD[0], GOOD[1].replace("99.99", "120.00")),
                                   company_id=company_id)
    assert (changed.inserted, changed.updated, changed.unchanged) == (0, 1, 1)
    assert count(db) == 2


def test_bad_rows_are_all_reported_and_nothing_is_imported(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, GOOD[0],
                 "INV-2,x,2026-13-01,,ZZ,,,,,,abc,US,-1,maybe,charity,",
                 GOOD[0])
    with pytest.raises(ValidationError) as info:
        TransactionImporter(db).import_file(path, company_id=company_id)
    problems = {(p.row, p.column) for p in info.value.problems}
    assert {(3, "line"), (3, "invoice_date"), (3, "customer_number"), (3, "ship_to_state"), (3, "amount"),
            (3, "currency"), (3, "tax_collected"), (3, "exempt_claimed"), (3, "exempt_reason")} <= problems
    assert (4, "line") in problems  # duplicate of row 2
    assert "nothing was imported" in info.value.message
    assert all(p.file == "lines.csv" for p in info.value.problems)
    assert count(db) == 0


def test_amounts_are_stored_to_four_decimals_and_absurd_ones_are_refused(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Amounts are kept as the column holds them (four decimals, rounded half up) on every database, so
    that SQLite and PostgreSQL store and decide the same; a number too large for the column is named."""
    TransactionImporter(db).import_file(write(
        tmp_path, "R1,1,2026-06-15,C-1,TX,,,,,,1.00005,USD,0.123449,no,,", "R1,2,2026-06-15,C-1,TX,,,,,,-2.00005,USD,"
        "0,no,,"), company_id=company_id)
    with db.reader() as s:
        stored = {r.line: (r.amount, r.tax_collected) for r in s.execute(select(TransactionLine)).scalars()}
    assert stored == {1: (Decimal("1.0001"), Decimal("0.1234")), 2: (Decimal("-2.0001"), Decimal(0))}
    with pytest.raises(ValidationError) as info:
        TransactionImporter(db).import_file(write(
            tmp_path, "R2,1,2026-06-15,C-1,TX,,,,,,1e15,USD,0,no,,", "R2,2,2026-06-15,C-1,TX,,,,,,5,USD,"
            "123456789012345,no,,", name="big.csv"), company_id=company_id)
    messages = {(p.row, p.column): p.message for p in info.value.problems}
    assert set(messages) == {(2, "amount"), (3, "tax_collected")}
    assert "'1e15' is too large" in messages[(2, "amount")]
    assert "too large" in messages[(3, "tax_collected")]
    assert count(db) == 2


def test_missing_columns_are_named(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.csv"
    path.write_text("invoice_number,line\nA,1\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="lacks required columns: invoice_date"):
        TransactionImporter(db).import_file(path, company_id=company_id)


def test_xlsx_is_read_too(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(HEADER.strip().split(","))
    ws.append(["INV-9", 1, dt.datetime(2026, 7, 1), "C-1", "TX", "", "", "", "P1", "", 10.5, "USD", 0, "yes",
               "", ""])
    path = tmp_path / "lines.xlsx"
    wb.save(path)
    result = TransactionImporter(db).import_file(path, company_id=company_id)
    assert result.inserted == 1


def test_changing_a_line_in_a_filed_period_is_refused(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ecms_desktop.services.sales.determination_service import DeterminationService

    importer = TransactionImporter(db)
    importer.import_file(write(tmp_path, *GOOD), company_id=company_id)
    DeterminationService(db).run(company_id)
    PeriodService(db).file(company_id, "TX", "2026-06")
    with pytest.raises(ValidationError) as info:
        importer.import_file(write(tmp_path, GOOD[0], GOOD[1].replace("99.99", "120.00")), company_id=company_id)
    assert "filed period TX 2026-06" in str(info.value) and info.value.problems[0].row == 3
    with db.reader() as s:
        assert s.execute(select(func.count()).select_from(Determination)).scalar_one() == 2
        amounts = sorted(s.execute(select(TransactionLine.amount)).scalars())
    assert amounts == [Decimal("99.99"), Decimal("1250.50")]


def _line_indexes(db) -> set[str]:  # type: ignore[no-untyped-def]
    from sqlalchemy import inspect

    with db.engine.connect() as conn:
        return {ix["name"] for ix in inspect(conn).get_indexes("transaction_line")}


def test_a_bulk_import_rebuilds_the_indexes_and_a_cancelled_one_keeps_them(db, company_id, tmp_path,  # type: ignore[no-untyped-def]
                                                                           monkeypatch) -> None:
    from ecms_desktop.services.core.errors import Cancelled
    from ecms_desktop.services.sales import transaction_import

    wanted = {"ix_transaction_line_company_date", "ix_transaction_line_company_customer"}
    assert wanted <= _line_indexes(db)
    monkeypatch.setattr(transaction_import, "_REBUILD_MIN", 1)  # as for a large file
    stages: list[str] = []
    with pytest.raises(Cancelled):
        TransactionImporter(db).import_file(write(tmp_path, *GOOD), company_id=company_id, cancel=lambda: bool(stages),
                                            progress=lambda done, total, text: stages.append(text))
    assert count(db) == 0 and wanted <= _line_indexes(db)
    result = TransactionImporter(db).import_file(write(tmp_path, *GOOD), company_id=company_id)
    assert result.inserted == 2 and wanted <= _line_indexes(db)
    again = TransactionImporter(db).import_file(write(tmp_path, *GOOD), company_id=company_id)
    assert (again.inserted, again.unchanged) == (0, 2)


def test_a_bulk_import_on_postgresql_leaves_the_planner_the_real_size_of_the_table(db, company_id, tmp_path,  # type: ignore[no-untyped-def]
                                                                                    monkeypatch) -> None:
    """Until autovacuum gets to a table the planner takes it to be as small as before a large load and
    plans the determination that follows for a few rows (nested loops, sorts on disk): a bulk import
    refreshes the statistics of the lines in its own transaction."""
    from sqlalchemy import text

    from ecms_desktop.services.sales import transaction_import

    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL's planner statistics (SQLite keeps none unless asked)")
    monkeypatch.setattr(transaction_import, "_REBUILD_MIN", 1)  # as for a large file
    rows = [f"INV-{i},1,2026-06-15,C-{i % 7},TX,,,,P1,,{i}.25,USD,0,no,,PO-{i}" for i in range(1, 301)]
    result = TransactionImporter(db).import_file(write(tmp_path, *rows), company_id=company_id)
    assert result.inserted == 300
    with db.reader() as s:
        assert s.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'transaction_line'::regclass")
                         ).scalar_one() == 300
        assert s.execute(text("SELECT count(*) FROM pg_stats WHERE tablename = 'transaction_line' "
                              "AND schemaname = current_schema()")).scalar_one() > 0


# -- a large file: read and checked by a worker process while the lines already checked are stored ------


@pytest.fixture
def via_worker(monkeypatch):  # type: ignore[no-untyped-def]
    """Every CSV file goes through the worker process, in chunks of 3 rows; returns how often it ran."""
    from ecms_desktop.services.sales import transaction_import

    runs: list[str] = []
    real = transaction_import._from_worker

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        runs.append(args[0].name)
        return real(*args, **kwargs)

    monkeypatch.setattr(transaction_import, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(transaction_import, "_CHUNK", 3)
    monkeypatch.setattr(transaction_import.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(transaction_import, "_from_worker", spy)
    return runs


def _lines(n: int, start: int = 0, amount: str = "10.50") -> list[str]:
    return [f"W-{i // 2},{i % 2 + 1},2026-06-{i % 28 + 1:02d},C-{i % 5},TX,Travis,Austin,78701,P{i % 3},,{amount},USD,"
            f"{'0' if i % 2 else '0.87'},{'yes' if i % 2 else 'no'},,PO-{i}" for i in range(start, start + n)]


def _stored_lines(db, company_id) -> list[tuple[object, ...]]:  # type: ignore[no-untyped-def]
    cols = [c for c in TransactionLine.__table__.c if c.name not in ("id", "company_id", "imported_at")]
    with db.reader() as s:
        return [tuple(r) for r in s.execute(select(*cols).where(TransactionLine.company_id == company_id)
                                             .order_by(TransactionLine.invoice_number, TransactionLine.line))]


def test_a_file_read_by_the_worker_process_is_stored_exactly_as_in_one_process(db, company_id, tmp_path,  # type: ignore[no-untyped-def]
                                                                                via_worker) -> None:
    from ecms_desktop.services.companies.service import CompanyService

    rows = [*GOOD, *_lines(20)]
    other = CompanyService(db).create("Other Co").id
    TransactionImporter(db).import_file(write(tmp_path, *rows), company_id=company_id)
    assert via_worker == ["lines.csv"]
    from ecms_desktop.services.sales import transaction_import

    transaction_import.PARALLEL_MIN_BYTES = 10**12  # (restored by monkeypatch) the same file in this process
    result = TransactionImporter(db).import_file(write(tmp_path, *rows, name="again.csv"), company_id=other)
    assert via_worker == ["lines.csv"] and result.inserted == 22
    assert _stored_lines(db, company_id) == _stored_lines(db, other) and len(_stored_lines(db, other)) == 22


def test_the_worker_reports_every_bad_row_and_nothing_is_stored(db, company_id, tmp_path, via_worker) -> None:  # type: ignore[no-untyped-def]
    rows = _lines(10)
    rows[1] = rows[1].replace("2026-06-02", "2026-13-02")          # row 3
    rows[8] = rows[8].replace(",TX,", ",ZZ,")                      # row 10, in a later chunk
    rows.append(rows[0])                                           # row 12 repeats row 2
    with pytest.raises(ValidationError) as info:
        TransactionImporter(db).import_file(write(tmp_path, *rows), company_id=company_id)
    assert via_worker
    assert {(p.row, p.column) for p in info.value.problems} == {(3, "invoice_date"), (10, "ship_to_state"),
                                                                (12, "line")}
    assert "3 of 11 rows have problems; nothing was imported" in info.value.message
    assert count(db) == 0


def test_a_file_that_turns_out_not_to_be_utf8_is_read_as_windows_1252_or_explained(db, company_id, tmp_path,  # type: ignore[no-untyped-def]
                                                                                    via_worker) -> None:
    """The worker reads chunks as UTF-8 until a byte says otherwise; those chunks are discarded and the
    file is read again as Windows-1252 (what Excel's plain "CSV" writes on US Windows), once. A byte
    that is not Windows-1252 either refuses the file, naming the encodings read, and stores nothing.
    (This test used to expect the Windows-1252 file to be refused as "not UTF-8".)"""
    path = write(tmp_path, *_lines(12))
    path.write_bytes(path.read_bytes() + "W-99,1,2026-06-01,C-\xe9,TX,,,,,,1,USD,0,no,,\n".encode("cp1252"))
    result = TransactionImporter(db).import_file(path, company_id=company_id)
    assert via_worker and (result.rows, result.inserted) == (13, 13) and count(db) == 13
    with db.reader() as s:
        assert s.execute(select(TransactionLine.customer_number).where(
            TransactionLine.invoice_number == "W-99")).scalar_one() == "C-\xe9"
    bad = write(tmp_path, *_lines(12, start=20), name="bad.csv")
    bad.write_bytes(bad.read_bytes() + b"W-98,1,2026-06-01,C-\x81,TX,,,,,,1,USD,0,no,,\n")
    with pytest.raises(ValidationError, match="Windows-1252"):
        TransactionImporter(db).import_file(bad, company_id=company_id)
    assert count(db) == 13


def test_a_reimport_through_the_worker_updates_changed_lines_and_counts_the_rest(db, company_id, tmp_path,  # type: ignore[no-untyped-def]
                                                                                  via_worker) -> None:
    importer = TransactionImporter(db)
    importer.import_file(write(tmp_path, *_lines(8)), company_id=company_id)
    again = importer.import_file(write(tmp_path, *_lines(6), *_lines(2, start=6, amount="99.00"), *_lines(4, start=8)),
                                 company_id=company_id)
    assert len(via_worker) == 2
    assert (again.rows, again.inserted, again.updated, again.unchanged) == (12, 4, 2, 6)
    with db.reader() as s:
        amounts = dict(s.execute(select(TransactionLine.invoice_number + "/" + func.cast(TransactionLine.line, String),
                                        TransactionLine.amount)).all())
    assert amounts["W-3/1"] == Decimal("99.00") and amounts["W-0/1"] == Decimal("10.50") and len(amounts) == 12


def test_a_cancelled_import_through_the_worker_stores_nothing_and_stops_the_worker(db, company_id, tmp_path,  # type: ignore[no-untyped-def]
                                                                                    via_worker) -> None:
    import multiprocessing

    from ecms_desktop.services.core.errors import Cancelled

    seen: list[int] = []
    with pytest.raises(Cancelled):
        TransactionImporter(db).import_file(write(tmp_path, *_lines(30)), company_id=company_id,
                                            progress=lambda done, total, text: seen.append(done),
                                            cancel=lambda: len(seen) > 2)
    assert via_worker and count(db) == 0
    assert not multiprocessing.active_children()


def test_a_worker_that_dies_is_reported_and_nothing_is_stored(db, company_id, tmp_path, via_worker) -> None:  # type: ignore[no-untyped-def]
    import multiprocessing
    import signal

    from ecms_desktop.services.core.errors import EcmsError

    def kill_the_reader(done: int, total: int, text: str) -> None:
        for child in multiprocessing.active_children():
            if child.name == "ecms-import-reader":
                os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
                child.join()

    with pytest.raises(EcmsError, match=r"stopped unexpectedly \(exit code -9\); nothing was imported"):
        TransactionImporter(db).import_file(write(tmp_path, *_lines(3000)), company_id=company_id,
                                            progress=kill_the_reader)
    assert via_worker and count(db) == 0


def test_an_import_from_a_threaded_program_spawns_its_worker(db, company_id, tmp_path, via_worker) -> None:  # type: ignore[no-untyped-def]
    """The GUI imports in a worker thread of a Qt process: there the worker process is spawned, not forked."""
    import threading

    from ecms_desktop.services.core.bulk import worker_start_method

    results: list[object] = []
    methods: list[str] = []

    def work() -> None:
        methods.append(worker_start_method())
        try:
            results.append(TransactionImporter(db).import_file(write(tmp_path, *_lines(9)), company_id=company_id))
        except Exception as exc:  # reported below
            results.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(120)
    assert methods == ["spawn"] and via_worker
    assert getattr(results[0], "inserted", results[0]) == 9


def test_a_small_file_for_a_company_with_many_lines_is_looked_up_chunk_by_chunk(db, company_id, tmp_path,  # type: ignore[no-untyped-def]
                                                                                 via_worker, monkeypatch) -> None:
    """Reading all of a large company's keys for a small file would cost more than the file: its lines
    are then read in this process and looked up through the unique key, a chunk at a time."""
    from ecms_desktop.services.sales import transaction_import

    importer = TransactionImporter(db)
    importer.import_file(write(tmp_path, *_lines(12)), company_id=company_id)
    monkeypatch.setattr(transaction_import, "_MIN_LINE_BYTES", 10**9)  # "the file has far fewer lines"
    again = importer.import_file(write(tmp_path, *_lines(4, start=10), *_lines(1, start=20, amount="5")),
                                 company_id=company_id)
    assert via_worker == ["lines.csv"]  # only the first import went through the worker
    assert (again.inserted, again.unchanged, again.updated) == (3, 2, 0)
    assert count(db) == 15


# -- malformed input: row-and-column errors, never a traceback or a silent misread ------------------------

_ROW = "T-1,1,2026-06-15,C-1,TX,,,,,,10.00,USD,0,no,,"


def _field(name: str, value: str) -> str:
    """``_ROW`` with one column set (the value quoted as CSV needs)."""
    cells = _ROW.split(",")
    cells[HEADER.strip().split(",").index(name)] = '"' + value.replace('"', '""') + '"'
    return ",".join(cells)


@pytest.mark.parametrize(("column", "value", "expected"), [
    ("line", "99999999999999999999", "outside the range that can be stored"),
    ("line", "1_0", "is not a line number"),
    ("line", "\u0661\u0662", "is not a line number"),
    ("amount", "", "an amount is required"),
    ("amount", "5,5", "decimal comma"),
    ("amount", "1_000", "is not a number"),
    ("amount", "\u0661\u0662", "is not a number"),
    ("amount", "1e20", "too large: at most 14 digits before the decimal point"),
    ("amount", "Infinity", "is not a number"),
    ("amount", "NaN", "is not a number"),
    ("tax_collected", "1e20", "too large"),
    ("invoice_date", "2026-06-15 garbage", "is not a date"),
    ("invoice_date", "9999-12-31", "not a plausible date"),
    ("currency", "\u00c4\u00d6\u00dc", "is not a 3-letter currency code"),
    ("invoice_number", "I" * 65, "is 65 characters long; at most 64 can be stored"),
    ("ship_to_city", "C" * 101, "is 101 characters long; at most 100 can be stored"),
    ("customer_number", "\u00df" * 40, "once its case is folded"),
    ("po_number", "PO\x001", "NUL character"),
    ("customer_number", "C\x001", "NUL character"),
])
@pytest.mark.parametrize("rows", [1, 30])
def test_values_a_column_cannot_hold_are_row_errors_on_every_database(db, company_id, tmp_path, monkeypatch,  # type: ignore[no-untyped-def]
                                                                       column, value, expected, rows) -> None:
    """SQLite stored some of these, PostgreSQL failed with a DataError (a huge line number failed on
    both): each is a row-and-column error with the same message on both databases, on the fast path of
    a CSV file (30 rows, read by the worker process) as on the general one."""
    from ecms_desktop.services.sales import transaction_import

    if rows > 1:
        monkeypatch.setattr(transaction_import, "PARALLEL_MIN_BYTES", 0)
        monkeypatch.setattr(transaction_import.os, "cpu_count", lambda: 2)
    lines = [_ROW.replace("T-1", f"T-{i}") for i in range(rows)]
    lines[-1] = _field(column, value).replace("T-1,", f"T-{rows - 1},") if column != "invoice_number" \
        else _field(column, value)
    with pytest.raises(ValidationError) as info:
        TransactionImporter(db).import_file(write(tmp_path, *lines), company_id=company_id)
    (problem,) = info.value.problems
    assert (problem.row, problem.column) == (rows + 1, column) and expected in problem.message
    assert count(db) == 0


def test_a_column_given_twice_or_values_outside_the_columns_are_refused(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "twice.csv"
    path.write_text(HEADER.strip() + ",ship_to_state\n" + _ROW + ",CA\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="columns appear more than once: ship_to_state"):
        TransactionImporter(db).import_file(path, company_id=company_id)
    with pytest.raises(ValidationError) as info:
        TransactionImporter(db).import_file(write(tmp_path, _ROW, _ROW.replace("T-1", "T-2") + ",stray"),
                                            company_id=company_id)
    (problem,) = info.value.problems
    assert problem.row == 3 and "no header" in problem.message
    assert count(db) == 0


def test_a_workbooks_hidden_first_sheet_is_not_imported(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "old"
    wb.active.sheet_state = "hidden"
    wb.active.append(HEADER.strip().split(","))
    wb.active.append(_ROW.replace("T-1", "OLD").split(","))
    ws = wb.create_sheet("lines")
    ws.append(HEADER.strip().split(","))
    ws.append(_ROW.replace("T-1", "NEW").split(","))
    wb.active = 1
    wb.save(tmp_path / "lines.xlsx")
    assert TransactionImporter(db).import_file(tmp_path / "lines.xlsx", company_id=company_id).inserted == 1
    with db.reader() as s:
        assert s.execute(select(TransactionLine.invoice_number)).scalars().all() == ["NEW"]


def test_a_named_pipe_or_device_as_the_file_is_refused_without_blocking(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import threading

    os.mkfifo(tmp_path / "lines.csv")

    def unblock() -> None:  # only ever needed by code that blocks on the pipe: then it reads nothing
        with open(tmp_path / "lines.csv", "wb"):
            pass

    watchdog = threading.Timer(20, unblock)
    watchdog.daemon = True
    watchdog.start()
    try:
        with pytest.raises(ValidationError, match="named pipe"):
            TransactionImporter(db).import_file(tmp_path / "lines.csv", company_id=company_id)
    finally:
        watchdog.cancel()
    os.symlink("/dev/zero", tmp_path / "zero.csv")
    with pytest.raises(ValidationError, match="is a device"):
        TransactionImporter(db).import_file(tmp_path / "zero.csv", company_id=company_id)
