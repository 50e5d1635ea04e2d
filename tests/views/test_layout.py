"""Nothing the user needs to read is clipped, at 1280 x 800 and 1920 x 1080, and at 200 % scaling.

Every window of tests/helpers/windows.py (the desk, the review queue, the other windows and dialogs) is
opened from a desk of that size and checked by widget geometry (tests/helpers/layout.py): each label,
field and button at least its minimum size hint wide (fields at least a few characters) and inside its
parent; each table column at least as wide as its header text.

200 % scaling: Qt lays a window out in device-independent pixels, so a 2560 x 1600 screen at 200 % is a
1280 x 800 desk drawn with two device pixels per pixel. The last test runs the same check in a
subprocess with ``QT_SCALE_FACTOR=2`` (device pixel ratio 2: fonts, icons and rounding at that scale).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, QSettings
from PySide6.QtWidgets import QApplication, QDialog, QWidget

from ecms_desktop.views.main_window import MainWindow
from tests.factories import letter_pdf, make_desk_certificate, seed_certificates
from tests.helpers.layout import layout_problems
from tests.helpers.windows import WINDOWS

AS_OF = dt.date(2026, 6, 1)
REPO = Path(__file__).resolve().parents[2]
SIZES = [(1280, 800), (1920, 1080)]


def open_desk(qtbot, db, company_id, tmp_path: Path, size: tuple[int, int]) -> MainWindow:  # type: ignore[no-untyped-def]
    seed_certificates(db, company_id, 6)
    detail = make_desk_certificate(db, company_id, as_of=AS_OF, form="SST-F0003", states=["WA", "NC", "OH", "TX"],
                                   purchaser_name="Multi State Supply", customer="C-900",
                                   signed_date=dt.date(2026, 2, 1), effective_date=dt.date(2026, 2, 1),
                                   state_ids={"WA": "603123456", "NC": "600123456"})
    window = MainWindow(None, as_of=AS_OF, settings=QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat),
                        interactive=False)
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    with qtbot.waitSignals([window.grid_ready, window.counts_updated], timeout=15000):
        window.set_database(db)
    qtbot.waitUntil(lambda: window.model.position_of(detail.id) is not None, timeout=15000)
    with qtbot.waitSignal(window.form.checks_loaded, timeout=15000):
        assert window.select_certificate(detail.id)
    return window


def settle(qtbot, widget: QWidget, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    """A main window (the desk, the review queue) at the size tested; a dialog as it opens; laid out."""
    qtbot.waitUntil(lambda: widget.isVisible(), timeout=5000)
    if not isinstance(widget, QDialog):
        widget.resize(*size)
    for _ in range(3):
        QApplication.sendPostedEvents(None, QEvent.Type.LayoutRequest)
        QApplication.processEvents()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", [name for name, _ in WINDOWS])
def test_nothing_is_clipped(qtbot, db, company_id, tmp_path, name: str, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    desk = open_desk(qtbot, db, company_id, tmp_path, size)
    opened = dict(WINDOWS)[name](qtbot, desk)
    assert opened is not None, f"the {name} did not open"
    window = opened.window()
    settle(qtbot, window, size)
    with contextlib.suppress(qtbot.TimeoutError):  # a layout settles in a few turns (texts set as data arrives)
        qtbot.waitUntil(lambda: not layout_problems(window), timeout=3000)
    problems = layout_problems(window)
    desk.shutdown()
    assert problems == [], f"{name} at {size[0]}x{size[1]}:\n" + "\n".join(problems)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_document_opens_at_fit_width_and_a_readable_zoom(qtbot, db, company_id, tmp_path,  # type: ignore[no-untyped-def]
                                                             size: tuple[int, int]) -> None:
    """The viewer showed a letter page at 38 % beside a column of thumbnails at 1280 x 800: too small to
    read. Now the page fills the pane's width at least at 60 % (thumbnails only where there is room)."""
    desk = open_desk(qtbot, db, company_id, tmp_path, size)
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(letter_pdf(3))
    detail = desk.current_detail
    with qtbot.waitSignal(desk.intake_finished, timeout=30000):
        desk.receive_files([scan], attach_to=(detail.id, detail.version))
    other = desk.model.certificate_id(0) if desk.model.certificate_id(0) != detail.id else desk.model.certificate_id(1)
    with qtbot.waitSignal(desk.selection_ready, timeout=15000):
        assert desk.select_certificate(other)
    with qtbot.waitSignal(desk.viewer.page_painted, timeout=20000):
        assert desk.select_certificate(detail.id)
    qtbot.waitUntil(lambda: desk.viewer.page_count == 3 and not desk.viewer.busy, timeout=20000)
    viewer = desk.viewer
    assert viewer.fit_mode == "width"
    assert viewer.zoom >= 0.6, f"the page is shown at {viewer.zoom:.0%} in a viewer {viewer.width()} px wide"
    desk.shutdown()


