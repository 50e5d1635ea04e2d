"""Values read from a certificate's document, suggested in its form: the marker with the percentage,
Accept (button, Ctrl+Shift+Y, Accept all ≥ 90 %) as an ordinary unsaved edit that Save stores, correcting
by typing, weaker looks for uncertain readings, the viewer's highlight when a field has the focus (on a
rotated page too), and a certificate whose form, states, reason and type are not known yet."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import pymupdf
import pytest
from PySide6.QtCore import QSettings, Qt

from ecms_desktop.models import Document
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.documents.storage import check_file
from ecms_desktop.views.certificates.form import CertificateForm
from ecms_desktop.views.certificates.form_builder import NOT_KNOWN
from ecms_desktop.views.main_window import MainWindow
from tests.factories import DESK_CASES, make_desk_certificate, text_pdf

AS_OF = dt.date(2026, 6, 1)
NAME_BOX = (100.0, 150.0, 360.0, 172.0)


@pytest.fixture(scope="module")
def rules():
    return load_rules_pack()


def scanned_pdf(rotate: int = 0) -> bytes:
    """One page with a black bar where the purchaser's name was read; the page carries /Rotate ``rotate``."""
    doc = pymupdf.open()
    page = doc.new_page(width=612, height=792)
    page.draw_rect(pymupdf.Rect(*NAME_BOX), color=(0, 0, 0), fill=(0, 0, 0))
    page.set_rotation(rotate)
    return doc.tobytes()


def reading(fields: dict[str, tuple[str, float]]) -> dict[str, Any]:
    return {"method": "ocr", "form_code": {"value": "TX-01-339", "confidence": 0.96},
            "state": {"value": "TX", "confidence": 0.96},
            "fields": {name: {"value": v, "confidence": c, "page": 1,
                              "box": list(NAME_BOX) if name == "purchaser_name" else [100.0, 400.0, 200.0, 415.0]}
                       for name, (v, c) in fields.items()},
            "engine": "tesseract", "engine_version": "5.3.0", "seconds": 2.0, "notes": []}


READ = {"purchaser_name": ("Harbor Lights Trading LLC", 0.82), "purchaser_tax_id": ("32012345678", 0.95),
        "signer_title": ("Owner", 0.45), "signed_date": ("03/15/2026", 0.93), "exempt_reason": ("resale", 0.9)}


def certificate_with_scan(db, company_id, rules, tmp_path: Path, *, rotate: int = 0,  # type: ignore[no-untyped-def]
                          unread_first: bool = False):
    """The TX desk certificate (purchaser Lone Star Hardware LLC, signed 2026-03-15) with a scan whose
    reading says otherwise for some fields (after a document that was not read, if ``unread_first``)."""
    detail = make_desk_certificate(db, company_id, as_of=AS_OF, rules=rules, **DESK_CASES["TX"])
    service = CertificateService(db, rules)
    if unread_first:
        first = tmp_path / "cover-letter.pdf"
        first.write_bytes(text_pdf("Our exemption certificate is attached."))
        service.attach_document(check_file(first), certificate_id=detail.id, expected_version=detail.version)
        detail = service.get(detail.id, AS_OF)
    path = tmp_path / "scan.pdf"
    path.write_bytes(scanned_pdf(rotate))
    doc_id = service.attach_document(check_file(path), certificate_id=detail.id, expected_version=detail.version)
    with db.transaction() as s:
        s.get(Document, doc_id).extraction = reading(READ)
    return service.get(detail.id, AS_OF)


@pytest.fixture
def form(qtbot, db, rules):  # type: ignore[no-untyped-def]
    f = CertificateForm(db, rules)
    f.set_as_of(AS_OF)
    qtbot.addWidget(f)
    f.resize(760, 1100)
    f.show()
    yield f
    f.runner.wait(10000)


