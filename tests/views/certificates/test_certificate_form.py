"""The rule-driven certificate form: built per state/form, golden widget trees, save, conflict,
archive/unarchive, findings next to fields, history."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificates.form_spec import FieldFinding
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.views.certificates.form import CertificateForm
from ecms_desktop.views.certificates.form_builder import dump_widget_tree
from tests.factories import DESK_CASES, letter_pdf, make_desk_certificate
from tests.helpers.form_editing import EDITOR_KINDS, edit_field

GOLDEN = Path(__file__).with_name("golden")
AS_OF = dt.date(2026, 6, 1)


@pytest.fixture
def rules():
    return load_rules_pack()


@pytest.fixture
def form(qtbot, db, rules):
    f = CertificateForm(db, rules)
    f.set_as_of(AS_OF)
    qtbot.addWidget(f)
    f.resize(760, 1100)
    f.show()
    yield f
    f.runner.wait(10000)


@pytest.mark.parametrize("case", sorted(DESK_CASES))
def test_form_built_for_state_matches_golden(qtbot, db, company_id, rules, form, case):
    detail = make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES[case])
    form.load(detail)
    text = dump_widget_tree(form)
    path = GOLDEN / f"form_{case}.txt"
    if os.environ.get("ECMS_UPDATE_GOLDEN") == "1" or not path.exists():
        if not os.environ.get("ECMS_UPDATE_GOLDEN") and not path.exists():
            pytest.fail(f"{path.name} is missing: run with ECMS_UPDATE_GOLDEN=1 to create it")
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), (
        f"the {case} form differs from {path.name}; if the change is intended, regenerate with "
        "ECMS_UPDATE_GOLDEN=1")


def test_tx_form_specifics(qtbot, db, company_id, rules, form):
    form.load(make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["TX"]))
    tax_id = form.builder.editor("purchaser_tax_id")
    assert tax_id.property("required")
    assert "11 digits" in tax_id.placeholderText()
    # The 10-digit number is no Texas permit (11 digits), but 01-339 also takes an out-of-state retailer's
    # number or a Mexican RFC (as printed on the form; Tax Code 151.152(c)): with no issuer written beside
    # it, a warning under the field asks for the issuer, and does not block approval.
    msgs = form.findings_shown()
    assert any(sev == "warning" and "not a Texas sales and use tax permit number" in m and "11 digits" in m
               and "out-of-state" in m for sev, m in msgs["purchaser_tax_id"]), msgs["purchaser_tax_id"]
    assert form.builder.message_label("purchaser_tax_id").isVisible()
    assert "No expiry" in form.expiry_value.text()
    assert not form.coverage_box.isVisible()
    assert form.reason_combo.count() == 9


def test_sst_coverage_lines(qtbot, db, company_id, rules, form):
    form.load(make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["SST"]))
    t = form.coverage_table
    assert form.coverage_box.isVisible() and t.rowCount() == 4
    rows = {t.item(r, 0).text(): [t.item(r, c).text() for c in range(t.columnCount())] for r in range(4)}
    assert rows["TX"][1] == "NO"  # Texas refuses SST for resale
    assert rows["WA"][2] == "603123456"
    # SST F0003 in Washington: no fixed expiry (SSUTA Sec. 317); 48 months are the reseller permit's only.
    assert rows["WA"][3] == "no expiry"
    assert rows["NC"][3] == "no expiry"
    assert rows["WA"][4] == "Pending review"
    assert any("Texas does not accept" in m for _, m in form.findings_shown()["coverage"])


def test_fl_expiry_is_end_of_year_and_override_needs_reason(qtbot, db, company_id, rules, form):
    form.load(make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["FL"]))
    assert form.expiry_value.text().startswith("2026-12-31")
    assert "31 December" in form.expiry_basis.text()
    assert form.expiry_printed.isVisible()
    assert not form.override_reason_edit.isEnabled()
    qtbot.keyClicks(form.override_edit, "2027-01-31")
    assert form.override_reason_edit.isEnabled() and form.override_reason_edit.property("required")
    with qtbot.waitSignal(form.save_failed, timeout=10000):  # the save itself, not the form's own check
        form.save()  # no reason yet: refused with a message next to the reason field
    assert "expiry_override_reason" in form.findings_shown()
    assert CertificateService(db, rules).get(form.detail.id, AS_OF).data.expiry_override is None
    qtbot.keyClicks(form.override_reason_edit, "Printed expiry on the certificate")
    with qtbot.waitSignal(form.saved, timeout=10000) as blocker:
        form.save()
    assert blocker.args[0].expiry_date == dt.date(2027, 1, 31)
    assert form.expiry_value.text().startswith("2027-01-31 (as printed on the document)")


def test_the_printed_expiry_date_needs_no_reason_typed(qtbot, db, company_id, rules, form):
    """Florida prints the expiry on its annual resale certificate (rules pack: DR-13 ``printed``, DOR
    brochure GT-800060), and validation asks for that date. Entering it asked for a reason as for a date
    set by hand: the reason is that the document prints it, filled in when the date is entered."""
    from ecms_desktop.views.certificates.form.editing import PRINTED_REASON

    form.load(make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["FL"]))
    assert "printed date is the one that counts" in form.expiry_printed.text()
    qtbot.keyClicks(form.override_edit, "2026-12-31")
    qtbot.keyClick(form.override_edit, Qt.Key.Key_Return)  # editing finished
    assert form.override_reason_edit.text() == PRINTED_REASON
    with qtbot.waitSignal(form.saved, timeout=10000) as blocker:
        form.save()
    assert blocker.args[0].expiry_date == dt.date(2026, 12, 31)
    stored = CertificateService(db, rules).get(form.detail.id, AS_OF)
    assert stored.data.expiry_override_reason == PRINTED_REASON
    assert {line.expiry_origin for line in stored.lines} == {"printed"}


def test_changing_state_or_form_rebuilds(qtbot, db, company_id, rules, form):
    form.load(make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["TX"]))
    assert form.builder.editor("seller_name") is not None
    form.states_edit.setText("NY")
    qtbot.keyClick(form.states_edit, Qt.Key.Key_Return)
    codes = [form.form_combo.itemData(i) for i in range(form.form_combo.count())]
    assert "NY-ST-120" in codes and "TX-01-339" in codes  # the current form is never dropped
    form.form_combo.setCurrentIndex(codes.index("NY-ST-120"))
    form.form_combo.activated.emit(codes.index("NY-ST-120"))
    assert form.spec.form_code == "NY-ST-120"
    assert form.builder.editor("signer_name").property("required")  # NY ST-120 asks for the name
    # Values typed before the rebuild survive it.
    assert form.builder.editor("purchaser_name").text() == "Lone Star Hardware LLC"
    # Nonprofit is not an ST-120 reason: switching to ST-119.1 offers it.
    idx = codes.index("NY-ST-119.1")
    form.form_combo.setCurrentIndex(idx)
    form.form_combo.activated.emit(idx)
    reasons = [form.reason_combo.itemData(i) for i in range(form.reason_combo.count())]
    assert "nonprofit" in reasons and "resale" in reasons[-1:]  # current reason kept, marked


def test_save(qtbot, db, company_id, rules, form):
    detail = make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["TX"])
    form.load(detail)
    edit = form.builder.editor("purchaser_tax_id")
    edit.clear()
    qtbot.keyClicks(edit, "32012345678")
    assert form.is_dirty()
    with qtbot.waitSignal(form.saved, timeout=10000) as blocker:
        qtbot.mouseClick(form.save_button, Qt.MouseButton.LeftButton)
    new = blocker.args[0]
    assert new.version == detail.version + 1
    stored = CertificateService(db, rules).get(detail.id, AS_OF)
    assert stored.data.purchaser_tax_id == "32012345678"
    assert not form.is_dirty()
    assert "purchaser_tax_id" not in form.findings_shown()


def test_save_with_version_conflict_overwrites_nothing(qtbot, db, company_id, rules, form):
    detail = make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["TX"])
    form.load(detail)
    # Someone else saves the same certificate first, from another service instance.
    from dataclasses import replace

    other = CertificateService(db, rules)
    theirs = other.save(detail.id, replace(detail.data, purchaser_name="Changed Elsewhere Inc"),
                        expected_version=detail.version, as_of=AS_OF)
    name = form.builder.editor("purchaser_name")
    name.clear()
    qtbot.keyClicks(name, "My Edit LLC")
    with qtbot.waitSignal(form.conflict_detected, timeout=10000):
        form.save()
    assert form.banner.isVisible()
    assert "changed by someone else" in form.banner_label.text()
    assert "Nothing was overwritten" in form.banner_label.text()
    stored = other.get(detail.id, AS_OF)
    assert stored.data.purchaser_name == "Changed Elsewhere Inc" and stored.version == theirs.version
    assert name.text() == "My Edit LLC"  # the user's edit is still there
    with qtbot.waitSignal(form.loaded, timeout=10000):
        qtbot.mouseClick(form.reload_button, Qt.MouseButton.LeftButton)
    assert form.builder.editor("purchaser_name").text() == "Changed Elsewhere Inc"
    assert not form.banner.isVisible()


def test_archive_and_unarchive_with_reason(qtbot, db, company_id, rules, form):
    detail = make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["TX"])
    form.load(detail)
    qtbot.mouseClick(form.archive_button, Qt.MouseButton.LeftButton)
    dlg = form.reason_dialog
    assert dlg is not None and dlg.isVisible() and not dlg.ok_button.isEnabled()
    qtbot.keyClicks(dlg.edit, "Replaced by a newer certificate")
    assert dlg.ok_button.isEnabled()
    with qtbot.waitSignal(form.saved, timeout=10000) as blocker:
        qtbot.keyClick(dlg.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    archived = blocker.args[0]
    assert archived.review_state == "archived" and archived.review_reason == "Replaced by a newer certificate"
    assert form.archive_button.text().startswith("Unarchive")
    assert form.badge.text() == "Archived"
    qtbot.mouseClick(form.archive_button, Qt.MouseButton.LeftButton)
    dlg = form.reason_dialog
    qtbot.keyClicks(dlg.edit, "Archived by mistake")
    with qtbot.waitSignal(form.saved, timeout=10000) as blocker:
        qtbot.mouseClick(dlg.ok_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0].review_state == "pending"
    # Cancelling the dialog changes nothing.
    qtbot.mouseClick(form.archive_button, Qt.MouseButton.LeftButton)
    form.reason_dialog.reject()
    assert CertificateService(db, rules).get(detail.id, AS_OF).review_state == "pending"


def test_history_tab_shows_the_audit_trail(qtbot, db, company_id, rules, form):
    from PySide6.QtTest import QAbstractItemModelTester

    detail = make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["TX"])
    form.load(detail)
    with qtbot.waitSignal(form.saved, timeout=10000):
        form.builder.editor("purchaser_name").setText("Renamed LLC")
        form.save()
    with qtbot.waitSignal(form.history.loaded, timeout=10000):
        form.tabs.setCurrentWidget(form.history)
    model = form.history.model
    QAbstractItemModelTester(model, QAbstractItemModelTester.FailureReportingMode.Fatal)
    actions = [model.index(r, 2).data() for r in range(model.rowCount())]
    assert actions[:1] == ["Created"] and "Edited" in actions
    edited = actions.index("Edited")
    from ecms_desktop.services.core.people import os_user as current_actor

    said = model.index(edited, 3).data()
    assert said.startswith(f"Purchaser name changed from “{detail.data.purchaser_name}” to “Renamed LLC” by "
                           f"{current_actor()} on "), said
    form.history.table.selectRow(edited)
    shown = form.history.detail.toPlainText()
    assert said in shown and "{" not in shown  # in words, not JSON
    assert form.history.table.editTriggers() != QAbstractItemView.EditTrigger.AllEditTriggers


def test_show_findings_places_messages(qtbot, db, company_id, rules, form):
    form.load(make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["SST"]))
    form.show_findings([
        FieldFinding("purchaser_name", "error", "Does not match the customer's legal name"),
        FieldFinding("signature", "warning", "Signature looks scanned from another form"),
        FieldFinding("state_tax_id", "error", "WA permit number is not valid", "WA"),
        FieldFinding("unknown_thing", "info", "Checked against the registry"),
    ])
    shown = form.findings_shown()
    assert shown["purchaser_name"] == [("error", "Does not match the customer's legal name")]
    assert shown["signature"][0][0] == "warning"
    assert any("WA" in m for _, m in shown["coverage"])
    assert any("Checked against the registry" in m for _, m in shown["general"])
    assert "#c62828" in form.builder.message_label("purchaser_name").text()  # red for errors


def test_focus_lands_on_first_empty_required_field(qtbot, db, company_id, rules, form):
    form.load(make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["TX"]))
    form.activateWindow()
    assert form.focus_first_field() == "purchaser_address"
    qtbot.waitUntil(lambda: form.builder.editor("purchaser_address").hasFocus(), timeout=5000)


# --------------------------------------------------------------------------- validation in the form


def _panel_messages(form):
    return [f.message for f in form.findings_panel.findings]


def test_stored_run_on_load_then_live_findings_while_editing(qtbot, db, company_id, rules, form):
    detail = make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["TX"])
    with qtbot.waitSignal(form.checks_loaded, timeout=10000):
        form.load(detail)
    # The run stored when the certificate was created is shown, with who ran it.
    assert form.stored_result is not None and not form.findings_live
    assert form.stored_result.certificate_id == detail.id
    assert "stored check" in form.findings_panel.summary.text()
    assert form.has_errors and not form.findings_panel.acknowledge_button.isEnabled()
    assert any("Purchaser address is missing" in m for m in _panel_messages(form))
    # The same finding stands beside its field.
    assert any("Purchaser address is missing" in m for _, m in form.findings_shown()["purchaser_address"])
    # Typing the address: the live check drops that finding, beside the field and in the panel.
    editor = form.builder.editor("purchaser_address")
    editor.setFocus()
    with qtbot.waitSignal(form.findings_changed, timeout=5000):
        qtbot.keyClicks(editor, "1 Main St, Austin")
    assert form.findings_live
    assert not any("Purchaser address" in m for m in _panel_messages(form))
    assert "purchaser_address" not in form.findings_shown()
    assert "stored check" not in form.findings_panel.summary.text()
    assert form.has_errors  # the other missing fields remain


def test_complete_certificate_can_be_approved_and_clicking_a_finding_focuses_its_field(
        qtbot, db, company_id, rules, form):
    detail = make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, form="TX-01-339", states=["TX"],
                                   purchaser_name="Lone Star Hardware LLC", purchaser_tax_id="32012345678",
                                   purchaser_address="1 Main St, Austin", business_description="Hardware store",
                                   property_description="Tools for resale", signed=True, signer_name="Pat Doe",
                                   signer_title="Owner", signed_date=dt.date(2026, 3, 15))
    with qtbot.waitSignal(form.checks_loaded, timeout=10000):
        form.load(detail)
    assert not form.has_errors, _panel_messages(form)
    # Clear the signer title: an error appears live; clicking it puts the cursor in the field.
    title = form.builder.editor("signer_title")
    title.setFocus()
    title.selectAll()
    with qtbot.waitSignal(form.findings_changed, timeout=5000):
        qtbot.keyClick(title, Qt.Key.Key_Delete)
    assert form.has_errors
    row = next(r for r, f in enumerate(form.findings_panel.findings) if f.field == "signer_title")
    form.save_button.setFocus()
    table = form.findings_panel.table
    rect = table.visualRect(form.findings_panel.model.index(row, 3))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: form.focusWidget() is title, timeout=3000)


def test_record_a_manual_permit_check_with_evidence(qtbot, db, company_id, rules, form, tmp_path):
    detail = make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["TX"])
    with qtbot.waitSignal(form.checks_loaded, timeout=10000):
        form.load(detail)
    row = form.permit_status.rows["TX"]
    assert "not checked yet" in row.text() and "mycpa.cpa.state.tx.us" in row.text()  # the lookup link
    form.record_permit_check("TX")
    dlg = form.record_dialog
    assert dlg is not None and dlg.isVisible()
    assert dlg.source_edit.text().startswith("https://mycpa.cpa.state.tx.us/")  # prefilled
    evidence = tmp_path / "lookup.pdf"
    evidence.write_bytes(letter_pdf(1))
    dlg.evidence_edit.setText(str(evidence))
    dlg.note_edit.setText("Active on the Comptroller site")
    with qtbot.waitSignals([form.permit_check_recorded, form.checks_loaded], timeout=30000):
        dlg.accept()
    row = form.permit_status.rows["TX"]
    assert "Active" in row.text() and "Evidence attached" in row.text() and AS_OF.isoformat() in row.text()
    assert form.findChild(type(form.save_button), "permitEvidenceTX") is not None
    check = form.permit_checks["TX"]
    assert check.method == "manual" and check.evidence_document_id is not None


# --------------------------------------------------------------------------- integrity at the desk


@pytest.mark.parametrize("kind", EDITOR_KINDS)
def test_loading_another_certificate_never_takes_values_of_the_one_being_edited(
        qtbot, db, company_id, rules, form, kind):
    a = make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["TX"], customer="A-1",
                              purchaser_address="1 A Street", purchaser_ein="12-3456789", certificate_number="CERT-A")
    b = make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, form="TX-01-339", states=["TX"],
                              customer="B-2", name="Bravo Buyers Inc", purchaser_name="Bravo Buyers Inc",
                              purchaser_tax_id="32099999999", purchaser_address="2 B Avenue",
                              certificate_number="CERT-B", signed=True, certificate_type="single_use",
                              po_number="PO-7", signed_date=dt.date(2026, 1, 5))
    form.activateWindow()
    qtbot.waitUntil(form.isActiveWindow, timeout=5000)
    form.load(a)
    edit_field(qtbot, form, kind)
    assert form.is_dirty()
    form.load(b)  # what the queue and the grid do: the edited field still has the focus
    qtbot.wait(50)  # let queued focus and timer events run
    assert form.detail.id == b.id
    assert form.collect() == b.data, "values of certificate A reached certificate B"
    assert not form.is_dirty()
    assert form.builder.editor("purchaser_name").text() == "Bravo Buyers Inc"
    # Moving the focus on (as the user does next) brings nothing of A in either.
    form.save_button.setFocus()
    qtbot.wait(50)
    assert form.collect() == b.data and not form.is_dirty()


def test_a_date_message_containing_a_semicolon_stays_whole_beside_its_field(qtbot, db, company_id, rules, form):
    form.load(make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["TX"]))
    date = form.builder.editor("signed_date")
    date.selectAll()
    qtbot.keyClicks(date, "15.03.2026")
    form.save()  # refused at once: the date cannot be read
    shown = form.findings_shown()
    assert ("error", "'15.03.2026' is not a date; type it as YYYY-MM-DD or MM/DD/YYYY") in shown["signed_date"]
    assert not any("type it as" in m for _, m in shown.get("general", [])), shown.get("general")


def test_a_save_asked_for_while_another_runs_is_queued_not_dropped(qtbot, db, company_id, rules, form):
    detail = make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["TX"])
    form.load(detail)
    name = form.builder.editor("purchaser_name")
    name.setText("First Save LLC")
    saves = []
    form.saved.connect(saves.append)
    form.save()
    assert not form.save_button.isEnabled()  # running
    name.setText("Second Save LLC")  # typed while the first save runs, then saved again
    form.save()
    assert form.save_button.text() == "Save (queued)"
    qtbot.waitUntil(lambda: len(saves) == 2 and form.save_button.isEnabled(), timeout=20000)
    stored = CertificateService(db, rules).get(detail.id, AS_OF)
    assert stored.data.purchaser_name == "Second Save LLC" and stored.version == detail.version + 2
    assert not form.is_dirty() and form.save_button.text() == "Save"


def test_a_busy_database_keeps_the_edit_and_offers_retry(qtbot, tmp_path, _sqlite_template, rules):
    import shutil
    import sqlite3

    from PySide6.QtWidgets import QMessageBox

    from ecms_desktop.services.companies.service import CompanyService
    from ecms_desktop.services.core.database import Database

    path = tmp_path / "busy.sqlite"
    shutil.copy(_sqlite_template, path)
    setup = Database(str(path))
    company = CompanyService(setup).create("Acme Supply Co", state="TX").id
    detail = make_desk_certificate(setup, company, as_of=AS_OF, rules=rules, **DESK_CASES["TX"])
    setup.dispose()
    db = Database(str(path), lock_timeout=0.3)  # a desk that gives up quickly
    form = CertificateForm(db, rules)
    form.set_as_of(AS_OF)
    qtbot.addWidget(form)
    form.show()
    form.load(detail)
    name = form.builder.editor("purchaser_name")
    name.setText("Edited While Busy LLC")
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        form.save()
        qtbot.waitUntil(lambda: form.findChild(QMessageBox, "databaseBusyBox") is not None, timeout=20000)
        box = form.findChild(QMessageBox, "databaseBusyBox")
        assert "is busy" in box.text() and box.windowTitle() == "The database is busy"
        assert box.button(QMessageBox.StandardButton.Retry) is not None
        assert name.text() == "Edited While Busy LLC" and form.is_dirty()  # nothing lost
        assert CertificateService(db, rules).get(detail.id, AS_OF).data.purchaser_name != "Edited While Busy LLC"
    finally:
        other.execute("ROLLBACK")
        other.close()
    with qtbot.waitSignal(form.saved, timeout=20000):
        box.button(QMessageBox.StandardButton.Retry).click()
    assert CertificateService(db, rules).get(detail.id, AS_OF).data.purchaser_name == "Edited While Busy LLC"
    form.runner.wait(10000)
    db.dispose()


def test_a_save_queued_behind_a_refused_one_still_runs(qtbot, db, company_id, rules, form):
    """The race the FL test met under load: the second Save (with the missing reason typed) arrives
    while the first (refused: no reason) still runs; it must run after it, not vanish."""
    form.load(make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["FL"]))
    qtbot.keyClicks(form.override_edit, "2027-01-31")
    form.save()  # refused by the service: no reason
    qtbot.keyClicks(form.override_reason_edit, "Printed expiry on the certificate")
    with qtbot.waitSignal(form.saved, timeout=20000) as blocker:
        form.save()  # the first is still running: queued
    assert blocker.args[0].expiry_date == dt.date(2027, 1, 31)
    assert CertificateService(db, rules).get(form.detail.id, AS_OF).data.expiry_override == dt.date(2027, 1, 31)


def test_no_certificate_selected_shows_nothing_of_the_one_shown_before(qtbot, db, company_id, rules, form):
    """Seen in a real window: with the inbox tab open the form said "No certificate selected" but still
    showed the last certificate's states, form, reason and expiry, greyed."""
    form.load(make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["TX"]))
    assert form.states_edit.text() == "TX" and form.form_combo.count() > 0 and form.expiry_value.text()
    form.load(None)
    assert form.title.text() == "No certificate selected"
    assert form.states_edit.text() == "" and form.form_combo.count() == 0 and form.reason_combo.count() == 0
    assert form.coverage_table.rowCount() == 0
    assert (form.form_note.text(), form.expiry_value.text(), form.expiry_basis.text()) == ("", "", "")
    assert [form.checks_tabs.tabText(i) for i in range(2)] == ["Findings", "Permit checks"]
    assert "meets its states' rules" not in form.findings_panel.summary.text()