_AT_200_PERCENT = r"""
import datetime as dt, json, sys
from PySide6.QtCore import QEventLoop, QSettings, QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
from ecms_desktop.services.core.database import open_database
from ecms_desktop.views.main_window import MainWindow
from tests.helpers.layout import layout_problems

def wait(signal, ms=20000):
    loop, timer = QEventLoop(), QTimer()
    timer.setSingleShot(True); timer.timeout.connect(loop.quit); signal.connect(loop.quit); timer.start(ms); loop.exec()

def settle(ms=1500):
    loop = QEventLoop(); QTimer.singleShot(ms, loop.quit); loop.exec()

desk = MainWindow(None, as_of=dt.date(2026, 6, 1), settings=QSettings(sys.argv[2], QSettings.Format.IniFormat),
                  interactive=False)
desk.resize(1280, 800)
desk.show()
desk.set_database(open_database(sys.argv[1]))
wait(desk.grid_ready)
desk.request_select(int(sys.argv[3]))
wait(desk.selection_ready)
settle()
found = {"ratio": desk.screen().devicePixelRatio(), "desk": layout_problems(desk)}
desk.open_review_queue()
settle(3000)
queue = desk.review_window
queue.resize(1280, 800)
settle()
found["review queue"] = layout_problems(queue)
desk.shutdown()
print(json.dumps(found))
"""


@pytest.mark.slow
def test_nothing_is_clipped_at_200_percent(db, db_url, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The desk and the review queue at 1280 x 800 device-independent pixels with QT_SCALE_FACTOR=2 (a
    2560 x 1600 screen at 200 %), in a process of their own (the scale is fixed when Qt starts)."""
    if not db_url.startswith("sqlite"):
        pytest.skip("one backend is enough for the subprocess run")
    seed_certificates(db, company_id, 4)
    detail = make_desk_certificate(db, company_id, as_of=AS_OF, form="SST-F0003", states=["WA", "NC", "OH", "TX"],
                                   purchaser_name="Multi State Supply", customer="C-900",
                                   signed_date=dt.date(2026, 2, 1), effective_date=dt.date(2026, 2, 1))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_SCALE_FACTOR": "2",
           "ECMS_DATA_DIR": str(tmp_path / "data"), "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", _AT_200_PERCENT, db.url, str(tmp_path / "ui.ini"), str(detail.id)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found.pop("ratio") == 2.0
    assert found == {"desk": [], "review queue": []}, json.dumps(found, indent=1)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_forms_fields_keep_a_readable_width(qtbot, db, company_id, tmp_path,  # type: ignore[no-untyped-def]
                                                size: tuple[int, int]) -> None:
    """Beside a long label ("Purchaser permit / registration number") a field shrank to a few letters in
    the narrow form pane; now it goes under its label instead."""
    from PySide6.QtWidgets import QComboBox, QLineEdit, QPlainTextEdit

    from ecms_desktop.views.certificates.form_builder import FIELD_MIN_CHARS

    desk = open_desk(qtbot, db, company_id, tmp_path, size)
    fields = [w for w in desk.form.builder.findChildren(QWidget)
              if isinstance(w, QLineEdit | QComboBox | QPlainTextEdit) and w.objectName().startswith("field_")
              and w.isVisibleTo(desk)]
    assert len(fields) > 8
    # A purchaser's name or a certificate number as typed: 22 characters of it must show.
    sample = "Atlanta Youth Soccer A"
    narrow = {w.objectName(): w.width() for w in fields
              if w.width() < max(FIELD_MIN_CHARS * w.fontMetrics().averageCharWidth(),
                                 w.fontMetrics().horizontalAdvance(sample))}
    # A value longer than its field shows its beginning ("Allen County Board of Commi…", not "…n County
    # Board of Commissioners"): the cursor of every line field starts at 0.
    scrolled = {w.objectName(): w.cursorPosition() for w in fields if isinstance(w, QLineEdit) and w.cursorPosition()}
    desk.shutdown()
    assert narrow == {}
    assert scrolled == {}
