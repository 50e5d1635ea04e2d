"""The audit pack's Excel workbook (openpyxl, always in write-only mode so that a pack with
100,000 coverage rows streams to disk instead of sitting in memory).

Sheets, in a fixed order: Summary, then one sheet per section (certificates, coverage, validation
findings, permit checks, renewal history, audit trail). Every sheet has a styled, frozen header row,
an autofilter and sensible column widths; dates are real Excel dates and amounts real numbers.
Text is always a string cell; text a spreadsheet would take for a formula (customer-supplied names,
numbers, notes) gets Excel's quote prefix, by the one rule of :mod:`ecms_desktop.services.exports.safe_export`.

Speed: openpyxl builds a cell object and an XML element per cell (~1 ms per 14-column row even in
write-only mode), too slow for 100,000 coverage rows. So the section sheets' *data rows* are written
by :class:`FastRows` straight as SpreadsheetML (the same cells openpyxl would write: inline strings,
numbers, booleans, dates as serial numbers with openpyxl's own registered date/money/quote-prefix
styles) into a temporary file, and spliced into the sheet's ``<sheetData>`` when the package is
rewritten. openpyxl still writes everything else: the Summary sheet, header rows, styles, widths,
frozen panes, autofilters and page setup.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel
from openpyxl.workbook.child import INVALID_TITLE_REGEX
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from ecms_desktop.services.audit_pack.content import Column, PackContent, SectionTable, zip_date_time
from ecms_desktop.services.core.errors import Cancelled
from ecms_desktop.services.core.progress import CancelCheck
from ecms_desktop.services.exports.safe_export import (
    MAX_CELL_TEXT,
    MONEY_FORMAT,
    SheetWriter,
    clean_text,
    is_formula_like,
    new_workbook,
)


def _hex(color: str) -> str:
    color = color.strip().lstrip("#")
    return color.upper() if len(color) == 6 and all(c in "0123456789abcdefABCDEF" for c in color) else "1F4E79"


class _Styles:
    def __init__(self, brand: str) -> None:
        self.header_font = Font(bold=True, color="FFFFFF")
        self.header_fill = PatternFill("solid", fgColor=_hex(brand))
        self.header_align = Alignment(vertical="center", wrap_text=True)
        self.header_border = Border(bottom=Side(style="thin", color="000000"))
        self.title_font = Font(bold=True, size=16, color=_hex(brand))
        self.subtitle_font = Font(bold=True, size=12)
        self.label_font = Font(bold=True)
        self.note_font = Font(italic=True, color="7F7F7F")


class _SheetWriter(SheetWriter):
    """The safe sheet writer with the pack's header style."""

    def __init__(self, ws: WriteOnlyWorksheet, styles: _Styles) -> None:
        super().__init__(ws)
        self.styles = styles

    def header(self, titles: Sequence[str], **style: Any) -> None:
        s = self.styles
        super().header(titles, **(style or dict(font=s.header_font, fill=s.header_fill, alignment=s.header_align,
                                                border=s.header_border)))


#: Characters that need attention in cell text: XML escapes, characters XML 1.0 cannot carry.
_SPECIAL = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_text(text: str) -> str:
    """Cell text as XML character data (what lxml writes for openpyxl: ``&amp; &lt; &gt; &#13;``)."""
    text = _NOT_XML.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def _number(value: Any) -> str:
    """A number as openpyxl writes it (``%.16g``; ints exactly when they fit)."""
    if type(value) is int and -10**15 < value < 10**15:
        return str(value)
    number = float(value)
    if math.isnan(number) or math.isinf(number):
        return ""
    return format(number, ".16g")


