"""Settings dialog: the expiring-soon window is saved in the database (audited) on OK only; a new
company can be added; the database URL is shown without its password."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox
from sqlalchemy import select

from ecms_desktop.models import AuditEvent
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.settings_dialog import THEME_KEY, SettingsDialog
from tests.factories import image_bytes


def make_dialog(qtbot, db, company_id, tmp_path: Path) -> SettingsDialog:  # type: ignore[no-untyped-def]
    runner = TaskRunner()
    settings = QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)
    dialog = SettingsDialog(db, runner, settings, company_id=company_id, companies=CompanyService(db).list(),
                            expiring_soon_days=30)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_ok_saves_the_expiring_soon_window(qtbot, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, db, company_id, tmp_path)
    dialog.expiring_spin.setValue(45)
    dialog.theme_combo.setCurrentIndex(dialog.theme_combo.findData("dark"))
    assert CompanyService(db).settings(company_id).expiring_soon_days == 30  # nothing before OK
    with qtbot.waitSignal(dialog.saved, timeout=10000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert CompanyService(db).settings(company_id).expiring_soon_days == 45
    assert CompanyService(db).settings(None).expiring_soon_days == 30  # only this company
    with db.reader() as s:
        stmt = select(AuditEvent).where(AuditEvent.action == "setting.changed")
        events = [e.after for e in s.execute(stmt).scalars()]
    assert events == [{"expiring_soon_days": 45}]
    assert dialog.qsettings.value(THEME_KEY) == "dark"
    assert not dialog.isVisible()


def test_cancel_saves_nothing(qtbot, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, db, company_id, tmp_path)
    dialog.expiring_spin.setValue(60)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Cancel).click()
    assert CompanyService(db).settings(company_id).expiring_soon_days == 30


def test_add_a_company_profile(qtbot, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, db, company_id, tmp_path)
    assert dialog.f_name.text() == "Acme Supply Co" and not dialog.f_name.isReadOnly()
    assert "TX=32012345678" in dialog.f_regs.text()
    dialog.add_company_button.click()
    assert not dialog.f_name.isReadOnly()
    dialog.f_name.setText("Beta Distribution")
    dialog.f_state.setText("ca")
    dialog.f_regs.setText("CA=SR-123-456789")
    with qtbot.waitSignal(dialog.saved, timeout=10000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    beta = next(c for c in CompanyService(db).list() if c.name == "Beta Distribution")
    assert beta.state == "CA" and beta.registrations == {"CA": "SR-123-456789"}


def test_database_url_without_password(qtbot, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, db, company_id, tmp_path)
    assert dialog.url_label.text() == db.display_url
    with qtbot.waitSignal(dialog.open_database_requested, timeout=2000):
        dialog.findChild(type(dialog.add_company_button), "openOtherDatabase").click()


def test_edit_a_company_profile_with_colour_and_logo(qtbot, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, db, company_id, tmp_path)
    before = CompanyService(db).get(company_id)
    dialog.f_legal.setText("Acme Supply Holdings LLC")
    dialog.f_city.setText("Round Rock")
    dialog.f_zip.setText("78664")
    dialog.f_reply.setText("ar@acme.example")
    dialog.f_regs.setText("TX=32012345678, OK=1234567")
    dialog.f_colour.setText("#aa3300")
    dialog.set_logo(image_bytes(24, 12, rgb=(0x33, 0x66, 0x99)))
    assert not dialog.f_logo.pixmap().isNull()  # the new logo is previewed
    assert CompanyService(db).get(company_id) == before  # nothing before OK
    changes = dialog.profile_changes()[company_id]
    assert set(changes) == {"legal_name", "city", "postal_code", "reply_to_email", "registrations",
                            "brand_color", "logo"}
    dialog.tabs.setCurrentIndex(2)
    dialog.grab().save("/tmp/settings-companies.png")
    with qtbot.waitSignal(dialog.saved, timeout=10000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    after = CompanyService(db).get(company_id)
    assert after.legal_name == "Acme Supply Holdings LLC" and after.city == "Round Rock"
    assert after.postal_code == "78664" and after.reply_to_email == "ar@acme.example"
    assert after.registrations == {"TX": "32012345678", "OK": "1234567"}
    assert after.brand_color == "#AA3300" and after.has_logo and after.logo_media_type == "image/png"
    with db.reader() as s:
        events = [(e.before, e.after) for e in s.execute(
            select(AuditEvent).where(AuditEvent.action == "company.updated")).scalars()]
    assert len(events) == 1 and events[0][1]["legal_name"] == "Acme Supply Holdings LLC"
    assert events[0][0]["legal_name"] == before.legal_name


def test_a_bad_colour_keeps_the_dialog_open_and_saves_nothing(qtbot, db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    dialog = make_dialog(qtbot, db, company_id, tmp_path)
    before = CompanyService(db).get(company_id)
    dialog.f_colour.setText("#12G")
    dialog.f_city.setText("Dallas")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: dialog.findChild(QMessageBox, "errorBox") is not None, timeout=10000)
    box = dialog.findChild(QMessageBox, "errorBox")
    assert "#RRGGBB" in box.text()
    assert dialog.isVisible() and dialog.buttons.isEnabled()
    assert CompanyService(db).get(company_id) == before


def test_a_hostile_logo_is_previewed_only_through_the_document_worker(qtbot, db, company_id, tmp_path,
                                                                      shared_dir) -> None:  # type: ignore[no-untyped-def]
    # 1,170 bytes claiming 49069 x 6528 pixels: decoding it in this process would take 2.7 GB.
    dialog = make_dialog(qtbot, db, company_id, tmp_path)
    dialog.set_logo((shared_dir / "bad-pdfs" / "jpeg-corrupt-49069x6528.jpg").read_bytes())
    assert dialog.f_logo.pixmap().isNull()
    assert "cannot be previewed" in dialog.f_logo.text() and "megapixels" in dialog.f_logo.text()
