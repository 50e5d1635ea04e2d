"""Tests for the document sandbox: good files, the bad-pdfs corpus, passwords, timeouts, cancel."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pymupdf
import pytest

from ecms_desktop.services.core.errors import Cancelled, DocumentError
from ecms_desktop.services.documents.media_types import sniff_media_type
from ecms_desktop.services.documents.results import (
    PasswordRequired,
    ProbeResult,
    RenderedPage,
    WrongPassword,
    turn_box,
)
from ecms_desktop.services.documents.sandbox import DocumentSandbox
from tests.factories import image_bytes, sized_pdf

REPO = Path(__file__).resolve().parents[3]
BAD_DIR = (REPO / ".." / "shared" / "bad-pdfs").resolve()
BAD_FILES = (
    sorted(p for p in BAD_DIR.glob("*") if p.is_file() and p.suffix != ".md") if BAD_DIR.is_dir() else []
)
needs_corpus = pytest.mark.skipif(not BAD_DIR.is_dir(), reason=f"bad-pdfs corpus not found at {BAD_DIR}")

PASSWORDS = {
    "password-rc4-128-libreoffice.pdf": "openpassword",
    "password-aes256-r6.pdf": "view",
    "password-unicode-r6.pdf": "æøå",
    "password-saslprep-r6.pdf": "S\u00aaSL\u00adprep",  # as typed; only its SASLprep form works
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[DocumentSandbox]:
    box = DocumentSandbox()
    yield box
    box.close()


def bad(name: str) -> bytes:
    if not BAD_DIR.is_dir():
        pytest.skip(f"bad-pdfs corpus not found at {BAD_DIR}")
    return (BAD_DIR / name).read_bytes()


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


# ------------------------------------------------------------------------------------ sniffing


def test_sniff_media_type() -> None:
    assert sniff_media_type(b"%PDF-1.7\n...") == "application/pdf"
    assert sniff_media_type(b"garbage before %PDF-1.4\n") == "application/pdf"
    assert sniff_media_type(b"\x89PNG\r\n\x1a\n" + b"\0" * 20) == "image/png"
    assert sniff_media_type(b"\xff\xd8\xff\xe0" + b"\0" * 20) == "image/jpeg"
    assert sniff_media_type(b"II*\x00" + b"\0" * 20) == "image/tiff"
    assert sniff_media_type(b"MM\x00*" + b"\0" * 20) == "image/tiff"
    assert sniff_media_type(b"") is None
    assert sniff_media_type(b"hello") is None


# ----------------------------------------------------------------------------------- good files


def test_probe_good_pdf(sandbox: DocumentSandbox) -> None:
    data = sized_pdf([(612, 792), (792, 612), (612, 1008)])
    result = sandbox.probe(data, filename="cert.pdf")
    assert isinstance(result, ProbeResult)
    assert result.media_type == "application/pdf"
    assert result.kind == "pdf"
    assert result.page_count == 3
    assert result.first_page_size == (612.0, 792.0)
    assert not result.encrypted and not result.needs_password
    assert not (result.has_javascript or result.has_launch_action or result.has_embedded_files)
    assert result.warnings == ()


def test_render_good_pdf_dpi_rotation_and_pages(sandbox: DocumentSandbox) -> None:
    data = sized_pdf([(612, 792), (792, 612)])
    page = sandbox.render_page(data, 0, dpi=72)
    assert isinstance(page, RenderedPage)
    assert (page.width, page.height) == (612, 792) == png_size(page.png)
    assert page.page_count == 2 and not page.scaled_down
    double = sandbox.render_page(data, 0, dpi=144)
    assert (double.width, double.height) == (1224, 1584)
    rotated = sandbox.render_page(data, 0, dpi=72, rotation=90)
    assert (rotated.width, rotated.height) == (792, 612) == png_size(rotated.png)
    assert sandbox.render_page(data, 0, dpi=72, rotation=-90).width == 792
    second = sandbox.render_page(data, 1, dpi=72)
    assert (second.width, second.height) == (792, 612)
    # The PNG decodes to the announced size.
    assert pymupdf.Pixmap(page.png).width == 612


def test_render_says_the_pages_own_rotation(sandbox: DocumentSandbox) -> None:
    """A page carrying /Rotate is drawn turned; the picture says by how much, so that a place in the
    page's own coordinates (a field read from it) can be found on it with turn_box."""
    doc = pymupdf.open()
    page = doc.new_page(width=200, height=100)
    page.draw_rect(pymupdf.Rect(10, 10, 30, 20), color=(0, 0, 0), fill=(0, 0, 0))
    page.set_rotation(90)
    shown = sandbox.render_page(doc.tobytes(), 0, dpi=72, rotation=90)
    assert shown.page_rotation == 90 and (shown.width, shown.height) == (200, 100)
    x0, y0, x1, y1 = (round(v) for v in turn_box((10, 10, 30, 20), 200, 100, 90 + 90))
    pix = pymupdf.Pixmap(shown.png)
    assert pix.pixel((x0 + x1) // 2, (y0 + y1) // 2)[0] < 50  # the black box is where turn_box puts it
    assert pix.pixel(15, 15)[0] > 200
    assert sandbox.render_page(sized_pdf([(612, 792)]), 0, dpi=72).page_rotation == 0


def test_render_rejects_bad_arguments(sandbox: DocumentSandbox) -> None:
    data = sized_pdf([(612, 792)])
    with pytest.raises(ValueError):
        sandbox.render_page(data, 0, rotation=45)
    with pytest.raises(DocumentError, match="no page 3"):
        sandbox.render_page(data, 2, filename="one.pdf")


def test_render_scales_down_to_pixel_budget(sandbox: DocumentSandbox) -> None:
    data = sized_pdf([(612, 792)])
    page = sandbox.render_page(data, 0, dpi=600, max_pixels=1_000_000)
    assert page.scaled_down
    assert page.width * page.height <= 1_000_000
    assert page.dpi < 600


def test_thumbnail(sandbox: DocumentSandbox) -> None:
    data = sized_pdf([(612, 792)])
    thumb = sandbox.render_thumbnail(data, 0, max_side=160)
    assert max(thumb.width, thumb.height) == 160
    assert png_size(thumb.png) == (thumb.width, thumb.height)
    rotated = sandbox.render_thumbnail(data, 0, max_side=100, rotation=270)
    assert rotated.width == 100 and rotated.height < 100


def test_png_and_jpeg_images(sandbox: DocumentSandbox) -> None:
    png = image_bytes(300, 200)
    result = sandbox.probe(png, filename="scan.png")
    assert (result.media_type, result.kind, result.page_count) == ("image/png", "image", 1)
    assert result.first_page_size is not None
    page = sandbox.render_page(png, 0, dpi=72)
    assert page.width > 0 and page.height > 0
    jpeg = image_bytes(300, 200, fmt="jpeg")
    assert sandbox.probe(jpeg, filename="scan.jpg").media_type == "image/jpeg"
    # A JPEG named .pdf is handled as the JPEG it is, with a warning that says so.
    disguised = sandbox.probe(jpeg, filename="scan.pdf")
    assert disguised.media_type == "image/jpeg"
    assert any("JPEG" in w for w in disguised.warnings)


def test_multipage_tiff(sandbox: DocumentSandbox) -> None:
    image_mod = pytest.importorskip("PIL.Image")
    frames = [image_mod.new("RGB", (100, 150), (i * 60, 0, 0)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:], compression="tiff_lzw")
    data = buf.getvalue()
    result = sandbox.probe(data, filename="scan.tiff")
    assert (result.media_type, result.page_count) == ("image/tiff", 3)
    assert sandbox.render_page(data, 2, dpi=72).page_count == 3


def test_empty_and_unknown_files(sandbox: DocumentSandbox) -> None:
    with pytest.raises(DocumentError, match=r"empty\.pdf: the file is empty"):
        sandbox.probe(b"", filename="empty.pdf")
    with pytest.raises(DocumentError, match=r"notes\.pdf: this is not a PDF"):
        sandbox.probe(b"Dear customer, ...", filename="notes.pdf")


def test_concurrent_calls_are_serialised(sandbox: DocumentSandbox) -> None:
    docs = [sized_pdf([(300 + 10 * i, 400)]) for i in range(4)]
    results: dict[int, int] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results[i] = sandbox.render_page(docs[i], 0, dpi=72).width
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert results == {i: 300 + 10 * i for i in range(4)}


def test_close_leaves_no_process_and_sandbox_restarts() -> None:
    box = DocumentSandbox()
    data = sized_pdf([(612, 792)])
    box.render_page(data, 0, dpi=36)
    pid = box.worker_pid
    assert pid is not None
    box.close()
    assert box.worker_pid is None
    assert not Path(f"/proc/{pid}").exists() or not sys.platform.startswith("linux")
    assert box.render_page(data, 0, dpi=36).width == 306  # a fresh worker starts lazily
    box.close()


def test_interpreter_exits_without_explicit_close() -> None:
    code = (
        "import pymupdf\n"
        "from ecms_desktop.services.documents import shared_sandbox as ds\n"
        "doc = pymupdf.open(); doc.new_page(); data = doc.tobytes()\n"
        "print(ds.render_page(data, 0, dpi=36).width)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "298"


# ------------------------------------------------------------------------------ bad-pdfs corpus


@needs_corpus
@pytest.mark.parametrize("path", BAD_FILES, ids=[p.name for p in BAD_FILES])
def test_bad_file_probe_and_render(sandbox: DocumentSandbox, path: Path) -> None:
    """Every corpus file is either usable with sane results or refused with a clear message."""
    data = path.read_bytes()
    try:
        result = sandbox.probe(data, filename=path.name, timeout=5)
    except DocumentError as exc:
        assert str(exc).strip()
        assert path.name in str(exc)
        return
    assert result.media_type in {"application/pdf", "image/png", "image/jpeg", "image/tiff", "image/jp2"}
    assert 1 <= result.page_count <= 5000
    assert result.first_page_size is not None and min(result.first_page_size) > 0
    assert not result.needs_password
    try:
        page = sandbox.render_page(data, 0, dpi=72, timeout=5, filename=path.name)
    except DocumentError as exc:
        assert str(exc).strip()
        return
    assert png_size(page.png) == (page.width, page.height)
    assert page.page_count == result.page_count


@needs_corpus
@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("empty-0-bytes.pdf", "empty"),
        ("not-a-pdf-oops.pdf", "not a PDF"),
        ("claims-100-pages-has-2.pdf", "damaged"),
        ("page-count-9999999999.pdf", "page count"),
        ("page-tree-cycle.pdf", "damaged"),
        ("zero-pages-xref-loop.pdf", "no readable pages"),
        ("repair-loses-all-pages.pdf", "no readable pages"),
        ("jpeg-corrupt-49069x6528.jpg", "megapixels"),
        ("encrypted-bad-owner-key.pdf", "cannot be opened"),
    ],
)
def test_bad_files_refused_with_reason(sandbox: DocumentSandbox, name: str, pattern: str) -> None:
    with pytest.raises(DocumentError, match=pattern) as info:
        sandbox.probe(bad(name), filename=name, timeout=5)
    assert str(info.value).startswith(name + ":")


