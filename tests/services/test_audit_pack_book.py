"""The audit pack's PDF book with the real state forms of ``../shared/real-forms``: every page of every
form comes through with its content (rendered and compared with the original page), and the book is a
valid PDF for qpdf."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pymupdf
import pytest

from ecms_desktop.services import document_service
from ecms_desktop.services.audit_pack_pdf import STAMP_FONT_SIZE
from ecms_desktop.services.audit_pack_service import AuditPackResult, AuditPackSelection, AuditPackService
from tests.services.factories import make_certificate

PERIOD = (dt.date(2026, 1, 1), dt.date(2026, 12, 31))
GENERATED = dt.datetime(2030, 1, 2, 3, 4, 6, tzinfo=dt.UTC)
DPI = 30
#: Where a certificate page carries its "Certificate N - Page X of Y" label (bottom-right margin).
STAMP_WIDTH, STAMP_HEIGHT = 150, 2 * STAMP_FONT_SIZE + 6


def _pack_of_real_forms(db, company_id: int, shared_dir: Path, out: Path) -> tuple[AuditPackResult, dict[int, Path]]:  # type: ignore[no-untyped-def]
    forms = sorted((shared_dir / "real-forms").glob("*.pdf"))
    assert len(forms) >= 10, "the real forms are there"
    by_certificate: dict[int, Path] = {}
    for n, form in enumerate(forms):
        cert = make_certificate(db, company_id, customer="C-REAL", name="Real Forms Buyer Inc",
                                certificate_number=f"R-{n}")
        checked = document_service.check_bytes(form.read_bytes(), form.name)
        with db.transaction() as s:
            document_service.store_checked(s, checked, received_via="upload", certificate_id=cert.id,
                                           company_id=company_id)
        by_certificate[cert.id] = form
    result = AuditPackService(db).generate(AuditPackSelection(*PERIOD), out, generated_at=GENERATED, make_zip=False)
    return result, by_certificate


def _gray(page: pymupdf.Page) -> pymupdf.Pixmap:
    return page.get_pixmap(dpi=DPI, colorspace=pymupdf.csGRAY, alpha=False)


def _difference(book: pymupdf.Pixmap, original: pymupdf.Pixmap) -> float:
    """Pixels (outside the page-number label) whose grey level differs by more than 64, as a share of
    the original's inked pixels there: a blank page scores about 1, a faithful copy about 0."""
    assert (book.width, book.height) == (original.width, original.height)
    w, h = book.width, book.height
    skip_x, skip_y = w - int(STAMP_WIDTH * DPI / 72), h - int(STAMP_HEIGHT * DPI / 72)
    a, b = book.samples, original.samples
    differing = ink = 0
    for y in range(h):
        row = y * w
        for x in range(skip_x if y >= skip_y else w):
            theirs = b[row + x]
            ink += theirs < 128
            differing += abs(a[row + x] - theirs) > 64
    assert ink > 0, "the original page has content"
    return differing / ink


def test_every_page_of_every_real_form_comes_through_the_book(db, company_id, shared_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    result, forms = _pack_of_real_forms(db, company_id, shared_dir, tmp_path / "pack")
    assert result.problems == ()
    book = pymupdf.open(result.folder / "audit-pack.pdf")
    starts = {int(m.group(1)): page - 1 for level, title, page in book.get_toc()
              if level == 3 and (m := re.match(r"Certificate (\d+) ", title))}
    assert starts.keys() == forms.keys()
    compared = 0
    for cert_id, form in forms.items():
        original = pymupdf.open(form)
        for index in range(original.page_count):
            page = book[starts[cert_id] + index]
            where = f"{form.name} page {index + 1} (book page {page.number + 1})"
            assert f"Certificate {cert_id} - Page {page.number + 1} of {book.page_count}" in page.get_text(), where
            difference = _difference(_gray(page), _gray(original[index]))
            assert difference < 0.2, f"{where}: differs from the original ({difference:.0%} of its ink)"
            compared += 1
    assert compared == sum(pymupdf.open(f).page_count for f in forms.values())


def test_the_book_of_real_forms_passes_qpdf_check(db, company_id, shared_dir, tmp_path) -> None:  # type: ignore[no-untyped-def]
    qpdf = shutil.which("qpdf")
    if qpdf is None:
        pytest.skip("qpdf is not installed on this machine, so the book's structure could not be checked with "
                    "`qpdf --check` (install the qpdf package to run this test)")
    result, _forms = _pack_of_real_forms(db, company_id, shared_dir, tmp_path / "pack")
    run = subprocess.run([qpdf, "--check", str(result.folder / "audit-pack.pdf")], capture_output=True, text=True,
                         timeout=120)
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "WARNING" not in output, output
    assert "No syntax or stream encoding errors found" in output
