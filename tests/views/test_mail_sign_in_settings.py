"""Settings > E-mail with a sign-in at Microsoft 365 or Google: the login choice, Sign in… through the
"browser" (the test fetches the provider's page, which redirects to ECMS's listener), Sign in with a
code… with Copy, Cancel, Sign out, the state line, and a test message sent with AUTH XOAUTH2 - against
an identity provider and an SMTP server on 127.0.0.1."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialogButtonBox, QWidget

from ecms_desktop.models import utcnow
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core.errors import Cancelled
from ecms_desktop.services.renewals.email_service import EmailService
from ecms_desktop.views.email_settings import EmailSettingsWidget
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.settings_dialog import SettingsDialog
from ecms_desktop.views.widgets.smtp_password import ask_smtp_password
from tests.helpers.fake_idp import FakeIdentityProvider
from tests.helpers.settings_dialog import email_settings_dialog
from tests.helpers.smtp_server import SmtpTestServer

USER = "tax@acme.example"


@pytest.fixture
def idp() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider(clock=utcnow, user=USER) as provider:
        yield provider


def browser(url: str) -> None:
    """The user's browser, signed in at the provider: its page redirects to ECMS's listener."""
    def visit() -> None:
        with urllib.request.urlopen(url, timeout=10):
            pass
    threading.Thread(target=visit, daemon=True).start()


def choose_microsoft(tab: EmailSettingsWidget, idp: FakeIdentityProvider, port: int) -> None:
    tab.login.setCurrentIndex(tab.login.findData("oauth:microsoft"))
    assert (tab.host.text(), tab.port.value(), tab.security.currentData()) == ("smtp.office365.com", 587, "starttls")
    assert not tab.password.isVisible() and tab.oauth.isVisible() and tab.oauth.tenant.isVisible()
    assert "your own app registration" in tab.oauth.help.text()
    tab.host.setText("127.0.0.1")
    tab.security.setCurrentIndex(tab.security.findData("none"))
    tab.port.setValue(port)
    tab.username.setText(USER)
    tab.from_address.setText(f"Acme Tax <{USER}>")
    tab.oauth.client_id.setText(idp.client_id)
    tab.oauth.idp_url.setText(idp.url)
    tab.oauth.client_id.editingFinished.emit()
    tab.oauth.open_url = browser


def test_sign_in_through_the_browser_then_ok_and_a_test_message_with_xoauth2(qtbot, db, company_id, tmp_path, idp,
                                                                              memory_keyring):
    with SmtpTestServer(oauth=idp) as smtp:
        dialog = email_settings_dialog(qtbot, db, company_id, tmp_path)
        tab = dialog.email_tab
        choose_microsoft(tab, idp, smtp.port)
        assert "Not signed in." in tab.oauth.state.text() and not tab.oauth.sign_out_button.isEnabled()
        with qtbot.waitSignal(tab.oauth.signed_in, timeout=30000):
            tab.oauth.sign_in_button.click()
        assert f"Signed in as {USER}, token refreshed automatically" in tab.oauth.state.text()
        assert tab.oauth.sign_out_button.isEnabled()

        tab.test_to.setText("me@acme.example")
        with qtbot.waitSignal(tab.test_sent, timeout=30000):
            tab.test_button.click()
        assert smtp.oauth_logins == [USER] and len(smtp.messages) == 1

        with qtbot.waitSignal(dialog.saved, timeout=10000):
            dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    saved = EmailService(db).get_profile(company_id)
    assert saved is not None and (saved.auth_method, saved.oauth_provider, saved.oauth_client_id) == (
        "oauth", "microsoft", idp.client_id)
    again = email_settings_dialog(qtbot, db, company_id, tmp_path)  # shown again with the state of the sign-in
    assert again.email_tab.login.currentData() == "oauth:microsoft"
    assert f"Signed in as {USER}" in again.email_tab.oauth.state.text()
    assert again.email_tab.pending_change() is None


def test_sign_in_with_a_code_shows_it_with_copy_and_sign_out(qtbot, db, company_id, tmp_path, idp, memory_keyring):
    idp.interval, idp.pending_polls = 1, 1
    dialog = email_settings_dialog(qtbot, db, company_id, tmp_path)
    tab = dialog.email_tab
    choose_microsoft(tab, idp, 2525)
    with qtbot.waitSignal(tab.oauth.signed_in, timeout=30000):
        tab.oauth.code_button.click()
        sign_in = tab.oauth.dialog
        assert sign_in is not None
        qtbot.waitUntil(sign_in.copy_button.isEnabled, timeout=10000)
        code = next(iter(idp.devices.values())).user_code
        assert code in sign_in.instructions.text() and f"{idp.url}/device" in sign_in.instructions.text()
        sign_in.copy_button.click()
        assert QGuiApplication.clipboard().text() == code
    assert f"Signed in as {USER}" in tab.oauth.state.text()
    with qtbot.waitSignal(tab.oauth.signed_out, timeout=10000):
        tab.oauth.sign_out_button.click()
    assert "Not signed in." in tab.oauth.state.text() and not memory_keyring.passwords


def test_cancel_stops_the_wait_and_keeps_nothing(qtbot, db, company_id, tmp_path, idp, memory_keyring):
    dialog = email_settings_dialog(qtbot, db, company_id, tmp_path)
    tab = dialog.email_tab
    choose_microsoft(tab, idp, 2525)
    opened: list[str] = []
    tab.oauth.open_url = opened.append  # the browser opened, the user walked away
    with qtbot.waitSignal(tab.oauth.sign_in_failed, timeout=30000) as failed:
        tab.oauth.sign_in_button.click()
        qtbot.waitUntil(lambda: bool(opened), timeout=10000)
        assert tab.oauth.dialog is not None and tab.oauth.dialog.page == opened[0]
        assert "If no window opened, open this address" in tab.oauth.dialog.instructions.text()
        tab.oauth.dialog.cancel_button.click()
    assert isinstance(failed.args[0], Cancelled)
    assert "cancelled" in tab.oauth.state.text() and not memory_keyring.passwords


def test_google_asks_for_its_client_secret_and_has_no_code_sign_in(qtbot, db, company_id, tmp_path, memory_keyring):
    dialog = email_settings_dialog(qtbot, db, company_id, tmp_path)
    tab = dialog.email_tab
    tab.login.setCurrentIndex(tab.login.findData("oauth:google"))
    assert tab.host.text() == "smtp.gmail.com" and tab.oauth.client_secret.isVisible()
    assert not tab.oauth.tenant.isVisible() and not tab.oauth.code_button.isEnabled()
    tab.username.setText(USER)
    tab.from_address.setText(USER)
    tab.oauth.client_id.setText("123.apps.googleusercontent.com")
    tab.oauth.client_secret.setText("GOCSPX-desktop")
    with qtbot.waitSignal(dialog.saved, timeout=10000):
        dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert [v for (_s, a), v in memory_keyring.passwords.items() if "client-secret" in a] == ["1\nGOCSPX-desktop"]


def test_closing_settings_while_waiting_for_the_browser_stops_the_wait(qtbot, db, company_id, tmp_path, idp,
                                                                      memory_keyring):
    settings = QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat)
    dialog = SettingsDialog(db, TaskRunner(), settings, company_id=company_id, companies=CompanyService(db).list(),
                            expiring_soon_days=30)
    dialog.show()
    dialog.tabs.setCurrentWidget(dialog.email_tab)
    tab = dialog.email_tab
    choose_microsoft(tab, idp, 2525)
    opened: list[str] = []
    tab.oauth.open_url = opened.append
    tab.oauth.sign_in_button.click()
    qtbot.waitUntil(lambda: bool(opened), timeout=10000)
    assert tab.oauth.dialog is not None and tab.oauth.dialog.task is not None
    task = tab.oauth.dialog.task
    dialog.deleteLater()
    qtbot.waitUntil(task.cancel_event.is_set, timeout=10000)
    qtbot.waitUntil(lambda: task.finished_flag or not memory_keyring.passwords, timeout=10000)
    assert not memory_keyring.passwords


def test_sending_with_a_sign_in_never_asks_for_a_password(qtbot, db, company_id, idp, no_keyring, monkeypatch):
    asked: list[str] = []
    monkeypatch.setattr("PySide6.QtWidgets.QInputDialog.getText", lambda *a, **k: (asked.append("x"), ("pw", True))[1])
    email = EmailService(db)
    email.set_profile(company_id, host="smtp.office365.com", port=587, security="starttls", from_address=USER,
                      username=USER, auth_method="oauth", oauth_provider="microsoft", oauth_client_id="app")
    parent = QWidget()
    qtbot.addWidget(parent)
    assert ask_smtp_password(parent, email, company_id) is None and asked == []


def test_choosing_a_sign_in_grows_the_window_so_no_row_is_squeezed(qtbot, db, company_id, tmp_path, idp):
    """Seen in a real window (Xvfb, openbox): the window kept its height when the sign-in rows appeared, so the
    client id, tenant and identity provider fields were squeezed below their height and the help line cut."""
    dialog = email_settings_dialog(qtbot, db, company_id, tmp_path)
    dialog.resize(663, 511)  # the size the window opened at with the password rows
    qtbot.waitUntil(lambda: dialog.height() == 511)
    tab = dialog.email_tab
    tab.login.setCurrentIndex(tab.login.findData("oauth:microsoft"))
    fields = (tab.oauth.client_id, tab.oauth.tenant, tab.oauth.idp_url, tab.host, tab.username)

    def nothing_squeezed() -> bool:
        return all(f.height() >= f.sizeHint().height() for f in fields) and (
            tab.oauth.help.height() >= tab.oauth.help.heightForWidth(tab.oauth.help.width()))

    qtbot.waitUntil(nothing_squeezed, timeout=3000)
    assert dialog.height() > 511