@needs_corpus
def test_active_content_is_reported(sandbox: DocumentSandbox) -> None:
    assert sandbox.probe(bad("document-javascript.pdf")).has_javascript
    assert sandbox.probe(bad("launch-action.pdf")).has_launch_action
    assert sandbox.probe(bad("launch-action-odd-paths.pdf")).has_launch_action
    embedded = sandbox.probe(bad("embedded-file.pdf"))
    assert embedded.has_embedded_files and embedded.warnings
    xfa = sandbox.probe(bad("xfa-form-with-js.pdf"))
    assert xfa.has_xfa and any("XFA" in w for w in xfa.warnings)


@needs_corpus
def test_owner_password_only_files_open(sandbox: DocumentSandbox) -> None:
    result = sandbox.probe(bad("owner-only-aes256-r6-restricted.pdf"))
    assert result.encrypted and not result.needs_password
    assert result.page_count == 30


@needs_corpus
@pytest.mark.parametrize("name", sorted(PASSWORDS))
def test_password_files(sandbox: DocumentSandbox, name: str) -> None:
    data = bad(name)
    with pytest.raises(PasswordRequired) as info:
        sandbox.probe(data, filename=name)
    assert not isinstance(info.value, WrongPassword)
    with pytest.raises(WrongPassword):
        sandbox.probe(data, filename=name, password="not-the-password")
    result = sandbox.probe(data, filename=name, password=PASSWORDS[name])
    assert result.encrypted and result.page_count >= 1
    page = sandbox.render_page(data, 0, dpi=36, password=PASSWORDS[name])
    assert page.page_count == result.page_count
    with pytest.raises(PasswordRequired):
        sandbox.render_page(data, 0, dpi=36)


