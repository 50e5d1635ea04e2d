"""Property-based tests (Hypothesis): malformed certificate and transaction files never give a traceback,
never half-import, and never store a value other than the one in the file.

Files are generated here (never committed): random headers (missing, unknown and repeated columns),
hostile cell values (NUL characters, huge or non-finite numbers, decimal commas, dates with junk,
paths leading out of the folder, very long text, any Unicode), in CSV (UTF-8 with or without BOM,
UTF-16, Windows-1252, mangled bytes) or XLSX (including truncated workbooks). The run is bounded
(``max_examples``) and derandomised, so the suite stays reproducible.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from ecms_desktop.models import AuditEvent, Certificate, Customer, Document
from ecms_desktop.models.transactions import TransactionLine
from ecms_desktop.services.certificates import import_service as certificates
from ecms_desktop.services.certificates import service as certificate_service
from ecms_desktop.services.core.errors import EcmsError, ValidationError
from ecms_desktop.services.sales import transaction_import as transactions

FUZZ = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

#: Cell values that broke (or nearly broke) the importers, mixed with ordinary ones.
HOSTILE = ["", " ", "NaN", "Infinity", "-inf", "1e-400", "1e20", "1E+400", "5,5", "1,250.50", "1_000", "\u0661\u0662",
           "0", "-1", "99999999999999999999", "50%", "$12.50", "2026-03-15 garbage", "2026-02-30", "2026-03-15",
           "2026-03-15T10:00", "9999-12-31", "0001-01-01", "\x00", "a\x00b", "../outside.pdf", "/etc/passwd",
           "/dev/zero", "sub/../../x.pdf", "=HYPERLINK(\"http://x\")", "X" * 70, "N" * 400, "\u00df" * 40,
           "TX", "tx;ca", "OH;MI;KY", "ZZ", "SST-F0003", "MTC-UNIFORM", "tx 01-339", "yes", "no", "approved",
           "pending", "resale", "blanket", "single_use", "Caf\u00e9 \u201cSoci\u00e9t\u00e9\u201d", "\u202eevil",
           "line\nbreak", "\"quoted\"", "a,b", "\ufeffbom"]
_TEXT = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=30))


def _rows(columns: list[str], good: dict[str, str]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Rows that are mostly good, with some cells replaced by hostile values."""
    row = st.fixed_dictionaries({c: st.one_of(st.just(good.get(c, "")), _TEXT) for c in columns})
    return st.lists(row, min_size=1, max_size=6)


@st.composite
def _files(draw: Any, required: tuple[str, ...], optional: tuple[str, ...], good: dict[str, str]
           ) -> tuple[str, list[str], list[dict[str, str]], list[tuple[int, int]]]:
    """A malformed file: its format, header, rows, and bytes to overwrite (for a mangled CSV)."""
    columns = list(required)
    columns += draw(st.lists(st.sampled_from(optional), max_size=4, unique=True))
    tweak = draw(st.sampled_from(["none", "none", "drop", "unknown", "repeat", "blank"]))
    if tweak == "drop":
        columns.remove(draw(st.sampled_from(columns)))
    elif tweak == "unknown":
        columns.append("favourite_colour")
    elif tweak == "repeat":
        columns.append(draw(st.sampled_from(columns)))
    elif tweak == "blank":
        columns.append("")
    columns = draw(st.permutations(columns))
    rows = draw(_rows(columns, good))
    fmt = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252", "mangled", "xlsx", "xlsx-truncated"]))
    mangles = draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=5)
                   ) if fmt == "mangled" else []
    if fmt.startswith("xlsx"):  # a workbook's cells also hold numbers, dates and booleans
        for row in rows:
            for column in draw(st.lists(st.sampled_from(columns), max_size=2)):
                row[column] = draw(_TYPED)
    return fmt, columns, rows, mangles


_TYPED = st.one_of(st.integers(-(10**20), 10**20), st.floats(allow_nan=False, allow_infinity=False),
                   st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(9999, 1, 1)),
                   st.dates(min_value=dt.date(1900, 1, 1)), st.booleans())


