"""Work lists at the desk: quick filters from the checks, filters saved by name, the review queue walking
the grid's list ("n of N", the List pane, Ctrl+G, Esc), the desk refreshed when the queue closes, and
"Validate all" offering the certificates with errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from ecms_desktop.services.certificates.query import CheckFilter
from ecms_desktop.views.certificates.filter_bar import Filters
from ecms_desktop.views.certificates.review_queue import ReviewQueueWindow
from ecms_desktop.views.certificates.table_model import COLUMN_KEYS
from ecms_desktop.views.certificates.work_lists import SavedFilters
from ecms_desktop.views.main_window import MainWindow
from tests.factories import complete_fields, make_certificate, make_desk_certificate
from tests.helpers.shortcuts import ambiguous_shortcuts
from tests.views.test_main_window import open_window, shown_ids

AS_OF = dt.date(2026, 6, 1)


@pytest.fixture
def ui_settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def desk(qtbot, db, company_id, ui_settings):  # type: ignore[no-untyped-def]
    """Three pending certificates with errors (Alpha, Bravo, Charlie: fields missing), one pending with a
    warning only (Delta), two approved without findings."""
    errors = [make_desk_certificate(db, company_id, as_of=AS_OF, customer=f"E-{i}", name=name,
                                    purchaser_name=name).id
              for i, name in enumerate(("Alpha Errors", "Bravo Errors", "Charlie Errors"))]
    warned = make_desk_certificate(db, company_id, as_of=AS_OF, customer="W-1", name="Delta Retail",
                                   state_ids={"TX": "32012345678"},
                                   **complete_fields("Delta Retail Holdings", "TX")).id
    for i in range(2):
        make_certificate(db, company_id, customer=f"A-{i}", name=f"Echo Approved {i}")
    window = open_window(qtbot, db, ui_settings)
    yield window, errors, warned
    if window.review_window is not None:
        window.review_window.close_without_asking()
    window.shutdown()


def _apply(qtbot: Any, window: MainWindow, entry: str) -> None:
    """Choose a Work lists entry and wait for its rows and counts."""
    with qtbot.waitSignals([window.grid_ready, window.counts_updated], timeout=15000):
        window.work_lists.trigger(entry)


def test_quick_filters_show_the_work_the_checks_left(qtbot, desk) -> None:  # type: ignore[no-untyped-def]
    window, errors, warned = desk
    header = window.table.horizontalHeader()
    for key in ("errors", "warnings"):  # shown by default, right after the status
        assert not header.isSectionHidden(COLUMN_KEYS.index(key))
    assert [header.visualIndex(COLUMN_KEYS.index(k)) for k in ("status", "errors", "warnings")] == [1, 2, 3]

    _apply(qtbot, window, "Validation errors")
    assert shown_ids(window) == errors  # in the grid's order (customer name)
    assert window.filter_bar.check_combo.currentText() == "Validation errors"
    assert window.filter_bar.list_name() == "Validation errors"
    assert sum(b.count for b in window.status_strip.buttons.values()) == 3
    errors_col, warnings_col = COLUMN_KEYS.index("errors"), COLUMN_KEYS.index("warnings")
    assert all(int(window.model.index(r, errors_col).data()) > 0 for r in range(3))

    _apply(qtbot, window, "Warnings to acknowledge")
    assert shown_ids(window) == [warned]
    assert window.model.index(0, errors_col).data() == "0" and window.model.index(0, warnings_col).data() == "1"

    _apply(qtbot, window, "Pending review")
    assert sorted(shown_ids(window)) == sorted([*errors, warned])
    assert window.filter_bar.check_combo.currentData() is None  # a quick filter replaces the others

    _apply(qtbot, window, f"Expiring in {window.window_days} days")
    assert window.filter_bar.expiring_spin.value() == window.window_days

    _apply(qtbot, window, "Permit not checked")
    assert len(shown_ids(window)) == 6  # nobody checked a permit yet

    # Changing a filter by hand: the list has no name any more.
    with qtbot.waitSignal(window.counts_updated, timeout=15000):
        window.filter_bar.state_combo.setCurrentIndex(window.filter_bar.state_combo.findData("TX"))
    assert window.filter_bar.list_name() == "Filtered certificates"

    # "In the inbox": the documents waiting there have no certificate, so the Inbox pane is shown.
    assert window.work_lists.action("In the inbox (0)") is not None
    window.work_lists.trigger("In the inbox (0)")
    assert window.grid_tabs.currentWidget() is window.inbox_pane


def test_filters_saved_by_name(qtbot, desk, ui_settings) -> None:  # type: ignore[no-untyped-def]
    window, errors, _ = desk
    wanted = Filters(state="TX", check=CheckFilter.ERRORS)
    with qtbot.waitSignal(window.counts_updated, timeout=15000):
        window.filter_bar.set_filters(wanted)
    window.work_lists.trigger("Save current filters as…")
    dialog = window.work_lists.save_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.setTextValue("TX errors")
    dialog.accept()
    assert "saved" in window.statusBar().currentMessage()
    assert SavedFilters(ui_settings).names() == ["TX errors"]  # kept in the user's settings
    assert SavedFilters(ui_settings).get("TX errors") == wanted

    with qtbot.waitSignal(window.counts_updated, timeout=15000):
        window.filter_bar.clear()
    assert len(shown_ids(window)) == 6
    _apply(qtbot, window, "\u2605 TX errors")
    assert window.filter_bar.filters() == wanted and shown_ids(window) == errors
    assert window.filter_bar.list_name() == "TX errors"

    # Nothing to save without a filter: said plainly, nothing stored.
    with qtbot.waitSignal(window.counts_updated, timeout=15000):
        window.filter_bar.clear()
    assert not window.work_lists.save_current("Everything")
    assert "No filter" in window.statusBar().currentMessage()
    assert SavedFilters(ui_settings).names() == ["TX errors"]

    window.work_lists.trigger("TX errors")  # the entry of "Delete saved filter"
    assert SavedFilters(ui_settings).names() == []
    with pytest.raises(KeyError):
        window.work_lists.action("\u2605 TX errors")


def _queue(qtbot: Any, window: MainWindow) -> ReviewQueueWindow:
    window.open_review_queue()
    queue = window.review_window
    assert queue is not None
    qtbot.waitUntil(lambda: queue.detail is not None, timeout=20000)
    queue.activateWindow()
    qtbot.waitUntil(queue.isActiveWindow, timeout=5000)
    return queue


def test_the_review_queue_walks_the_grids_list(qtbot, desk, db) -> None:  # type: ignore[no-untyped-def]
    from ecms_desktop.services.certificates.service import CertificateService

    window, errors, _ = desk
    _apply(qtbot, window, "Validation errors")
    with qtbot.waitSignal(window.model.query_finished, timeout=15000):  # sorted by customer, descending
        window.table.sortByColumn(COLUMN_KEYS.index("customer"), Qt.SortOrder.DescendingOrder)
    grid_order = shown_ids(window)
    assert grid_order == errors[::-1]
    with qtbot.waitSignal(window.form.checks_loaded, timeout=15000):  # shown in the desk meanwhile
        assert window.select_certificate(grid_order[1])
    queue = _queue(qtbot, window)
    assert queue.ids == grid_order and queue.detail.id == grid_order[0]
    assert queue.position.text().startswith("Certificate 1 of 3")
    assert "Validation errors" in queue.windowTitle()
    assert ambiguous_shortcuts(queue) == {}

    # Ctrl+G: the List pane opens with the position ready; 3 + Enter goes to the third.
    qtbot.keyClick(queue.focusWidget() or queue, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier)
    assert queue.list_dock.isVisible() and queue.position_spin.hasFocus()
    assert queue.position_total.text() == "of 3"
    with qtbot.waitSignal(queue.certificate_shown, timeout=20000) as shown:
        qtbot.keyClicks(queue.position_spin, "3")
        qtbot.keyClick(queue.position_spin, Qt.Key.Key_Return)
    assert shown.args == [grid_order[2]] and queue.position.text().startswith("Certificate 3 of 3")
    # Picking from the list.
    qtbot.waitUntil(lambda: queue.list_model.rowCount() == 3, timeout=5000)
    rect = queue.list_view.visualRect(queue.list_model.index(1, 0))
    with qtbot.waitSignal(queue.certificate_shown, timeout=20000) as shown:
        qtbot.mouseClick(queue.list_view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert shown.args == [grid_order[1]]

    # Rejected, the certificate keeps its errors and stays in the list: the next one opens.
    queue.reject()
    qtbot.waitUntil(lambda: queue.reason_dialog is not None, timeout=5000)
    queue.reason_dialog.edit.setPlainText("Not signed")
    with qtbot.waitSignal(queue.certificate_shown, timeout=20000) as shown:
        queue.reason_dialog.accept()
    assert shown.args == [grid_order[2]] and queue.ids == grid_order
    assert queue.position.text().startswith("Certificate 3 of 3")
    assert CertificateService(db).get(grid_order[1], AS_OF).review_state == "rejected"

    # Esc closes the queue; the desk reads its grid and counts again (no F5 needed).
    queue.activateWindow()
    qtbot.waitUntil(queue.isActiveWindow, timeout=5000)
    with qtbot.waitSignals([queue.closed, window.counts_updated], timeout=15000):
        qtbot.keyClick(queue.focusWidget() or queue, Qt.Key.Key_Escape)
    assert not queue.isVisible()
    assert window.status_strip.buttons[next(s for s in window.status_strip.buttons if s.value == "rejected")
                                       ].count == 1
    # The certificate the desk shows is read again too: its form knows it was rejected.
    qtbot.waitUntil(lambda: window.current_detail.review_state == "rejected", timeout=15000)


def test_esc_asks_about_unsaved_edits_first(qtbot, desk) -> None:  # type: ignore[no-untyped-def]
    window, errors, _ = desk
    queue = _queue(qtbot, window)  # no filter: the pending certificates, oldest first
    assert queue.list_name == "Pending review" and queue.ids[:3] == errors
    name = queue.form.builder.editor("purchaser_name")
    name.setFocus()
    qtbot.keyClicks(name, " Renamed")
    qtbot.keyClick(name, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: queue.form.unsaved_dialog is not None and queue.form.unsaved_dialog.isVisible(),
                    timeout=5000)
    queue.form.unsaved_dialog.button(QMessageBox.StandardButton.Cancel).click()
    qtbot.waitUntil(lambda: queue.form.unsaved_dialog is None, timeout=5000)
    assert queue.isVisible() and queue.form.is_dirty()
    queue.close_without_asking()


def test_validate_all_offers_the_certificates_with_errors(qtbot, desk) -> None:  # type: ignore[no-untyped-def]
    window, errors, _ = desk
    with qtbot.waitSignal(window.validation_finished, timeout=60000):
        window.act_validate_all.trigger()
    report = window.validate_all_report
    assert report is not None and report.isVisible()
    assert "6 certificates validated: 3 with errors" in report.text()
    button = report.findChild(type(report.defaultButton()), "showErrorsButton")
    assert button is not None and button.text() == "Show certificates with errors"
    with qtbot.waitSignals([window.grid_ready, window.counts_updated], timeout=15000):
        button.click()
    assert shown_ids(window) == errors and window.filter_bar.list_name() == "Validation errors"
    QApplication.processEvents()


def test_asking_for_the_queue_again_walks_the_grids_new_list(qtbot, desk) -> None:  # type: ignore[no-untyped-def]
    window, errors, warned = desk
    queue = _queue(qtbot, window)
    assert queue.list_name == "Pending review" and sorted(queue.ids) == sorted([*errors, warned])
    _apply(qtbot, window, "Warnings to acknowledge")
    with qtbot.waitSignal(queue.certificate_shown, timeout=20000) as shown:
        window.open_review_queue()  # the queue is open: it walks the new list
    assert window.review_window is queue and shown.args == [warned]
    assert queue.ids == [warned] and "Warnings to acknowledge" in queue.windowTitle()
    assert queue.position.text().startswith("Certificate 1 of 1")
