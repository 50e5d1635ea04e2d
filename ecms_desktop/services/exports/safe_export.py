"""Spreadsheets and CSV files that are safe to open: the one rule, and the writers, for every export.

Text that came from customers or an ERP (names, customer and certificate numbers, invoice numbers,
notes) can begin with a character that Excel, LibreOffice or Google Sheets take as the start of a
formula (``=``, ``+``, ``-``, ``@``) or that some of them skip before looking (tab, carriage
return). Opened by an accountant, ``=HYPERLINK("http://...","x")`` would become a live link or worse.
Every ``.xlsx`` and ``.csv`` file the program writes goes through this module, under one rule
(:func:`is_formula_like`):

* in a workbook such text is a string cell with Excel's quote prefix: shown and kept exactly as
  typed, never evaluated (:class:`SheetWriter`; the audit pack's fast row writer uses the same rule);
* a CSV file has no cell types, so such text gets a leading apostrophe, the usual defence (OWASP's
  advice for CSV injection), which spreadsheet programs show as text (:class:`CsvWriter`).

Values keep their types: numbers stay numbers (a negative amount is a number, not text), dates stay
dates, and only *text* is ever escaped.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Sequence
from decimal import Decimal
from enum import Enum
from typing import Any, TextIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Protection
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

#: Leading characters that spreadsheet programs read as the start of a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: Excel's limit on the text of one cell.
MAX_CELL_TEXT = 32767
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
MONEY_FORMAT = "#,##0.00"


def is_formula_like(text: str) -> bool:
    """Whether a spreadsheet program would take ``text`` for a formula (the one escaping rule)."""
    return text.startswith(FORMULA_TRIGGERS)


def clean_text(value: str) -> str:
    """Text safe for the XML inside .xlsx (control characters removed, length capped)."""
    text = ILLEGAL_CHARACTERS_RE.sub("", value)
    return text if len(text) <= MAX_CELL_TEXT else text[: MAX_CELL_TEXT - 1] + "…"


# ================================================================================ CSV


def csv_value(value: Any) -> str:
    """One CSV field: formula-like text gets a leading apostrophe; numbers, booleans, dates and
    date-times are written as such (dates ISO, aware times in UTC) and never escaped."""
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if is_formula_like(value) else value
    if isinstance(value, bool | int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Enum):
        return csv_value(value.value)
    return csv_value(str(value))


class CsvWriter:
    """``csv.writer`` whose every field passes through :func:`csv_value`. Rows end in CR LF (RFC 4180,
    what Excel writes): the csv module quotes a field only for the characters of its line ending, so
    with a bare LF a carriage return inside a field would split the row for the reader."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\r\n")

    def writerow(self, values: Iterable[Any]) -> None:
        self._writer.writerow([csv_value(v) for v in values])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


# ================================================================================ Excel


def new_workbook() -> Workbook:
    """An empty write-only workbook (rows stream to disk); fill it with :class:`SheetWriter`."""
    return Workbook(write_only=True)


class SheetWriter:
    """Appends rows to a write-only sheet, turning values into typed cells: every text a string cell
    (never a formula or an error value), formula-like text with the quote prefix, numbers as numbers
    (``kind="money"``: ``#,##0.00``), dates and date-times as Excel dates (aware times in UTC)."""

    def __init__(self, ws: WriteOnlyWorksheet) -> None:
        self.ws, self.rows = ws, 0

    def text_cell(self, text: str, **style: Any) -> WriteOnlyCell:
        cell = WriteOnlyCell(self.ws, value=clean_text(text))
        cell.data_type = "s"  # a string is a string: never a formula or an error value
        if is_formula_like(text):
            cell.quotePrefix = True
            cell.protection = Protection(locked=True)
        for key, value in style.items():
            setattr(cell, key, value)
        return cell

    def value(self, value: Any, kind: str = "text", **style: Any) -> Any:
        """The cell for ``value``; ``style`` (font, alignment, ...) is applied to it."""
        if value is None:
            return None
        if isinstance(value, str):
            return self.text_cell(value, **style)
        if isinstance(value, bool):
            cell = WriteOnlyCell(self.ws, value=value)
        elif isinstance(value, dt.datetime):
            if value.tzinfo is not None:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
            cell = WriteOnlyCell(self.ws, value=value.replace(microsecond=0))
            cell.number_format = DATETIME_FORMAT
        elif isinstance(value, dt.date):
            cell = WriteOnlyCell(self.ws, value=value)  # openpyxl gives plain dates the yyyy-mm-dd format
        elif isinstance(value, Decimal | float) and kind == "money":
            cell = WriteOnlyCell(self.ws, value=value)
            cell.number_format = MONEY_FORMAT
        elif isinstance(value, int | float | Decimal):
            cell = WriteOnlyCell(self.ws, value=value)
        elif isinstance(value, Enum):
            return self.value(value.value, kind, **style)
        else:
            return self.text_cell(str(value), **style)
        for key, setting in style.items():
            setattr(cell, key, setting)
        return cell

    def header(self, titles: Sequence[str], **style: Any) -> None:
        self.ws.append([self.text_cell(t, **style) for t in titles])
        self.rows += 1

    def append(self, row: Sequence[Any], kinds: Sequence[str] = (), **style: Any) -> None:
        """One row; ``kinds[i]`` is column i's kind (``money``, ...), ``style`` applies to every cell."""
        self.ws.append([self.value(v, kinds[i] if i < len(kinds) else "text", **style) for i, v in enumerate(row)])
        self.rows += 1

    def raw(self, row: Sequence[Any]) -> None:
        """A row of ready cells (from :meth:`text_cell` / :meth:`value`) or ``None``; any other value
        still goes through :meth:`value`."""
        self.ws.append([v if v is None or isinstance(v, Cell) else self.value(v) for v in row])
        self.rows += 1
