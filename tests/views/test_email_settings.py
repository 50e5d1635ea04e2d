"""Settings > E-mail: the mail server saved on OK (audited), the password in the keyring and nowhere
else, one reply-to address on two tabs, and "Send test message" with the values on screen through the
task runner to a real loopback SMTP server."""

from __future__ import annotations

from PySide6.QtWidgets import QDialogButtonBox
from sqlalchemy import select

from ecms_desktop.models import AuditEvent
from ecms_desktop.models.renewal import SmtpProfile
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core.errors import ExternalServiceError
from ecms_desktop.services.renewals import smtp_passwords
from ecms_desktop.services.renewals.email_service import EmailService
from tests.helpers.settings_dialog import email_settings_dialog
from tests.helpers.smtp_server import closed_port


def test_ok_saves_the_server_and_keeps_the_password_in_the_keyring(qtbot, db, company_id, tmp_path,
                                                                    memory_keyring):
    dialog = email_settings_dialog(qtbot, db, company_id, tmp_path)
    tab = dialog.email_tab
    assert [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())] == ["Database", "Review", "Companies",
                                                                            "E-mail", "People", "Rules pack"]
    tab.host.setText("smtp.acme.example")
    tab.security.setCurrentIndex(tab.security.findData("ssl"))
    assert tab.port.value() == 465  # follows the security choice
    tab.username.setText("tax@acme.example")
    tab.password.setText("s3cret-pw")
    tab.from_address.setText("Acme Tax <tax@acme.example>")
    assert EmailService(db).get_profile(company_id) is None  # nothing before OK
    with qtbot.waitSignal(dialog.saved, timeout=10000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    saved = EmailService(db).get_profile(company_id)
    assert saved is not None and (saved.host, saved.port, saved.security, saved.username) == (
        "smtp.acme.example", 465, "ssl", "tax@acme.example")
    assert memory_keyring.passwords == {(smtp_passwords.SERVICE, saved.keyring_account): "s3cret-pw"}
    with db.reader() as s:
        row = s.execute(select(SmtpProfile)).scalar_one()
        events = s.execute(select(AuditEvent).where(AuditEvent.action == "smtp.settings_changed")).scalars().all()
        assert "s3cret-pw" not in repr(row.__dict__)
        assert len(events) == 1 and "s3cret-pw" not in repr((events[0].after, events[0].details))

    again = email_settings_dialog(qtbot, db, company_id, tmp_path)  # shown again; the password is not
    assert again.email_tab.host.text() == "smtp.acme.example" and again.email_tab.password.text() == ""
    assert "kept in the operating system's keyring" in again.email_tab.keyring_note.text()
    assert again.email_tab.pending_change() is None


def test_without_a_keyring_the_tab_says_the_password_is_asked(qtbot, db, company_id, tmp_path):
    dialog = email_settings_dialog(qtbot, db, company_id, tmp_path)
    dialog.email_tab.username.setText("bob")
    dialog.email_tab.username.editingFinished.emit()
    assert "asked each time" in dialog.email_tab.keyring_note.text()


def test_a_mistake_is_named_and_nothing_is_saved(qtbot, db, company_id, tmp_path, monkeypatch):
    shown: list[BaseException] = []
    monkeypatch.setattr("ecms_desktop.views.settings_dialog.present_error", lambda _w, e: shown.append(e))
    dialog = email_settings_dialog(qtbot, db, company_id, tmp_path)
    dialog.email_tab.host.setText("smtp.acme.example")
    dialog.email_tab.from_address.setText("nobody")
    dialog.expiring_spin.setValue(45)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: bool(shown), timeout=10000)
    assert "not an e-mail address" in str(shown[0]) and dialog.isVisible()
    assert EmailService(db).get_profile(company_id) is None
    assert CompanyService(db).settings(company_id).expiring_soon_days == 30


def test_reply_to_is_one_address_on_two_tabs(qtbot, db, company_id, tmp_path):
    dialog = email_settings_dialog(qtbot, db, company_id, tmp_path)
    dialog.email_tab.reply_to.clear()
    qtbot.keyClicks(dialog.email_tab.reply_to, "replies@acme.example")
    assert dialog.f_reply.text() == "replies@acme.example"
    dialog.f_reply.clear()
    qtbot.keyClicks(dialog.f_reply, "ar@acme.example")
    assert dialog.email_tab.reply_to.text() == "ar@acme.example"
    with qtbot.waitSignal(dialog.saved, timeout=10000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert next(c for c in CompanyService(db).list() if c.id == company_id).reply_to_email == "ar@acme.example"


def test_send_test_message_with_the_values_on_screen(qtbot, db, company_id, tmp_path, smtp):
    dialog = email_settings_dialog(qtbot, db, company_id, tmp_path)
    tab = dialog.email_tab
    tab.host.setText("127.0.0.1")
    tab.security.setCurrentIndex(tab.security.findData("none"))
    tab.port.setValue(smtp.port)
    tab.from_address.setText("tax@acme.example")
    tab.test_to.setText("me@acme.example")
    with qtbot.waitSignal(tab.test_sent, timeout=30000):
        tab.test_button.click()
    assert [m.rcpt_tos for m in smtp.messages] == [["me@acme.example"]]
    assert smtp.messages[0].message["Subject"] == "ECMS test message"
    assert "A test message was sent to me@acme.example" in tab.test_result.text()
    assert EmailService(db).get_profile(company_id) is None  # testing saves nothing

    tab.port.setValue(closed_port())
    with qtbot.waitSignal(tab.test_failed, timeout=30000) as blocker:
        tab.test_button.click()
    assert isinstance(blocker.args[0], ExternalServiceError)
    assert "Cannot reach the SMTP server" in tab.test_result.text() and tab.test_button.isEnabled()
    tab.test_to.setText("not an address")
    with qtbot.waitSignal(tab.test_failed, timeout=30000):
        tab.test_button.click()
    assert "is not one" in tab.test_result.text()