def test_marker_shows_the_percentage_and_accept_is_an_unsaved_edit_that_save_stores(
        qtbot, db, company_id, rules, form, tmp_path):  # type: ignore[no-untyped-def]
    detail = certificate_with_scan(db, company_id, rules, tmp_path)
    form.load(detail)
    editor = form.builder.editor("purchaser_name")
    assert editor.text() == "Lone Star Hardware LLC"  # suggested, never applied
    assert not form.is_dirty()
    marker = form.markers["purchaser_name"]
    assert marker.label.text() == "Read from the scan, 82 %: Harbor Lights Trading LLC"
    assert marker.accept_button.isVisible()
    assert form.markers["signed_date"].agrees  # 03/15/2026 is what the record holds
    assert form.markers["signed_date"].label.text() == "✓ matches the scan (93 %)"
    assert not form.markers["signed_date"].accept_button.isVisible()
    assert form.suggestion_bar.isVisible() and "3 values" in form.suggestion_summary.text()

    qtbot.waitUntil(lambda: marker.accept_button.height() > 0, timeout=3000)  # laid out
    qtbot.mouseClick(marker.accept_button, Qt.MouseButton.LeftButton)
    assert editor.text() == "Harbor Lights Trading LLC"
    assert form.is_dirty()
    assert form.markers["purchaser_name"].agrees
    with qtbot.waitSignal(form.saved, timeout=10000):
        form.save()
    stored = CertificateService(db, rules).get(detail.id, AS_OF)
    assert stored.data.purchaser_name == "Harbor Lights Trading LLC"
    assert not form.is_dirty()


def test_correcting_keeps_the_typed_value(qtbot, db, company_id, rules, form, tmp_path):  # type: ignore[no-untyped-def]
    detail = certificate_with_scan(db, company_id, rules, tmp_path)
    form.load(detail)
    assert form.accept_suggestion("purchaser_tax_id")
    editor = form.builder.editor("purchaser_tax_id")
    assert editor.text() == "32012345678"
    editor.setFocus(Qt.FocusReason.OtherFocusReason)
    editor.selectAll()
    qtbot.keyClicks(editor, "32012345670")
    assert editor.text() == "32012345670"
    marker = form.markers["purchaser_tax_id"]
    assert not marker.agrees and marker.accept_button.isVisible()  # still on offer
    with qtbot.waitSignal(form.saved, timeout=10000):
        form.save()
    assert CertificateService(db, rules).get(detail.id, AS_OF).data.purchaser_tax_id == "32012345670"


def test_weak_readings_look_weaker_than_sure_ones(db, company_id, rules, form, tmp_path):  # type: ignore[no-untyped-def]
    form.load(certificate_with_scan(db, company_id, rules, tmp_path))
    strong, normal, weak = (form.markers[f] for f in ("purchaser_tax_id", "purchaser_name", "signer_title"))
    assert [m.property("confidence") for m in (strong, normal, weak)] == ["strong", "normal", "weak"]
    assert "uncertain" in weak.label.text() and "uncertain" not in strong.label.text()
    assert "italic" in weak.label.styleSheet() and "italic" not in strong.label.styleSheet()
    assert "bold" in strong.label.styleSheet()
    assert weak.label.styleSheet() != normal.label.styleSheet() != strong.label.styleSheet()


def test_accept_all_takes_only_the_sure_ones(db, company_id, rules, form, tmp_path):  # type: ignore[no-untyped-def]
    form.load(certificate_with_scan(db, company_id, rules, tmp_path))
    assert form.accept_all_button.text() == "Accept all ≥ 90 % (1)"
    assert form.accept_all() == ["purchaser_tax_id"]
    assert form.builder.editor("purchaser_tax_id").text() == "32012345678"
    assert form.builder.editor("purchaser_name").text() == "Lone Star Hardware LLC"  # 82 %: left to the accountant
    assert form.builder.editor("signer_title").text() == ""
    assert form.is_dirty() and not form.accept_all_button.isEnabled()


