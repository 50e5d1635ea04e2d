"""OAuth 2.0 sign-in for sending mail through Microsoft 365 or Gmail (SMTP ``AUTH XOAUTH2``).

The protocol part only: the providers' endpoints, the two ways to sign in - the authorization code
with PKCE through the system browser and a listener on ``http://127.0.0.1:<port>/`` (RFC 8252), and
the device code (RFC 8628: a code typed at a web page, for a terminal) - and the refresh of an access
token. Tokens are kept by :mod:`ecms_desktop.services.renewals.mail_tokens`; the sign-in that is
audited is :mod:`ecms_desktop.services.renewals.mail_sign_in`.

The client id is the customer's own app registration (a public client: no secret; Google's desktop
clients come with a "client secret" that Google itself says is not secret, kept in the keyring).
Written on the standard library (``urllib``): oauthlib was looked at, but it refuses plain
``http://127.0.0.1`` endpoints and a narrowed scope in the answer (Microsoft leaves ``offline_access``
out) unless process-wide environment variables are set, and does none of the HTTP or the listener.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from ecms_desktop.services.core.errors import Cancelled, ExternalServiceError, ValidationError
from ecms_desktop.services.core.progress import CancelCheck

#: Where to sign in again when a refresh is refused (said in every such message).
SIGN_IN_AGAIN = "Sign in again: Settings > E-mail > Sign in (or `ecms smtp sign-in`)."


@dataclass(frozen=True)
class Provider:
    """One identity provider's preset: its endpoints (``{tenant}`` filled in for Microsoft), the
    scope that lets a program send mail, and the usual SMTP server."""

    key: str
    name: str
    authority: str
    authorize_path: str
    token_path: str
    device_path: str
    scope: str
    smtp_host: str
    smtp_port: int
    smtp_security: str
    #: Extra parameters of the authorization request (Google gives a refresh token only when asked).
    authorize_extra: tuple[tuple[str, str], ...] = ()
    #: Why the device code cannot be used with this provider ("" when it can).
    no_device_code: str = ""
    uses_tenant: bool = False


PROVIDERS: dict[str, Provider] = {
    "microsoft": Provider(
        "microsoft", "Microsoft 365", "https://login.microsoftonline.com",
        "/{tenant}/oauth2/v2.0/authorize", "/{tenant}/oauth2/v2.0/token", "/{tenant}/oauth2/v2.0/devicecode",
        "https://outlook.office.com/SMTP.Send offline_access", "smtp.office365.com", 587, "starttls",
        uses_tenant=True),
    "google": Provider(
        "google", "Google (Gmail)", "https://accounts.google.com", "/o/oauth2/v2/auth", "/token", "/device/code",
        "https://mail.google.com/", "smtp.gmail.com", 587, "starttls",
        authorize_extra=(("access_type", "offline"), ("prompt", "consent")),
        no_device_code="Google's device-code sign-in does not allow the Gmail scope: sign in with the browser"),
}
#: Microsoft's tenant for any work or school account (a tenant id or domain narrows it).
DEFAULT_TENANT = "organizations"
#: Google's token and device endpoints live on another host than its sign-in page.
_GOOGLE_TOKEN_HOST = "https://oauth2.googleapis.com"


@dataclass(frozen=True)
class Endpoints:
    """The three addresses of one sign-in, and the scope asked for."""

    authorize: str
    token: str
    device: str
    scope: str


def provider(key: str) -> Provider:
    try:
        return PROVIDERS[key]
    except KeyError:
        raise ValidationError(f"Unknown sign-in provider {key!r}: one of {', '.join(PROVIDERS)}.") from None


def is_loopback(host: str) -> bool:
    """The host is this machine (plain connections are allowed to it, nowhere else)."""
    return host.strip().lower() in ("127.0.0.1", "localhost", "::1", "[::1]")


def check_idp_url(url: str) -> str | None:
    """What is wrong with an identity-provider URL override, or None (https, or http to this machine)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname and is_loopback(parts.hostname):
        return None
    return f"the identity provider URL {url!r} must start with https:// (http only to 127.0.0.1)"


def endpoints(key: str, *, tenant: str = "", idp_url: str = "") -> Endpoints:
    """The endpoints of a provider; ``idp_url`` replaces the provider's host (a sovereign cloud such as
    ``https://login.microsoftonline.us``, or a test's identity provider) and keeps the paths."""
    p = provider(key)
    paths = [path.format(tenant=urllib.parse.quote(tenant.strip() or DEFAULT_TENANT, safe=""))
             for path in (p.authorize_path, p.token_path, p.device_path)]
    if idp_url.strip():
        base = idp_url.strip().rstrip("/")
        hosts = [base, base, base]
    else:
        hosts = [p.authority] + [_GOOGLE_TOKEN_HOST if key == "google" else p.authority] * 2
    authorize, token, device = (h + path for h, path in zip(hosts, paths, strict=True))
    return Endpoints(authorize, token, device, p.scope)


