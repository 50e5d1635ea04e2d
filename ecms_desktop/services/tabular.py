"""Reading .csv and .xlsx files into rows with spreadsheet row numbers, and parsing their cells.

Shared by every import (certificates, transactions, permit registries) so that each reports bad
input the same way: file, row (as the spreadsheet shows it), column, and what is wrong.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ecms_desktop.errors import Problem, ValidationError
from ecms_desktop.services.user_files import refuse_database_file


def header_key(text: str) -> str:
    """``" Customer Number "`` -> ``customer_number``."""
    return re.sub(r"[^a-z0-9]+", "_", str(text).strip().casefold()).strip("_")


@dataclass(frozen=True)
class Row:
    """One data row: its row number in the file (header = row 1) and its cells by column key."""

    number: int
    cells: dict[str, Any]

    def text(self, column: str) -> str:
        value = self.cells.get(column)
        if value is None:
            return ""
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value).strip()


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    rows: list[Row]


def read_table(path: Path, *, required: Sequence[str], optional: Sequence[str] = ()) -> Table:
    """Read a .csv or .xlsx file; refuse it (ValidationError) when unreadable or missing columns."""
    name = path.name
    if not path.exists():
        raise ValidationError(f"{name}: file not found ({path}).")
    refuse_database_file(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            header, raw_rows = _read_csv(path)
        elif suffix in (".xlsx", ".xlsm"):
            header, raw_rows = _read_xlsx(path)
        else:
            raise ValidationError(f"{name}: not a .csv or .xlsx file.")
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ValidationError(f"{name}: cannot be read as CSV ({exc}). Save it as UTF-8 CSV.") from exc
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise ValidationError(f"{name}: cannot be read as an Excel workbook ({exc}).") from exc
    columns = tuple(header_key(h) if h is not None else "" for h in header)
    missing = [c for c in required if c not in columns]
    if missing:
        raise ValidationError(f"{name}: the header row lacks required columns: {', '.join(missing)}.",
                              [Problem(f"missing column {c!r}", file=name, row=1, column=c) for c in missing])
    known = set(required) | set(optional)
    unknown = [c for c in columns if c and c not in known]
    if unknown:
        raise ValidationError(f"{name}: unknown columns: {', '.join(unknown)}.",
                              [Problem(f"unknown column {c!r} (expected: {', '.join(sorted(known))})",
                                       file=name, row=1, column=c) for c in unknown])
    rows = []
    for number, values in raw_rows:
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue
        cells = {col: (values[i] if i < len(values) else None) for i, col in enumerate(columns) if col}
        rows.append(Row(number, cells))
    return Table(name, columns, rows)


def _read_csv(path: Path) -> tuple[list[str], Iterator[tuple[int, list[Any]]]]:
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration as exc:
        raise ValidationError(f"{path.name}: the file is empty.") from exc
    rows = [(reader.line_num, list(r)) for r in reader]
    return header, iter(rows)


def _read_xlsx(path: Path) -> tuple[list[str], Iterator[tuple[int, list[Any]]]]:
    from openpyxl import load_workbook

    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        ws = wb.worksheets[0]
        it = ws.iter_rows(values_only=True)
        try:
            header = [("" if v is None else str(v)) for v in next(it)]
        except StopIteration as exc:
            raise ValidationError(f"{path.name}: the first sheet is empty.") from exc
        rows = [(i, list(r)) for i, r in enumerate(it, start=2)]
    finally:
        wb.close()
    return header, iter(rows)


class RowErrors:
    """Collects the problems of one row."""

    def __init__(self, file: str, row: int) -> None:
        self.file, self.row = file, row
        self.problems: list[Problem] = []

    def add(self, column: str, message: str) -> None:
        self.problems.append(Problem(message, file=self.file, row=self.row, column=column))

    def date(self, row: Row, column: str, *, required: bool = False) -> dt.date | None:
        value = row.cells.get(column)
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        text = row.text(column)
        if not text:
            if required:
                self.add(column, "a date is required")
            return None
        try:
            return dt.date.fromisoformat(text[:10] if "T" in text or " " in text else text)
        except ValueError:
            self.add(column, f"{text!r} is not a date in the form YYYY-MM-DD")
            return None

    def decimal(self, row: Row, column: str) -> Decimal | None:
        value = row.cells.get(column)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return Decimal(str(value))
        text = row.text(column).replace(",", "").replace("$", "")
        if not text:
            return None
        try:
            return Decimal(text.rstrip("%"))
        except InvalidOperation:
            self.add(column, f"{row.text(column)!r} is not a number")
            return None

    def choice(self, row: Row, column: str, allowed: Sequence[str], default: str | None = None) -> str | None:
        text = row.text(column).casefold().replace(" ", "_").replace("-", "_")
        if not text:
            if default is None:
                self.add(column, f"a value is required (one of: {', '.join(allowed)})")
            return default
        if text not in allowed:
            self.add(column, f"{row.text(column)!r} is not one of: {', '.join(allowed)}")
            return None
        return text


def split_list(text: str) -> tuple[str, ...]:
    """``"A; B;;C "`` -> ``("A", "B", "C")``."""
    return tuple(p.strip() for p in re.split(r"[;|]", text) if p.strip())
