"""Every .xlsx and .csv the program writes keeps hostile text as text: one rule, one module.

Values that a spreadsheet program would run as a formula (``=``, ``+``, ``-``, ``@``, a leading tab or
carriage return) are fed to every export; the workbooks must hold them as quote-prefixed string cells
(never a formula) and the CSV files with a leading apostrophe, while numbers (negative ones too) and
dates keep their types. An inventory of the sources fails when a new writer appears that is not
covered here.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import select

from ecms_desktop.cli import main
from ecms_desktop.models.transactions import ExemptionStatusEvent
from ecms_desktop.services.audit_pack.content import Column
from ecms_desktop.services.audit_pack.workbook import FastRows, _SheetWriter, _Styles, rewrite_package
from ecms_desktop.services.exports.safe_export import CsvWriter, SheetWriter, csv_value, is_formula_like, new_workbook
from ecms_desktop.services.sales import exemption_feed as feed
from ecms_desktop.services.sales.exposure import ExposureReport, ExposureRow, TaxOnCoveredSales, UncoveredExemptSales
from ecms_desktop.services.sales.exposure_workbook import write_exposure_xlsx
from tests.factories import import_sales, make_certificate, make_customer, write_sales_csv

REPO = Path(__file__).resolve().parents[3]
HOSTILE = ('=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\r=1+1")
#: What survives the services' trimming of names and numbers (a leading tab or CR is removed there).
TRIMMED = tuple(h.strip() for h in HOSTILE)


def _sheet_cells(path: Path) -> list[Any]:
    with zipfile.ZipFile(path) as zf:
        xml = b"".join(zf.read(n) for n in zf.namelist() if n.startswith("xl/worksheets/"))
    assert b"<f>" not in xml and b"<f " not in xml, f"{path.name}: a cell is stored as a formula"
    wb = openpyxl.load_workbook(path)
    return [cell for ws in wb.worksheets for row in ws.iter_rows() for cell in row if cell.value is not None]


def _assert_xlsx_keeps(path: Path, texts: tuple[str, ...]) -> list[Any]:
    """Each of ``texts`` is in the workbook as a quote-prefixed string; no text cell that looks like a
    formula lacks the prefix."""
    cells = _sheet_cells(path)
    found = set()
    for cell in cells:
        if isinstance(cell.value, str) and is_formula_like(cell.value.replace("\n", "\r")):
            assert cell.data_type == "s" and cell.quotePrefix, f"{path.name} {cell.coordinate}: {cell.value!r}"
        if isinstance(cell.value, str):
            # openpyxl's own writer stores a carriage return raw, which reads back as a line feed
            found.add(cell.value.replace("\n", "\r") if cell.value.startswith("\n") else cell.value)
    missing = set(texts) - found
    assert not missing, f"{path.name}: not written as text: {missing}"
    return cells


def _assert_csv_escapes(text: str, texts: tuple[str, ...]) -> list[list[str]]:
    """Each of ``texts`` appears with a leading apostrophe; no field starts like a formula unless it
    is a number."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    fields = [f for row in rows for f in row]
    for f in fields:
        if is_formula_like(f):
            assert re.fullmatch(r"-\d+(\.\d+)?", f), f"unescaped formula-like field {f!r}"
    for t in texts:
        assert "'" + t in fields, f"{t!r} is not written escaped"
        assert t not in fields, f"{t!r} is written as it is"
    return rows


# ------------------------------------------------------------------------------------------ the rule


def test_the_rule_escapes_text_and_keeps_numbers_and_dates() -> None:
    for h in HOSTILE:
        assert is_formula_like(h) and csv_value(h) == "'" + h
    assert [csv_value(v) for v in (-5, Decimal("-1.50"), -0.5, dt.date(2026, 1, 2), None, True, "plain", "a=b")] == [
        "-5", "-1.50", "-0.5", "2026-01-02", "", "True", "plain", "a=b"]
    assert csv_value(dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone(dt.timedelta(hours=-5)))) == \
        "2026-01-02T08:04:00+00:00"


