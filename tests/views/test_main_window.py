"""The review desk window: opening, filtering, the status strip, remembered layout, drag-and-drop
intake, the company selector, an unreachable database and the shortcuts overlay."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pymupdf
import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from sqlalchemy import func, select
from test_certificate_table_model import seed_certificates

from ecms_desktop.models import Certificate, Status
from ecms_desktop.services.certificate_query import CertificateQuery, count_by_status, matching_ids
from ecms_desktop.services.company_service import CompanyService
from ecms_desktop.views.certificate_table_model import CERT_ID_ROLE, COLUMN_KEYS
from ecms_desktop.views.main_window import MainWindow
from ecms_desktop.views.status_badge_delegate import STATUS_ROLE

AS_OF = dt.date(2026, 6, 1)


@pytest.fixture
def ui_settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)


def open_window(qtbot: Any, db: Any, settings: QSettings) -> MainWindow:
    window = MainWindow(None, as_of=AS_OF, settings=settings)
    qtbot.addWidget(window)
    window.resize(1400, 800)
    window.show()
    with qtbot.waitSignals([window.grid_ready, window.counts_updated], timeout=15000):
        window.set_database(db)
    return window


@pytest.fixture
def window(qtbot, db, company_id, ui_settings):  # type: ignore[no-untyped-def]
    seed_certificates(db, company_id, 80)
    w = open_window(qtbot, db, ui_settings)
    yield w
    w.shutdown()


def shown_ids(window: MainWindow) -> list[int]:
    m = window.model
    while m.canFetchMore():
        m.fetchMore()
    return [m.index(r, 0).data(CERT_ID_ROLE) for r in range(m.rowCount())]


def test_opens_with_rows_and_counts(window, db, company_id) -> None:  # type: ignore[no-untyped-def]
    assert window.model.rowCount() > 0
    with db.reader() as s:
        counts = count_by_status(s, CertificateQuery(company_id=company_id, as_of=AS_OF))
    for status, button in window.status_strip.buttons.items():
        assert button.count == counts[status]
    assert window.rows_label.text() == "80 certificates"
    assert db.display_url in window.windowTitle()
    assert not window.company_combo_action.isVisible()  # one company: no selector


def test_filter_bar_text_and_state(qtbot, window, db, company_id) -> None:  # type: ignore[no-untyped-def]
    with qtbot.waitSignal(window.model.query_finished, timeout=5000):
        qtbot.keyClicks(window.filter_bar.text_edit, "Buyer 03")  # debounced: one query after typing
    with db.reader() as s:
        expected = matching_ids(s, CertificateQuery(company_id=company_id, as_of=AS_OF, text="Buyer 03"))
    assert shown_ids(window) == expected and expected
    with qtbot.waitSignal(window.model.query_finished, timeout=5000):
        window.filter_bar.state_combo.setCurrentIndex(window.filter_bar.state_combo.findData("CA"))
    with db.reader() as s:
        expected = matching_ids(s, CertificateQuery(company_id=company_id, as_of=AS_OF, text="Buyer 03",
                                                    states=("CA",)))
    assert shown_ids(window) == expected
    with qtbot.waitSignal(window.model.query_finished, timeout=5000):
        window.filter_bar.clear()
    assert len(shown_ids(window)) == 80


def test_status_strip_filters_and_follows_the_filter_bar(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    button = window.status_strip.buttons[Status.EXPIRED]
    expected = button.count
    assert expected
    with qtbot.waitSignal(window.model.query_finished, timeout=5000):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    ids = shown_ids(window)
    assert len(ids) == expected
    col = COLUMN_KEYS.index("status")
    assert {window.model.index(r, col).data(STATUS_ROLE) for r in range(len(ids))} == {Status.EXPIRED.value}
    assert window.filter_bar.filters().status is Status.EXPIRED
    with qtbot.waitSignal(window.model.query_finished, timeout=5000):
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)  # again: all statuses
    assert len(shown_ids(window)) == 80
    assert window.status_strip.selected() is None


def test_splitter_and_columns_are_remembered(qtbot, window, db, ui_settings) -> None:  # type: ignore[no-untyped-def]
    window.splitter.setSizes([900, 200, 300])
    sizes = window.splitter.sizes()
    window.set_column_visible(COLUMN_KEYS.index("exempt_reason"), False)
    window.table.setColumnWidth(0, 333)
    window.save_ui_state()
    again = MainWindow(None, as_of=AS_OF, settings=ui_settings)
    qtbot.addWidget(again)
    again.resize(window.size())
    again.show()
    qtbot.waitUntil(lambda: again.splitter.sizes() == sizes, timeout=3000)
    assert again.table.horizontalHeader().isSectionHidden(COLUMN_KEYS.index("exempt_reason"))
    assert again.table.columnWidth(0) == 333
    again.shutdown()


def make_pdf(path: Path, text: str) -> Path:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), text)
    path.write_bytes(doc.tobytes())
    doc.close()
    return path


def drop(window: MainWindow, paths: list[Path], target) -> None:  # type: ignore[no-untyped-def]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(target.mapTo(window, target.rect().center()))
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    window.dragEnterEvent(enter)  # the handlers Qt calls during a real drag (a drag cannot be faked offscreen)
    assert enter.isAccepted()
    event = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    assert event.isAccepted()


def test_drop_files_on_the_grid_creates_pending_certificates(qtbot, window, db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    files = [make_pdf(tmp_path / "scan-1.pdf", "one"), make_pdf(tmp_path / "scan-2.pdf", "two")]
    junk = tmp_path / "notes.pdf"
    junk.write_bytes(b"not a pdf")
    before = window.status_strip.buttons[Status.PENDING_REVIEW].count
    with qtbot.waitSignal(window.intake_finished, timeout=30000) as blocker:
        drop(window, [*files, junk], window.table.viewport())
    result = blocker.args[0]
    assert [i.outcome.value for i in result.items] == ["stored", "stored", "refused"]
    qtbot.waitUntil(lambda: window.status_strip.buttons[Status.PENDING_REVIEW].count == before + 2, timeout=5000)
    with db.reader() as s:
        for cert_id in result.certificate_ids:
            assert s.get(Certificate, cert_id).review_state == "pending"  # type: ignore[union-attr]


def test_drop_on_the_form_side_attaches_to_the_selected_certificate(qtbot, window, db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert_id = window.model.certificate_id(0)
    with qtbot.waitSignal(window.selection_ready, timeout=15000):
        window.table.selectRow(0)
    assert window.current_detail.id == cert_id
    with db.reader() as s:
        before = s.execute(select(func.count()).select_from(Certificate)).scalar_one()
    with qtbot.waitSignal(window.intake_finished, timeout=30000) as blocker:
        drop(window, [make_pdf(tmp_path / "page-2.pdf", "second page")], window.form)
    assert blocker.args[0].items[0].certificate_id == cert_id
    with db.reader() as s:
        assert s.execute(select(func.count()).select_from(Certificate)).scalar_one() == before


def test_company_selector_with_several_companies(qtbot, db, company_id, ui_settings) -> None:  # type: ignore[no-untyped-def]
    seed_certificates(db, company_id, 10)
    other = CompanyService(db).create("Beta Distribution", state="CA").id
    seed_certificates(db, other, 4)
    w = open_window(qtbot, db, ui_settings)
    try:
        assert w.company_combo_action.isVisible()
        assert w.company_combo.count() == 2
        with qtbot.waitSignal(w.model.query_finished, timeout=5000):
            w.company_combo.setCurrentIndex(w.company_combo.findData(other))
        assert len(shown_ids(w)) == 4
    finally:
        w.shutdown()


def test_unreachable_database_hides_the_password(qtbot, ui_settings) -> None:  # type: ignore[no-untyped-def]
    w = MainWindow(None, as_of=AS_OF, settings=ui_settings)
    qtbot.addWidget(w)
    w.show()
    with qtbot.waitSignal(w.database_failed, timeout=30000) as blocker:
        w.open_database("postgresql+psycopg://clerk:s3cret-pw@127.0.0.1:9/ecms")
    assert "s3cret-pw" not in blocker.args[0]
    dialog = w._database_dialog
    qtbot.waitUntil(dialog.isVisible)
    text = dialog.message.text()
    assert "127.0.0.1:9/ecms" in text and "s3cret-pw" not in text and "***" in text
    assert dialog.open_button.isVisible() and dialog.new_button.isVisible()
    dialog.reject()
    w.shutdown()


def test_shortcuts_overlay_lists_menu_shortcuts(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    window.act_shortcuts.trigger()
    overlay = window.help_overlay
    assert overlay is not None and overlay.isVisible()
    entries = {text: keys for _, items in overlay.sections for text, keys in items}
    assert "Approve" in entries and "Review queue" in entries and "Reject" in entries
    qtbot.keyClick(overlay, Qt.Key.Key_Escape)
    assert not overlay.isVisible()
