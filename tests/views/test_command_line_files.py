"""`ecms-desktop FILE...` (the .desktop file's `Exec=ecms-desktop %F`, "Open with ECMS Desktop"): the files go
to the intake inbox through the desk's own import path and the Inbox is shown; a file that cannot be taken is
named, and the others are still taken. The application icon is set on the windows."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QSize
from PySide6.QtWidgets import QMessageBox
from sqlalchemy import select

from ecms_desktop.app import parse_args, receive_on_start
from ecms_desktop.models import Document
from ecms_desktop.views.main_window import MainWindow
from ecms_desktop.views.widgets.app_icon import ICON_SIZES, application_icon
from tests.factories import write_image, write_text_pdf
from tests.views.test_main_window import AS_OF
from tests.views.test_screenshot_mode import png_size, run_app


def test_the_parser_takes_files_after_and_between_options() -> None:
    args = parse_args(["--db", "x.sqlite", "scan.pdf", "--view", "inbox", "photo.png"])
    assert args.files == [Path("scan.pdf"), Path("photo.png")] and args.db == "x.sqlite" and args.view == "inbox"
    assert parse_args([]).files == []


def inbox_names(db) -> list[str]:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return sorted(d.original_name for d in s.scalars(select(Document).where(Document.certificate_id.is_(None))))


def test_files_on_the_command_line_go_to_the_inbox_and_the_bad_ones_are_named(  # type: ignore[no-untyped-def]
        qtbot, db, company_id, tmp_path, capsys) -> None:
    good = [write_text_pdf(tmp_path / "scan.pdf", "one"), write_image(tmp_path / "photo.png", 400, 500)]
    missing = tmp_path / "gone.pdf"
    unsupported = tmp_path / "letter.docx"
    unsupported.write_bytes(b"PK\x03\x04 not a certificate at all")
    window = MainWindow(None, as_of=AS_OF, settings=QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    receive_on_start(window, [good[0], missing, unsupported, good[1]])
    with qtbot.waitSignal(window.intake_finished, timeout=60000) as blocker:
        window.set_database(db)
    received = blocker.args[0]
    assert sorted(i.outcome for i in received.arrived) == ["inbox", "inbox", "refused", "refused"]
    qtbot.waitUntil(lambda: window.inbox_pane.count == 2, timeout=15000)
    assert window.grid_tabs.currentWidget() is window.inbox_pane
    # the first file taken is selected and shown
    qtbot.waitUntil(lambda: window.viewer.page_count > 0, timeout=15000)
    assert window.inbox_pane.selected_item().name == "scan.pdf" and window.viewer.name_label.text() == "scan.pdf"
    assert inbox_names(db) == ["photo.png", "scan.pdf"]
    err = capsys.readouterr().err  # each file's fate, said to a terminal too
    assert "gone.pdf: file not found" in err and "letter.docx: this is not a PDF or a supported image" in err
    assert "scan.pdf: stored as document" in err and "photo.png: stored as document" in err
    report = window.findChild(QMessageBox, "intakeReport")  # and in the window
    assert "gone.pdf: file not found" in report.detailedText() and "letter.docx" in report.detailedText()
    window.shutdown()


def test_the_application_icon_has_every_size() -> None:
    icon = application_icon()
    assert not icon.isNull()
    assert {s.width() for s in icon.availableSizes()} == set(ICON_SIZES)
    assert icon.pixmap(QSize(16, 16)).toImage().pixelColor(8, 8).alpha() > 0  # drawn, not empty


@pytest.mark.slow
def test_screenshot_of_the_inbox_with_a_file_from_the_command_line(db, db_url, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """What the desktop's Exec line runs, in screenshot mode: the picture waits for the file to arrive."""
    if not db_url.startswith("sqlite"):
        pytest.skip("one backend is enough for the subprocess run")
    scan = write_text_pdf(tmp_path / "from-the-file-manager.pdf", "one")
    out = tmp_path / "inbox.png"
    proc = run_app(["--db", db_url, "--screenshot", str(out), "--size", "1280x800", "--as-of", AS_OF.isoformat(),
                    "--view", "inbox", str(scan), str(tmp_path / "missing.png")], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "missing.png" in proc.stderr and "Traceback" not in proc.stderr
    assert inbox_names(db) == ["from-the-file-manager.pdf"]
    assert png_size(out) == (1280, 800) and out.stat().st_size > 10_000