def test_sheet_writer_keeps_numbers_and_dates(tmp_path: Path) -> None:
    wb = new_workbook()
    sheet = SheetWriter(wb.create_sheet("x"))
    sheet.append([*HOSTILE, -7, Decimal("-1.25"), dt.date(2026, 1, 2), "#N/A"],
                 ["text"] * len(HOSTILE) + ["int", "money", "date", "text"])
    wb.save(tmp_path / "x.xlsx")
    cells = _assert_xlsx_keeps(tmp_path / "x.xlsx", HOSTILE)
    by_value = {c.value: c for c in cells}
    assert by_value[-7].data_type == "n" and not by_value[-7].quotePrefix
    assert by_value[Decimal("-1.25")].data_type == "n" and by_value[Decimal("-1.25")].number_format == "#,##0.00"
    assert by_value[dt.datetime(2026, 1, 2)].is_date
    assert by_value["#N/A"].data_type == "s", "error-like text stays text"


# ------------------------------------------------------------------------------------------ the exports


def test_exposure_workbook_keeps_hostile_text_as_text(tmp_path: Path) -> None:
    rows = tuple(ExposureRow(h, h, h, h, UncoveredExemptSales(2, Decimal("-10.50"), Decimal("12.25")),
                             TaxOnCoveredSales()) for h in HOSTILE)
    write_exposure_xlsx(ExposureReport(dt.date(2026, 1, 1), dt.date(2026, 12, 31), rows), tmp_path / "e.xlsx")
    cells = _assert_xlsx_keeps(tmp_path / "e.xlsx", HOSTILE)
    negative = [c for c in cells if c.value == Decimal("-10.5")]
    assert negative and all(c.data_type == "n" and c.number_format == "#,##0.00" for c in negative)
    wb = openpyxl.load_workbook(tmp_path / "e.xlsx")
    assert wb.sheetnames == ["Exposure", "By state", "By period", "By customer"]
    assert wb["Exposure"].freeze_panes == "A3"


