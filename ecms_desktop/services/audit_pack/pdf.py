"""The audit pack's PDF book: reportlab pages merged with the certificates' own pages by PyMuPDF.

Order: a cover with the company's branding and the scope; a table of contents; for each customer
and state a summary page followed by the pages of each certificate's stored documents; appendices
with the validation findings, permit checks and the audit trail. Every page carries "Page N of M";
the PDF's bookmarks are the table of contents, entry for entry.

Stored documents came from customers and are untrusted, and this process never opens them: the
document sandbox (one separate, memory-capped worker process with a time limit per call) probes each
while the workbook is written, and later makes each document's pages for the book, stamped with their
page numbers, as a new PDF of its own writing (form fields and annotations flattened into the page; no
scripts, links, actions or attachments survive; an image becomes a page with the image on it). This
process only copies pages from those PDFs. A file the sandbox refuses, or cannot copy in time or
within its memory, gets a placeholder page saying why, and the book is laid out again around it. The
original files are in the pack unchanged.

Deterministic: reportlab runs in invariant mode and the final file gets fixed metadata dates (the
generation time) and no random ID, so the same content and ``generated_at`` give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import io
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymupdf
from reportlab.lib import colors
from reportlab.lib.pagesizes import letter
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import inch
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase.pdfmetrics import stringWidth
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

from ecms_desktop.services.audit_pack.content import (
    PackCertificate,
    PackContent,
    PackDocument,
    PackLine,
    SectionTable,
)
from ecms_desktop.services.core.errors import Cancelled, DocumentError
from ecms_desktop.services.core.progress import CancelCheck
from ecms_desktop.services.documents._document_worker import stamp_page
from ecms_desktop.services.documents.pdf_text import draw_string, fits_base_font, markup, register_fonts
from ecms_desktop.services.documents.sandbox import DocumentSandbox

PAGE = letter
MARGIN = 0.7 * inch
PLACEHOLDER_REASON_LIMIT = 600


@dataclass
class PdfResult:
    pages: int
    problems: list[str] = field(default_factory=list)
    toc: list[list[Any]] = field(default_factory=list)


@dataclass
class _DocPlan:
    cert: PackCertificate
    doc: PackDocument
    path: Path
    kind: str  # pdf | image | failed
    pages: int
    reason: str = ""


@dataclass
class _Group:
    folder: str
    label: str
    state: str
    items: list[tuple[PackCertificate, PackLine]]
    docs: list[_DocPlan]

    @property
    def doc_pages(self) -> int:
        return sum(d.pages for d in self.docs)


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


def _shown(text: str, width: float, size: float, lines: int = MAX_CELL_LINES) -> str:
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
    shown = _shown("" if text is None else str(text), width, style.fontSize, lines)
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


class _Styles:
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


def _kv_table(rows: Sequence[tuple[str, Any]], styles: _Styles, width: float, brand: colors.Color) -> Table:
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


def _data_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], widths: Sequence[float], styles: _Styles,
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


# ================================================================================ document probing


def _plan_documents(content: PackContent, files_root: Path, progress: Callable[[str], None],
                    cancel: CancelCheck, problems: list[str], sandbox: DocumentSandbox) -> list[_Group]:
    probed: dict[str, tuple[str, int, str]] = {}
    groups: list[_Group] = []
    for folder, label, state, items in content.groups():
        docs: list[_DocPlan] = []
        for cert, _line in items:
            for doc in cert.documents:
                if cancel():
                    raise Cancelled("The audit pack was cancelled; nothing was kept.")
                path = files_root / doc.path_for(state)
                if doc.sha256 not in probed:
                    try:
                        result = sandbox.probe(path.read_bytes(), filename=doc.original_name, timeout=20,
                                               sha256=doc.sha256)
                        probed[doc.sha256] = (result.kind, result.page_count, "")
                    except DocumentError as exc:
                        probed[doc.sha256] = ("failed", 1, str(exc))
                        problems.append(f"Certificate {cert.id}: {doc.original_name} could not be opened "
                                        f"for the PDF book ({exc}); a placeholder page says so.")
                    progress(f"Checked {doc.original_name}")
                kind, pages, reason = probed[doc.sha256]
                docs.append(_DocPlan(cert, doc, path, kind, pages if kind != "failed" else 1, reason))
        groups.append(_Group(folder, label, state, list(items), docs))
    return groups


class ProbeJob:
    """Probes the pack's certificate files in the document sandbox on a background thread.

    The sandbox is a separate process, so the probes run on the other core while this process
    writes the workbook; the thread itself mostly waits on the sandbox's pipe. :meth:`result` waits
    for the plan; :meth:`stop` cancels, waits and stops the sandbox's worker (call it when the pack
    fails or is cancelled). :func:`write_pdf` goes on with the same worker and stops it when done."""

    def __init__(self, content: PackContent, files_root: Path, cancel: CancelCheck | None = None) -> None:
        self.sandbox = DocumentSandbox(cache_size=2)
        self._cancel = cancel or (lambda: False)
        self._stop = threading.Event()
        self._groups: list[_Group] | None = None
        self._error: BaseException | None = None
        self.problems: list[str] = []
        self.checked = 0
        self._thread = threading.Thread(target=self._run, args=(content, files_root), name="audit-pack-probe",
                                        daemon=True)
        self._thread.start()

    def _run(self, content: PackContent, files_root: Path) -> None:
        def counted(_text: str) -> None:
            self.checked += 1

        try:
            self._groups = _plan_documents(content, files_root, counted,
                                           lambda: self._stop.is_set() or self._cancel(), self.problems,
                                           self.sandbox)
        except BaseException as exc:  # handed to the caller's thread by result()
            self._error = exc

    def result(self) -> tuple[list[_Group], list[str]]:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._groups is not None
        return self._groups, self.problems

    def stop(self) -> None:
        self._stop.set()
        self.sandbox.cancel()
        self._thread.join()
        self.sandbox.close()


# ================================================================================ the reportlab parts


class _Book:
    def __init__(self, content: PackContent, groups: list[_Group]) -> None:
        self.content = content
        self.groups = groups
        self.brand = _color(content.company.brand_color)
        register_fonts()
        self.styles = _Styles(self.brand)
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
        draw_string(canv, x, PAGE[1] - 0.9 * inch, _shown(c.legal_name, 60 * 20, 20, 1), "Helvetica-Bold", 20)
        canv.setFont("Helvetica", 10)
        for i, part in enumerate(c.address.splitlines()[:3]):
            draw_string(canv, x, PAGE[1] - 1.15 * inch - 12 * i, _shown(part, 90 * 10, 10, 1), "Helvetica", 10)
        canv.restoreState()

    def _header(self, canv: Any, doc: Any) -> None:
        canv.saveState()
        canv.setStrokeColor(self.brand)
        canv.setLineWidth(1.5)
        canv.line(MARGIN, PAGE[1] - MARGIN + 10, PAGE[0] - MARGIN, PAGE[1] - MARGIN + 10)
        canv.setFont("Helvetica", 7.5)
        canv.setFillColor(colors.HexColor("#595959"))
        sel = self.content.selection
        name = _shown(self.content.company.legal_name, 70 * 7.5, 7.5, 1)
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
        from reportlab.platypus.doctemplate import NextPageTemplate

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

    def _cover(self, st: _Styles) -> list[Any]:
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

    def _summary(self, group: _Group, gi: int, nums: dict[str, int] | None) -> list[Any]:
        st = self.styles
        out: list[Any] = [_p(group.label, st.h1, lines=HEADING_LINES), _p(f"State: {group.state}", st.h2)]
        docs_by_cert: dict[int, list[_DocPlan]] = {}
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


# ================================================================================ assembly


class _Numbers:
    """The label each page of the book gets, by its final (0-based) position."""

    def __init__(self, total: int) -> None:
        self.total = total

    def text(self, index: int, label: str = "") -> str:
        number = f"Page {index + 1} of {self.total}"
        return f"{label} - {number}" if label else number


def _stamp_part(part: pymupdf.Document, first: int, last: int, at: int, numbers: _Numbers) -> None:
    """Stamp pages ``first``..``last`` of one of our own reportlab parts, which land in the book from
    position ``at`` on (stamped in the small part, not in the large book being assembled)."""
    for offset, index in enumerate(range(first, last + 1)):
        stamp_page(part[index], numbers.text(at + offset), own=True)


def _placeholder(out: pymupdf.Document, plan: _DocPlan, state: str, numbers: _Numbers, styles: _Styles) -> None:
    """A page in place of a file that could not be copied into the book, saying why (drawn by
    reportlab like our other pages, so a file name in any script prints)."""
    from reportlab.pdfgen.canvas import Canvas

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
    page = pymupdf.open(stream=buf.getvalue(), filetype="pdf")
    try:
        stamp_page(page[0], numbers.text(out.page_count, f"Certificate {plan.cert.id}"), own=True)
        out.insert_pdf(page, links=False, annots=False, widgets=False)
    finally:
        page.close()


#: Time limit for the worker to copy one stored document into the book: a base, plus this per page.
COPY_TIMEOUT = 30.0
COPY_TIMEOUT_PER_PAGE = 1.0
#: How many copies the worker makes ahead of the one being inserted (bounds the memory they hold).
COPY_AHEAD = 8
#: How an image document is placed on its page: rendered at this resolution, within this many pixels,
#: centred within this margin (points).
IMAGE_DPI, IMAGE_MAX_PIXELS, IMAGE_MARGIN = 150, 12_000_000, 36


@dataclass
class _Copy:
    plan: _DocPlan
    pdf: bytes | None
    reason: str = ""


class _Copies:
    """The book's copies of the stored documents, in book order: the document worker makes each (see
    :meth:`DocumentSandbox.book_pages`) on a background thread, up to :data:`COPY_AHEAD` ahead of the one
    this thread is copying pages from, so that the worker and this process work at the same time.
    Documents planned as failed are skipped. :meth:`stop` ends the thread (and a call in flight)."""

    def __init__(self, sandbox: DocumentSandbox, jobs: list[tuple[_DocPlan, list[str]]]) -> None:
        self._sandbox = sandbox
        self._queue: queue.Queue[_Copy | BaseException] = queue.Queue(maxsize=COPY_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(jobs,), name="audit-pack-copies", daemon=True)
        self._thread.start()

    def _run(self, jobs: list[tuple[_DocPlan, list[str]]]) -> None:
        for plan, stamps in jobs:
            if self._stop.is_set():
                return
            try:
                data = plan.path.read_bytes()
                pages = self._sandbox.book_pages(
                    data, stamps, page_size=PAGE, margin=IMAGE_MARGIN, dpi=IMAGE_DPI, max_pixels=IMAGE_MAX_PIXELS,
                    filename=plan.doc.original_name, sha256=plan.doc.sha256,
                    timeout=COPY_TIMEOUT + COPY_TIMEOUT_PER_PAGE * len(stamps))
                item: _Copy | BaseException = _Copy(plan, pages.pdf)
            except DocumentError as exc:
                item = _Copy(plan, None, str(exc) or type(exc).__name__)
            except OSError as exc:
                item = _Copy(plan, None, f"the copy in the pack could not be read ({exc.strerror or exc})")
            except BaseException as exc:  # handed to the assembling thread
                item = exc
            if not self._put(item) or isinstance(item, BaseException):
                return

    def _put(self, item: _Copy | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def next(self, plan: _DocPlan, check: Callable[[], None]) -> _Copy:
        """The copy of ``plan`` (the next one in book order), waiting for the worker."""
        while True:
            check()
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if isinstance(item, BaseException):
                raise item
            if item.plan is not plan:
                raise AssertionError("audit pack: the copies do not follow the book's order")
            return item

    def stop(self) -> None:
        self._stop.set()
        self._sandbox.cancel()
        self._thread.join()


def _insert_copy(out: pymupdf.Document, pdf: bytes, pages: int) -> None:
    """Copy the pages of a PDF the document worker wrote (see :class:`_Copies`) to the end of ``out``.
    The customer's own file is never opened here; this is MuPDF's fresh serialisation of its pages."""
    src = pymupdf.open(stream=pdf, filetype="pdf")
    try:
        if src.page_count != pages:
            raise DocumentError(f"the copy has {src.page_count} pages, not {pages}")
        out.insert_pdf(src, links=False, annots=False, widgets=False)
    finally:
        src.close()


def _pdf_date(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("D:%Y%m%d%H%M%S+00'00'")


def write_pdf(path: Path, content: PackContent, tables: dict[str, tuple[SectionTable, list[Sequence[Any]]]], *,
              files_root: Path, progress: Callable[[str], None] | None = None,
              cancel: CancelCheck | None = None, probed: ProbeJob | None = None) -> PdfResult:
    """Write ``audit-pack.pdf``; the certificate files are read from ``files_root`` (the pack).
    ``probed``: the files' probes, started earlier with :class:`ProbeJob` (else probed here); its
    sandbox's worker then makes the book's copies too, and is stopped here."""
    progress = progress or (lambda text: None)
    cancel = cancel or (lambda: False)
    problems: list[str] = []

    def check() -> None:
        if cancel():
            raise Cancelled("The audit pack was cancelled; nothing was kept.")

    sandbox = probed.sandbox if probed is not None else DocumentSandbox(cache_size=2)
    try:
        if probed is not None:
            groups, found = probed.result()
            problems.extend(found)
        else:
            groups = _plan_documents(content, files_root, progress, cancel, problems, sandbox)
        book = _Book(content, groups)
        appendix_bytes, appendix_marks = book.appendix(tables)  # does not depend on the documents' pages
        check()
        while True:
            out, numbers, failures = _assemble(book, appendix_bytes, appendix_marks, sandbox, progress, check)
            if not failures:
                break
            # a document the worker could not copy gets a placeholder page instead of its pages: that
            # changes the page numbers and the summaries, so the book is laid out again
            out.close()
            _mark_failed(groups, failures, problems)
    finally:
        sandbox.close()
    total = out.page_count
    toc = [[level, _shown(title, 200, 1, 1), numbers.get(key, 1)] for key, level, title in book.entries()]
    out.set_toc(toc)
    stamp = _pdf_date(content.generated_at)
    out.set_metadata({"title": f"Exemption certificate audit pack - {content.company.legal_name}",
                      "author": content.company.legal_name, "subject": "Exemption certificates",
                      "creator": f"ECMS Desktop {content.program_version}", "producer": "ECMS Desktop",
                      "keywords": f"rules pack {content.rules_version}", "creationDate": stamp, "modDate": stamp})
    out.save(str(path), garbage=3, deflate=True, no_new_id=True)
    out.close()
    return PdfResult(total, problems, toc)


def _mark_failed(groups: list[_Group], failures: list[_Copy], problems: list[str]) -> None:
    """Plan a placeholder page for every place a document that could not be copied appears (the same
    file under another state too: it is the same bytes)."""
    reasons = {f.plan.doc.sha256: f.reason for f in failures}
    told: set[tuple[int, int]] = set()
    for group in groups:
        for plan in group.docs:
            reason = reasons.get(plan.doc.sha256)
            if reason is None or plan.kind == "failed":
                continue
            plan.kind, plan.pages, plan.reason = "failed", 1, reason
            if (plan.cert.id, plan.doc.document_id) not in told:
                told.add((plan.cert.id, plan.doc.document_id))
                problems.append(f"Certificate {plan.cert.id}: {plan.doc.original_name} could not be copied into "
                                f"the PDF book ({reason}); a placeholder page says so.")


def _assemble(book: _Book, appendix_bytes: bytes, appendix_marks: dict[str, int], sandbox: DocumentSandbox,
              progress: Callable[[str], None], check: Callable[[], None],
              ) -> tuple[pymupdf.Document, dict[str, int], list[_Copy]]:
    """Lay out the book as planned and put it together: the book, its contents entries' page numbers,
    and the documents the worker could not copy (when there are any, the book is not complete: the
    caller plans placeholders for them and calls again)."""
    groups = book.groups
    summary_bytes, marks = book.summaries()
    check()
    head_pages = pymupdf.open(stream=book.head(None), filetype="pdf").page_count
    summaries = pymupdf.open(stream=summary_bytes, filetype="pdf")
    appendix = pymupdf.open(stream=appendix_bytes, filetype="pdf")
    out = pymupdf.open()
    copies: _Copies | None = None
    failures: list[_Copy] = []
    try:
        # every page's number is known before assembly: each page is stamped in its (small) source
        # before it is copied in, never by loading pages of the large book being assembled
        for _attempt in range(4):
            check()
            numbers = _final_numbers(book, head_pages, marks, appendix_marks)
            stamps = _Numbers(head_pages + marks["end"] - 1 + sum(g.doc_pages for g in groups) + appendix.page_count)
            # the worker starts on the documents while the cover and contents are built with these numbers
            copies = _Copies(sandbox, _copy_jobs(groups, numbers, stamps))
            head_bytes = book.head(numbers)
            pages = pymupdf.open(stream=head_bytes, filetype="pdf").page_count
            if pages == head_pages:
                break
            copies.stop()  # the contents took more or fewer pages: every number after them moves
            copies, head_pages = None, pages
        if copies is None:
            raise AssertionError("audit pack: the contents' page count does not settle")
        head = pymupdf.open(stream=head_bytes, filetype="pdf")
        group_starts = [marks[f"group:{gi}"] for gi in range(len(groups))] + [marks["end"]]
        # our own reportlab parts carry no links, annotations or form fields; not asking PyMuPDF to copy
        # them also spares it a walk over every page of the source per call (widgets=True repairs
        # radio-button groups on all source pages), and one graft map per source shares their fonts
        _stamp_part(head, 0, head.page_count - 1, 0, stamps)
        for gi in range(len(groups)):  # all before the first copy: the copies share one graft map
            _stamp_part(summaries, group_starts[gi] - 1, group_starts[gi + 1] - 2, numbers[f"group:{gi}"] - 1,
                        stamps)
        out.insert_pdf(head, links=False, annots=False, widgets=False)
        head.close()
        for gi, group in enumerate(groups):
            check()
            if not failures:
                if out.page_count != numbers[f"group:{gi}"] - 1:
                    raise AssertionError("audit pack: the summary page numbers do not match the plan")
                out.insert_pdf(summaries, from_page=group_starts[gi] - 1, to_page=group_starts[gi + 1] - 2,
                               links=False, annots=False, widgets=False, final=int(gi == len(groups) - 1))
            for plan in group.docs:
                first = out.page_count
                if plan.kind != "failed":
                    copy = copies.next(plan, check)
                    if copy.pdf is not None and not failures:
                        try:
                            _insert_copy(out, copy.pdf, plan.pages)
                        except Exception as exc:
                            copy = _Copy(plan, None, str(exc) or type(exc).__name__)
                    if copy.pdf is None:
                        failures.append(copy)  # the rest are still made, to learn of every failure at once
                if failures:
                    continue
                if plan.kind == "failed":
                    _placeholder(out, plan, group.state, stamps, book.styles)
                added = out.page_count - first
                if added != plan.pages:
                    raise DocumentError(f"{plan.doc.original_name}: expected {plan.pages} pages in the book, "
                                        f"got {added}")
                progress(f"Added {plan.doc.original_name} to the PDF book")
        if not failures:
            appendix_start = out.page_count
            if any(numbers[key] != appendix_start + page for key, page in appendix_marks.items()):
                raise AssertionError("audit pack: the appendix page numbers do not match the plan")
            _stamp_part(appendix, 0, appendix.page_count - 1, appendix_start, stamps)
            out.insert_pdf(appendix, links=False, annots=False, widgets=False)
            if out.page_count != stamps.total:
                raise AssertionError(f"audit pack: the book has {out.page_count} pages, {stamps.total} were numbered")
    except BaseException:
        out.close()
        raise
    finally:
        if copies is not None:
            copies.stop()
        summaries.close()
        appendix.close()
    return out, numbers, failures


def _copy_jobs(groups: list[_Group], numbers: dict[str, int], stamps: _Numbers) -> list[tuple[_DocPlan, list[str]]]:
    """Each document to copy, in book order, with the label of each of its pages."""
    jobs = []
    for gi, group in enumerate(groups):
        for plan in group.docs:
            if plan.kind != "failed":
                first = numbers[f"doc:{gi}:{plan.cert.id}:{plan.doc.document_id}"] - 1
                jobs.append((plan, [stamps.text(first + i, f"Certificate {plan.cert.id}") for i in range(plan.pages)]))
    return jobs


def _final_numbers(book: _Book, head_pages: int, marks: dict[str, int],
                   appendix_marks: dict[str, int]) -> dict[str, int]:
    """Final page numbers (1-based) of every contents entry: the cover and contents come first, then
    each summary followed by its certificates' pages, then the appendix."""
    numbers = {"cover": 1, "contents": 2}
    inserted = head_pages
    for gi, group in enumerate(book.groups):
        start = marks[f"group:{gi}"] + inserted
        numbers[f"group:{gi}"] = start
        numbers.setdefault(f"customer:{group.folder}", start)
        summary_len = marks.get(f"group:{gi + 1}", marks["end"]) - marks[f"group:{gi}"]
        at = start + summary_len
        for plan in group.docs:
            numbers[f"doc:{gi}:{plan.cert.id}:{plan.doc.document_id}"] = at
            at += plan.pages
        inserted += group.doc_pages
    front_pages = marks["end"] - 1 + inserted
    for key, page in appendix_marks.items():
        numbers[key] = front_pages + page
    return numbers
