"""The review desk window: opening, filtering, the status strip, remembered layout, drag-and-drop
intake, the company selector, an unreachable database and the shortcuts overlay."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from sqlalchemy import func, select

from ecms_desktop.models import Certificate, Status
from ecms_desktop.services.certificates.query import CertificateQuery, count_by_status, matching_ids
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.views.certificates.status_badge_delegate import STATUS_ROLE
from ecms_desktop.views.certificates.table_model import CERT_ID_ROLE, COLUMN_KEYS
from ecms_desktop.views.main_window import MainWindow
from tests.factories import (
    DAY0,
    RULES,
    WEBHOOK_SECRET,
    approve_with_feed_event,
    customer_fills,
    make_certificate,
    make_expiring_certificate,
    make_signed_certificate,
    seed_certificates,
    sent_renewal_form,
    write_text_pdf,
)
from tests.helpers.erp_server import ErpHandler, ErpServer
from tests.helpers.shortcuts import ambiguous_shortcuts

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


def test_select_on_the_command_line_is_done_once(qtbot, db, company_id, ui_settings) -> None:  # type: ignore[no-untyped-def]
    """``ecms-desktop --select N``: seen in a real window, every later search (a refresh, an inbox document
    assigned) selected N again, over the accountant's own choice."""
    from ecms_desktop.app import on_first_grid

    first, second, *_ = seed_certificates(db, company_id, 6)
    window = MainWindow(None, as_of=AS_OF, settings=ui_settings)
    qtbot.addWidget(window)
    window.show()
    on_first_grid(window, select=first, review=False)
    with qtbot.waitSignals([window.grid_ready, window.selection_ready], timeout=15000):
        window.set_database(db)
    assert window.selected_certificate_id() == first
    with qtbot.waitSignal(window.selection_ready, timeout=15000):
        assert window.select_certificate(second)
    with qtbot.waitSignal(window.grid_ready, timeout=15000):
        window.run_query()  # what a filter, or an inbox document assigned, does
    qtbot.wait(200)
    assert window.selected_certificate_id() != first
    window.shutdown()


def test_select_on_the_command_line_with_a_remembered_column_layout(qtbot, db, company_id, ui_settings) -> None:  # type: ignore[no-untyped-def]
    """Seen in a real window: once the desk had been closed once (its columns and sort remembered),
    ``ecms-desktop --select N`` selected nothing. Restoring the remembered sort ran a query before any
    database was open; its empty result announced the grid as ready, and the selection was asked of it."""
    from ecms_desktop.app import on_first_grid

    first, *_ = seed_certificates(db, company_id, 6)
    earlier = MainWindow(None, as_of=AS_OF, settings=ui_settings)
    qtbot.addWidget(earlier)
    earlier.table.horizontalHeader().setSortIndicator(0, Qt.SortOrder.DescendingOrder)
    earlier.save_ui_state()
    earlier.shutdown()

    window = MainWindow(None, as_of=AS_OF, settings=ui_settings)
    qtbot.addWidget(window)
    window.show()
    on_first_grid(window, select=first, review=False)
    qtbot.wait(100)  # the app's event loop runs while the database is being opened
    with qtbot.waitSignals([window.grid_ready, window.selection_ready], timeout=15000):
        window.set_database(db)
    assert window.selected_certificate_id() == first
    window.shutdown()


def test_the_desk_opens_no_larger_than_the_screen(qtbot, ui_settings) -> None:  # type: ignore[no-untyped-def]
    """On its first start (no window size remembered) the desk opened 1440 x 860 on a 1280 x 800 screen:
    the company selector, Settings and the form's right edge were off screen. (The test screen is
    smaller still; the desk may not shrink below what its widgets need.)"""
    window = MainWindow(None, as_of=AS_OF, settings=ui_settings)
    qtbot.addWidget(window)
    room = window.screen().availableGeometry()
    least = window.minimumSizeHint()
    assert window.width() <= max(room.width(), least.width())
    assert window.height() <= max(room.height(), least.height())
    # ... with room for a window manager's title bar: seen under Openbox at 1280 x 800, a desk or a review
    # queue as high as the screen lost its status bar below the bottom edge.
    from ecms_desktop.views.widgets.screen_fit import FRAME_ALLOWANCE

    assert window.height() <= max(room.height() - FRAME_ALLOWANCE.height(), least.height())


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
    window.table.set_column_visible(COLUMN_KEYS.index("exempt_reason"), False)
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


