"""Reading .csv and .xlsx files into rows with spreadsheet row numbers, and parsing their cells.

Shared by every import (certificates, transactions, permit registries) so that each reports bad
input the same way: file, row (as the spreadsheet shows it), column, and what is wrong; and so that
none of them misreads a file silently:

- text files are read as UTF-8 (with or without a byte-order mark), UTF-16 with a byte-order mark,
  or Windows-1252 (what Excel's plain "CSV" writes on US Windows); anything else is refused by name;
- a column that appears twice is refused (no value is silently dropped), and so is a row with values
  outside the named columns (an unquoted comma shifts every value after it);
- a workbook is read from its first *visible* sheet; a cell formatted as a percentage is read as the
  percentage it shows (``50%``, not ``0.5``); malformed or hostile XML is refused with a message;
- numbers are plain decimals: a comma is a thousands separator only between groups of three digits,
  so ``5,5`` is refused instead of read as 55; dates are ISO dates, never a date followed by junk.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ecms_desktop.services.core.errors import DocumentError, Problem, ValidationError
from ecms_desktop.services.core.user_files import read_user_file

#: Largest spreadsheet or CSV file read into memory by :func:`read_table`.
MAX_TABLE_BYTES = 512 * 2**20
#: Largest total a workbook's parts may expand to (a zip bomb is refused before it is parsed).
MAX_WORKBOOK_EXPANDED_BYTES = 2 * 2**30

#: The encodings a text file is read in (their names for messages).
ENCODINGS = "UTF-8 (with or without a byte-order mark), UTF-16 with a byte-order mark, or Windows-1252"


def header_key(text: str) -> str:
    """``" Customer Number "`` -> ``customer_number``."""
    return re.sub(r"[^a-z0-9]+", "_", str(text).strip().casefold()).strip("_")


def column_letter(index: int) -> str:
    """0 -> ``A``, 26 -> ``AA`` (how a spreadsheet names the column)."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


@dataclass(frozen=True)
class Row:
    """One data row: its row number in the file (header = row 1), its cells by column key, and what is
    wrong with its layout (values outside the named columns)."""

    number: int
    cells: dict[str, Any]
    layout_problems: tuple[str, ...] = field(default=())

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
    #: How the file was read: the text encoding of a CSV file, or the sheet of a workbook.
    source: str = ""


# -- reading files ----------------------------------------------------------------------------------


def decode_text(data: bytes, name: str) -> tuple[str, str]:
    """The text of a CSV file and the encoding it was read in; ValidationError naming the problem for
    anything but UTF-8, UTF-16 with a byte-order mark, or Windows-1252."""
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise ValidationError(f"{name}: is UTF-32 text, which is not read. Save it as UTF-8 "
                              "(in Excel: \"CSV UTF-8 (Comma delimited)\").")
    for bom, codec, label in ((b"\xef\xbb\xbf", "utf-8", "UTF-8"), (b"\xff\xfe", "utf-16-le", "UTF-16"),
                              (b"\xfe\xff", "utf-16-be", "UTF-16")):
        if data.startswith(bom):
            try:
                return data[len(bom):].decode(codec), label
            except UnicodeDecodeError as exc:
                raise ValidationError(f"{name}: starts as {label} text but is not valid {label} "
                                      f"({_where(data, exc.start)}). Save it again as UTF-8.") from exc
    sample = data[:65536]
    if sample.count(b"\x00") > len(sample) // 4:
        raise ValidationError(f"{name}: looks like UTF-16 or UTF-32 text without a byte-order mark, which "
                              "cannot be read reliably. Save it as UTF-8 (in Excel: \"CSV UTF-8 (Comma "
                              "delimited)\").")
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError as first:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise ValidationError(
                f"{name}: is not {ENCODINGS} text (byte 0x{data[exc.start]:02X} at {_where(data, exc.start)} "
                "is none of them). Save it as UTF-8 (in Excel: \"CSV UTF-8 (Comma delimited)\").") from exc
        garbled = _garbled(text)
        if garbled is not None:
            raise ValidationError(
                f"{name}: is not {ENCODINGS} text: read as Windows-1252 it says {garbled!r} "
                f"(the first byte that is not UTF-8 is at {_where(data, first.start)}); it is probably in "
                "another encoding. Save it as UTF-8 (in Excel: \"CSV UTF-8 (Comma delimited)\").") from first
        return text, "Windows-1252"


