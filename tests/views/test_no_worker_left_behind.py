"""Closing the desk leaves no process behind: the document workers the viewer, its thumbnails, the review
queue and the shared sandbox (probing, reading) started are all ended and waited for - none left
running, none left defunct (a zombie: ended but never waited for)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from PySide6.QtCore import QSettings

from ecms_desktop.services.documents import shared_sandbox
from ecms_desktop.services.documents.sandbox import DocumentSandbox
from ecms_desktop.views.main_window import MainWindow
from tests.factories import letter_pdf, seed_certificates

AS_OF = dt.date(2026, 6, 1)


def child_processes() -> dict[int, str]:
    """This process's children (pid: state letter, "Z" for defunct), read from /proc (Linux)."""
    me, out = os.getpid(), {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat[stat.rindex(")") + 2:].split()[:2]
        if int(ppid) == me:
            out[int(entry.name)] = state
    return out


def test_closing_the_desk_ends_and_waits_for_every_worker(qtbot, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    before = child_processes()
    ids = seed_certificates(db, company_id, 4)
    sandbox = DocumentSandbox()
    window = MainWindow(None, as_of=AS_OF, settings=QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat),
                        sandbox=sandbox, interactive=False)
    qtbot.addWidget(window)
    window.resize(1400, 860)
    window.show()
    with qtbot.waitSignals([window.grid_ready, window.counts_updated], timeout=15000):
        window.set_database(db)
    qtbot.waitUntil(lambda: window.model.position_of(ids[0]) is not None, timeout=15000)
    with qtbot.waitSignal(window.selection_ready, timeout=15000):
        assert window.select_certificate(ids[0])
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(letter_pdf(4))
    detail = window.current_detail
    with qtbot.waitSignal(window.intake_finished, timeout=30000):  # probed in the shared sandbox
        window.receive_files([scan], attach_to=(detail.id, detail.version))
    with qtbot.waitSignal(window.selection_ready, timeout=15000):
        assert window.select_certificate(ids[1])
    with qtbot.waitSignal(window.viewer.page_painted, timeout=20000):  # now with its 4-page document
        assert window.select_certificate(ids[0])
    qtbot.waitUntil(lambda: window.viewer.page_count == 4, timeout=20000)
    window.open_review_queue()
    assert window.review_window is not None
    qtbot.waitUntil(lambda: len(set(child_processes()) - set(before)) >= 2, timeout=20000)
    started = set(child_processes()) - set(before)

    # As the program ends (app.main): the window, then the sandboxes it was given and the shared one.
    window.close()
    window.shutdown()
    sandbox.close()
    shared_sandbox.close()

    left = {pid: state for pid, state in child_processes().items() if pid in started}
    assert left == {}, f"worker processes left behind (pid: state, Z = defunct): {left}"
