"""The document viewer: pages, zoom, rotate, navigation, images, passwords and every bad file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from ecms_desktop.services.documents.sandbox import DocumentSandbox
from ecms_desktop.views.pdf_viewer import DocumentViewer
from tests.factories import image_bytes, letter_pdf

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def sandboxes():
    page, thumbs = DocumentSandbox(), DocumentSandbox()
    yield page, thumbs
    page.close()
    thumbs.close()


@pytest.fixture
def viewer(qtbot, sandboxes):
    v = DocumentViewer(sandboxes[0], thumbnail_sandbox=sandboxes[1], timeout=5, thumbnail_timeout=3)
    qtbot.addWidget(v)
    v.resize(900, 700)
    v.show()
    yield v
    v.shutdown()
    v.runner.wait(10000)


def show(qtbot, viewer: DocumentViewer, data: bytes, name: str = "cert.pdf", rotation: int = 0) -> None:
    with qtbot.waitSignal(viewer.page_painted, timeout=20000):
        viewer.show_document(data, sha256=sha(data), name=name, rotation=rotation)


def page_size(viewer: DocumentViewer) -> tuple[int, int]:
    pm = viewer.page_label.pixmap()
    return pm.width(), pm.height()


def test_pages_and_navigation_by_keyboard(qtbot, viewer):
    show(qtbot, viewer, letter_pdf(4))
    assert viewer.page_count == 4 and viewer.page_index == 0
    assert viewer.page_total.text() == "/ 4"
    assert viewer.message == ""
    viewer.page_label.setFocus()
    with qtbot.waitSignal(viewer.page_painted, timeout=10000):
        qtbot.keyClick(viewer.page_area, Qt.Key.Key_PageDown)
    assert viewer.page_index == 1 and viewer.page_edit.text() == "2"
    with qtbot.waitSignal(viewer.page_painted, timeout=10000):
        qtbot.keyClick(viewer.page_area, Qt.Key.Key_End)
    assert viewer.page_index == 3
    assert not viewer.next_button.isEnabled()
    with qtbot.waitSignal(viewer.page_painted, timeout=10000):
        qtbot.keyClick(viewer.page_area, Qt.Key.Key_PageUp)
    assert viewer.page_index == 2
    with qtbot.waitSignal(viewer.page_painted, timeout=10000):
        qtbot.keyClick(viewer.page_area, Qt.Key.Key_Home)
    assert viewer.page_index == 0 and not viewer.prev_button.isEnabled()
    # Typing a page number.
    viewer.page_edit.setText("3")
    with qtbot.waitSignal(viewer.page_painted, timeout=10000):
        qtbot.keyClick(viewer.page_edit, Qt.Key.Key_Return)
    assert viewer.page_index == 2


def test_thumbnails_fill_in_and_select_pages(qtbot, viewer):
    show(qtbot, viewer, letter_pdf(3))
    assert viewer.thumbs.count() == 3
    placeholder_key = viewer.thumbs.item(2).icon().cacheKey()
    qtbot.waitUntil(lambda: viewer.thumbs.item(2).icon().cacheKey() != placeholder_key, timeout=20000)
    with qtbot.waitSignal(viewer.page_painted, timeout=10000):
        viewer.thumbs.setCurrentRow(2)
    assert viewer.page_index == 2


def test_zoom_fit_and_rotate(qtbot, viewer):
    show(qtbot, viewer, letter_pdf(2, landscape_page=1))
    assert viewer.fit_mode == "width"
    w_fit, _ = page_size(viewer)
    assert w_fit <= viewer.page_area.viewport().width()
    with qtbot.waitSignal(viewer.page_painted, timeout=10000):
        viewer.set_zoom(1.0)
    w100, h100 = page_size(viewer)
    assert abs(w100 - 612) <= 2 and abs(h100 - 792) <= 2  # letter at 72 dpi
    with qtbot.waitSignal(viewer.page_painted, timeout=10000):
        qtbot.keyClick(viewer.page_area, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert viewer.zoom > 1.0 and page_size(viewer)[0] > w100
    with qtbot.waitSignal(viewer.page_painted, timeout=10000):
        viewer.zoom_out()
        viewer.zoom_out()
    assert viewer.zoom < 1.0 and page_size(viewer)[0] < w100
    with qtbot.waitSignal(viewer.page_painted, timeout=10000):
        qtbot.mouseClick(viewer.fit_page_button, Qt.MouseButton.LeftButton)
    w, h = page_size(viewer)
    vp = viewer.page_area.viewport().size()
    assert w <= vp.width() and h <= vp.height()
    # Rotation: width and height swap, the caller is told, the file is untouched.
    with qtbot.waitSignal(viewer.page_painted, timeout=10000):
        viewer.set_zoom(1.0)
    with qtbot.waitSignals([viewer.rotation_changed, viewer.page_painted], timeout=10000):
        qtbot.mouseClick(viewer.rotate_right_button, Qt.MouseButton.LeftButton)
    assert viewer.rotation == 90
    assert abs(page_size(viewer)[0] - 792) <= 2
    seen: list[int] = []
    viewer.rotation_changed.connect(seen.append)
    viewer.rotate_left()
    viewer.rotate_left()
    assert seen == [0, 270]
    # A landscape page has its own size.
    with qtbot.waitSignal(viewer.page_painted, timeout=10000):
        viewer.set_rotation(0)
    with qtbot.waitSignal(viewer.page_painted, timeout=10000):
        viewer.next_page()
    assert page_size(viewer)[0] > page_size(viewer)[1]


def test_saved_rotation_is_applied(qtbot, viewer):
    show(qtbot, viewer, letter_pdf(1), rotation=90)
    viewer.set_zoom(1.0)
    qtbot.waitUntil(lambda: not viewer.busy and abs(page_size(viewer)[0] - 792) <= 2, timeout=10000)


def test_stale_renders_are_dropped(qtbot, viewer):
    show(qtbot, viewer, letter_pdf(6))
    for _ in range(5):
        viewer.next_page()
    viewer.first_page()
    viewer.last_page()
    qtbot.waitUntil(lambda: not viewer.busy, timeout=20000)
    assert viewer.page_index == 5 and viewer.page_edit.text() == "6"
    assert viewer.message == ""


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_images(qtbot, viewer, fmt):
    data = image_bytes(400, 520, fmt=fmt, rgb=(240, 240, 240), band=(40, 40, 360, 120))
    show(qtbot, viewer, data, name=f"scan.{fmt}")
    assert viewer.page_count == 1
    assert viewer.message == ""


def test_multi_page_tiff(qtbot, viewer, shared_dir):
    data = (shared_dir / "bad-pdfs" / "tiff-lzw.tiff").read_bytes()
    show(qtbot, viewer, data, name="scan.tiff")
    assert viewer.page_count >= 1


def test_password_is_asked_for(qtbot, viewer):
    data = letter_pdf(2, password="s3cret")
    asked: list[bool] = []
    answers = iter(["wrong", "s3cret"])

    def provider(name: str, wrong: bool) -> str | None:
        asked.append(wrong)
        return next(answers)

    viewer.password_provider = provider
    show(qtbot, viewer, data, name="locked.pdf")
    assert asked == [False, True]
    assert viewer.page_count == 2


def test_password_refused_leaves_a_message_and_a_button(qtbot, viewer):
    viewer.password_provider = lambda name, wrong: None
    data = letter_pdf(1, password="x")
    with qtbot.waitSignal(viewer.message_shown, timeout=20000,
                          check_params_cb=lambda text: "password" in text):
        viewer.show_document(data, sha256=sha(data), name="locked.pdf")
    qtbot.waitUntil(lambda: "password" in viewer.message and viewer.password_button.isVisible(), timeout=10000)


def test_clear_shows_the_message(qtbot, viewer):
    show(qtbot, viewer, letter_pdf(1))
    viewer.clear("No document attached")
    assert viewer.message == "No document attached"
    assert viewer.page_count == 0


def test_no_empty_thumbnail_list_stands_beside_no_document(qtbot, viewer):
    """Seen at the desk's start and in the work-list screenshot: a blank white strip (the empty thumbnail
    list) beside no document."""
    def white(list_widget) -> bool:  # type: ignore[no-untyped-def]
        return list_widget.grab().toImage().pixelColor(5, 5).name() == "#ffffff"

    assert viewer.thumbs.property("empty") and not white(viewer.thumbs)
    show(qtbot, viewer, letter_pdf(3))
    assert not viewer.thumbs.property("empty") and viewer.thumbs.count() == 3
    viewer.clear("No document attached")
    assert viewer.thumbs.property("empty") and not white(viewer.thumbs)


def _bad_files() -> list[str]:
    folder = Path(__file__).resolve().parents[3] / "shared" / "bad-pdfs"
    return sorted(p.name for p in folder.glob("*") if p.name != "SOURCES.md") if folder.is_dir() else []


@pytest.mark.parametrize("name", _bad_files() or ["(shared folder absent)"])
def test_every_bad_file_shows_a_page_or_a_message(qtbot, sandboxes, shared_dir, name):
    """No bad file freezes, crashes or exhausts the viewer: a page or a clear message appears,
    and the viewer still answers (shows a good document) afterwards."""
    v = DocumentViewer(sandboxes[0], thumbnail_sandbox=sandboxes[1], timeout=3, probe_timeout=4,
                       thumbnail_timeout=1, password_provider=lambda n, w: None)
    qtbot.addWidget(v)
    v.resize(600, 500)
    v.show()
    data = (shared_dir / "bad-pdfs" / name).read_bytes()
    outcome: list[str] = []
    v.page_painted.connect(lambda: outcome.append("page"))
    v.message_shown.connect(lambda text: outcome.append("message:" + text))
    v.show_document(data, sha256=sha(data), name=name)
    qtbot.waitUntil(lambda: bool(outcome), timeout=30000)
    if outcome[0].startswith("message:"):
        text = outcome[0][len("message:"):]
        assert name in text or "password" in text, text
        assert "Traceback" not in text
    else:
        assert v.page_label.pixmap() is not None and not v.page_label.pixmap().isNull()
    # Still responsive: a good document shows right after.
    good = letter_pdf(1)
    with qtbot.waitSignal(v.page_painted, timeout=30000):
        v.show_document(good, sha256=sha(good), name="good.pdf")
    v.shutdown()
    v.runner.wait(10000)


def test_compact_toolbar_and_fit_width_on_each_new_document(qtbot, viewer):
    # The toolbar no longer forces a wide viewer: at 1440 px the grid, the viewer and the form fit.
    assert viewer.minimumSizeHint().width() <= 400, viewer.minimumSizeHint()
    long_name = "a-very-long-scanned-certificate-file-name-from-the-customer-portal-" * 3 + ".pdf"
    show(qtbot, viewer, letter_pdf(2), name=long_name)
    assert viewer.minimumSizeHint().width() <= 400  # a long file name is cut, not widening the viewer
    assert viewer.name_label.toolTip() == long_name
    assert viewer.fit_width_button.toolTip().startswith("Fit width")
    assert viewer.fit_mode == "width"
    viewer.set_zoom(3.0)
    qtbot.waitUntil(lambda: not viewer.busy, timeout=20000)
    assert viewer.fit_mode is None and viewer.zoom == 3.0
    # The next document opens at the viewer's width again, not at the zoom chosen for the last one.
    show(qtbot, viewer, letter_pdf(1), name="next.pdf")
    qtbot.waitUntil(lambda: not viewer.busy, timeout=20000)
    assert viewer.fit_mode == "width" and viewer.zoom < 3.0
    first = viewer.zoom
    viewer.fit_width()  # asking for fit width changes nothing: it was applied already
    qtbot.waitUntil(lambda: not viewer.busy, timeout=20000)
    assert abs(viewer.zoom - first) / first < 0.03


def test_a_viewer_closed_while_its_shared_runner_works_ignores_the_late_results(qtbot):
    """A task runner shared with the window outlives a viewer that is closed and deleted while pages and
    thumbnails still render: their results arrive afterwards and must find nothing to touch (seen in CI
    as "Internal C++ object (QListWidget) already deleted")."""
    from PySide6.QtWidgets import QApplication, QWidget

    from ecms_desktop.views.operations.task_runner import TaskRunner

    owner = QWidget()
    qtbot.addWidget(owner)
    runner = TaskRunner(owner, max_threads=2)
    page_sandbox, thumb_sandbox = DocumentSandbox(), DocumentSandbox()  # its own: it outlives the viewer
    v = DocumentViewer(page_sandbox, runner=runner, thumbnail_sandbox=thumb_sandbox, timeout=20, thumbnail_timeout=20)
    v.resize(900, 700)
    v.show()
    data = letter_pdf(6)
    with qtbot.waitSignal(v.page_painted, timeout=20000):  # thumbnails start rendering once the page is shown
        v.show_document(data, sha256=sha(data), name="late.pdf")
    assert v._thumb_busy
    v.deleteLater()
    QApplication.processEvents()
    assert runner.wait(20000)
    for _ in range(20):  # deliver every queued result (pytest-qt fails the test on an exception here)
        QApplication.processEvents()
        qtbot.wait(10)
    page_sandbox.close()
    thumb_sandbox.close()


def _boxed_pdf(rotate: int) -> bytes:
    """Two pages; the second carries /Rotate ``rotate`` and a black box at (300, 100)-(400, 130) of its own
    (unrotated) coordinates."""
    import pymupdf

    doc = pymupdf.open()
    doc.new_page(width=612, height=792)
    page = doc.new_page(width=612, height=792)
    page.draw_rect(pymupdf.Rect(300, 100, 400, 130), color=(0, 0, 0), fill=(0, 0, 0))
    page.set_rotation(rotate)
    return doc.tobytes()


def _dark_rect(viewer: DocumentViewer):
    """The black box as seen on the picture, in the page label's coordinates."""
    pm = viewer.page_label.pixmap()
    image = pm.toImage()
    ratio = pm.devicePixelRatio()
    xs, ys = [], []
    for y in range(0, image.height(), 2):
        for x in range(0, image.width(), 2):
            if image.pixelColor(x, y).red() < 60:
                xs.append(x)
                ys.append(y)
    left = (viewer.page_label.width() - pm.width() / ratio) / 2
    top = (viewer.page_label.height() - pm.height() / ratio) / 2
    return (left + min(xs) / ratio, top + min(ys) / ratio, left + max(xs) / ratio, top + max(ys) / ratio)