def _where(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    return f"line {line}"


#: Runs of four or more non-ASCII characters: Windows-1252 text (Western European names) has accented
#: letters between plain ones; Cyrillic, Greek, Chinese or Japanese bytes read as Windows-1252 give runs.
_GARBLED = re.compile(r"[^\x00-\x7f\s]{4,}")


def _garbled(text: str) -> str | None:
    found = _GARBLED.search(text)
    return None if found is None else text[max(0, found.start() - 10):found.end() + 10].strip()


def read_table(path: Path, *, required: Sequence[str], optional: Sequence[str] = (),
               other_columns: bool = False) -> Table:
    """Read a .csv or .xlsx file; refuse it (ValidationError) when unreadable or its header is wrong
    (a required column missing, an unknown column - unless ``other_columns`` accepts any other
    column, as a registry's own file has - or a column twice)."""
    name = path.name
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".xlsx", ".xlsm"):
        raise ValidationError(f"{name}: not a .csv or .xlsx file.")
    try:
        data = read_user_file(path, max_bytes=MAX_TABLE_BYTES)
    except DocumentError as exc:
        raise ValidationError(f"{exc.message}.") from exc
    if suffix == ".csv":
        text, source = decode_text(data, name)
        header, raw_rows = _read_csv(text, name)
    else:
        header, raw_rows, source = _read_xlsx(data, name)
    columns = tuple(header_key(h) if h is not None else "" for h in header)
    missing = [c for c in required if c not in columns]
    if missing:
        raise ValidationError(f"{name}: the header row lacks required columns: {', '.join(missing)}.",
                              [Problem(f"missing column {c!r}", file=name, row=1, column=c) for c in missing])
    known = set(required) | set(optional)
    unknown = [] if other_columns else [c for c in columns if c and c not in known]
    if unknown:
        raise ValidationError(f"{name}: unknown columns: {', '.join(unknown)}.",
                              [Problem(f"unknown column {c!r} (expected: {', '.join(sorted(known))})",
                                       file=name, row=1, column=c) for c in unknown])
    positions: dict[str, list[int]] = {}
    for i, col in enumerate(columns):
        if col:
            positions.setdefault(col, []).append(i)
    twice = {c: p for c, p in positions.items() if len(p) > 1}
    if twice:
        raise ValidationError(
            f"{name}: columns appear more than once: {', '.join(twice)}. Keep one of each, so that no value "
            "is silently dropped.",
            [Problem(f"column {c!r} appears {len(p)} times (columns {', '.join(column_letter(i) for i in p)})",
                     file=name, row=1, column=c) for c, p in twice.items()])
    rows = []
    for number, values in raw_rows:
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue
        cells = {col: (values[i] if i < len(values) else None) for i, col in enumerate(columns) if col}
        rows.append(Row(number, cells, layout_problems(values, columns)))
    return Table(name, columns, rows, source)


def layout_problems(values: Sequence[Any], columns: Sequence[str]) -> tuple[str, ...]:
    """What is wrong with where a row's values stand: values under no column name, or beyond the
    header (an unquoted comma in a value shifts the rest of the row)."""
    stray = [i for i, v in enumerate(values)
             if (i >= len(columns) or not columns[i]) and v is not None and str(v).strip()]
    if not stray:
        return ()
    many = len(stray) > 1
    return (f"values in column{'s' if many else ''} {', '.join(column_letter(i) for i in stray[:10])}, which "
            f"{'have' if many else 'has'} no header (an unquoted comma in a value?); the row is not read",)


