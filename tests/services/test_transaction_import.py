"""Importing ERP invoice lines: all rows checked first, clear row/column errors, no duplicates on re-import."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ecms_desktop.errors import ValidationError
from ecms_desktop.models.transactions import Determination, TransactionLine
from ecms_desktop.services.periods import PeriodService
from ecms_desktop.services.transaction_import import TransactionImporter

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
    from ecms_desktop.services.determination_service import DeterminationService

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
    from ecms_desktop.errors import Cancelled
    from ecms_desktop.services import transaction_import

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