@dataclass(frozen=True)
class Client:
    """The customer's app registration and where it signs in."""

    provider: str
    client_id: str
    endpoints: Endpoints
    #: Google desktop clients only; not a secret (sent to the token endpoint when set).
    client_secret: str = ""
    #: The mailbox, suggested to the sign-in page.
    login_hint: str = ""

    def with_secret(self, form: dict[str, str]) -> dict[str, str]:
        form = {"client_id": self.client_id, **form}
        if self.client_secret:
            form["client_secret"] = self.client_secret
        return form


@dataclass(frozen=True)
class TokenGrant:
    """What the token endpoint gave: an access token with its lifetime, and (usually) a refresh token."""

    access_token: str
    expires_in: int
    refresh_token: str = ""
    scope: str = ""


class OAuthRefused(ExternalServiceError):
    """The identity provider refused (an OAuth error code such as ``invalid_grant``)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class SignInNeeded(ExternalServiceError):
    """No usable sign-in: never signed in, signed out, or the refresh token was revoked or expired.
    The message ends with where to sign in again; nothing was sent."""


#: What to check when the provider refuses the app itself.
_HINTS = {
    "unauthorized_client": " (check the client id in Settings > E-mail; for a sign-in with a code, Microsoft needs "
                           "'Allow public client flows' turned on in the app registration)",
    "invalid_client": " (check the client id, and for Google the client secret, in Settings > E-mail)",
    "invalid_scope": " (the app registration must be allowed to send mail: SMTP.Send for Microsoft, the Gmail scope "
                     "for Google)",
}


# -- HTTP -------------------------------------------------------------------------------------------------


def _post(url: str, form: dict[str, str], *, timeout: float) -> dict[str, object]:
    """POST a form and read the JSON answer; an OAuth error answer raises OAuthRefused."""
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(),
                                     headers={"Accept": "application/json",
                                              "Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            data = json.loads(body)
        except ValueError:
            raise ExternalServiceError(f"The identity provider at {url} answered {exc.code} "
                                       f"{exc.reason}.") from exc
        code = str(data.get("error", exc.code))
        text = str(data.get("error_description") or "").splitlines()[0:1]
        hint = _HINTS.get(code, "")
        raise OAuthRefused(f"{urllib.parse.urlsplit(url).netloc} answered {code}{': ' + text[0] if text else ''}"
                           f"{hint}", code) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ExternalServiceError(f"Cannot reach the identity provider at {url}: {reason}. Check the network "
                                   "(and the identity provider URL in Settings > E-mail).") from exc
    try:
        data = json.loads(body)
    except ValueError:
        raise ExternalServiceError(f"The identity provider at {url} did not answer in JSON.") from None
    if not isinstance(data, dict):
        raise ExternalServiceError(f"The identity provider at {url} gave an answer that is not an object.")
    return data


def _grant(data: dict[str, object], url: str) -> TokenGrant:
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise ExternalServiceError(f"The identity provider at {url} gave no access token.")
    try:
        expires_in = int(str(data.get("expires_in", 3600)))
    except ValueError:
        expires_in = 3600
    return TokenGrant(token, expires_in, str(data.get("refresh_token") or ""), str(data.get("scope") or ""))


def refresh(client: Client, refresh_token: str, *, timeout: float = 30.0) -> TokenGrant:
    """A new access token for a refresh token (OAuthRefused ``invalid_grant`` when revoked or expired)."""
    data = _post(client.endpoints.token, client.with_secret(
        {"grant_type": "refresh_token", "refresh_token": refresh_token, "scope": client.endpoints.scope}),
        timeout=timeout)
    return _grant(data, client.endpoints.token)


# -- authorization code with PKCE through the browser ----------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    """A code verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class _Answer:
    params: dict[str, str] = field(default_factory=dict)
    arrived: threading.Event = field(default_factory=threading.Event)


_DONE_PAGE = ("<!doctype html><meta charset=utf-8><title>ECMS</title><body style='font-family:sans-serif'>"
              "<h2>{title}</h2><p>{text}</p></body>")


class _RedirectHandler(http.server.BaseHTTPRequestHandler):
    answer: _Answer

    def do_GET(self) -> None:
        query = urllib.parse.urlsplit(self.path).query
        params = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
        if not params:  # a browser asking for /favicon.ico and the like
            self.send_response(404)
            self.end_headers()
            return
        ok = "code" in params
        page = _DONE_PAGE.format(
            title="Signed in" if ok else "Sign-in not finished",
            text="You can close this window and go back to ECMS." if ok else
                 "ECMS shows what went wrong. You can close this window.")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write(page.encode())
        if not self.answer.arrived.is_set():
            self.answer.params = params
            self.answer.arrived.set()

    def log_message(self, format: str, *args: object) -> None:
        return


