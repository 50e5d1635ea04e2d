"""The pages of the audit pack's PDF book that this program draws itself, with reportlab: the cover
with the company's branding and the scope, the table of contents, a summary page per customer and
state, the appendices (validation findings, permit checks, the audit trail), and the placeholder page
for a file that could not be included; their page size, styles and tables.

Each part is built on its own, in invariant mode (the same content gives the same bytes);
:mod:`ecms_desktop.services.audit_pack.pdf` numbers their pages and puts them together with the
certificates' own pages.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import letter
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    KeepTogether,
    LongTable,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)
from reportlab.platypus.doctemplate import NextPageTemplate

from ecms_desktop.services.audit_pack.book_plan import DocPlan, Group
from ecms_desktop.services.audit_pack.content import PackContent, SectionTable
from ecms_desktop.services.documents.pdf_text import draw_string, fits_base_font, markup, register_fonts

PAGE = letter
MARGIN = 0.7 * inch
PLACEHOLDER_REASON_LIMIT = 600


def _color(hex_color: str) -> colors.Color:
    try:
        return colors.HexColor(hex_color if hex_color.startswith("#") else "#" + hex_color)
    except Exception:
        return colors.HexColor("#1F4E79")


#: The most lines one table cell may take in the book (a heading: HEADING_LINES); longer text is cut
#: there with an ellipsis, so that no value can outgrow a page. The workbook has every value whole.
MAX_CELL_LINES = 30
HEADING_LINES = 3
#: The frame's width, for paragraphs outside tables.
BODY_WIDTH = PAGE[0] - 2 * MARGIN


def shown_text(text: str, width: float, size: float, lines: int = MAX_CELL_LINES) -> str:
    """``text`` cut with an ellipsis to what surely fits in ``lines`` lines ``width`` points wide, every
    character counted as wide as the font size (the widest Latin and CJK characters are)."""
    limit = max(int(width / size), 1) * lines
    pieces = text.split("\n")
    if len(text) <= limit and len(pieces) <= lines:
        return text
    text = "\n".join(pieces[:lines])
    return text if len(text) <= limit and len(pieces) <= lines else text[: limit - 1].rstrip() + "…"


def _p(text: Any, style: ParagraphStyle, width: float = BODY_WIDTH, lines: int = MAX_CELL_LINES) -> Paragraph:
    """A paragraph of plain text in any script (see :mod:`ecms_desktop.services.documents.pdf_text`)."""
    shown = shown_text("" if text is None else str(text), width, style.fontSize, lines)
    return Paragraph(markup(shown, style.fontName), style)


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


class _Marker(Flowable):
    """Zero-size flowable recording the page it lands on."""

    def __init__(self, key: str, pages: dict[str, int]) -> None:
        super().__init__()
        self.key, self.pages = key, pages
        self.width = self.height = 0

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        return 0, 0

    def draw(self) -> None:
        self.pages[self.key] = self.canv.getPageNumber()


class Styles:
    """The book's paragraph styles, headings in the company's colour."""

    def __init__(self, brand: colors.Color) -> None:
        base = getSampleStyleSheet()
        self.body = ParagraphStyle("body", parent=base["BodyText"], fontName="Helvetica", fontSize=9, leading=11.5)
        self.small = ParagraphStyle("small", parent=self.body, fontSize=7.5, leading=9)
        self.cell = ParagraphStyle("cell", parent=self.body, fontSize=7.5, leading=9)
        self.head = ParagraphStyle("head", parent=self.cell, fontName="Helvetica-Bold", textColor=colors.white)
        self.h1 = ParagraphStyle("h1", parent=base["Heading1"], fontName="Helvetica-Bold", fontSize=18,
                                 leading=22, textColor=brand, spaceAfter=6)
        self.h2 = ParagraphStyle("h2", parent=base["Heading2"], fontName="Helvetica-Bold", fontSize=13,
                                 leading=16, textColor=brand, spaceBefore=6, spaceAfter=4)
        self.h3 = ParagraphStyle("h3", parent=base["Heading3"], fontName="Helvetica-Bold", fontSize=10.5,
                                 leading=13, spaceBefore=8, spaceAfter=3)
        self.toc = [ParagraphStyle(f"toc{i}", parent=self.body, leftIndent=14 * i, fontSize=10 - i,
                                   leading=13 - i, fontName="Helvetica-Bold" if i == 0 else "Helvetica")
                    for i in range(3)]


def _kv_table(rows: Sequence[tuple[str, Any]], styles: Styles, width: float, brand: colors.Color) -> Table:
    room = width - 1.7 * inch - 2 * CELL_PADDING

    def cell(v: Any) -> Any:
        text = _fmt(v)
        return _p(text, styles.cell, room) if len(text) > 75 or "\n" in text or not fits_base_font(text) else text

    data = [[k, cell(v)] for k, v in rows]
    t = Table(data, colWidths=[1.7 * inch, width - 1.7 * inch])
    t.setStyle(TableStyle([
        ("FONT", (0, 0), (0, -1), "Helvetica-Bold", 7.5), ("FONT", (1, 0), (1, -1), "Helvetica", 7.5),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#BFBFBF")),
        ("BACKGROUND", (0, 0), (0, -1), colors.HexColor("#F2F2F2")),
        ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
    ]))
    return t


#: Table cells' left and right padding (reportlab's default, used by every table here).
CELL_PADDING = 6


def _plain(text: str, font: str, size: float, width: float) -> bool:
    """Whether ``text`` can be a plain table cell instead of a Paragraph: one line that fits and
    that a Paragraph would draw the same (no newline, no doubled or edge spaces). Plain cells cost
    a fraction of a Paragraph's markup parse and line breaking, which dominate long tables."""
    return ("\n" not in text and len(text) < 200 and text == " ".join(text.split()) and fits_base_font(text)
            and stringWidth(text, font, size) <= width)