def _write(folder: Path, fmt: str, columns: list[str], rows: list[dict[str, str]],
           mangles: list[tuple[int, int]]) -> Path:
    """The file on disk (CSV in its encoding, possibly with bytes overwritten, or a workbook). ``rows``
    are changed to what the file holds where the format cannot hold a character (Windows-1252 writes
    ``?``; a workbook cannot hold control characters)."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    n = len(list(folder.iterdir()))
    for row in rows:
        for key, value in row.items():
            if fmt == "cp1252":
                row[key] = value.encode("cp1252", errors="replace").decode("cp1252")
            elif fmt.startswith("xlsx") and isinstance(value, str):
                row[key] = ILLEGAL_CHARACTERS_RE.sub("", value)
    table = [list(columns), *([r.get(c, "") for c in columns] for r in rows)]
    if fmt.startswith("xlsx"):
        from openpyxl import Workbook

        wb = Workbook()
        for values in table:
            wb.active.append(values)
        path = folder / f"fuzz{n}.xlsx"
        wb.save(path)
        if fmt == "xlsx-truncated":
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return path
    buffer = io.StringIO()
    csv.writer(buffer).writerows(table)
    if fmt == "mangled":
        data = bytearray(buffer.getvalue().encode("utf-8"))
        for position, value in mangles:
            data[position % len(data)] = value
    else:
        data = bytearray(buffer.getvalue().encode(fmt))
    path = folder / f"fuzz{n}.csv"
    path.write_bytes(bytes(data))
    return path


def _counts(db: Any, tables: tuple[Any, ...]) -> tuple[int, ...]:
    with db.reader() as s:
        return tuple(s.execute(select(func.count()).select_from(t)).scalar_one() for t in tables)


def _check_refusal(error: EcmsError, path: Path, columns: set[str]) -> None:
    """A refusal says where: every problem names the file, and a row problem a known column (or the
    row's layout)."""
    assert str(error).strip()
    if isinstance(error, ValidationError):
        for problem in error.problems:
            assert problem.file in (None, path.name), problem
            if problem.row is not None and problem.row > 1:
                assert problem.column is None or problem.column in columns, problem


AS_OF = dt.date(2026, 11, 22)
GOOD_CERTIFICATE = {
    "customer_number": "C-1", "customer_name": "Bluebonnet Resale LLC", "customer_email": "", "state": "TX",
    "form": "TX-01-339", "certificate_number": "R-1", "exempt_reason": "resale", "purchaser_tax_id": "32098765432",
    "certificate_type": "blanket", "po_number": "", "signed_date": "2026-03-15", "effective_date": "",
    "expiry_date": "", "review_status": "", "document": "", "purchaser_address": "1 Main St",
    "exempt_percent": "50", "notes": "ok",
}


@FUZZ
@given(data=st.data())
def test_malformed_certificate_files_never_traceback_half_import_or_misread(db, company_id, tmp_path, data) -> None:  # type: ignore[no-untyped-def]
    fmt, columns, rows, mangles = data.draw(_files(certificates.REQUIRED_COLUMNS, certificates.OPTIONAL_COLUMNS,
                                                   GOOD_CERTIFICATE))
    n = len(list(tmp_path.iterdir()))
    for i, row in enumerate(rows):  # distinct certificates, so that a stored one is found again
        if row.get("certificate_number") in ("R-1", None):
            row["certificate_number"] = f"R-{n}-{i}"
    path = _write(tmp_path, fmt, columns, rows, mangles)
    tables = (Certificate, Customer, Document, AuditEvent)
    before = _counts(db, tables)
    skip = data.draw(st.booleans())
    try:
        result = certificates.CertificateImporter(db).import_file(path, company_id=company_id, skip_invalid=skip,
                                                                  as_of=AS_OF)
    except EcmsError as exc:
        assert _counts(db, tables) == before  # nothing half-imported
        _check_refusal(exc, path, {*certificates.REQUIRED_COLUMNS, *certificates.OPTIONAL_COLUMNS})
        return
    if fmt == "mangled":
        return  # bytes were overwritten: what the rows said is not what the file says
    # Stored: each value is the file's (no misread).
    service = certificate_service.CertificateService(db)
    typed = any(not isinstance(v, str) for r in rows for v in r.values())
    for cert_id in result.certificate_ids:
        stored = service.get(cert_id, AS_OF)
        sources = [r for r in rows if str(r.get("certificate_number", "")).strip() == stored.data.certificate_number]
        assert sources or typed, f"stored certificate {stored.data.certificate_number!r} is in no row of the file"
        if len(sources) != 1 or any(not isinstance(v, str) for v in sources[0].values()):
            continue  # ambiguous, or a typed workbook cell: only "no traceback, no half import" is checked
        source = sources[0]
        assert [line.state for line in stored.data.lines] == sorted(
            {s.strip().upper() for s in source.get("state", "").replace("|", ";").split(";") if s.strip()})
        assert stored.data.notes == source.get("notes", "").strip()
        assert "\x00" not in stored.data.purchaser_name + stored.data.notes
        percent = source.get("exempt_percent", "").strip().rstrip("%").strip()
        if stored.data.exempt_percent is not None:
            assert Decimal(percent.replace(",", "")) == stored.data.exempt_percent
    assert result.imported == len(result.certificate_ids)


GOOD_LINE = {"invoice_number": "INV-1", "line": "1", "invoice_date": "2026-06-15", "customer_number": "C-1",
             "ship_to_state": "TX", "amount": "10.50", "tax_collected": "0", "exempt_claimed": "no", "currency": "USD",
             "po_number": "PO-1"}


@FUZZ
@given(data=st.data())
def test_malformed_transaction_files_never_traceback_half_import_or_misread(db, company_id, tmp_path, data) -> None:  # type: ignore[no-untyped-def]
    fmt, columns, rows, mangles = data.draw(_files(transactions.REQUIRED_COLUMNS, transactions.OPTIONAL_COLUMNS,
                                                   GOOD_LINE))
    n = len(list(tmp_path.iterdir()))
    for i, row in enumerate(rows):  # distinct invoices, so that a stored line is found again
        if row.get("invoice_number") == "INV-1":
            row["invoice_number"] = f"INV-{n}-{i}"
    path = _write(tmp_path, fmt, columns, rows, mangles)
    before = _counts(db, (TransactionLine, AuditEvent))
    try:
        result = transactions.TransactionImporter(db).import_file(path, company_id=company_id)
    except EcmsError as exc:
        assert _counts(db, (TransactionLine, AuditEvent)) == before
        _check_refusal(exc, path, {*transactions.REQUIRED_COLUMNS, *transactions.OPTIONAL_COLUMNS})
        return
    if fmt == "mangled":
        return  # bytes were overwritten: what the rows said is not what the file says
    with db.reader() as s:
        stored = {(r.invoice_number, r.line): r for r in s.execute(
            select(TransactionLine.invoice_number, TransactionLine.line, TransactionLine.ship_to_state,
                   TransactionLine.po_number, TransactionLine.amount))}
    for row in rows:
        if any(not isinstance(v, str) for v in row.values()):
            continue  # a typed workbook cell: only "no traceback, nothing half-imported" is checked
        line = stored.get((row.get("invoice_number", "").strip(), _int(row.get("line", ""))))
        if line is None:
            continue
        assert line.ship_to_state == row.get("ship_to_state", "").strip().upper()
        assert line.po_number == row.get("po_number", "").strip()
        written = Decimal(row["amount"].strip().replace(",", "").lstrip("$"))
        assert line.amount == written.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    assert result.rows >= result.inserted


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


@pytest.mark.parametrize("maker", [lambda p: p.write_bytes(b""), lambda p: p.write_bytes(b"\xff" * 10),
                                   lambda p: p.write_bytes(b"PK\x03\x04" + b"\x00" * 30)])
def test_empty_or_junk_files_are_refused_by_both_imports(db, company_id, tmp_path,  # type: ignore[no-untyped-def]
                                                         maker: Callable[[Path], None]) -> None:
    for name in ("a.csv", "a.xlsx"):
        path = tmp_path / name
        maker(path)
        with pytest.raises(ValidationError):
            certificates.CertificateImporter(db).import_file(path, company_id=company_id)
        with pytest.raises(ValidationError):
            transactions.TransactionImporter(db).import_file(path, company_id=company_id)