@pytest.mark.parametrize(("page_rotate", "view_rotation"), [(0, 0), (90, 0), (0, 270), (90, 90), (270, 180)])
def test_highlight_lands_on_the_box_of_a_rotated_page(qtbot, viewer, page_rotate, view_rotation):
    show(qtbot, viewer, _boxed_pdf(page_rotate), rotation=view_rotation)
    assert viewer.highlight_rect is None
    with qtbot.waitSignal(viewer.page_painted, timeout=10000):
        viewer.highlight(1, (300, 100, 400, 130))  # on the second page: the viewer goes there
    assert viewer.page_index == 1
    rect = viewer.highlight_rect
    assert rect is not None
    x0, y0, x1, y1 = _dark_rect(viewer)
    assert abs(rect.left() - x0) < 3 and abs(rect.top() - y0) < 3
    assert abs(rect.right() - x1) < 3 and abs(rect.bottom() - y1) < 3
    # Zooming or rotating keeps it on the box.
    with qtbot.waitSignal(viewer.page_painted, timeout=10000):
        viewer.rotate_right()
    rect = viewer.highlight_rect
    x0, y0, x1, y1 = _dark_rect(viewer)
    assert abs(rect.left() - x0) < 3 and abs(rect.bottom() - y1) < 3
    viewer.clear_highlight()
    assert viewer.highlight_rect is None
