"""Everyone sees it: the desk follows another desk's commits to the same database (a second Database
here, as a second desk is). The grid is read again in place (selection, scroll and sort kept), the open
certificate is shown anew or set beside the unsaved edits, the review queue follows too."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings

from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.core.database import Database
from ecms_desktop.views.certificates.table_model import CERT_ID_ROLE
from ecms_desktop.views.main_window import MainWindow
from tests.factories import make_certificate, seed_certificates

AS_OF = dt.date(2026, 6, 1)
WAIT_MS = 20000  # a bound on waiting, never a claim about speed


@pytest.fixture
def ui_settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def seeded(db, company_id) -> list[int]:  # type: ignore[no-untyped-def]
    return seed_certificates(db, company_id, 80)


@pytest.fixture
def window(qtbot, db, seeded, ui_settings):  # type: ignore[no-untyped-def]
    w = MainWindow(None, as_of=AS_OF, settings=ui_settings)
    qtbot.addWidget(w)
    w.resize(1400, 600)
    w.show()
    with qtbot.waitSignals([w.grid_ready, w.counts_updated], timeout=WAIT_MS):
        w.set_database(db)
    assert w.change_feed.watcher is not None and w.change_feed.watcher.ready.wait(WAIT_MS / 1000)
    yield w
    w.shutdown()


@pytest.fixture
def colleague(db):  # type: ignore[no-untyped-def]
    other = Database(db.url)
    yield CertificateService(other)
    other.dispose()


def select(qtbot: Any, w: MainWindow, cert_id: int) -> None:
    with qtbot.waitSignal(w.form.checks_loaded, timeout=WAIT_MS):
        assert w.select_certificate(cert_id)
    assert w.form.detail is not None and w.form.detail.id == cert_id


def row_status(w: MainWindow, cert_id: int) -> str | None:
    row = w.model.row_of(cert_id)
    data = w.model.row_data(row) if row is not None else None
    return data.review_state if data is not None else None


def test_a_colleagues_changes_show_and_the_place_is_kept(qtbot, window, colleague, db, company_id) -> None:  # type: ignore[no-untyped-def]
    w = window
    w.model.fetch_until(w.model.total - 1)
    ids = [w.model.index(r, 0).data(CERT_ID_ROLE) for r in range(w.model.rowCount())]
    chosen, other = ids[50], ids[51]
    select(qtbot, w, chosen)
    w.table.scrollToBottom()
    top = w.table.verticalScrollBar().value()
    assert top > 0
    sort = (w.model.query.sort, w.model.query.descending)
    shown_before = w.form.detail

    stored = colleague.get(other, AS_OF)
    assert stored.review_state != "rejected"
    colleague.reject(other, "signature missing", expected_version=stored.version, as_of=AS_OF)
    qtbot.waitUntil(lambda: row_status(w, other) == "rejected", timeout=WAIT_MS)
    assert w.table.selected_certificate_id() == chosen
    assert w.table.verticalScrollBar().value() == top
    assert w.form.detail is shown_before  # the form was not loaded again: nothing of it changed

    # A new certificate changes the list itself: the rows are replaced, the place is found again.
    with qtbot.waitSignal(w.changes_shown, timeout=WAIT_MS):
        added = make_certificate(colleague.db, company_id, customer="C-0001", name="Aardvark Supply").id
    qtbot.waitUntil(lambda: w.model.position_of(added) is not None, timeout=WAIT_MS)
    assert w.table.selected_certificate_id() == chosen
    assert (w.model.query.sort, w.model.query.descending) == sort
    assert w.form.detail is shown_before
    qtbot.waitUntil(lambda: w.rows_label.text() == "81 certificates", timeout=WAIT_MS)


def test_the_open_certificate_changed_elsewhere_is_shown_and_said(qtbot, window, colleague, seeded) -> None:  # type: ignore[no-untyped-def]
    w = window
    cert_id = seeded[3]
    select(qtbot, w, cert_id)
    stored = colleague.get(cert_id, AS_OF)
    colleague.save(cert_id, dataclasses.replace(stored.data, purchaser_name="Renamed Elsewhere LLC"),
                   expected_version=stored.version, as_of=AS_OF)
    qtbot.waitUntil(lambda: w.form.updated_note.isVisible(), timeout=WAIT_MS)
    assert w.form.updated_note.text().startswith("Updated by tester at ")
    assert w.form.builder.editor("purchaser_name").text() == "Renamed Elsewhere LLC"
    assert w.current_detail is not None and w.current_detail.version == stored.version + 1


def test_a_concurrent_edit_shows_both_versions_and_keep_mine_saves(qtbot, window, colleague, seeded) -> None:  # type: ignore[no-untyped-def]
    w = window
    cert_id = seeded[3]
    select(qtbot, w, cert_id)
    editor = w.form.builder.editor("purchaser_name")
    editor.clear()
    qtbot.keyClicks(editor, "Mine LLC")
    stored = colleague.get(cert_id, AS_OF)
    colleague.save(cert_id, dataclasses.replace(stored.data, purchaser_name="Theirs LLC"),
                   expected_version=stored.version, as_of=AS_OF)
    qtbot.waitUntil(lambda: w.form.conflict_panel.isVisible(), timeout=WAIT_MS)
    table = w.form.conflict_table
    assert [table.item(0, c).text() for c in (1, 2)] == ["Theirs LLC", "Mine LLC"]
    assert editor.text() == "Mine LLC"
    w.form.keep_mine()
    with qtbot.waitSignal(w.form.saved, timeout=WAIT_MS):
        w.form.save()
    assert colleague.get(cert_id, AS_OF).data.purchaser_name == "Mine LLC"
    # Its own save came back through the feed: no panel, no note about someone else.
    with qtbot.waitSignal(w.changes_shown, timeout=WAIT_MS):
        pass
    qtbot.wait(300)
    assert not w.form.conflict_panel.isVisible()


def test_the_review_queue_follows_and_keeps_its_certificate(qtbot, window, colleague, seeded) -> None:  # type: ignore[no-untyped-def]
    w = window
    w.open_review_queue()
    queue = w.review_window
    assert queue is not None
    qtbot.waitUntil(lambda: queue.detail is not None, timeout=WAIT_MS)
    shown = queue.detail
    assert shown is not None and len(queue.ids) > 2
    other = next(i for i in queue.ids if i != shown.id)
    stored = colleague.get(other, AS_OF)
    colleague.reject(other, "not signed", expected_version=stored.version, as_of=AS_OF)
    qtbot.waitUntil(lambda: other not in queue.ids, timeout=WAIT_MS)
    assert queue.detail is not None and queue.detail.id == shown.id
    assert queue.ids[queue.index] == shown.id
    queue.close_without_asking()