def test_ecms_exposure_xlsx_writes_customer_formulas_as_text(db, db_url, company_id, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    sales = write_sales_csv(tmp_path, *(f'A{i},1,2026-02-10,"{h.replace(chr(34), chr(34) * 2)}",TX,100,0,yes'
                                        for i, h in enumerate(TRIMMED)))
    assert main(["--db", db_url, "transactions", "import", str(sales)]) == 0
    assert main(["--db", db_url, "determine"]) == 0
    out = tmp_path / "exposure.xlsx"
    assert main(["--db", db_url, "exposure", "--from", "2026-01-01", "--to", "2026-12-31", "--format", "xlsx",
                 "--out", str(out)]) == 0, capsys.readouterr().err
    _assert_xlsx_keeps(out, TRIMMED)
    capsys.readouterr()
    assert main(["--db", db_url, "exposure", "--from", "2026-01-01", "--to", "2026-12-31", "--format", "csv"]) == 0
    _assert_csv_escapes(capsys.readouterr().out, TRIMMED)


def test_problem_list_escapes_hostile_text(tmp_path: Path) -> None:
    from ecms_desktop.services.core.errors import Problem
    from ecms_desktop.services.exports.problem_list import write_problems_csv

    path = write_problems_csv([Problem(h, file=h, row=i, column=h) for i, h in enumerate(HOSTILE, 2)],
                              tmp_path / "problems.csv")
    with path.open(encoding="utf-8", newline="") as fh:
        rows = _assert_csv_escapes(fh.read(), HOSTILE)
    assert rows[0] == ["File", "Row", "Column", "What is wrong"] and rows[1][1] == "2"


def test_audit_pack_workbook_keeps_hostile_text_as_text(tmp_path: Path) -> None:
    """Both of the pack's writers: openpyxl cells (summary, headers) and the fast SpreadsheetML rows."""
    columns = (Column("Text"), Column("Amount", "money"), Column("Count", "int"))
    wb = new_workbook()
    ws = wb.create_sheet("rows")
    summary = _SheetWriter(wb.create_sheet("summary"), _Styles("#1F4E79"))
    fast = FastRows(ws, _Styles("#1F4E79"), columns, tmp_path / "rows.xml")
    for h in HOSTILE:
        summary.raw([h, summary.value(h), Decimal("-3.5")])
        fast.append((h, Decimal("-3.5"), -4))
    fast.close()
    wb.save(tmp_path / "plain.xlsx")
    rewrite_package(tmp_path / "plain.xlsx", tmp_path / "pack.xlsx", dt.datetime(2030, 1, 2, tzinfo=dt.UTC),
                    {ws.path.lstrip("/"): fast.path})
    cells = _assert_xlsx_keeps(tmp_path / "pack.xlsx", HOSTILE)
    assert {c.data_type for c in cells if c.value in (Decimal("-3.5"), -4)} == {"n"}


def test_audit_pack_of_hostile_customers_keeps_their_text(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ecms_desktop.services.audit_pack.content import AuditPackSelection
    from ecms_desktop.services.audit_pack.service import AuditPackService

    for i, h in enumerate(TRIMMED):
        make_certificate(db, company_id, customer=h, name=h, certificate_number=h + str(i))
    result = AuditPackService(db).generate(AuditPackSelection(dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
                                           tmp_path / "pack", make_zip=False)
    _assert_xlsx_keeps(result.folder / "audit-pack.xlsx", TRIMMED)


def test_ecms_list_csv_escapes_hostile_text(db, db_url, company_id, capsys) -> None:  # type: ignore[no-untyped-def]
    for i, h in enumerate(TRIMMED):
        make_certificate(db, company_id, customer=f"C-{i}", name=h, certificate_number=h, form="NY-ST-120",
                         states=("NY",), expiry_override=dt.date(2026, 5, 1), expiry_override_reason="test")
    capsys.readouterr()
    assert main(["--db", db_url, "list", "--format", "csv", "--as-of", "2026-11-22"]) == 0
    rows = _assert_csv_escapes(capsys.readouterr().out, TRIMMED)
    header = rows[0]
    days = {r[header.index("days_left")] for r in rows[1:]}
    assert days == {"-205"}, "a negative number of days stays a number"
    assert {r[header.index("expiry_date")] for r in rows[1:]} == {"2026-05-01"}


def test_feed_folder_csv_escapes_hostile_text(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ecms_desktop.models import Certificate

    for i in range(len(HOSTILE)):
        cert = make_certificate(db, company_id, customer=f"C-{i}", approve=False)
        with db.transaction() as s:
            row = s.get(Certificate, cert.id)
            row.review_state = "approved"
            s.flush()
            feed.record_review_change(s, row, "pending", "approved", as_of=dt.date(2026, 11, 22))
    with db.transaction() as s:
        events = s.execute(select(ExemptionStatusEvent).order_by(ExemptionStatusEvent.id)).scalars().all()
        assert len(events) == len(HOSTILE)
        for event, h in zip(events, HOSTILE, strict=True):
            event.payload = {**event.payload, "customer_number": h, "certificate_number": h}
    out = tmp_path / "feed"
    out.mkdir()
    feed.add_feed_folder(db, company_id, "erp", out)
    assert feed.deliver(db).delivered == {"folder erp": len(HOSTILE)}
    (written,) = out.glob("*.csv")
    rows = _assert_csv_escapes(written.read_bytes().decode("utf-8"), HOSTILE)
    assert {r[rows[0].index("customer_exempt")] for r in rows[1:]} == {"True"}


def test_csv_writer_escapes_every_hostile_value() -> None:
    buf = io.StringIO()
    writer = CsvWriter(buf)
    writer.writerow(["text", "amount"])
    writer.writerows([h, Decimal("-1.00")] for h in HOSTILE)
    _assert_csv_escapes(buf.getvalue(), HOSTILE)


def test_uncovered_sales_report_keeps_hostile_customer_names_as_text(db, company_id, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Customers > Customers without a valid certificate…: a customer's name or e-mail is the ERP's text."""
    from ecms_desktop.services.customers.report import UncoveredSalesReport

    for i, h in enumerate(TRIMMED):
        make_customer(db, company_id, f"H-{i}", h)
    import_sales(db, company_id, tmp_path, *(f"U{i},1,2026-02-10,H-{i},TX,100,0,yes" for i in range(len(TRIMMED))))
    report = UncoveredSalesReport(db)
    assert report.export(company_id, tmp_path / "u.xlsx", as_of=dt.date(2026, 6, 1)) == len(TRIMMED)
    _assert_xlsx_keeps(tmp_path / "u.xlsx", TRIMMED)
    report.export(company_id, tmp_path / "u.csv", as_of=dt.date(2026, 6, 1))
    _assert_csv_escapes((tmp_path / "u.csv").read_text(encoding="utf-8-sig"), TRIMMED)


# ------------------------------------------------------------------------------------------ inventory

#: Every module that writes a spreadsheet or CSV file, and the test above that feeds it hostile values.
COVERED = {
    "ecms_desktop/services/exports/safe_export.py": (test_csv_writer_escapes_every_hostile_value,
                                             test_sheet_writer_keeps_numbers_and_dates),
    "ecms_desktop/services/audit_pack/workbook.py": (test_audit_pack_workbook_keeps_hostile_text_as_text,
                                                     test_audit_pack_of_hostile_customers_keeps_their_text),
    "ecms_desktop/services/sales/exposure_workbook.py": (test_exposure_workbook_keeps_hostile_text_as_text,
                                                test_ecms_exposure_xlsx_writes_customer_formulas_as_text),
    "ecms_desktop/services/sales/exemption_feed.py": (test_feed_folder_csv_escapes_hostile_text,),
    "ecms_desktop/cli/common.py": (test_ecms_list_csv_escapes_hostile_text,),
    "ecms_desktop/cli/certificates.py": (test_ecms_list_csv_escapes_hostile_text,),
    "ecms_desktop/services/exports/problem_list.py": (test_problem_list_escapes_hostile_text,),
    "ecms_desktop/cli/transactions.py": (test_ecms_exposure_xlsx_writes_customer_formulas_as_text,),
    "ecms_desktop/services/customers/report.py": (test_uncovered_sales_report_keeps_hostile_customer_names_as_text,),
}
#: Writing a file of cells without the safe module: a csv writer, an openpyxl workbook, raw SpreadsheetML.
_RAW_WRITER = re.compile(r"\bcsv\s*\.\s*(writer|DictWriter)\b|\bWorkbook\s*\(|\bfrom openpyxl import [^\n]*\bWorkbook\b"
                         r"|inlineStr|\.to_csv\(|\.to_excel\(|xlsxwriter")
#: Using the safe module's writers (or the CLI's CSV printer, built on them).
_SAFE_WRITER = re.compile(r"\b(CsvWriter|SheetWriter|new_workbook|FastRows|print_csv)\s*\(")


def _sources() -> dict[str, str]:
    return {p.relative_to(REPO).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted((REPO / "ecms_desktop").rglob("*.py"))}


def test_every_spreadsheet_and_csv_writer_is_the_safe_one_and_is_tested() -> None:
    sources = _sources()
    raw = sorted(rel for rel, text in sources.items() if _RAW_WRITER.search(text))
    # the safe module itself, and the audit pack's fast row writer (same rule: is_formula_like)
    assert raw == ["ecms_desktop/services/audit_pack/workbook.py", "ecms_desktop/services/exports/safe_export.py"], (
        "a module writes csv/xlsx cells without ecms_desktop.services.exports.safe_export: " + ", ".join(raw))
    assert "is_formula_like(" in sources["ecms_desktop/services/audit_pack/workbook.py"]
    writers = sorted(rel for rel, text in sources.items() if _SAFE_WRITER.search(text) or rel in raw)
    untested = sorted(set(writers) - set(COVERED))
    assert not untested, f"new export(s) {untested}: feed them HOSTILE values in this file and list them in COVERED"
    assert sorted(COVERED) == writers, "COVERED lists a module that no longer writes csv/xlsx"


@pytest.mark.parametrize("pattern", ["csv.writer(out)", "csv.DictWriter(buf, fieldnames=x)", "Workbook()",
                                     "from openpyxl import load_workbook, Workbook", 't="inlineStr"'])
def test_the_inventory_sees_raw_writers(pattern: str) -> None:
    assert _RAW_WRITER.search(pattern)