class FastRows:
    """Writes the data rows of one section sheet as SpreadsheetML ``<row>`` elements into a file.

    Cell for cell what :class:`_SheetWriter` gets openpyxl to write (the workbook tests and
    ``tests/services/audit_pack/test_audit_pack_xlsx_rows.py`` hold the two to the same result): text as inline
    strings, formula-like text with the quote prefix, booleans, numbers, money with ``#,##0.00``,
    dates and date-times as Excel serial numbers with their formats. The style ids come from
    openpyxl's own style table for this workbook, so ``styles.xml`` stays openpyxl's.
    """

    def __init__(self, ws: WriteOnlyWorksheet, styles: _Styles, columns: Sequence[Column], target: Path,
                 first_row: int = 2) -> None:
        self.columns = tuple(columns)
        self.letters = tuple(get_column_letter(i) for i in range(1, len(self.columns) + 1))
        self.money = tuple(c.kind == "money" for c in self.columns)
        self.row = first_row - 1
        self.rows = 0
        self.path = target
        self._file = target.open("w", encoding="utf-8", newline="")
        self._buffer: list[str] = []
        probe = _SheetWriter(ws, styles)
        self.s_date = WriteOnlyCell(ws, value=dt.date(2000, 1, 1)).style_id
        self.s_datetime = probe.value(dt.datetime(2000, 1, 1), "datetime").style_id
        money = WriteOnlyCell(ws, value=Decimal(1))
        money.number_format = MONEY_FORMAT
        self.s_money = money.style_id
        self.s_quoted = probe.text_cell("=").style_id
        self._dates: dict[dt.date, str] = {}
        self._epoch = ws.parent.epoch

    def _text(self, ref: str, text: str) -> str:
        style = ""
        if is_formula_like(text):
            style = f' s="{self.s_quoted}"'
        if len(text) > MAX_CELL_TEXT or _SPECIAL.search(text):
            text = clean_text(text)
            if not text:
                return f'<c r="{ref}"{style} t="inlineStr"></c>'
            text = _xml_text(text)
        elif not text:
            return f'<c r="{ref}"{style} t="inlineStr"></c>'
        space = ' xml:space="preserve"' if text[0].isspace() or text[-1].isspace() else ""
        return f'<c r="{ref}"{style} t="inlineStr"><is><t{space}>{text}</t></is></c>'

    def _serial(self, value: dt.date) -> str:
        found = self._dates.get(value)
        if found is None:
            found = self._dates[value] = _number(to_excel(value, self._epoch))
        return found

    def append(self, values: Sequence[Any]) -> None:
        self.row += 1
        r = self.row
        out = [f'<row r="{r}">']
        add = out.append
        for i, value in enumerate(values[: len(self.letters)]):
            if value is None:
                continue
            ref = f"{self.letters[i]}{r}"
            kind = type(value)
            if kind is str:
                add(self._text(ref, value))
            elif kind is bool:
                add(f'<c r="{ref}" t="b"><v>{int(value)}</v></c>')
            elif kind is int:
                add(f'<c r="{ref}" t="n"><v>{_number(value)}</v></c>')
            elif kind is Decimal or kind is float:
                style = f' s="{self.s_money}"' if self.money[i] else ""
                add(f'<c r="{ref}"{style} t="n"><v>{_number(value)}</v></c>')
            elif kind is dt.date:
                add(f'<c r="{ref}" s="{self.s_date}" t="n"><v>{self._serial(value)}</v></c>')
            elif isinstance(value, dt.datetime):
                if value.tzinfo is not None:
                    value = value.astimezone(dt.UTC).replace(tzinfo=None)
                serial = _number(to_excel(value.replace(microsecond=0), self._epoch))
                add(f'<c r="{ref}" s="{self.s_datetime}" t="n"><v>{serial}</v></c>')
            elif isinstance(value, dt.date):
                add(f'<c r="{ref}" s="{self.s_date}" t="n"><v>{self._serial(value)}</v></c>')
            elif isinstance(value, bool):
                add(f'<c r="{ref}" t="b"><v>{int(value)}</v></c>')
            elif isinstance(value, int | float | Decimal):
                style = f' s="{self.s_money}"' if self.money[i] and not isinstance(value, int) else ""
                add(f'<c r="{ref}"{style} t="n"><v>{_number(value)}</v></c>')
            else:  # enums and other objects: their text
                add(self._text(ref, str(value)))
        add("</row>")
        self._buffer.append("".join(out))
        self.rows += 1
        if len(self._buffer) >= 1000:
            self._file.write("".join(self._buffer))
            self._buffer.clear()

    def close(self) -> None:
        if not self._file.closed:
            self._file.write("".join(self._buffer))
            self._buffer.clear()
            self._file.close()