def _read_csv(text: str, name: str) -> tuple[list[str], Iterator[tuple[int, list[Any]]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
        # Row numbers as a spreadsheet shows them: a value with a line break is still one row.
        rows = [(number, values) for number, values in enumerate(reader, start=2)]
    except StopIteration as exc:
        raise ValidationError(f"{name}: the file is empty.") from exc
    except csv.Error as exc:
        raise ValidationError(f"{name}: cannot be read as CSV (row {reader.line_num}: {exc}).") from exc
    return header, iter(rows)


def _read_xlsx(data: bytes, name: str) -> tuple[list[str], Iterator[tuple[int, list[Any]]], str]:
    """The first visible sheet of a workbook; cells formatted as percentages are read as they show."""
    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
        if expanded > MAX_WORKBOOK_EXPANDED_BYTES:
            raise ValidationError(f"{name}: the workbook expands to {expanded / 2**30:,.1f} GB, more than the "
                                  f"{MAX_WORKBOOK_EXPANDED_BYTES // 2**30} GB limit; it is not read.")
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except ValidationError:
        raise
    except Exception as exc:  # corrupt zip or XML, entity attacks (refused by defusedxml), missing parts
        raise ValidationError(f"{name}: cannot be read as an Excel workbook ({_xml_reason(exc)}).") from exc
    try:
        visible = [ws for ws in wb.worksheets if getattr(ws, "sheet_state", "visible") == "visible"]
        if not visible:
            raise ValidationError(f"{name}: the workbook has no visible worksheet.")
        ws = visible[0]
        try:
            first = next(ws.iter_rows(min_row=1, max_row=1), ())
            header = [("" if c.value is None else str(c.value)) for c in first]
            while header and not header[-1].strip():
                header.pop()
            if not header:
                raise ValidationError(f"{name}: the sheet {ws.title!r} is empty.")
            width = len(header)
            rows = [(number, [_shown(cell) for cell in cells])
                    for number, cells in enumerate(ws.iter_rows(min_row=2, max_col=width), start=2)]
        except ValidationError:
            raise
        except Exception as exc:  # malformed sheet XML
            raise ValidationError(f"{name}: the sheet {ws.title!r} cannot be read ({_xml_reason(exc)}).") from exc
        return header, iter(rows), f"sheet {ws.title!r}"
    finally:
        wb.close()


def _shown(cell: Any) -> Any:
    """A cell's value as the spreadsheet shows it: a number formatted as a percentage (shown as ``50%``,
    stored as 0.5) becomes the text ``"50%"``."""
    value = cell.value
    if isinstance(value, int | float) and not isinstance(value, bool) and "%" in (cell.number_format or ""):
        return f"{(Decimal(str(value)) * 100).normalize():f}%"
    return value


def _xml_reason(exc: BaseException) -> str:
    """Why a workbook could not be read, from the innermost error: openpyxl wraps the parser's."""
    from defusedxml import DefusedXmlException

    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for error in chain:
        if isinstance(error, DefusedXmlException):
            return ("its XML declares entities or a document type, which a workbook never needs (the shape of an "
                    "XML bomb or external-entity attack); it was refused without expanding them")
    return _first_line(chain[-1])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."


# -- parsing cells ----------------------------------------------------------------------------------

#: A plain decimal: ASCII digits, commas only between groups of three, an optional exponent.
_NUMBER = re.compile(r"[+-]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def parse_number(text: str, *, percent: bool = False, money: bool = False) -> Decimal:
    """A decimal from text a person or a spreadsheet wrote: ``1,250.50``, ``-3``, ``1e3``; with
    ``percent`` a trailing ``%``, with ``money`` a leading ``$``. ValueError says what is wrong (a comma
    not between groups of three digits is a decimal comma, refused rather than misread)."""
    raw = text.strip()
    if percent and raw.endswith("%"):
        raw = raw[:-1].rstrip()
    if money:
        raw = re.sub(r"^([+-]?)\s*\$\s*", r"\1", raw)
    if not any(ch.isdigit() for ch in raw) or not _NUMBER.fullmatch(raw):
        if re.fullmatch(r"[+-]?[0-9]+,[0-9]+", raw):
            raise ValueError(f"{text.strip()!r} is not a number: a comma here looks like a decimal comma; "
                             f"write {raw.replace(',', '.')!r} (a comma only separates thousands: 1,250.50)")
        raise ValueError(f"{text.strip()!r} is not a number")
    try:
        return Decimal(raw.replace(",", ""))
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only valid decimals
        raise ValueError(f"{text.strip()!r} is not a number") from exc


def parse_iso_date(text: str) -> dt.date:
    """An ISO date (``2026-03-15``), or an ISO date and time whose date is taken; ValueError otherwise
    (``2026-03-15 garbage`` is not a date)."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text).date()
    except ValueError:
        raise ValueError(f"{text!r} is not a date in the form YYYY-MM-DD") from None


class RowErrors:
    """Collects the problems of one row."""

    def __init__(self, file: str, row: int) -> None:
        self.file, self.row = file, row
        self.problems: list[Problem] = []

    @classmethod
    def for_row(cls, file: str, row: Row) -> RowErrors:
        """The row's problems, starting with those of its layout (values outside the named columns)."""
        errs = cls(file, row.number)
        for message in row.layout_problems:
            errs.add("", message)
        return errs

    def add(self, column: str, message: str) -> None:
        self.problems.append(Problem(message, file=self.file, row=self.row, column=column or None))

    def has(self, column: str) -> bool:
        return any(p.column == column for p in self.problems)

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
            return parse_iso_date(text)
        except ValueError as exc:
            self.add(column, str(exc))
            return None

    def decimal(self, row: Row, column: str, *, percent: bool = False, money: bool = False) -> Decimal | None:
        value = row.cells.get(column)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return Decimal(str(value))
        text = row.text(column)
        if not text:
            return None
        try:
            return parse_number(text, percent=percent, money=money)
        except ValueError as exc:
            self.add(column, str(exc))
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
