"""The desk's Inbox pane: documents dropped or imported land there with no certificate made, the selected
one is shown in the viewer, and Assign… (to an existing customer, a customer created on the spot, or an
existing certificate), Discard… (with a reason) and Split… (page ranges) work through the inbox service."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QAbstractItemModelTester
from PySide6.QtWidgets import QMessageBox
from sqlalchemy import func, select

from ecms_desktop.models import Certificate, Customer, Document
from ecms_desktop.services.intake.inbox import InboxService
from ecms_desktop.services.renewals.returned_forms import ReturnedFormsService
from ecms_desktop.views.intake import inbox_pane
from ecms_desktop.views.intake.assign_dialog import AssignDialog
from ecms_desktop.views.intake.split_dialog import SplitDialog
from ecms_desktop.views.main_window import MainWindow
from ecms_desktop.views.widgets.help_overlay import shortcuts_of_menus
from ecms_desktop.views.widgets.reason_dialog import ReasonDialog
from tests.factories import make_certificate, make_customer, paged_pdf, write_text_pdf
from tests.views.test_main_window import drop, open_window


@pytest.fixture
def window(qtbot, db, company_id, tmp_path):  # type: ignore[no-untyped-def]
    w = open_window(qtbot, db, QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat))
    yield w
    w.shutdown()


def certificates(db) -> int:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return s.execute(select(func.count()).select_from(Certificate)).scalar_one()


def arrive(qtbot: Any, window: MainWindow, db: Any, company_id: int, path: Path, pages: int = 1) -> int:
    """A file that comes through ``ecms intake`` beside the open desk, then Refresh in the pane."""
    path.write_bytes(paged_pdf(path.stem, pages=pages))
    [item] = ReturnedFormsService(db).intake([path], company_id)
    assert item.outcome == "inbox" and item.document_id is not None
    qtbot.mouseClick(window.inbox_pane.refresh_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.inbox_pane.model.row_of(item.document_id) >= 0, timeout=15000)
    return item.document_id


def select_document(qtbot: Any, window: MainWindow, doc_id: int) -> None:
    window.show_inbox()
    with qtbot.waitSignal(window.inbox_document_shown, timeout=15000):
        assert window.inbox_pane.select_document(doc_id)
    qtbot.waitUntil(lambda: window.viewer.page_count > 0, timeout=15000)


def open_dialog(qtbot: Any, window: MainWindow, button: Any) -> Any:
    with qtbot.waitSignal(window.inbox_dialog_opened, timeout=15000) as blocker:
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    return blocker.args[0]


def test_imported_files_land_in_the_inbox_with_no_certificate_made(qtbot, window, db, tmp_path) -> None:  # type: ignore[no-untyped-def]
    before = certificates(db)
    files = [write_text_pdf(tmp_path / "scan-1.pdf", "one"), write_text_pdf(tmp_path / "scan-2.pdf", "two")]
    pane = window.inbox_pane
    with qtbot.waitSignal(window.intake_finished, timeout=30000):
        window.receive_files(files)  # what File > Import documents does with the chosen files
    qtbot.waitUntil(lambda: pane.count == 2, timeout=15000)
    assert certificates(db) == before
    QAbstractItemModelTester(pane.model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    assert pane.count == 2 and pane.count_label.text() == "2 documents waiting in the inbox"
    assert window.grid_tabs.tabText(1) == "Inbox (2)" and window.grid_tabs.currentWidget() is pane
    model = pane.model
    assert [model.index(r, 0).data() for r in range(2)] == ["scan-1.pdf", "scan-2.pdf"]
    assert model.index(0, 2).data() == "desk" and model.index(0, 3).data() == "1"
    assert model.index(0, 4).data() == "not a form we know"  # read, and not one of the rules pack's forms
    select_document(qtbot, window, model.items[1].id)
    assert window.viewer.name_label.text() == "scan-2.pdf" and window.current_detail is None
    # A file dropped on the list again is not stored twice; the report says where it waits.
    with qtbot.waitSignal(window.intake_finished, timeout=30000) as blocker:
        drop(window, [files[0]], window.inbox_pane.table.viewport())
    [dup] = blocker.args[0].arrived
    assert dup.outcome == "duplicate" and "waiting in the intake inbox" in dup.message
    assert window.findChild(QMessageBox, "intakeReport") is not None


def test_nothing_read_is_said_in_the_list(qtbot, window, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import write_image

    image = write_image(tmp_path / "blank.png", 400, 500)
    [item] = ReturnedFormsService(db).intake([image], company_id, received_via="upload")
    assert item.outcome == "inbox" and item.extraction is not None and item.extraction["method"] == "none"
    window.refresh_inbox()
    qtbot.waitUntil(lambda: window.inbox_pane.count == 1, timeout=15000)
    assert window.inbox_pane.model.index(0, 4).data() == "nothing could be read"
    assert window.inbox_pane.model.index(0, 5).data() == "nothing could be read"


def test_assign_to_an_existing_customer_makes_a_new_certificate_selected_for_review(  # type: ignore[no-untyped-def]
        qtbot, window, db, company_id, tmp_path) -> None:
    customer_id = make_customer(db, company_id, "C-1", "Lone Star Retail LLC")
    doc_id = arrive(qtbot, window, db, company_id, tmp_path / "scan.pdf")
    select_document(qtbot, window, doc_id)
    dialog = open_dialog(qtbot, window, window.inbox_pane.assign_button)
    assert isinstance(dialog, AssignDialog) and not dialog.ok_button.isEnabled()
    dialog.customer_combo.setCurrentIndex(dialog.customer_combo.findData(customer_id))
    assert dialog.new_cert_radio.isChecked() and dialog.ok_button.isEnabled()
    assigned: list[Any] = []
    window.inbox_document_assigned.connect(assigned.append)
    with qtbot.waitSignals([window.inbox_document_assigned, window.selection_ready], timeout=30000):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    [done] = assigned
    assert done.created_certificate and not done.created_customer
    cert_id = done.certificate_id
    assert window.grid_tabs.currentWidget() is window.table
    assert window.current_detail is not None and window.current_detail.id == cert_id
    data = window.current_detail.data
    assert (data.form_code, data.lines, data.exempt_reason, data.certificate_type) == ("", (), "", "")
    assert window.current_detail.customer_number == "C-1"
    assert [d.id for d in window.current_detail.documents] == [doc_id]
    assert window.form.detail is not None and window.form.detail.id == cert_id  # the form copes with it
    # ... and picks no value for what is not known: nothing to save, the form and type left empty
    assert not window.form.is_dirty() and window.form.collect() == data
    assert window.form.form_combo.currentData() == "" and "not known yet" in window.form.form_combo.currentText()
    assert window.form.builder.editor("certificate_type").currentData() == ""
    qtbot.waitUntil(lambda: window.inbox_pane.count == 0, timeout=5000)
    qtbot.waitUntil(lambda: window.form.has_errors, timeout=15000)  # the missing state, form, reason, type
    assert "cannot be approved" in window.act_approve.toolTip()  # Approve says why when used


def test_assign_to_a_customer_created_on_the_spot(qtbot, window, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    doc_id = arrive(qtbot, window, db, company_id, tmp_path / "scan.pdf")
    select_document(qtbot, window, doc_id)
    dialog = open_dialog(qtbot, window, window.inbox_pane.assign_button)
    assert dialog.new_radio.isChecked()  # the company has no customer yet
    assert not dialog.attach_radio.isEnabled()
    dialog.number_edit.setText("C-77")
    assert not dialog.ok_button.isEnabled()  # a name is needed too
    dialog.name_edit.setText("Seventy Seven Supply")
    with qtbot.waitSignal(window.inbox_document_assigned, timeout=30000) as blocker:
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    done = blocker.args[0]
    assert done.created_customer and done.created_certificate and done.customer_number == "C-77"
    with db.reader() as s:
        customer = s.execute(select(Customer).where(Customer.number == "C-77")).scalar_one()
        assert customer.legal_name == "Seventy Seven Supply"
        assert s.get(Document, doc_id).certificate_id == done.certificate_id  # type: ignore[union-attr]


def test_attach_to_an_existing_certificate_of_the_customer(qtbot, window, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert = make_certificate(db, company_id, customer="C-1", name="Buyer Inc")
    other = make_certificate(db, company_id, customer="C-2", name="Other Inc")
    doc_id = arrive(qtbot, window, db, company_id, tmp_path / "page-2.pdf")
    before = certificates(db)
    select_document(qtbot, window, doc_id)
    dialog = open_dialog(qtbot, window, window.inbox_pane.assign_button)
    dialog.customer_combo.setEditText("buyer inc")  # found by its name, as typed
    qtbot.waitUntil(lambda: dialog.cert_list.count() == 1, timeout=15000)
    assert str(cert.id) in dialog.cert_list.item(0).text() and str(other.id) not in dialog.cert_list.item(0).text()
    dialog.attach_radio.setChecked(True)
    assert not dialog.ok_button.isEnabled()  # which certificate?
    dialog.cert_list.setCurrentRow(0)
    assigned: list[Any] = []
    window.inbox_document_assigned.connect(assigned.append)
    with qtbot.waitSignals([window.inbox_document_assigned, window.selection_ready], timeout=30000):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    [done] = assigned
    assert done.certificate_id == cert.id and not done.created_certificate
    assert certificates(db) == before
    assert window.current_detail.id == cert.id and doc_id in [d.id for d in window.current_detail.documents]


def test_discard_needs_a_reason(qtbot, window, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    doc_id = arrive(qtbot, window, db, company_id, tmp_path / "cover.pdf")
    select_document(qtbot, window, doc_id)
    dialog = open_dialog(qtbot, window, window.inbox_pane.discard_button)
    assert isinstance(dialog, ReasonDialog) and not dialog.ok_button.isEnabled()
    dialog.edit.setPlainText("a fax cover page, not a certificate")
    with qtbot.waitSignal(window.inbox_document_discarded, timeout=30000):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.inbox_pane.count == 0, timeout=15000)
    assert window.viewer.page_count == 0
    with db.reader() as s:
        doc = s.get(Document, doc_id)
        assert doc is not None and doc.discard_reason == "a fax cover page, not a certificate"


def test_split_by_page_ranges_and_a_bad_range_is_explained(qtbot, window, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    doc_id = arrive(qtbot, window, db, company_id, tmp_path / "batch.pdf", pages=4)
    select_document(qtbot, window, doc_id)
    dialog = open_dialog(qtbot, window, window.inbox_pane.split_button)
    assert isinstance(dialog, SplitDialog)
    dialog.edit.setText("1-2, x")
    assert not dialog.ok_button.isEnabled() and "'x' is not a page range" in dialog.problem.text()
    dialog.edit.setText("1-2, 3-9")  # reads as ranges; the service says what is wrong with them
    qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.findChild(QMessageBox, "errorBox") is not None, timeout=15000)
    assert "pages 3-9 is outside the document" in window.findChild(QMessageBox, "errorBox").text()
    assert [i.id for i in InboxService(db).list(company_id)] == [doc_id]
    dialog = open_dialog(qtbot, window, window.inbox_pane.split_button)
    dialog.edit.setText("1-2, 3-4")
    with qtbot.waitSignal(window.inbox_document_split, timeout=30000):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.inbox_pane.count == 2, timeout=15000)
    model = window.inbox_pane.model
    assert [model.index(r, 0).data() for r in range(2)] == ["batch (pages 1-2).pdf", "batch (pages 3-4).pdf"]
    assert model.index(0, 3).data() == "2 (pages 1-2 of 4)"
    select_document(qtbot, window, model.items[0].id)  # named as a PDF: the viewer has no doubt about its type
    qtbot.waitUntil(lambda: not window.viewer.busy, timeout=15000)
    assert window.viewer.name_label.text() == "batch (pages 1-2).pdf"
    assert not window.viewer.warning_label.isVisible(), window.viewer.warning_label.text()


def test_the_inbox_is_in_the_view_menu_with_its_own_shortcut(qtbot, window) -> None:  # type: ignore[no-untyped-def]
    assert window.act_inbox.shortcut().toString() == "Ctrl+4"
    assert any("Inbox" in text and "Ctrl+4" in keys for _menu, entries in shortcuts_of_menus(window.menus)
               for text, keys in entries)
    window.grid_tabs.setCurrentWidget(window.table)
    qtbot.keyClick(window, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    assert window.grid_tabs.currentWidget() is window.inbox_pane


def test_the_assign_dialog_offers_the_purchaser_read_only_when_read_surely(qtbot, db, company_id) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from ecms_desktop.services.customers.service import CustomerService
    from ecms_desktop.services.intake.inbox import InboxItem

    def item(name: str, confidence: float) -> InboxItem:
        reading = {"method": "ocr", "fields": {"purchaser_name": {"value": name, "confidence": confidence}}}
        return InboxItem(1, company_id, "scan.pdf", "application/pdf", 1, None, None, 1, 10, "0" * 64, "upload",
                         dt.datetime(2026, 5, 1, tzinfo=dt.UTC), "me", None, None, reading)

    make_customer(db, company_id, "C-1", "Lone Star Retail LLC")
    customers = CustomerService(db).list(company_id)
    sure = AssignDialog(item("Harbor Lights Trading LLC", 0.94), customers)
    qtbot.addWidget(sure)
    assert sure.name_edit.text() == "Harbor Lights Trading LLC" and sure.selected_customer() is None
    unsure = AssignDialog(item("above, claim the right", 0.74), customers)
    qtbot.addWidget(unsure)
    assert unsure.name_edit.text() == ""
    known = AssignDialog(item("LONE STAR  retail llc", 0.5), customers)  # a customer of that name: chosen
    qtbot.addWidget(known)
    chosen = known.selected_customer()
    assert chosen is not None and chosen.number == "C-1"


def test_the_pane_never_makes_the_desk_wider_and_shows_the_file_names(qtbot, window, db, company_id,  # type: ignore[no-untyped-def]
                                                                     tmp_path) -> None:
    """Seen at 1280 x 800: opening the Inbox tab widened the window past the screen (the count and the four
    buttons in one row), and the stretched file column was squeezed to '...' by the others."""
    arrive(qtbot, window, db, company_id, tmp_path / "Keystone Supply resale certificate.pdf")
    pane = window.inbox_pane
    window.show_inbox()
    assert pane.minimumSizeHint().width() <= 420
    name = "Keystone Supply resale certificate.pdf"
    assert pane.model.index(0, 0).data() == name
    wanted = min(pane.table.fontMetrics().horizontalAdvance(name), inbox_pane.FILE_COLUMN_MAX)
    assert pane.table.columnWidth(0) >= wanted
    # ... and what was read stays in view: the form and purchaser read fit the desk's grid pane at 1440.
    header = pane.table.horizontalHeader()
    assert header.sectionPosition(4) + header.sectionSize(4) <= 480


def test_a_refresh_keeps_the_document_shown_without_reading_it_again(qtbot, window, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Another desk's change reads the inbox again; the document the user looks at stays selected and is not
    shown again (the viewer was cleared and the file read once more on every refresh)."""
    doc_id = arrive(qtbot, window, db, company_id, tmp_path / "kept.pdf", pages=2)
    select_document(qtbot, window, doc_id)
    qtbot.waitUntil(lambda: window.viewer.name_label.text() == "kept.pdf", timeout=15000)
    shown: list[object] = []
    window.inbox_pane.item_selected.connect(shown.append)
    with qtbot.waitSignal(window.inbox_updated, timeout=15000):
        window.refresh_inbox()
    assert window.inbox_pane.selected_item() is not None and window.inbox_pane.selected_item().id == doc_id
    assert shown == [] and window.viewer.name_label.text() == "kept.pdf"