@needs_corpus
def test_password_trap_file_has_all_pages(sandbox: DocumentSandbox) -> None:
    # Authenticating after touching page_count loses every page; the sandbox must not do that.
    assert sandbox.probe(bad("password-aes256-r6.pdf"), password="view").page_count == 30


@needs_corpus
def test_hang_times_out_and_sandbox_recovers(sandbox: DocumentSandbox) -> None:
    data = bad("render-hang-structure.pdf")
    assert sandbox.probe(data, filename="hang.pdf").page_count == 15
    restarts = sandbox.restarts
    with pytest.raises(DocumentError, match="took longer than 2 s"):
        sandbox.render_page(data, 0, timeout=2, filename="hang.pdf")
    assert sandbox.restarts == restarts + 1
    good = sized_pdf([(612, 792)])
    assert sandbox.render_page(good, 0, dpi=72).width == 612


@needs_corpus
def test_slow_thumbnail_page_is_fast_in_thumbnail_mode(sandbox: DocumentSandbox) -> None:
    # Page 3 takes 27-62 s at 36-50 dpi; thumbnails render at >= 72 dpi and shrink instead.
    thumb = sandbox.render_thumbnail(bad("slow-thumbnail-page3.pdf"), 2, max_side=160, timeout=5)
    assert max(thumb.width, thumb.height) == 160