def _data_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[float], styles: Styles,
                brand: colors.Color) -> LongTable:
    data: list[list[Any]] = [[_p(c, styles.head) for c in columns]]
    font, size = styles.cell.fontName, styles.cell.fontSize
    room = [w - 2 * CELL_PADDING for w in widths]
    for row in rows:
        cells: list[Any] = []
        for i, v in enumerate(row):
            text = _fmt(v)
            cells.append(text if _plain(text, font, size, room[i]) else _p(text, styles.cell, room[i]))
        data.append(cells)
    t = LongTable(data, colWidths=list(widths), repeatRows=1)
    t.setStyle(TableStyle([
        ("FONT", (0, 1), (-1, -1), font, size, styles.cell.leading),
        ("TEXTCOLOR", (0, 1), (-1, -1), styles.cell.textColor),
        ("BACKGROUND", (0, 0), (-1, 0), brand),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.HexColor("#BFBFBF")),
        ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#F7F7F7")]),
        ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
    ]))
    return t


class Book:
    """The reportlab parts of the book for ``content``, laid out as ``groups`` plan: :meth:`head` (cover
    and contents), :meth:`summaries` and :meth:`appendix`; :meth:`entries` lists the contents entries."""

    def __init__(self, content: PackContent, groups: list[Group]) -> None:
        self.content = content
        self.groups = groups
        self.brand = _color(content.company.brand_color)
        register_fonts()
        self.styles = Styles(self.brand)
        self.width = PAGE[0] - 2 * MARGIN

    def _doc(self, buf: io.BytesIO, cover: bool) -> BaseDocTemplate:
        title = f"Exemption certificate audit pack - {self.content.company.legal_name}"
        doc = BaseDocTemplate(buf, pagesize=PAGE, leftMargin=MARGIN, rightMargin=MARGIN, topMargin=MARGIN,
                              bottomMargin=MARGIN, title=title, author=self.content.company.legal_name,
                              creator="ECMS Desktop", subject="Exemption certificates", invariant=1)
        frame = Frame(MARGIN, MARGIN, self.width, PAGE[1] - 2 * MARGIN, id="body")
        cover_frame = Frame(MARGIN, MARGIN, self.width, PAGE[1] - MARGIN - 2.25 * inch, id="cover")
        templates = [PageTemplate("body", [frame], onPage=self._header)]
        if cover:
            templates.insert(0, PageTemplate("cover", [cover_frame], onPage=self._cover_band))
        doc.addPageTemplates(templates)
        return doc

    def _cover_band(self, canv: Any, doc: Any) -> None:
        c = self.content.company
        canv.saveState()
        canv.setFillColor(self.brand)
        canv.rect(0, PAGE[1] - 2.0 * inch, PAGE[0], 2.0 * inch, stroke=0, fill=1)
        x = MARGIN
        if c.logo:
            try:
                img = ImageReader(io.BytesIO(c.logo))
                iw, ih = img.getSize()
                h = 1.1 * inch
                w = min(h * iw / max(ih, 1), 2.2 * inch)
                canv.setFillColor(colors.white)
                canv.roundRect(x - 4, PAGE[1] - 1.55 * inch - 4, w + 8, h + 8, 4, stroke=0, fill=1)
                canv.drawImage(img, x, PAGE[1] - 1.55 * inch, width=w, height=h, preserveAspectRatio=True,
                               mask="auto")
                x += w + 0.3 * inch
            except Exception:
                pass
        canv.setFillColor(colors.white)
        canv.setFont("Helvetica-Bold", 20)
        draw_string(canv, x, PAGE[1] - 0.9 * inch, shown_text(c.legal_name, 60 * 20, 20, 1), "Helvetica-Bold", 20)
        canv.setFont("Helvetica", 10)
        for i, part in enumerate(c.address.splitlines()[:3]):
            draw_string(canv, x, PAGE[1] - 1.15 * inch - 12 * i, shown_text(part, 90 * 10, 10, 1), "Helvetica", 10)
        canv.restoreState()

    def _header(self, canv: Any, doc: Any) -> None:
        canv.saveState()
        canv.setStrokeColor(self.brand)
        canv.setLineWidth(1.5)
        canv.line(MARGIN, PAGE[1] - MARGIN + 10, PAGE[0] - MARGIN, PAGE[1] - MARGIN + 10)
        canv.setFont("Helvetica", 7.5)
        canv.setFillColor(colors.HexColor("#595959"))
        sel = self.content.selection
        name = shown_text(self.content.company.legal_name, 70 * 7.5, 7.5, 1)
        draw_string(canv, MARGIN, PAGE[1] - MARGIN + 14, f"{name} - exemption certificate audit pack", "Helvetica",
                    7.5)
        canv.drawRightString(PAGE[0] - MARGIN, PAGE[1] - MARGIN + 14,
                             f"Period {sel.date_from.isoformat()} to {sel.date_to.isoformat()}")
        canv.restoreState()

    # -- front part: cover, contents, summaries

    def head(self, toc_numbers: dict[str, int] | None) -> bytes:
        """Cover and contents (built again once the final page numbers are known)."""
        st = self.styles
        story: list[Any] = []
        story += self._cover(st)
        story.append(NextPageTemplate("body"))
        story.append(PageBreak())
        story.append(Paragraph("Contents", st.h1))
        rows: list[list[Any]] = []
        row_styles: list[tuple[Any, ...]] = []
        title_width = self.width - 0.8 * inch
        for key, level, title in self.entries():
            if key in ("cover", "contents"):
                continue
            num = str(toc_numbers.get(key, 0)) if toc_numbers else "0000"
            style = st.toc[min(level - 1, 2)]
            r = len(rows)
            if _plain(title, style.fontName, style.fontSize, title_width - 2 * CELL_PADDING - style.leftIndent):
                rows.append([title, num])
                row_styles += [("FONT", (0, r), (0, r), style.fontName, style.fontSize, style.leading),
                               ("LEFTPADDING", (0, r), (0, r), CELL_PADDING + style.leftIndent)]
            else:
                rows.append([_p(title, style, title_width - 2 * CELL_PADDING - style.leftIndent, HEADING_LINES), num])
        toc = LongTable(rows or [[_p("(nothing selected)", st.body), ""]],
                        colWidths=[title_width, 0.8 * inch])
        toc.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("TOPPADDING", (0, 0), (-1, -1), 1),
                                 ("BOTTOMPADDING", (0, 0), (-1, -1), 1), ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                                 ("FONTSIZE", (1, 0), (1, -1), 9),
                                 ("LINEBELOW", (0, 0), (-1, -1), 0.2, colors.HexColor("#E0E0E0")), *row_styles]))
        story.append(toc)
        buf = io.BytesIO()
        self._doc(buf, cover=True).build(story)
        return buf.getvalue()

    def summaries(self) -> tuple[bytes, dict[str, int]]:
        """One summary per customer and state, each starting on a new page; ``marks`` says where."""
        marks: dict[str, int] = {}
        st = self.styles
        story: list[Any] = []
        for gi, group in enumerate(self.groups):
            if gi:
                story.append(PageBreak())
            story.append(_Marker(f"group:{gi}", marks))
            story += self._summary(group, gi, None)
        if self.groups:
            story.append(PageBreak())
        story.append(_Marker("end", marks))
        story.append(Paragraph("Appendices follow.", st.small))
        buf = io.BytesIO()
        self._doc(buf, cover=False).build(story)
        return buf.getvalue(), marks

    def _cover(self, st: Styles) -> list[Any]:
        c, sel = self.content.company, self.content.selection
        out: list[Any] = [Spacer(1, 0.2 * inch), Paragraph("Exemption certificate audit pack", st.h1),
                          _p(f"Sales-tax exemption and resale certificates held by {c.legal_name} for the period "
                             f"{sel.date_from.isoformat()} to {sel.date_to.isoformat()}.", st.body),
                          Spacer(1, 0.15 * inch)]
        counts = self.content.counts_by_state_status()
        rows = [
            ("Seller", c.legal_name), ("Address", c.address),
            ("Seller registrations", ", ".join(f"{s} {n}" for s, n in c.registrations) or "-"),
            ("Contact", c.reply_to_email or "-"),
            ("Period", f"{sel.date_from.isoformat()} to {sel.date_to.isoformat()}"),
            ("States", ", ".join(sel.states) or "All states"),
            ("Customers", ", ".join(sel.customers) or "All customers"),
            ("Review states", ", ".join(sel.review_states) + " (held at some time during the period)"),
            ("Certificates", f"{len(self.content.certificates)} certificates, "
                             f"{sum(len(x.lines) for x in self.content.certificates)} state lines"),
            ("Generated (UTC)", self.content.generated_at.strftime("%Y-%m-%d %H:%M:%S")),
            ("Prepared by", self.content.prepared_by or "-"),
            ("Program", f"ECMS Desktop {self.content.program_version}; rules pack {self.content.rules_version}"),
        ]
        out.append(_kv_table(rows, st, self.width, self.brand))
        if counts:
            out.append(Paragraph("Certificate lines by state and status", st.h3))
            out.append(_data_table(["State", "Status at end of period", "During the period", "Lines"],
                                   counts, [0.7 * inch, 1.9 * inch, self.width - 3.4 * inch, 0.8 * inch],
                                   st, self.brand))
        out.append(Spacer(1, 0.15 * inch))
        out.append(_p("Contents of this pack: this book; audit-pack.xlsx with the same data in sortable sheets; "
                      "the original certificate files, byte for byte, under certificates/; manifest.json and "
                      "SHA256SUMS with every file's SHA-256 and the head of the tamper-evident audit trail at "
                      "generation time. The pages of each certificate in this book are copies of the stored "
                      "files with a page number added.", st.small))
        return out

    def _summary(self, group: Group, gi: int, nums: dict[str, int] | None) -> list[Any]:
        st = self.styles
        out: list[Any] = [_p(group.label, st.h1, lines=HEADING_LINES), _p(f"State: {group.state}", st.h2)]
        docs_by_cert: dict[int, list[DocPlan]] = {}
        for d in group.docs:
            docs_by_cert.setdefault(d.cert.id, []).append(d)
        for cert, line in group.items:
            title = f"Certificate {cert.id}: {cert.form_code}"
            if cert.certificate_number:
                title += f" no. {cert.certificate_number}"
            rows: list[tuple[str, Any]] = [
                ("Form", f"{cert.form_code} {cert.form_name}".strip()),
                ("Purchaser", "; ".join(x for x in (cert.purchaser_name, cert.purchaser_address) if x)),
                ("Permit / registration", "; ".join(x for x in (cert.purchaser_tax_id,
                                                                 f"{line.state}: {line.state_tax_id}"
                                                                 if line.state_tax_id else "") if x)),
                ("Exempt reason", f"{cert.exempt_reason} ({cert.certificate_type.replace('_', ' ')})"
                                  + (f", PO {cert.po_number}" if cert.po_number else "")),
                ("Signed", f"{'Yes' if cert.signed else 'No'} {cert.signer_name} {_fmt(cert.signed_date)}".strip()),
                ("Effective", _fmt(cert.effective_date) or "(none; signed date applies)"),
                ("Expiry in this state", (_fmt(line.expiry_date) or "No expiry") + (f" - {line.expiry_basis}"
                                                                                     if line.expiry_basis else "")),
                ("During the period", line.period_status),
                ("Status at end of period", line.status_at_end.label),
                ("Review state now", cert.review_state + (f" ({cert.review_reason})" if cert.review_reason else "")),
                ("Validation", cert.validation_result),
                ("Permit check", line.permit_check),
            ]
            for d in docs_by_cert.get(cert.id, []):
                where = ""
                key = f"doc:{gi}:{d.cert.id}:{d.doc.document_id}"
                if nums and key in nums:
                    where = f"; pages {nums[key]}-{nums[key] + d.pages - 1}" if d.pages > 1 else f"; page {nums[key]}"
                note = f" - NOT INCLUDED: {d.reason}" if d.kind == "failed" else " - its pages follow"
                rows.append(("File", f"{d.doc.path_for(group.state)} ({d.doc.media_type}, {d.doc.page_count} "
                                     f"page{'s' if d.doc.page_count != 1 else ''}, received "
                                     f"{_fmt(d.doc.received_at)} UTC via {d.doc.received_via}{where}){note}\n"
                                     f"SHA-256 {d.doc.sha256}"))
            if not docs_by_cert.get(cert.id):
                rows.append(("File", "No document is on record for this certificate."))
            out.append(KeepTogether([_p(title, st.h3, lines=HEADING_LINES),
                                     _kv_table(rows, st, self.width, self.brand)]))
        return out

    # -- contents entries (the same list makes the printed contents and the bookmarks)

    def entries(self) -> list[tuple[str, int, str]]:
        out: list[tuple[str, int, str]] = [("cover", 1, "Cover"), ("contents", 1, "Contents")]
        last = None
        for gi, group in enumerate(self.groups):
            if group.folder != last:
                out.append((f"customer:{group.folder}", 1, group.label))
                last = group.folder
            n = len(group.items)
            out.append((f"group:{gi}", 2, f"{group.state} - {n} certificate{'s' if n != 1 else ''}"))
            for d in group.docs:
                label = f"Certificate {d.cert.id} {d.cert.form_code}"
                if d.cert.certificate_number:
                    label += f" no. {d.cert.certificate_number}"
                label += f" - {d.doc.original_name}"
                if d.kind == "failed":
                    label += " (could not be included)"
                out.append((f"doc:{gi}:{d.cert.id}:{d.doc.document_id}", 3, label))
        for key, title in self.appendix_titles():
            out.append((key, 1, title))
        return out

    def appendix_titles(self) -> list[tuple[str, str]]:
        return [("appendix:findings", "Appendix A - Validation findings and permit checks"),
                ("appendix:audit", "Appendix B - Audit trail of the included certificates")]

    # -- appendix

    def appendix(self, tables: dict[str, tuple[SectionTable, list[Sequence[Any]]]]) -> tuple[bytes, dict[str, int]]:
        st = self.styles
        marks: dict[str, int] = {}
        story: list[Any] = []
        w = self.width
        story.append(_Marker("appendix:findings", marks))
        story.append(Paragraph("Appendix A - Validation findings and permit checks", st.h1))
        for key, cols, widths in (
            ("findings", (0, 2, 3, 5, 6, 7, 8, 11), [0.5, 0.4, 0.95, 1.0, 0.55, 0.8, 0, 0.8]),
            ("permit_checks", (0, 2, 3, 4, 5, 6, 7, 8), [0.5, 0.4, 0.95, 0.7, 0.6, 0.9, 0.6, 0]),
        ):
            table, rows = tables[key]
            story.append(_p(table.title, st.h2))
            if not rows:
                story.append(_p("None recorded for the included certificates.", st.body))
                continue
            inch_w = [x * inch for x in widths]
            inch_w[inch_w.index(0)] = w - sum(inch_w)
            story.append(_data_table([table.columns[i].title for i in cols], [[r[i] for i in cols] for r in rows],
                                     inch_w, st, self.brand))
        story.append(PageBreak())
        story.append(_Marker("appendix:audit", marks))
        story.append(Paragraph("Appendix B - Audit trail of the included certificates", st.h1))
        story.append(_p("Every event recorded for the included certificates and their documents, oldest first. "
                        "Each event is hash-chained to the one before; manifest.json records the head of the "
                        "chain when this pack was generated.", st.small))
        story.append(Spacer(1, 4))
        table, rows = tables["audit_trail"]
        if not rows:
            story.append(_p("No events.", st.body))
        else:
            audit_cols = (0, 1, 2, 3, 5, 6)
            widths = [0.45 * inch, 1.05 * inch, 0.7 * inch, 1.35 * inch, 0.6 * inch]
            widths.append(w - sum(widths))
            story.append(_data_table([table.columns[i].title for i in audit_cols],
                                     [[r[i] for i in audit_cols] for r in rows], widths, st, self.brand))
        buf = io.BytesIO()
        self._doc(buf, cover=False).build(story)
        return buf.getvalue(), marks


