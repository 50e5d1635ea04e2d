"""The audit pack's fast sheet-row writer gives the same cells as openpyxl's own writer."""

from __future__ import annotations

import datetime as dt
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl import Workbook

from ecms_desktop.models import Status
from ecms_desktop.services.audit_pack.content import Column
from ecms_desktop.services.audit_pack.workbook import FastRows, _SheetWriter, _Styles, rewrite_package

GENERATED = dt.datetime(2030, 1, 2, 3, 4, 6, tzinfo=dt.UTC)
COLUMNS = (Column("Text"), Column("Count", "int"), Column("Amount", "money"), Column("Ratio", "number"),
           Column("On", "date"), Column("At", "datetime"), Column("Flag", "bool"), Column("More"))

ROWS: list[tuple[Any, ...]] = [
    ('=HYPERLINK("http://evil.example","x")', 1, Decimal("125.50"), 0.1, dt.date(2026, 1, 1),
     dt.datetime(2026, 1, 2, 3, 4, 5, 678), True, "plain"),
    ("+1", -7, Decimal("0"), 1e-20, dt.date(1900, 1, 1), dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), False,
     "-5+5"),
    ("@SUM(A1)", 10**17, 125.5, float("1e300"), dt.date(9999, 12, 31),
     dt.datetime(2026, 6, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=-5))), None, "\tTAB"),
    ("a < b & c > d", 0, 7, Decimal("1E+3"), None, None, True, "\rCR start"),
    ("  spaces around  ", None, None, None, None, None, None, "line one\nline two\r\nthree"),
    ("control\x01\x02chars\x1f gone", 3, Decimal("-0.005"), -0.0, dt.date(2026, 2, 28), None, False, ""),
    ("ümlaut — “quotes” 日本語 😀", 4, None, 3, None, None, None, Status.EXPIRED),
    ("x" * 40000, 5, None, None, None, None, None, "=" + "y" * 40000),
    ("", 6, None, None, None, None, None, None),
]


def _write(tmp_path: Path, rows: list[tuple[Any, ...]]) -> Path:
    styles = _Styles("#1F4E79")
    wb = Workbook(write_only=True)
    ref = wb.create_sheet("reference")
    slow = _SheetWriter(ref, styles)
    slow.header([c.title for c in COLUMNS])
    fast_ws = wb.create_sheet("fast")
    _SheetWriter(fast_ws, styles).header([c.title for c in COLUMNS])
    fast = FastRows(fast_ws, styles, COLUMNS, tmp_path / "rows.xml", first_row=2)
    for row in rows:
        slow.append(row, [c.kind for c in COLUMNS])
        fast.append(row)
    fast.close()
    assert fast.rows == len(rows)
    plain = tmp_path / "plain.xlsx"
    wb.save(plain)
    out = tmp_path / "out.xlsx"
    rewrite_package(plain, out, GENERATED, {fast_ws.path.lstrip("/"): fast.path})
    return out


def _cells(ws: Any) -> list[list[tuple[Any, ...]]]:
    def value(v: Any) -> Any:
        # openpyxl without lxml writes a carriage return raw and reads it back as a line feed; the
        # fast writer keeps it (&#13;), checked on its own below
        return v.replace("\r\n", "\n").replace("\r", "\n") if isinstance(v, str) else v

    return [[(value(c.value), c.data_type, c.number_format, bool(c.quotePrefix), c.is_date) for c in row]
            for row in ws.iter_rows()]


def test_fast_rows_match_openpyxl_cell_for_cell(tmp_path: Path) -> None:
    out = _write(tmp_path, ROWS)
    wb = openpyxl.load_workbook(out)
    reference, fast = _cells(wb["reference"]), _cells(wb["fast"])
    assert len(fast) == len(ROWS) + 1
    for r, (want, got) in enumerate(zip(reference, fast, strict=True), start=1):
        assert got == want, f"row {r}"
    # the things that matter to an auditor, stated directly
    first = wb["fast"][2]
    assert first[0].value.startswith("=HYPERLINK") and first[0].data_type == "s" and first[0].quotePrefix
    assert first[2].value == Decimal("125.5") and first[2].number_format == "#,##0.00"
    assert first[4].value == dt.datetime(2026, 1, 1) and first[4].is_date
    assert first[5].value == dt.datetime(2026, 1, 2, 3, 4, 5)
    assert wb["fast"][4][5].value == dt.datetime(2026, 6, 1, 17, 0), "aware times are written in UTC"
    assert wb["fast"][7][0].value == "controlchars gone"
    assert wb["fast"][5][7].value == "\rCR start" and wb["fast"][6][7].value == "line one\nline two\r\nthree"
    assert wb["fast"][9][0].value == "x" * 32766 + "…"
    with zipfile.ZipFile(out) as zf:
        xml = b"".join(zf.read(n) for n in zf.namelist() if n.startswith("xl/worksheets/"))
        assert all(i.date_time == (2030, 1, 2, 3, 4, 6) for i in zf.infolist())
    assert b"<f>" not in xml and b"<f " not in xml


def test_error_like_text_stays_text(tmp_path: Path) -> None:
    """openpyxl would store "#N/A" typed by a customer as an Excel error value; the fast writer keeps
    every text a string."""
    out = _write(tmp_path, [("#N/A", 1, None, None, None, None, None, "#DIV/0!")])
    ws = openpyxl.load_workbook(out)["fast"]
    cells = next(iter(ws.iter_rows(min_row=2)))
    assert (cells[0].value, cells[0].data_type) == ("#N/A", "s")
    assert (cells[7].value, cells[7].data_type) == ("#DIV/0!", "s")


def test_many_rows_stream_through_a_file(tmp_path: Path) -> None:
    rows = [(f"INV-{i:07d}", i, Decimal("1.25") * i, None, dt.date(2026, 1, 1) + dt.timedelta(days=i % 365),
             None, i % 2 == 0, f"note {i}") for i in range(5000)]
    out = _write(tmp_path, rows)
    ws = openpyxl.load_workbook(out, read_only=True)["fast"]
    got = list(ws.iter_rows(min_row=2, values_only=True))
    assert len(got) == 5000
    assert got[4999][:3] == ("INV-0004999", 4999, Decimal("6248.75"))
    assert got[4999][4] == dt.datetime.combine(dt.date(2026, 1, 1) + dt.timedelta(days=4999 % 365), dt.time())