@needs_corpus
def test_memory_limit_turns_bomb_into_error() -> None:
    with DocumentSandbox(memory_limit=400 * 1024 * 1024, max_image_pixels=10**12) as box:
        with pytest.raises(DocumentError, match=r"bomb\.jpg") as info:
            box.render_page(bad("jpeg-corrupt-49069x6528.jpg"), 0, dpi=72, timeout=20, filename="bomb.jpg")
        assert "memory" in str(info.value)
        assert box.render_page(sized_pdf([(100, 100)]), 0, dpi=72).width == 100


@needs_corpus
def test_cancel_from_another_thread(sandbox: DocumentSandbox) -> None:
    data = bad("render-hang-structure.pdf")
    sandbox.probe(data)  # make sure the worker is up, so cancel hits the render itself
    started = threading.Event()

    def cancel_soon() -> None:
        started.wait(10)
        while not sandbox.cancel():
            threading.Event().wait(0.05)

    canceller = threading.Thread(target=cancel_soon)
    canceller.start()
    started.set()
    with pytest.raises(Cancelled):
        sandbox.render_page(data, 0, timeout=60)
    canceller.join(10)
    assert not sandbox.cancel()  # nothing in flight any more
    assert sandbox.render_page(sized_pdf([(200, 200)]), 0, dpi=72).width == 200