def test_drop_files_on_the_grid_puts_them_in_the_inbox(qtbot, window, db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    files = [write_text_pdf(tmp_path / "scan-1.pdf", "one"), write_text_pdf(tmp_path / "scan-2.pdf", "two")]
    junk = tmp_path / "notes.pdf"
    junk.write_bytes(b"not a pdf")
    with db.reader() as s:
        before = s.execute(select(func.count()).select_from(Certificate)).scalar_one()
    with qtbot.waitSignals([window.intake_finished, window.inbox_updated], timeout=30000):
        drop(window, [*files, junk], window.table.viewport())
    received = window.last_received
    assert received.attached is None
    assert [i.outcome for i in received.arrived] == ["inbox", "inbox", "refused"]
    qtbot.waitUntil(lambda: window.inbox_pane.count == 2, timeout=5000)
    assert window.grid_tabs.currentWidget() is window.inbox_pane
    with db.reader() as s:
        assert s.execute(select(func.count()).select_from(Certificate)).scalar_one() == before


def test_drop_on_the_form_side_attaches_to_the_selected_certificate(qtbot, window, db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert_id = window.model.certificate_id(0)
    with qtbot.waitSignal(window.selection_ready, timeout=15000):
        window.table.selectRow(0)
    assert window.current_detail.id == cert_id
    with db.reader() as s:
        before = s.execute(select(func.count()).select_from(Certificate)).scalar_one()
    with qtbot.waitSignal(window.intake_finished, timeout=30000) as blocker:
        drop(window, [write_text_pdf(tmp_path / "page-2.pdf", "second page")], window.form)
    assert blocker.args[0].attached.items[0].certificate_id == cert_id and blocker.args[0].arrived is None
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


# --------------------------------------------------------------------------- integration of the other features


def _select(qtbot, window: MainWindow, cert_id: int) -> None:  # type: ignore[no-untyped-def]
    window.refresh()
    qtbot.waitUntil(lambda: window.model.position_of(cert_id) is not None, timeout=15000)
    with qtbot.waitSignal(window.form.checks_loaded, timeout=15000):
        assert window.select_certificate(cert_id)
    assert window.current_detail.id == cert_id


def test_approve_says_why_while_errors_remain_and_warnings_are_acknowledged(
        qtbot, window, db, company_id) -> None:  # type: ignore[no-untyped-def]
    from ecms_desktop.services.validation.service import ValidationService

    broken = make_certificate(db, company_id, customer="W-1", name="Unsigned Co", approve=False,
                              signer_title="")
    warned = make_certificate(db, company_id, customer="W-2", name="Warned Holdings", approve=False,
                              purchaser_name="Warned Holdings Group International")
    _select(qtbot, window, broken.id)
    # Approve stays available (not a silently grey button): it refuses and names the first error.
    assert window.form.has_errors and window.act_approve.isEnabled()
    assert "cannot be approved" in window.act_approve.toolTip()
    window.act_approve.trigger()
    first_error = next(f for f in window.form.engine_findings if f.severity == "error")
    assert "cannot be approved" in window.statusBar().currentMessage()
    assert first_error.message in window.statusBar().currentMessage()
    assert window.acknowledge_dialog is None and window.current_detail.review_state == "pending"
    # "Acknowledge and approve…" is offered only where approval is possible: not while errors remain.
    assert not window.form.findings_panel.acknowledge_button.isVisibleTo(window.form)

    _select(qtbot, window, warned.id)
    assert not window.form.has_errors and window.form.warnings, window.form.engine_findings
    assert window.act_approve.isEnabled()
    assert window.form.findings_panel.acknowledge_button.isVisibleTo(window.form)
    window.act_approve.trigger()
    qtbot.waitUntil(lambda: window.acknowledge_dialog is not None and window.acknowledge_dialog.isVisible(),
                    timeout=5000)
    dlg = window.acknowledge_dialog
    assert dlg.model.rowCount() == len(window.form.warnings)
    dlg.note_edit.setPlainText("Same business, longer name")
    dlg.ok_button.click()
    from PySide6.QtWidgets import QMessageBox

    def approved() -> bool:
        box = window.findChild(QMessageBox, "errorBox")
        assert box is None or not box.isVisible(), box.text()
        return window.current_detail.review_state == "approved"

    qtbot.waitUntil(approved, timeout=20000)
    latest = ValidationService(db).latest(warned.id)
    assert latest is not None and latest.acknowledged is not None
    # Approved: nothing left to acknowledge and approve.
    assert not window.form.findings_panel.acknowledge_button.isVisibleTo(window.form)


def test_menus_open_the_other_features_with_the_database_and_date(qtbot, window, db, company_id) -> None:  # type: ignore[no-untyped-def]
    from ecms_desktop.views.audit_pack_dialog import AuditPackDialog
    from ecms_desktop.views.exposure_view import ExposureView
    from ecms_desktop.views.renewal_center import RenewalCenterDialog
    from ecms_desktop.views.reprocess_dialog import ReprocessDialog

    titles = {m.title().replace("&", ""): [a.text().replace("&", "") for a in m.actions()] for m in window.menus}
    assert "Renewal center…" in titles["Renewals"]
    assert titles["Transactions"] == ["Import invoice lines…", "Exposure report…", "Reprocess certificate…"]
    assert "Audit pack…" in titles["File"]
    assert {"Validate now", "Validate all…", "Verify permit"} <= set(titles["Certificate"])

    with qtbot.waitSignal(window.tool_opened, timeout=10000) as b:
        window.act_renewals.trigger()
    renewals = b.args[0]
    assert isinstance(renewals, RenewalCenterDialog) and renewals.as_of() == AS_OF
    assert renewals.company_id == company_id and renewals.service.db is db
    qtbot.waitSignal(renewals.plan_loaded, timeout=20000, raising=False)

    with qtbot.waitSignal(window.tool_opened, timeout=10000) as b:
        window.act_exposure.trigger()
    exposure = b.args[0]
    assert isinstance(exposure, ExposureView) and exposure.db is db
    assert exposure.to_edit.date() == AS_OF
    qtbot.waitUntil(lambda: exposure.report is not None, timeout=20000)

    with qtbot.waitSignal(window.tool_opened, timeout=10000) as b:
        window.act_audit_pack.trigger()
    pack = b.args[0]
    assert isinstance(pack, AuditPackDialog) and pack.company.currentData() == company_id

    cert_id = window.model.certificate_id(0)
    _select(qtbot, window, cert_id)
    with qtbot.waitSignal(window.tool_opened, timeout=10000) as b:
        window.act_reprocess.trigger()
    assert isinstance(b.args[0], ReprocessDialog)
    for w in list(window.tools.values()):
        w.close()


def test_validate_now_validate_all_and_verify_permit(qtbot, window, db, company_id) -> None:  # type: ignore[no-untyped-def]
    from ecms_desktop.services.validation.permit_service import PermitService
    from ecms_desktop.services.validation.service import ValidationService

    cert = make_certificate(db, company_id, customer="V-1", name="Verify Me Inc", approve=False)
    _select(qtbot, window, cert.id)
    runs_before = len(ValidationService(db).history(cert.id))
    with qtbot.waitSignal(window.validation_finished, timeout=20000) as b:
        window.act_validate.trigger()
    assert b.args[0].certificate_id == cert.id and b.args[0].trigger == "on_demand"
    assert len(ValidationService(db).history(cert.id)) == runs_before + 1
    assert window.form.stored_result.run_id == b.args[0].run_id

    with qtbot.waitSignal(window.validation_finished, timeout=60000) as b:
        window.act_validate_all.trigger()
    with db.reader() as s:
        n = s.execute(select(func.count()).select_from(Certificate).where(Certificate.company_id == company_id)
                      ).scalar_one()
    assert b.args[0].validated == n
    assert "validated" in window.statusBar().currentMessage()
    assert window.validate_all_report is not None and "validated" in window.validate_all_report.text()
    window.validate_all_report.close()

    with qtbot.waitSignal(window.permit_verified, timeout=20000) as b:
        window.act_verify_permit.trigger()
    assert [c.state for c in b.args[0]] == ["TX"]
    assert PermitService(db).latest_checks(cert.id)["TX"].id == b.args[0][0].id
    qtbot.waitUntil(lambda: "TX" in window.form.permit_checks, timeout=10000)


def test_drop_a_returned_renewal_form_matches_its_request(qtbot, window, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ecms_desktop.models.renewal import RenewalRequest
    from ecms_desktop.services.renewals.service import RenewalService
    from ecms_desktop.views.operations.intake import is_returned_form

    old = make_expiring_certificate(db, company_id, "R-1", DAY0 + dt.timedelta(days=20))
    RenewalService(db, RULES).run(company_id, DAY0, send=False)
    token, form, _to = sent_renewal_form(db, old)
    filled = customer_fills(form, {"signer_name": "Dana Buyer", "signer_title": "Owner",
                                   "signed_date": "2026-01-20", "property_description": "Tools"})
    returned = tmp_path / "returned.pdf"
    returned.write_bytes(filled)
    plain = write_text_pdf(tmp_path / "scan.pdf", "a plain scan")
    assert is_returned_form(returned, RULES) and not is_returned_form(plain, RULES)
    with qtbot.waitSignals([window.returned_forms_received, window.intake_finished], timeout=60000):
        drop(window, [returned, plain], window.table.viewport())
    items = window.last_returned_items
    assert [i.outcome for i in items] == ["answered", "inbox"] and items[0].token == token  # the scan: inbox
    with db.reader() as s:
        req = s.execute(select(RenewalRequest).where(RenewalRequest.token == token)).scalar_one()
        assert req.status == "answered" and req.result_certificate_id == items[0].certificate_id
        new = s.get(Certificate, items[0].certificate_id)
        assert new.review_state == "pending" and new.signer_name == "Dana Buyer"


def test_the_desk_shows_an_erp_feed_stopped_at_a_refused_event(qtbot, db, company_id, ui_settings) -> None:  # type: ignore[no-untyped-def]
    import threading

    from ecms_desktop.services.sales import exemption_feed as feed

    handler = type("Erp", (ErpHandler,), {"plan": [(301, {"Location": "https://erp.example/v2/hook"}, 0.0)],
                                          "posts": [], "gets": []})
    server = ErpServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cert = make_signed_certificate(db, company_id, as_of=AS_OF, states=("TX",))
        approve_with_feed_event(db, cert.id, as_of=AS_OF)
        feed.add_webhook(db, company_id, "erp", f"http://127.0.0.1:{server.server_address[1]}/hook")
        feed.deliver(db, secret=lambda hook: WEBHOOK_SECRET, backoff=0, sleep=lambda _s: None)
    finally:
        server.shutdown()
        server.server_close()
    window = MainWindow(None, as_of=AS_OF, settings=ui_settings)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.feed_status_updated, timeout=30000) as shown:
        window.set_database(db)
    assert [p.name for p in shown.args[0]] == ["erp"]
    assert window.feed_label.isVisibleTo(window) and "ERP feed stopped" in window.feed_label.text()
    assert "https://erp.example/v2/hook" in window.feed_label.toolTip()
    feed.release_webhook(db, company_id, "erp")
    with qtbot.waitSignal(window.feed_status_updated, timeout=30000):
        window.refresh()
    assert not window.feed_label.isVisibleTo(window)
    window.shutdown()


# --------------------------------------------------------------------------- unsaved edits at the desk


def _answer(qtbot, form, button):  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QMessageBox

    qtbot.waitUntil(lambda: form.unsaved_dialog is not None and form.unsaved_dialog.isVisible(), timeout=5000)
    form.unsaved_dialog.button(getattr(QMessageBox.StandardButton, button)).click()
    qtbot.waitUntil(lambda: form.unsaved_dialog is None, timeout=5000)


def test_unsaved_edits_are_never_dropped_without_asking(qtbot, window, db) -> None:  # type: ignore[no-untyped-def]
    from ecms_desktop.services.certificates.service import CertificateService

    first, second = window.model.certificate_id(0), window.model.certificate_id(1)
    with qtbot.waitSignal(window.form.checks_loaded, timeout=15000):
        window.table.selectRow(0)
    name = window.form.builder.editor("certificate_number")
    name.setText("EDITED-1")
    # Another row: Cancel puts the grid back and keeps the edit.
    window.table.selectRow(1)
    _answer(qtbot, window.form, "Cancel")
    assert window.selected_certificate_id() == first and window.form.detail.id == first
    assert window.form.builder.editor("certificate_number").text() == "EDITED-1"
    # Another row again: Save stores the edit, then the row is shown.
    window.table.selectRow(1)
    with qtbot.waitSignal(window.selection_ready, timeout=20000):
        _answer(qtbot, window.form, "Save")
    qtbot.waitUntil(lambda: window.form.detail is not None and window.form.detail.id == second, timeout=10000)
    assert CertificateService(db).get(first, AS_OF).data.certificate_number == "EDITED-1"
    # Closing the window: Cancel keeps it open with the edit; Discard closes without saving.
    window.form.builder.editor("certificate_number").setText("EDITED-2")
    window.close()
    _answer(qtbot, window.form, "Cancel")
    assert window.isVisible() and window.form.builder.editor("certificate_number").text() == "EDITED-2"
    # Opening another database asks as well (Cancel: nothing happens).
    window.open_database(db.url)
    _answer(qtbot, window.form, "Cancel")
    assert window.db is db and window.form.is_dirty()
    window.close()
    _answer(qtbot, window.form, "Discard")
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
    assert CertificateService(db).get(second, AS_OF).data.certificate_number != "EDITED-2"


def test_switching_company_with_unsaved_edits_asks_first(qtbot, db, company_id, ui_settings) -> None:  # type: ignore[no-untyped-def]
    seed_certificates(db, company_id, 6)
    other = CompanyService(db).create("Beta Distribution", state="CA").id
    seed_certificates(db, other, 3)
    w = open_window(qtbot, db, ui_settings)
    try:
        with qtbot.waitSignal(w.form.checks_loaded, timeout=15000):
            w.table.selectRow(0)
        w.form.builder.editor("certificate_number").setText("EDITED-C")
        w.company_combo.setCurrentIndex(w.company_combo.findData(other))
        _answer(qtbot, w.form, "Cancel")
        assert w.company_id == company_id and w.company_combo.currentData() == company_id
        assert w.form.builder.editor("certificate_number").text() == "EDITED-C"
        w.company_combo.setCurrentIndex(w.company_combo.findData(other))
        with qtbot.waitSignal(w.model.query_finished, timeout=10000):
            _answer(qtbot, w.form, "Discard")
        assert w.company_id == other and len(shown_ids(w)) == 3 and not w.form.is_dirty()
    finally:
        w.shutdown()


def test_attaching_a_document_keeps_the_unsaved_edits_of_the_certificate(qtbot, window, db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert_id = window.model.certificate_id(0)
    with qtbot.waitSignal(window.form.checks_loaded, timeout=15000):
        window.table.selectRow(0)
    window.form.builder.editor("certificate_number").setText("EDITED-BEFORE-DROP")
    with qtbot.waitSignals([window.intake_finished, window.selection_ready], timeout=30000):
        drop(window, [write_text_pdf(tmp_path / "page-2.pdf", "second page")], window.form)
    assert window.current_detail.id == cert_id and len(window.current_detail.documents) >= 1
    assert window.form.builder.editor("certificate_number").text() == "EDITED-BEFORE-DROP"
    assert window.form.is_dirty()
    window.form.load(window.form.detail)  # discard, so that closing does not ask


def test_dropping_the_open_database_files_refuses_them_without_reading(qtbot, window, db) -> None:  # type: ignore[no-untyped-def]
    if db.dialect != "sqlite":
        pytest.skip("the database's own files exist on SQLite only")
    from sqlalchemy.engine import make_url

    path = Path(make_url(db.url).database or "")
    files = [p for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
    assert len(files) >= 2
    with qtbot.waitSignal(window.intake_finished, timeout=30000) as blocker:
        drop(window, files, window.table.viewport())
    items = blocker.args[0].arrived
    assert [i.outcome for i in items] == ["refused"] * len(files)
    assert all("ECMS database in use" in i.message for i in items), [i.message for i in items]


def test_no_key_of_the_main_window_is_ambiguous(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    assert ambiguous_shortcuts(window) == {}
