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

The plan of the certificates' pages (which files, how many pages each) is made by
:mod:`ecms_desktop.services.audit_pack.book_plan`, and the pages this program draws itself (cover,
contents, summaries, appendices, placeholders) by :mod:`ecms_desktop.services.audit_pack.book_layout`;
this module numbers every page and puts the book together.

Deterministic: reportlab runs in invariant mode and the final file gets fixed metadata dates (the
generation time) and no random ID, so the same content and ``generated_at`` give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymupdf

from ecms_desktop.services.audit_pack.book_layout import PAGE, Book, Styles, placeholder_page, shown_text
from ecms_desktop.services.audit_pack.book_plan import DocPlan, Group, ProbeJob, plan_documents
from ecms_desktop.services.audit_pack.content import PackContent, SectionTable
from ecms_desktop.services.core.errors import Cancelled, DocumentError
from ecms_desktop.services.core.progress import CancelCheck
from ecms_desktop.services.documents.sandbox import DocumentSandbox
from ecms_desktop.services.documents.worker.pictures import stamp_page


@dataclass
class PdfResult:
    pages: int
    problems: list[str] = field(default_factory=list)
    toc: list[list[Any]] = field(default_factory=list)


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


def _placeholder(out: pymupdf.Document, plan: DocPlan, state: str, numbers: _Numbers, styles: Styles) -> None:
    """Add the page in place of a file that could not be copied into the book (see
    :func:`~ecms_desktop.services.audit_pack.book_layout.placeholder_page`), with its number."""
    page = pymupdf.open(stream=placeholder_page(plan, state, styles), filetype="pdf")
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
    plan: DocPlan
    pdf: bytes | None
    reason: str = ""


class _Copies:
    """The book's copies of the stored documents, in book order: the document worker makes each (see
    :meth:`DocumentSandbox.book_pages`) on a background thread, up to :data:`COPY_AHEAD` ahead of the one
    this thread is copying pages from, so that the worker and this process work at the same time.
    Documents planned as failed are skipped. :meth:`stop` ends the thread (and a call in flight)."""

    def __init__(self, sandbox: DocumentSandbox, jobs: list[tuple[DocPlan, list[str]]]) -> None:
        self._sandbox = sandbox
        self._queue: queue.Queue[_Copy | BaseException] = queue.Queue(maxsize=COPY_AHEAD)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(jobs,), name="audit-pack-copies", daemon=True)
        self._thread.start()

    def _run(self, jobs: list[tuple[DocPlan, list[str]]]) -> None:
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

    def next(self, plan: DocPlan, check: Callable[[], None]) -> _Copy:
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
            groups = plan_documents(content, files_root, progress, cancel, problems, sandbox)
        book = Book(content, groups)
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
    toc = [[level, shown_text(title, 200, 1, 1), numbers.get(key, 1)] for key, level, title in book.entries()]
    out.set_toc(toc)
    stamp = _pdf_date(content.generated_at)
    out.set_metadata({"title": f"Exemption certificate audit pack - {content.company.legal_name}",
                      "author": content.company.legal_name, "subject": "Exemption certificates",
                      "creator": f"ECMS Desktop {content.program_version}", "producer": "ECMS Desktop",
                      "keywords": f"rules pack {content.rules_version}", "creationDate": stamp, "modDate": stamp})
    out.save(str(path), garbage=3, deflate=True, no_new_id=True)
    out.close()
    return PdfResult(total, problems, toc)


def _mark_failed(groups: list[Group], failures: list[_Copy], problems: list[str]) -> None:
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


def _assemble(book: Book, appendix_bytes: bytes, appendix_marks: dict[str, int], sandbox: DocumentSandbox,
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


def _copy_jobs(groups: list[Group], numbers: dict[str, int], stamps: _Numbers) -> list[tuple[DocPlan, list[str]]]:
    """Each document to copy, in book order, with the label of each of its pages."""
    jobs = []
    for gi, group in enumerate(groups):
        for plan in group.docs:
            if plan.kind != "failed":
                first = numbers[f"doc:{gi}:{plan.cert.id}:{plan.doc.document_id}"] - 1
                jobs.append((plan, [stamps.text(first + i, f"Certificate {plan.cert.id}") for i in range(plan.pages)]))
    return jobs


def _final_numbers(book: Book, head_pages: int, marks: dict[str, int],
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