def test_a_worker_started_by_a_thread_that_ended_keeps_serving() -> None:
    # Linux kills a worker (PR_SET_PDEATHSIG) when the *thread* that started it ends; a sandbox is used
    # from short-lived threads (the audit pack's probe thread, a view's loader), so its worker must not
    # be started by them.
    data = sized_pdf([(612, 792)])
    with DocumentSandbox() as box:
        native: list[int] = []

        def first_call() -> None:
            native.append(threading.get_native_id())
            box.probe(data, filename="first.pdf")

        starter = threading.Thread(target=first_call)
        starter.start()
        starter.join(60)
        pid = box.worker_pid
        assert pid is not None
        task = Path(f"/proc/self/task/{native[0]}")
        while task.exists():  # until the thread has really ended in the kernel, not only in Python
            threading.Event().wait(0.01)
        assert box.render_page(data, 0, dpi=36, filename="second.pdf").width == 306
        assert box.worker_pid == pid and box.restarts == 0, "the same worker still serves"


def test_book_pages_are_a_new_stamped_pdf_of_the_pages_only(sandbox: DocumentSandbox) -> None:
    doc = pymupdf.open()
    for i in range(2):
        page = doc.new_page(width=612, height=792)
        page.insert_text((72, 100), f"CUSTOMER PAGE {i + 1}", fontsize=14)
        widget = pymupdf.Widget()
        widget.field_name, widget.field_type = f"name{i}", pymupdf.PDF_WIDGET_TYPE_TEXT
        widget.field_value, widget.rect = f"FILLED VALUE {i + 1}", pymupdf.Rect(72, 200, 300, 220)
        page.add_widget(widget)
        page.insert_link({"kind": pymupdf.LINK_URI, "from": pymupdf.Rect(72, 300, 200, 320),
                          "uri": "https://example.com/"})
    doc.set_metadata({"title": "Customer's own title"})
    doc.embfile_add("attached.txt", b"attached")
    doc.set_page_labels([{"startpage": 0, "prefix": "X-", "style": "D", "firstpagenum": 1}])
    data = doc.tobytes()
    copy = sandbox.book_pages(data, ["Certificate 7 - Page 10 of 20", "Certificate 7 - Page 11 of 20"],
                              filename="form.pdf")
    assert copy.page_count == 2
    book = pymupdf.open(stream=copy.pdf, filetype="pdf")
    assert book.page_count == 2 and not book.is_form_pdf and book.embfile_count() == 0
    assert book.metadata["title"] == "" and book.get_page_labels() == []
    for i in range(2):
        text = book[i].get_text()
        assert f"CUSTOMER PAGE {i + 1}" in text and f"FILLED VALUE {i + 1}" in text, "fields flattened"
        assert f"Certificate 7 - Page {10 + i} of 20" in text
        assert not list(book[i].annots()) and not book[i].get_links()
    with pytest.raises(DocumentError, match=r"form\.pdf: the file now reads as 2 page\(s\), not the 3"):
        sandbox.book_pages(data, ["a", "b", "c"], filename="form.pdf")


def test_book_pages_of_an_image_are_a_page_with_the_image(sandbox: DocumentSandbox) -> None:
    png = image_bytes(300, 200)
    copy = sandbox.book_pages(png, ["Certificate 3 - Page 5 of 9"], filename="scan.png")
    page = pymupdf.open(stream=copy.pdf, filetype="pdf")[0]
    assert page.rect == pymupdf.Rect(0, 0, 612, 792)
    (xref, *_rest), = page.get_images()
    placed = page.get_image_rects(xref)[0]
    # 300 x 200 pixels (96 dpi when the file does not say) rendered at 150 dpi and placed at their
    # natural size, 225 x 150 points, centred
    assert abs(placed.width - 225) < 1.5 and abs(placed.height - 150) < 1.5
    assert abs(placed.x0 + placed.x1 - 612) < 1 and abs(placed.y0 + placed.y1 - 792) < 1
    assert "Certificate 3 - Page 5 of 9" in page.get_text()