def rewrite_package(source: Path, target: Path, generated_at: dt.datetime,
                    rows: dict[str, Path] | None = None) -> None:
    """Copy the .xlsx ``source`` to ``target`` deterministically (every entry dated ``generated_at``,
    the document's modified time set to it) and splice each ``rows[entry]`` file of ``<row>`` elements
    in just before that sheet's ``</sheetData>``."""
    rows = rows or {}
    stamp = zip_date_time(generated_at)
    iso = generated_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                              rb"\g<1>" + iso.encode() + rb"\g<2>", data)
            info = zipfile.ZipInfo(item.filename, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            extra = rows.get(item.filename)
            if extra is None:
                dst.writestr(info, data)
                continue
            cut = data.rfind(b"</sheetData>")
            if cut < 0:
                raise ValueError(f"{item.filename}: no <sheetData> to put the rows in")
            with dst.open(info, "w", force_zip64=True) as out, extra.open("rb") as more:
                out.write(data[:cut])
                shutil.copyfileobj(more, out, 1 << 20)
                out.write(data[cut:])


def sheet_title(title: str, taken: set[str]) -> str:
    base = INVALID_TITLE_REGEX.sub("_", title)[:31] or "Sheet"
    name, n = base, 1
    while name.casefold() in taken:
        n += 1
        suffix = f" ({n})"
        name = base[: 31 - len(suffix)] + suffix
    taken.add(name.casefold())
    return name


def _prepare(ws: WriteOnlyWorksheet, columns: Sequence[Column]) -> None:
    for i, col in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(col.width, min(len(col.title) + 2, 40))
    ws.freeze_panes = "A2"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_title_rows = "1:1"


def write_workbook(path: Path, content: PackContent, *, cancel: CancelCheck | None = None,
                   keep_for_pdf: Iterable[str] | None = None) -> dict[str, tuple[SectionTable, list[Sequence[Any]]]]:
    """Write ``audit-pack.xlsx`` (deterministic: its parts are dated ``content.generated_at``).
    Returns the rows of the sections that also go into the PDF appendix (those marked ``in_pdf``),
    since section rows are streamed only once."""
    cancel = cancel or (lambda: False)
    styles = _Styles(content.company.brand_color)
    wb = new_workbook()
    wb.properties.creator = "ECMS Desktop"
    wb.properties.title = f"Exemption certificate audit pack - {content.company.legal_name}"
    wb.properties.created = content.generated_at.astimezone(dt.UTC).replace(tzinfo=None)
    wb.properties.modified = wb.properties.created
    taken: set[str] = set()
    summary_ws = wb.create_sheet(sheet_title("Summary", taken))
    wanted = set(keep_for_pdf) if keep_for_pdf is not None else {t.key for t in content.sections if t.in_pdf}
    kept: dict[str, tuple[SectionTable, list[Sequence[Any]]]] = {}
    counts: list[tuple[str, str, int]] = []
    scratch = Path(tempfile.mkdtemp(prefix=".xlsx-rows-", dir=path.parent))
    try:
        fast: list[tuple[WriteOnlyWorksheet, FastRows]] = []
        for index, table in enumerate(content.sections):
            ws = wb.create_sheet(sheet_title(table.title, taken))
            _prepare(ws, table.columns)
            w = _SheetWriter(ws, styles)
            w.header([c.title for c in table.columns])
            keep: list[Sequence[Any]] | None = [] if table.key in wanted else None
            writer = FastRows(ws, styles, table.columns, scratch / f"sheet-{index}.xml", first_row=2)
            fast.append((ws, writer))
            try:
                for n, row in enumerate(table.rows):
                    if n % 2000 == 0 and cancel():
                        raise Cancelled("The audit pack was cancelled; nothing was kept.")
                    writer.append(row)
                    if keep is not None:
                        keep.append(row)
            finally:
                writer.close()
            rows = writer.rows
            last = get_column_letter(len(table.columns))
            ws.auto_filter.ref = f"A1:{last}{max(rows + 1, 2)}"
            counts.append((ws.title, table.title, rows))
            if keep is not None:
                kept[table.key] = (table, keep)
        _write_summary(summary_ws, styles, content, counts)
        plain = scratch / "openpyxl.xlsx"
        wb.save(plain)
        partial = path.with_name(path.name + ".partial")
        rewrite_package(plain, partial, content.generated_at,
                        {ws.path.lstrip("/"): writer.path for ws, writer in fast})
        os.replace(partial, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return kept


def _write_summary(ws: WriteOnlyWorksheet, styles: _Styles, content: PackContent,
                   sheets: Sequence[tuple[str, str, int]]) -> None:
    widths = (34, 64, 28, 10, 40)
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A4"
    # Printed, the summary fits the page width and long values wrap instead of running off the page.
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    wrap = Alignment(vertical="top", wrap_text=True)
    w = _SheetWriter(ws, styles)
    sel = content.selection
    company = content.company
    w.raw([w.text_cell(company.legal_name, font=styles.title_font)])
    w.raw([w.text_cell("Exemption certificate audit pack", font=styles.subtitle_font)])
    w.raw([w.text_cell(f"Period {sel.date_from.isoformat()} to {sel.date_to.isoformat()}", font=styles.note_font)])
    w.raw([])

    def field(label: str, value: Any, kind: str = "text") -> None:
        is_text = kind == "text" and isinstance(value, str)
        shown = w.text_cell(value, alignment=wrap) if is_text else w.value(value, kind)
        w.raw([w.text_cell(label, font=styles.label_font, alignment=wrap), shown])

    field("Company", company.name)
    if company.address:
        field("Address", company.address.replace("\n", ", "))
    if company.registrations:
        field("Company registrations", ", ".join(f"{s} {n}" for s, n in company.registrations))
    field("Period from", sel.date_from, "date")
    field("Period to", sel.date_to, "date")
    field("States", ", ".join(sel.states) if sel.states else "All states")
    field("Customers", ", ".join(sel.customers) if sel.customers else "All customers")
    field("Review states (held during the period)", ", ".join(sel.review_states))
    field("Selection", "Certificates whose validity (effective or signed date through each state line's "
                       "expiry) overlaps the period in a selected state and that held a selected review "
                       "state at some time during that overlap. Review history is taken from the "
                       "audit trail, so certificates expired or archived since are included where they "
                       "were in force.")
    field("Certificates", len(content.certificates), "int")
    field("Certificate state lines", sum(len(c.lines) for c in content.certificates), "int")
    field("Generated at (UTC)", content.generated_at, "datetime")
    field("Program version", f"ECMS Desktop {content.program_version}")
    field("Rules pack version", content.rules_version)
    field("Database", content.database)
    field("Integrity", "Every file of the pack and its SHA-256 is listed in manifest.json and SHA256SUMS, "
                       "with the head of the audit trail at generation time; check with "
                       "`ecms audit-pack verify`.")
    w.raw([])
    w.raw([w.text_cell("Counts by state and status", font=styles.subtitle_font)])
    head = dict(font=styles.header_font, fill=styles.header_fill, alignment=styles.header_align)
    w.raw([w.text_cell(t, **head) for t in ("State", "Status at end of period", "During the period", "Lines")])
    for state, status, in_force, n in content.counts_by_state_status():
        w.raw([state, status, in_force, n])
    if not content.certificates:
        w.raw([w.text_cell("No certificate matches this selection.", font=styles.note_font)])
    w.raw([])
    w.raw([w.text_cell("Sheets", font=styles.subtitle_font)])
    w.raw([w.text_cell(t, **head) for t in ("Sheet", "Contents", "Rows")])
    for name, title, rows in sheets:
        w.raw([name, title, rows])
