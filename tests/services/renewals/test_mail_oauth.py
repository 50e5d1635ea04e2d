"""Sending renewal mail with an OAuth sign-in (SMTP ``AUTH XOAUTH2``), against a real identity provider
and a real SMTP server, both on 127.0.0.1 (tests/helpers/fake_idp.py, tests/helpers/smtp_server.py):
the browser sign-in with PKCE, the device code, automatic refresh, a revoked sign-in, a forged answer,
and a computer without a keyring."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from ecms_desktop.models import AuditEvent
from ecms_desktop.models.renewal import OutboxMessage
from ecms_desktop.services.core.errors import Cancelled, ValidationError
from ecms_desktop.services.renewals import mail_oauth, mail_tokens
from ecms_desktop.services.renewals.email_service import EmailService, build_message, enqueue, new_message_id
from ecms_desktop.services.renewals.mail_oauth import DeviceCode, OAuthRefused, SignInNeeded
from ecms_desktop.services.renewals.mail_sign_in import MailSignIn
from ecms_desktop.services.renewals.service import RenewalService
from tests.factories import DAY0, RULES, make_expiring_certificate
from tests.helpers.fake_idp import Clock, FakeIdentityProvider
from tests.helpers.smtp_server import SmtpTestServer

USER = "tax@acme.example"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def idp(clock: Clock) -> Iterator[FakeIdentityProvider]:
    with FakeIdentityProvider(clock=clock, user=USER) as provider:
        yield provider


@pytest.fixture
def oauth_smtp(idp: FakeIdentityProvider) -> Iterator[SmtpTestServer]:
    with SmtpTestServer(oauth=idp) as server:
        yield server


def _use_oauth(db, company_id: int, idp: FakeIdentityProvider, port: int, clock: Clock, *,
               provider: str = "microsoft", client_secret: str | None = None) -> EmailService:
    email = EmailService(db, now=clock, sleep=lambda _s: None)
    email.set_profile(company_id, host="127.0.0.1", port=port, security="none", from_address=f"Acme Tax <{USER}>",
                      username=USER, auth_method="oauth", oauth_provider=provider, oauth_client_id=idp.client_id,
                      oauth_idp_url=idp.url, client_secret=client_secret)
    return email


def _browser(seen: list[str]):  # type: ignore[no-untyped-def]
    """The user's browser: opens the sign-in page, which (signed in) redirects to ECMS's listener."""
    def open_browser(url: str) -> None:
        seen.append(url)
        with urllib.request.urlopen(url, timeout=10) as page:  # follows the redirect to 127.0.0.1
            assert page.status == 200
    return open_browser


def _queue(db, company_id: int, count: int) -> list[int]:
    ids = []
    with db.transaction() as s:
        for n in range(count):
            msg = build_message(from_address=f"Acme Tax <{USER}>", to_address=f"buyer{n}@example.com",
                                subject=f"Renewal {n}", text="Please renew.", html=None,
                                message_id=new_message_id(USER))
            ids.append(enqueue(s, company_id=company_id, customer_id=None, request_id=None, kind="request",
                               message=msg).id)
    return ids


def test_browser_sign_in_with_pkce_then_renewal_mail_goes_out_with_xoauth2(db, company_id, idp, oauth_smtp, clock,
                                                                           memory_keyring):
    email = _use_oauth(db, company_id, idp, oauth_smtp.port, clock)
    seen: list[str] = []
    signed = MailSignIn(email).sign_in_with_browser(company_id, _browser(seen), timeout=30)

    page = urllib.parse.urlsplit(seen[0])
    query = dict(urllib.parse.parse_qsl(page.query))
    assert page.path == "/organizations/oauth2/v2.0/authorize"
    assert query["scope"] == "https://outlook.office.com/SMTP.Send offline_access"
    assert query["code_challenge_method"] == "S256" and query["login_hint"] == USER
    assert query["redirect_uri"].startswith("http://127.0.0.1:")
    assert signed.kept_in_keyring and signed.state.signed_in
    assert signed.describe().startswith(f"Signed in as {USER}, token refreshed automatically")

    for n in range(2):
        make_expiring_certificate(db, company_id, f"C-{n + 1}", DAY0 + dt.timedelta(days=30 + n))
    result = RenewalService(db, RULES, email).run(company_id, DAY0)
    assert result.delivery is not None and result.delivery.sent == 2 and len(oauth_smtp.messages) == 2
    assert oauth_smtp.oauth_logins and set(oauth_smtp.oauth_logins) == {USER}

    tokens = [t for t in idp.issued.access] + [t for t in idp.issued.refresh]
    with db.reader() as s:
        events = s.execute(select(AuditEvent).where(AuditEvent.action.like("smtp.%"))).scalars().all()
        signed_in = [e for e in events if e.action == "smtp.signed_in"]
        assert len(signed_in) == 1 and signed_in[0].details["how"] == "browser"
        assert not any(t in json.dumps([e.details, e.after, e.before], default=str) for t in tokens for e in events)
    kept = [v for (service, _account), v in memory_keyring.passwords.items() if "oauth-microsoft" in _account]
    assert kept and any(next(iter(idp.issued.refresh)) in v for v in kept)


def test_device_code_sign_in_polls_slower_when_told_and_keeps_the_tokens(db, company_id, idp, oauth_smtp, clock,
                                                                         memory_keyring):
    email = _use_oauth(db, company_id, idp, oauth_smtp.port, clock)
    idp.slow_down_first, idp.pending_polls = True, 2
    shown: list[DeviceCode] = []
    waits: list[float] = []
    signed = MailSignIn(email).sign_in_with_device_code(company_id, shown.append, sleep=waits.append)
    assert waits == [5, 10, 10, 10]  # interval 5, then 5 more after slow_down
    assert shown[0].verification_uri == f"{idp.url}/device" and shown[0].user_code in shown[0].instructions()
    assert signed.state.signed_in
    assert [g for p, g in idp.requests if p.endswith("/token")] == ["urn:ietf:params:oauth:grant-type:device_code"] * 4
    assert email.test_connection(company_id).startswith("Connected to 127.0.0.1")  # logs in with that token


@pytest.mark.parametrize(("outcome", "said"), [("access_denied", "was declined"), ("expired_token", "expired")])
def test_device_code_refused_or_expired_says_so_and_keeps_nothing(db, company_id, idp, clock, memory_keyring,
                                                                  outcome, said):
    email = _use_oauth(db, company_id, idp, 2525, clock)
    idp.device_outcome, idp.pending_polls = outcome, 1
    with pytest.raises(OAuthRefused, match=said):
        MailSignIn(email).sign_in_with_device_code(company_id, lambda _c: None, sleep=lambda _s: None)
    assert not MailSignIn(email).state(company_id).signed_in


def test_an_expired_access_token_is_refreshed_before_sending_and_a_rotated_refresh_token_kept(
        db, company_id, idp, oauth_smtp, clock, memory_keyring):
    idp.rotate_refresh = True
    email = _use_oauth(db, company_id, idp, oauth_smtp.port, clock)
    MailSignIn(email).sign_in_with_browser(company_id, _browser([]), timeout=30)
    first_refresh = next(iter(idp.issued.refresh))
    clock.advance(3600 - 120)  # valid for two more minutes: used as it is
    assert email.send_queued(company_id, _queue(db, company_id, 1)).sent == 1
    assert [g for _p, g in idp.requests if g == "refresh_token"] == []
    clock.advance(90)  # still valid for 30 s: within the minute, so refreshed first
    report = email.send_queued(company_id, _queue(db, company_id, 2))
    assert report.sent == 2 and oauth_smtp.oauth_refusals == 0
    assert [g for _p, g in idp.requests if g == "refresh_token"] == ["refresh_token"]
    stored = email.tokens.load(email.require_profile(company_id))
    assert stored is not None and stored.refresh_token != first_refresh and first_refresh in idp.issued.revoked
    assert stored.expires_at == clock() + dt.timedelta(seconds=3600)

    clock.advance(7200)  # the rotated refresh token works the next time too
    assert email.send_queued(company_id, _queue(db, company_id, 1)).sent == 1


def test_a_token_the_server_refuses_is_refreshed_once_and_the_login_tried_again(db, company_id, idp, oauth_smtp,
                                                                                clock, memory_keyring):
    email = _use_oauth(db, company_id, idp, oauth_smtp.port, clock)
    MailSignIn(email).sign_in_with_browser(company_id, _browser([]), timeout=30)
    idp.issued.access.clear()  # the provider no longer honours the (unexpired) access token
    assert email.send_queued(company_id, _queue(db, company_id, 1)).sent == 1
    assert oauth_smtp.oauth_refusals == 1 and [g for _p, g in idp.requests if g == "refresh_token"] == ["refresh_token"]


def test_a_revoked_sign_in_says_sign_in_again_and_every_message_stays_queued(db, company_id, idp, oauth_smtp, clock,
                                                                            memory_keyring):
    email = _use_oauth(db, company_id, idp, oauth_smtp.port, clock)
    MailSignIn(email).sign_in_with_browser(company_id, _browser([]), timeout=30)
    ids = _queue(db, company_id, 3)
    idp.revoke_all()
    clock.advance(4000)
    with pytest.raises(SignInNeeded) as caught:
        email.send_queued(company_id, ids)
    assert "no longer accepts the sign-in of tax@acme.example" in str(caught.value)
    assert str(caught.value).endswith("Sign in again: Settings > E-mail > Sign in (or `ecms smtp sign-in`).")
    assert oauth_smtp.messages == []
    with db.reader() as s:
        assert set(s.execute(select(OutboxMessage.state)).scalars()) == {"pending"}
    assert [e.outbox_id for e in email.outbox(company_id, status="queued")] == sorted(ids, reverse=True)


def test_an_answer_with_the_wrong_state_is_refused_and_nothing_kept(db, company_id, idp, clock, memory_keyring):
    email = _use_oauth(db, company_id, idp, 2525, clock)

    def forged(url: str) -> None:  # a page that sends ECMS's listener a code of its own
        redirect = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["redirect_uri"]
        with urllib.request.urlopen(redirect + "?code=stolen&state=not-yours", timeout=10):
            pass

    with pytest.raises(ValidationError, match="'state' did not match"):
        MailSignIn(email).sign_in_with_browser(company_id, forged, timeout=30)
    assert memory_keyring.passwords == {} and not any(p.endswith("/token") for p, _g in idp.requests)


def test_without_a_keyring_the_sign_in_lasts_the_session_and_says_so(db, company_id, idp, oauth_smtp, clock,
                                                                    no_keyring, monkeypatch):
    monkeypatch.setattr(mail_tokens, "_session", {})
    email = _use_oauth(db, company_id, idp, oauth_smtp.port, clock)
    signed = MailSignIn(email).sign_in_with_browser(company_id, _browser([]), timeout=30)
    assert not signed.kept_in_keyring and "sign in again each time the program starts" in signed.describe()
    assert email.send_queued(company_id, _queue(db, company_id, 1)).sent == 1

    monkeypatch.setattr(mail_tokens, "_session", {})  # the program was started again
    with pytest.raises(SignInNeeded, match="no keyring on this computer"):
        email.send_queued(company_id, _queue(db, company_id, 1))


def test_sign_out_forgets_the_tokens_and_is_audited(db, company_id, idp, clock, memory_keyring):
    email = _use_oauth(db, company_id, idp, 2525, clock)
    sign_in = MailSignIn(email)
    sign_in.sign_in_with_browser(company_id, _browser([]), timeout=30)
    assert not sign_in.sign_out(company_id).signed_in
    assert not [a for (_s, a) in memory_keyring.passwords if "oauth-microsoft" in a]
    with db.reader() as s:
        out = s.execute(select(AuditEvent).where(AuditEvent.action == "smtp.signed_out")).scalar_one()
        assert out.details == {"provider": "microsoft", "username": USER, "was_signed_in": True}
    with pytest.raises(SignInNeeded, match="is not signed in"):
        email.test_connection(company_id)


def test_google_with_its_client_secret_from_the_keyring(db, company_id, clock, memory_keyring):
    with FakeIdentityProvider(clock=clock, user=USER, client_secret="GOCSPX-not-secret") as idp, \
            SmtpTestServer(oauth=idp) as server:
        email = _use_oauth(db, company_id, idp, server.port, clock, provider="google",
                           client_secret="GOCSPX-not-secret")
        seen: list[str] = []
        MailSignIn(email).sign_in_with_browser(company_id, _browser(seen), timeout=30)
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(seen[0]).query))
        assert urllib.parse.urlsplit(seen[0]).path == "/o/oauth2/v2/auth"
        assert (query["scope"], query["access_type"]) == ("https://mail.google.com/", "offline")
        assert email.send_queued(company_id, _queue(db, company_id, 1)).sent == 1
        with pytest.raises(ValidationError, match="does not allow the Gmail scope"):
            MailSignIn(email).sign_in_with_device_code(company_id, lambda _c: None, sleep=lambda _s: None)


def test_long_tokens_are_split_over_keyring_entries(db, company_id, idp, clock, memory_keyring):
    email = _use_oauth(db, company_id, idp, 2525, clock)
    settings = email.require_profile(company_id)
    email.tokens.save(settings, mail_oauth.TokenGrant("a" * 3000, 3600, "r" * 2500))
    account = mail_tokens.token_account(settings)
    entries = [v for (_s, a), v in memory_keyring.passwords.items() if a.startswith(account)]
    assert len(entries) >= 5 and all(len(v) <= 1210 for v in entries)
    stored = email.tokens.load(settings)
    assert stored is not None and (stored.access_token, stored.refresh_token) == ("a" * 3000, "r" * 2500)
    email.tokens.forget(settings)
    assert memory_keyring.passwords == {}


def test_settings_are_checked(db, company_id, clock):
    email = EmailService(db, now=clock)
    common = {"port": 587, "from_address": USER, "username": USER, "auth_method": "oauth"}
    with pytest.raises(ValidationError) as caught:
        email.set_profile(company_id, host="smtp.office365.com", security="none", oauth_provider="yahoo",
                          oauth_client_id="", oauth_idp_url="http://idp.example.com", **common)  # type: ignore[arg-type]
    text = str(caught.value)
    for part in ("'yahoo' is not one of microsoft, google", "client id", "must start with https://",
                 "only over an encrypted connection"):
        assert part in text
    with pytest.raises(ValidationError, match="uses no password"):
        email.set_profile(company_id, host="smtp.office365.com", security="starttls", oauth_provider="microsoft",
                          oauth_client_id="app", password="pw", **common)  # type: ignore[arg-type]


def test_provider_endpoints_and_overrides():
    ms = mail_oauth.endpoints("microsoft", tenant="contoso.onmicrosoft.com")
    assert ms.token == "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    assert mail_oauth.endpoints("microsoft").device == "https://login.microsoftonline.com/organizations/oauth2/v2.0/devicecode"
    gov = mail_oauth.endpoints("microsoft", idp_url="https://login.microsoftonline.us/")
    assert gov.authorize == "https://login.microsoftonline.us/organizations/oauth2/v2.0/authorize"
    google = mail_oauth.endpoints("google")
    assert (google.authorize, google.token, google.device) == (
        "https://accounts.google.com/o/oauth2/v2/auth", "https://oauth2.googleapis.com/token",
        "https://oauth2.googleapis.com/device/code")


def test_a_declined_or_cancelled_browser_sign_in_keeps_nothing(db, company_id, idp, clock, memory_keyring):
    email = _use_oauth(db, company_id, idp, 2525, clock)
    idp.deny_next = True
    with pytest.raises(OAuthRefused, match="was refused: access_denied: The user declined"):
        MailSignIn(email).sign_in_with_browser(company_id, _browser([]), timeout=30)
    seen: list[str] = []
    with pytest.raises(Cancelled, match="Sign-in cancelled; nothing was stored"):
        MailSignIn(email).sign_in_with_browser(company_id, seen.append, cancel=lambda: bool(seen), timeout=30)
    assert memory_keyring.passwords == {}
    with db.reader() as s:
        assert s.execute(select(AuditEvent).where(AuditEvent.action == "smtp.signed_in")).first() is None
