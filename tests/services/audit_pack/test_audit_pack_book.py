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

from ecms_desktop.services.audit_pack.content import AuditPackSelection
from ecms_desktop.services.audit_pack.service import AuditPackResult, AuditPackService
from ecms_desktop.services.documents import storage as document_service
from ecms_desktop.services.documents.worker.pictures import STAMP_FONT_SIZE
from tests.factories import make_certificate

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


NAMES = {"arabic": "شركة النور للتجارة", "chinese": "北京华联商厦有限公司", "hebrew": "חברת האור בע״מ"}


def test_customer_names_in_arabic_chinese_and_hebrew_print_in_the_book(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import unicodedata

    for key, name in NAMES.items():
        make_certificate(db, company_id, customer=f"C-{key}", name=name, certificate_number=f"N-{key}")
    result = AuditPackService(db).generate(AuditPackSelection(*PERIOD), tmp_path / "pack", generated_at=GENERATED,
                                           make_zip=False)
    book = pymupdf.open(result.folder / "audit-pack.pdf")
    toc = book.get_toc()
    for name in NAMES.values():
        (page,) = [p for level, title, p in toc if level == 1 and title.startswith(name)]
        # reading order and letters as stored (Arabic is drawn in its joined presentation forms)
        text = unicodedata.normalize("NFKC", book[page - 1].get_text())
        assert name in text, f"{name!r} is not on its summary page: {text[:200]!r}"
        fonts = {f[3] for f in book[page - 1].get_fonts()}
        assert any("DejaVuSans" in f for f in fonts), f"the shipped font is embedded: {fonts}"
        assert unicodedata.normalize("NFKC", book[1].get_text()).count(name) == 1, "in the contents"
    chinese_page = next(p for level, title, p in toc if level == 1 and title.startswith(NAMES["chinese"]))
    assert any("DroidSansFallback" in f[3] for f in book[chinese_page - 1].get_fonts())
    # nothing of the names drawn as a missing glyph: every character maps back to itself
    assert "\ufffd" not in "".join(p.get_text() for p in book)


def test_a_4000_character_name_is_cut_in_the_book_and_whole_in_the_workbook(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import openpyxl
    from sqlalchemy import select, update

    from ecms_desktop.models import Certificate, Customer

    long_name = ("Wholesale Distribution of Everything " * 120)[:4000]
    one_word = "W" * 4000
    a = make_certificate(db, company_id, customer="C-LONG", name="Long Name Inc", certificate_number="L-1",
                         purchaser_address=long_name, business_description=one_word)
    b = make_certificate(db, company_id, customer="C-WORD", name="One Word Inc", certificate_number="L-2",
                         purchaser_address=one_word)
    stored_names = db.engine.dialect.name == "sqlite"  # PostgreSQL's name column holds 300 characters
    if stored_names:  # a database holding such names (written before any limit), as the issue found them
        with db.transaction() as s:
            for cert, name in ((a, long_name), (b, one_word)):
                s.execute(update(Certificate).where(Certificate.id == cert.id).values(purchaser_name=name))
                owner = select(Certificate.customer_id).where(Certificate.id == cert.id).scalar_subquery()
                s.execute(update(Customer).where(Customer.id == owner).values(legal_name=name))
    result = AuditPackService(db).generate(AuditPackSelection(*PERIOD), tmp_path / "pack", generated_at=GENERATED,
                                           make_zip=False)
    book = pymupdf.open(result.folder / "audit-pack.pdf")
    text = "".join(p.get_text() for p in book).replace("\n", "")
    assert "Wholesale Distribution of Everything Wholesale" in text and "WWWWWWWWWW" in text
    assert "…" in text, "where space is limited the value is cut with an ellipsis"
    assert long_name not in text and one_word not in text
    if stored_names:
        ws = openpyxl.load_workbook(result.folder / "audit-pack.xlsx")["Certificates"]
        header = [c.value for c in ws[1]]
        customers = {row[header.index("Customer")] for row in ws.iter_rows(min_row=2, values_only=True)}
        assert {long_name, one_word} <= customers, "the workbook holds every name whole"
