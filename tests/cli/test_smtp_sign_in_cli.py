"""``ecms smtp set --auth oauth``, ``ecms smtp sign-in|show|sign-out`` and sending with the sign-in, against
an identity provider and an SMTP server with ``AUTH XOAUTH2`` on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import urllib.request
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from ecms_desktop.cli import main
from ecms_desktop.models import AuditEvent, utcnow
from tests.factories import DAY0, make_expiring_certificate
from tests.helpers.fake_idp import FakeIdentityProvider
from tests.helpers.smtp_server import SmtpTestServer

USER = "tax@acme.example"


@pytest.fixture
def idp() -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider(clock=utcnow, user=USER) as provider:
        yield provider


def run(db, capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    code = main(["--db", db.url, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _set_oauth(db, capsys, idp: FakeIdentityProvider, port: int) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(db, capsys, "smtp", "set", "--auth", "oauth", "--provider", "microsoft", "--client-id",
                         idp.client_id, "--idp-url", idp.url, "--username", USER, "--from", USER, "--host",
                         "127.0.0.1", "--port", str(port), "--security", "none")
    assert code == 0, err
    assert "signed in at Microsoft 365" in out and "ecms smtp sign-in" in out


def test_browser_sign_in_show_send_and_sign_out(db, company_id, idp, capsys, memory_keyring, monkeypatch):
    opened: list[str] = []

    def browser(url: str) -> bool:  # the user's browser: signed in, it goes back to ECMS's listener
        opened.append(url)
        with urllib.request.urlopen(url, timeout=10):
            return True

    monkeypatch.setattr("webbrowser.open", browser)
    with SmtpTestServer(oauth=idp) as smtp:
        _set_oauth(db, capsys, idp, smtp.port)
        code, out, _ = run(db, capsys, "smtp", "show")
        assert code == 0 and "OAuth at Microsoft 365 (app ecms-test-app" in out and "Not signed in." in out

        code, out, err = run(db, capsys, "smtp", "sign-in", "--browser", "--timeout", "30")
        assert code == 0, err
        assert opened and opened[0] in out and f"Signed in as {USER}, token refreshed automatically" in out
        code, out, _ = run(db, capsys, "smtp", "test")
        assert code == 0 and f"Signed in as {USER}" in out and "the server answered 250" in out

        make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=30))
        code, out, err = run(db, capsys, "renewals", "send", "--as-of", DAY0.isoformat())
        assert code == 0, err
        assert len(smtp.messages) == 1 and smtp.oauth_logins == [USER] * 3  # test, check before sending, send

        code, out, _ = run(db, capsys, "smtp", "sign-out")
        assert code == 0 and "Signed out on this computer" in out
        code, out, _ = run(db, capsys, "smtp", "show")
        assert "Not signed in." in out
        code, out, err = run(db, capsys, "smtp", "test")
        assert code == 1 and "Sign in: Settings > E-mail > Sign in (or `ecms smtp sign-in`)" in err
    with db.reader() as s:
        actions = [a for a in s.execute(select(AuditEvent.action).order_by(AuditEvent.seq)).scalars()
                   if a.startswith("smtp.")]
    assert actions == ["smtp.settings_changed", "smtp.signed_in", "smtp.signed_out"]


def test_device_code_is_the_default_on_the_command_line(db, company_id, idp, capsys, memory_keyring):
    idp.interval, idp.pending_polls = 1, 0
    _set_oauth(db, capsys, idp, 2525)
    code, out, err = run(db, capsys, "smtp", "sign-in")
    assert code == 0, err
    assert f"Open {idp.url}/device in a browser (on any device) and enter the code" in out
    assert f"Signed in as {USER}" in out


def test_oauth_needs_a_provider_and_the_provider_gives_the_server(db, company_id, capsys, memory_keyring):
    code, _, err = run(db, capsys, "smtp", "set", "--auth", "oauth", "--from", USER, "--username", USER)
    assert code == 1 and "--auth oauth needs --provider" in err
    code, out, err = run(db, capsys, "smtp", "set", "--auth", "oauth", "--provider", "google", "--client-id",
                         "123.apps.googleusercontent.com", "--username", USER, "--from", USER)
    assert code == 0, err
    assert "smtp.gmail.com:587 (starttls)" in out
    code, _, err = run(db, capsys, "smtp", "set", "--host", "mail.acme.example", "--port", "25", "--security", "none",
                       "--auth", "oauth", "--provider", "microsoft", "--client-id", "app", "--username", USER,
                       "--from", USER)
    assert code == 1 and "only over an encrypted connection" in err
    code, _, err = run(db, capsys, "smtp", "set", "--from", USER)
    assert code == 1 and "--host, --port and --security" in err


def test_an_unknown_provider_is_named(db, company_id, capsys):
    code, _, err = run(db, capsys, "smtp", "set", "--auth", "oauth", "--provider", "yahoo", "--client-id", "x",
                       "--username", USER, "--from", USER)
    assert code == 1 and "Unknown sign-in provider 'yahoo': one of microsoft, google" in err