def browser_sign_in(client: Client, open_browser: Callable[[str], object], *, cancel: CancelCheck | None = None,
                    timeout: float = 300.0, http_timeout: float = 30.0) -> TokenGrant:
    """Sign in through the system browser: listen on a free port of 127.0.0.1, open the provider's
    page (``open_browser`` gets its URL), wait for the redirect (at most ``timeout`` seconds; Cancelled
    when ``cancel`` says so), check ``state``, and trade the code (with the PKCE verifier) for tokens."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(24)
    answer = _Answer()
    handler = type("Handler", (_RedirectHandler,), {"answer": answer})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    redirect_uri = f"http://127.0.0.1:{server.server_address[1]}/"
    params = {"client_id": client.client_id, "response_type": "code", "redirect_uri": redirect_uri,
              "scope": client.endpoints.scope, "state": state, "code_challenge": challenge,
              "code_challenge_method": "S256", **dict(provider(client.provider).authorize_extra)}
    if client.login_hint:
        params["login_hint"] = client.login_hint
    url = client.endpoints.authorize + "?" + urllib.parse.urlencode(params)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                              name="oauth-redirect")
    thread.start()
    try:
        open_browser(url)
        deadline = time.monotonic() + timeout
        while not answer.arrived.wait(0.1):
            if cancel and cancel():
                raise Cancelled("Sign-in cancelled; nothing was stored.")
            if time.monotonic() > deadline:
                raise ExternalServiceError(f"The sign-in was not finished within {int(timeout)} seconds; nothing "
                                           "was stored. Start it again.")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    got = answer.params
    if got.get("state") != state:
        raise ValidationError("The answer that reached ECMS's sign-in listener was not for this sign-in (its "
                              "'state' did not match); it was ignored and nothing was stored. Start it again.")
    if "error" in got:
        text = got.get("error_description", "").splitlines()[0:1]
        raise OAuthRefused(f"The sign-in at {provider(client.provider).name} was refused: {got['error']}"
                           f"{': ' + text[0] if text else ''}. Nothing was stored.", got["error"])
    if not got.get("code"):
        raise ExternalServiceError("The sign-in page came back without a code; nothing was stored.")
    data = _post(client.endpoints.token, client.with_secret(
        {"grant_type": "authorization_code", "code": got["code"], "redirect_uri": redirect_uri,
         "code_verifier": verifier}), timeout=http_timeout)
    return _grant(data, client.endpoints.token)


# -- device code ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceCode:
    """What the user is shown: the page to open and the code to type there."""

    verification_uri: str
    user_code: str
    expires_in: int
    interval: int
    #: The provider's own sentence, when it gives one.
    message: str
    device_code: str = field(repr=False, default="")

    def instructions(self) -> str:
        return (f"Open {self.verification_uri} in a browser (on any device) and enter the code {self.user_code}. "
                f"The code is valid for {max(1, self.expires_in // 60)} minutes.")


_DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def device_sign_in(client: Client, show: Callable[[DeviceCode], object], *, cancel: CancelCheck | None = None,
                   sleep: Callable[[float], None] = time.sleep, http_timeout: float = 30.0) -> TokenGrant:
    """Sign in with a device code: ask for a code, ``show`` it, and poll the token endpoint every
    ``interval`` seconds (slower when told ``slow_down``) until the user has signed in."""
    reason = provider(client.provider).no_device_code
    if reason:
        raise ValidationError(f"{reason}.")
    data = _post(client.endpoints.device, client.with_secret({"scope": client.endpoints.scope}),
                 timeout=http_timeout)
    uri = data.get("verification_uri") or data.get("verification_url")
    if not data.get("device_code") or not data.get("user_code") or not uri:
        raise ExternalServiceError(f"The identity provider at {client.endpoints.device} gave no device code.")
    code = DeviceCode(str(uri), str(data["user_code"]), int(str(data.get("expires_in", 900))),
                      max(1, int(str(data.get("interval", 5)))), str(data.get("message") or ""),
                      str(data["device_code"]))
    show(code)
    interval = float(code.interval)
    waited = 0.0
    while True:
        if cancel and cancel():
            raise Cancelled("Sign-in cancelled; nothing was stored.")
        sleep(interval)
        waited += interval
        if cancel and cancel():
            raise Cancelled("Sign-in cancelled; nothing was stored.")
        try:
            return _grant(_post(client.endpoints.token, client.with_secret(
                {"grant_type": _DEVICE_GRANT, "device_code": code.device_code}), timeout=http_timeout),
                client.endpoints.token)
        except OAuthRefused as exc:
            if exc.code == "authorization_pending":
                pass
            elif exc.code == "slow_down":
                interval += 5
            elif exc.code == "expired_token":
                raise OAuthRefused(f"The code {code.user_code} expired before the sign-in was finished; nothing "
                                   "was stored. Start the sign-in again.", exc.code) from exc
            elif exc.code in ("access_denied", "authorization_declined"):
                raise OAuthRefused(f"The sign-in with the code {code.user_code} was declined at "
                                   f"{code.verification_uri}; nothing was stored.", exc.code) from exc
            else:
                raise OAuthRefused(f"The sign-in failed: {exc}. Nothing was stored.", exc.code) from exc
        if waited > code.expires_in + interval:
            raise ExternalServiceError(f"The code {code.user_code} expired before the sign-in was finished; "
                                       "nothing was stored. Start the sign-in again.")