def placeholder_page(plan: DocPlan, state: str, styles: Styles) -> bytes:
    """A page in place of a file that could not be copied into the book, saying why (drawn by
    reportlab like our other pages, so a file name in any script prints)."""
    text = (f"Certificate {plan.cert.id}: this document could not be included in the book\n\n"
            f"File: {plan.doc.original_name}\nReason: {plan.reason[:PLACEHOLDER_REASON_LIMIT]}\n\n"
            f"The original file is in this pack unchanged, at\n{plan.doc.path_for(state)}\n"
            f"SHA-256 {plan.doc.sha256}")
    style = ParagraphStyle("placeholder", parent=styles.body, fontSize=10, leading=12,
                           textColor=colors.Color(0.2, 0.2, 0.2))
    para = _p(text, style)
    _w, height = para.wrap(BODY_WIDTH, PAGE[1] - 2 * MARGIN - 40)
    buf = io.BytesIO()
    canv = Canvas(buf, pagesize=PAGE, invariant=1)
    top = PAGE[1] - MARGIN
    canv.setStrokeColorRGB(0.75, 0.1, 0.1)
    canv.setLineWidth(1.5)
    canv.rect(MARGIN - 10, top - height - 30, BODY_WIDTH + 20, height + 30, stroke=1, fill=0)
    para.drawOn(canv, MARGIN, top - height - 15)
    canv.showPage()
    canv.save()
    return buf.getvalue()
