"""The audit pack's PDF book never opens a stored customer document in the program's own process.

Every stored file goes into the book through the bounded document worker, which hands back a new PDF of
the file's pages, already stamped; a file the worker cannot copy (damaged, too slow, too large) gets a
placeholder page and the pack still completes, with the original file in it byte for byte. Tried with
every file of ``../shared/bad-pdfs`` that intake accepts, and with a crafted PDF that intake accepts in
milliseconds but whose pages take hours to read (one small compressed content stream of blanks,
referenced thousands of times by each page): copied in this process, it hung the pack.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pymupdf
import pytest

from ecms_desktop.services.audit_pack import pdf as audit_pack_pdf
from ecms_desktop.services.audit_pack.content import AuditPackSelection
from ecms_desktop.services.audit_pack.service import AuditPackResult, AuditPackService
from ecms_desktop.services.core.errors import Cancelled, DocumentError
from ecms_desktop.services.documents import sandbox as document_sandbox
from ecms_desktop.services.documents import storage as document_service
from ecms_desktop.services.documents.worker_process import WorkerProcess
from tests.factories import image_bytes, make_certificate, paged_pdf, slow_pdf

PERIOD = (dt.date(2026, 1, 1), dt.date(2026, 12, 31))
GENERATED = dt.datetime(2030, 1, 2, 3, 4, 6, tzinfo=dt.UTC)
SLOW_NAME = "crafted-slow-contents.pdf"


@contextmanager
def opened_here(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """The SHA-256 of every document PyMuPDF opens in this process while the block runs."""
    seen: set[str] = set()
    real_open = pymupdf.open

    def spy(*args: Any, **kwargs: Any) -> Any:
        stream = kwargs.get("stream", args[1] if len(args) > 1 else None)
        filename = kwargs.get("filename", args[0] if args else None)
        if stream is not None:
            seen.add(hashlib.sha256(bytes(stream)).hexdigest())
        elif isinstance(filename, (str, Path)) and Path(filename).is_file():
            seen.add(hashlib.sha256(Path(filename).read_bytes()).hexdigest())
        return real_open(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(pymupdf, "open", spy)
        yield seen


def store(db, company_id: int, data: bytes, name: str, number: str) -> tuple[int, document_service.CheckedFile]:  # type: ignore[no-untyped-def]
    checked = document_service.check_bytes(data, name)  # intake's own check, in the worker
    cert = make_certificate(db, company_id, customer="C-BAD", name="Bad Files Buyer Inc", certificate_number=number)
    with db.transaction() as s:
        document_service.store_checked(s, checked, received_via="upload", certificate_id=cert.id,
                                       company_id=company_id)
    return cert.id, checked


def documents_in_book(book: pymupdf.Document) -> dict[int, tuple[int, str]]:
    """Certificate id -> (first page, 0-based; contents title) of its document in the book."""
    return {int(m.group(1)): (page - 1, title) for level, title, page in book.get_toc()
            if level == 3 and (m := re.match(r"Certificate (\d+) ", title))}


def test_a_pack_of_every_stored_bad_file_completes_and_never_opens_them_in_this_process(  # type: ignore[no-untyped-def]
        db, company_id, shared_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(audit_pack_pdf, "COPY_TIMEOUT", 5.0)  # the slow file's copy is given up after 5 s + 1 s a page
    stored: dict[int, document_service.CheckedFile] = {}
    for n, path in enumerate(sorted((shared_dir / "bad-pdfs").iterdir())):
        if path.name == "SOURCES.md":
            continue
        try:
            cert_id, checked = store(db, company_id, path.read_bytes(), path.name, f"BAD-{n}")
        except DocumentError:
            continue  # refused at intake: never stored, so never in a pack
        stored[cert_id] = checked
    slow_id, slow = store(db, company_id, slow_pdf(), SLOW_NAME, "SLOW-1")
    assert slow.page_count == 3, "intake takes the crafted file: its pages load at once"
    stored[slow_id] = slow
    assert len(stored) >= 25, "most of the bad files are stored by intake"

    with opened_here(monkeypatch) as seen:
        result: AuditPackResult = AuditPackService(db).generate(AuditPackSelection(*PERIOD), tmp_path / "pack",
                                                                generated_at=GENERATED, make_zip=False)
    assert not seen & {c.sha256 for c in stored.values()}, "a stored document was opened in this process"

    book = pymupdf.open(result.folder / "audit-pack.pdf")
    total = book.page_count

    def text(index: int) -> str:  # with text beyond the page: a label overhangs a page 32 points wide
        return book[index].get_text(clip=pymupdf.INFINITE_RECT())

    for index in range(total):
        assert f"Page {index + 1} of {total}" in text(index), f"page {index + 1} carries its number"
    starts = documents_in_book(book)
    assert starts.keys() == stored.keys()
    placeholders = set()
    for cert_id, checked in stored.items():
        first, title = starts[cert_id]
        if title.endswith("(could not be included)"):
            placeholders.add(checked.name)
            assert "could not be included" in text(first) and checked.name in text(first), checked.name
            assert any(checked.name in p and "placeholder" in p for p in result.problems), checked.name
            continue
        for index in range(checked.page_count):
            label = f"Certificate {cert_id} - Page {first + index + 1} of {total}"
            assert label in text(first + index), f"{checked.name} page {index + 1}"
        if first + checked.page_count < total:
            assert f"Certificate {cert_id} -" not in text(first + checked.page_count)
    # the crafted file (3 pages planned) is one placeholder page, and the book was laid out around it
    assert SLOW_NAME in placeholders
    slow_first, _title = starts[slow_id]
    assert "took longer than" in text(slow_first).replace("\n", " ")
    summary = "".join(text(i) for i in range(slow_first)).replace("\n", " ")
    assert f"{SLOW_NAME} (application/pdf, 3 pages" in summary and "NOT INCLUDED" in summary
    # files that are odd but readable come through whole
    assert placeholders <= {SLOW_NAME, "colour-components-overflow.pdf", "jpeg-disguised-as-pdf-slow.pdf"}
    assert {"many-pages-117.pdf", "owner-only-aes256-r6-restricted.pdf", "render-hang-structure.pdf",
            "xfa-multi-page.pdf", "tiff-lzw.tiff"} <= {c.name for c in stored.values()} - placeholders
    # and every stored file is in the pack as it was received
    in_pack = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (result.folder / "certificates").rglob("*")
               if p.is_file()}
    assert {c.sha256 for c in stored.values()} <= in_pack


def test_one_document_worker_probes_and_copies_every_file_of_a_pack(db, company_id, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for n in range(4):
        store(db, company_id, paged_pdf(f"CERT-{n}", pages=n + 1, font_size=12), f"cert-{n}.pdf", f"ONE-{n}")
    store(db, company_id, image_bytes(300, 200, rgb=(120, 120, 120)), "scan.png", "ONE-IMG")
    started: list[list[str]] = []

    class CountedWorker(WorkerProcess):
        def __init__(self, command: list[str]) -> None:
            started.append(command)
            super().__init__(command)

    monkeypatch.setattr(document_sandbox, "WorkerProcess", CountedWorker)
    result = AuditPackService(db).generate(AuditPackSelection(*PERIOD), tmp_path / "pack", generated_at=GENERATED,
                                           make_zip=False)
    assert result.problems == ()
    assert len(started) == 1, f"{len(started)} worker processes were started for one pack"
    book = pymupdf.open(result.folder / "audit-pack.pdf")
    text = "".join(page.get_text() for page in book)
    assert all(f"CERT-{n} P{p + 1}" in text for n in range(4) for p in range(n + 1))
    (first, _title), = [v for v in documents_in_book(book).values() if v[1].endswith("scan.png")]
    assert book[first].get_images(), "the image is on its page"


def test_cancel_while_the_worker_copies_leaves_nothing_and_no_worker(db, company_id, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for n in range(3):
        store(db, company_id, paged_pdf(f"CANCEL-{n}", font_size=12), f"cert-{n}.pdf", f"CAN-{n}")
    store(db, company_id, slow_pdf(pages=1), SLOW_NAME, "CAN-SLOW")  # the worker is busy on it when cancelled
    workers: list[Any] = []

    class KeptWorker(WorkerProcess):
        def __init__(self, command: list[str]) -> None:
            super().__init__(command)
            workers.append(self.proc)

    monkeypatch.setattr(document_sandbox, "WorkerProcess", KeptWorker)
    copying = []

    def progress(done: int, total: int, text: str) -> None:
        copying.append(text.startswith("Added "))

    where = tmp_path / "out"
    where.mkdir()
    with pytest.raises(Cancelled):
        AuditPackService(db).generate(AuditPackSelection(*PERIOD), where / "pack", generated_at=GENERATED,
                                      progress=progress, cancel=lambda: any(copying))
    assert any(copying), "cancelled while the documents were being copied"
    assert list(where.iterdir()) == []
    assert workers and all(proc.poll() is not None for proc in workers), "no worker is left running"