def test_the_shortcut_accepts_the_focused_fields_value(qtbot, db, company_id, rules, form, tmp_path):  # type: ignore[no-untyped-def]
    form.load(certificate_with_scan(db, company_id, rules, tmp_path))
    editor = form.builder.editor("signer_title")  # a field the TX form shows because a value was read
    assert editor is not None
    editor.setFocus(Qt.FocusReason.OtherFocusReason)
    qtbot.waitUntil(editor.hasFocus, timeout=3000)
    qtbot.keyClick(editor, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert editor.text() == "Owner"
    assert form.is_dirty()


def test_a_certificate_whose_form_and_states_are_not_known_yet(db, company_id, rules, form, tmp_path):  # type: ignore[no-untyped-def]
    detail = certificate_with_scan(db, company_id, rules, tmp_path)
    unknown = replace(detail, data=replace(detail.data, form_code="", lines=(), exempt_reason="",
                                           certificate_type=""))
    form.load(unknown)
    assert form.states_edit.text() == "" and "Not known yet" in form.states_edit.placeholderText()
    assert form.form_combo.currentText() == NOT_KNOWN and form.form_combo.currentData() == ""
    assert form.reason_combo.currentText() == NOT_KNOWN
    type_combo = form.builder.editor("certificate_type")
    assert type_combo.currentText() == NOT_KNOWN
    assert form.builder.editor("signer_name") is not None  # the generic layout: the common fields
    assert not form.is_dirty()  # nothing filled in by default
    shown = form.findings_shown()
    assert any("not known yet" in m for _, m in shown["form"])
    assert any("not known yet" in m for _, m in shown["exempt_reason"])
    # The states and the form read from the document are offered; accepting rebuilds the form for them.
    assert form.markers["states"].label.text().startswith("Read from the scan, 96 %: TX")
    assert form.accept_suggestion("states")
    assert form.states_edit.text() == "TX"
    assert form.accept_suggestion("form_code")
    assert form.spec.form_code == "TX-01-339" and form.form_combo.currentData() == "TX-01-339"
    assert form.accept_suggestion("exempt_reason") and form.reason_combo.currentData() == "resale"
    assert form.builder.editor("purchaser_tax_id").property("required")  # as choosing TX-01-339 by hand
    assert form.is_dirty()
    assert form.markers["states"].agrees and form.markers["form_code"].agrees


@pytest.mark.parametrize(("rotate", "unread_first"), [(0, False), (90, False), (90, True)])
def test_focusing_a_field_highlights_where_it_was_read(qtbot, db, company_id, rules, tmp_path, rotate,  # type: ignore[no-untyped-def]
                                                       unread_first):
    """In the desk; when the viewer shows another document of the certificate, it shows the one read."""
    detail = certificate_with_scan(db, company_id, rules, tmp_path, rotate=rotate, unread_first=unread_first)
    window = MainWindow(None, as_of=AS_OF, settings=QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.resize(1400, 800)
    window.show()
    try:
        with qtbot.waitSignals([window.grid_ready, window.counts_updated], timeout=15000):
            window.set_database(db)
        with qtbot.waitSignal(window.selection_ready, timeout=20000):
            assert window.select_certificate(detail.id)
        assert window.viewer.highlight_rect is None
        window.activateWindow()  # focus moves only in the active window
        qtbot.waitUntil(window.isActiveWindow, timeout=5000)
        editor = window.form.builder.editor("purchaser_name")
        editor.setFocus(Qt.FocusReason.MouseFocusReason)
        qtbot.waitUntil(lambda: window.viewer.highlight_rect is not None, timeout=10000)
        assert window.viewer.name_label.text() == "scan.pdf"
        rect = window.viewer.highlight_rect
        # Where the black bar (the box read) is on the page picture.
        pm = window.viewer.page_label.pixmap()
        image, ratio = pm.toImage(), pm.devicePixelRatio()
        dark = [(x, y) for y in range(0, image.height(), 2) for x in range(0, image.width(), 2)
                if image.pixelColor(x, y).red() < 60]
        left = (window.viewer.page_label.width() - pm.width() / ratio) / 2
        top = (window.viewer.page_label.height() - pm.height() / ratio) / 2
        x0, y0 = left + min(x for x, _ in dark) / ratio, top + min(y for _, y in dark) / ratio
        x1, y1 = left + max(x for x, _ in dark) / ratio, top + max(y for _, y in dark) / ratio
        assert abs(rect.left() - x0) < 3 and abs(rect.top() - y0) < 3
        assert abs(rect.right() - x1) < 3 and abs(rect.bottom() - y1) < 3
        if rotate:
            assert rect.height() > rect.width()  # the bar stands upright on a page turned a quarter
        # Accept keeps the focus in the field and the box highlighted.
        button = window.form.markers["purchaser_name"].accept_button
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
        assert editor.text() == "Harbor Lights Trading LLC"
        qtbot.wait(400)  # the live validation runs after a pause
        assert editor.hasFocus() and window.viewer.highlight_rect is not None
        # A field with nothing read: the highlight goes.
        window.form.builder.editor("certificate_number").setFocus(Qt.FocusReason.MouseFocusReason)
        qtbot.waitUntil(lambda: window.viewer.highlight_rect is None, timeout=5000)
    finally:
        window.shutdown()
