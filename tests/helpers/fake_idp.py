"""A real OAuth 2.0 identity provider on 127.0.0.1 (http.server in a thread) standing in for Microsoft's
and Google's, for the mail sign-in tests. It serves the paths of both (anything ending in ``/authorize``
or ``/auth``, ``/token``, ``/devicecode`` or ``/device/code``):

- ``GET .../authorize`` checks the client id, ``response_type=code``, an S256 ``code_challenge`` and a
  loopback ``redirect_uri``, then redirects there with a code and the ``state`` (as the browser would
  after the user signed in as :attr:`FakeIdentityProvider.user`); ``deny_next`` answers access_denied;
- ``POST .../token``: ``authorization_code`` (the PKCE verifier must match the challenge),
  ``refresh_token`` (a new access token; the refresh token rotated when ``rotate_refresh``;
  ``invalid_grant`` once revoked) and the device-code grant (``authorization_pending`` for
  ``pending_polls`` polls, optionally ``slow_down`` first, then tokens, or the outcome set in
  ``device_outcome``);
- ``POST .../devicecode``: a device code and a user code.

Access tokens expire ``access_lifetime`` seconds after issue by the injected clock; the SMTP server of
tests/helpers/smtp_server.py asks :meth:`FakeIdentityProvider.accepts` whether a token is good.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import http.server
import json
import secrets
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field


class Clock:
    """A clock the test moves by hand; shared by the provider and the program under test."""

    def __init__(self, at: dt.datetime | None = None) -> None:
        self.at = at or dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    user: str


@dataclass
class _Device:
    user_code: str
    scope: str
    pending: int
    slow_down: bool
    outcome: str = "approve"


@dataclass
class Issued:
    """What the provider handed out, for the test to look at."""

    access: dict[str, tuple[str, dt.datetime]] = field(default_factory=dict)
    refresh: dict[str, str] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)


class FakeIdentityProvider:
    """The provider; use as a context manager; :attr:`url` is its base address."""

    def __init__(self, *, client_id: str = "ecms-test-app", client_secret: str = "", user: str = "tax@acme.example",
                 clock: Callable[[], dt.datetime] | None = None, access_lifetime: int = 3600,
                 rotate_refresh: bool = False) -> None:
        self.client_id, self.client_secret, self.user = client_id, client_secret, user
        self.clock = clock or Clock()
        self.access_lifetime, self.rotate_refresh = access_lifetime, rotate_refresh
        self.issued = Issued()
        self.codes: dict[str, _Code] = {}
        self.devices: dict[str, _Device] = {}
        self.pending_polls = 2
        self.slow_down_first = False
        self.device_outcome = "approve"  # or access_denied, expired_token
        self.deny_next = False
        #: Seconds between polls the device-code answer asks for.
        self.interval = 5
        self.give_refresh_token = True
        #: (path, grant type or "") of every request, in order.
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"idp": self})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="fake-idp")

    def __enter__(self) -> FakeIdentityProvider:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    # -- what the test does

    def revoke_all(self) -> None:
        """The user (or an admin) revoked the app's access: every refresh token is refused."""
        with self.lock:
            self.issued.revoked.update(self.issued.refresh)

    def accepts(self, token: str, user: str) -> bool:
        """The access token was issued by this provider, for this user, and has not expired."""
        with self.lock:
            found = self.issued.access.get(token)
        return found is not None and found[0] == user and found[1] > self.clock()

    # -- the protocol

    def _tokens(self, user: str, scope: str) -> dict[str, object]:
        access = "at-" + secrets.token_urlsafe(24)
        answer: dict[str, object] = {"token_type": "Bearer", "access_token": access,
                                     "expires_in": self.access_lifetime, "scope": scope}
        with self.lock:
            self.issued.access[access] = (user, self.clock() + dt.timedelta(seconds=self.access_lifetime))
            if self.give_refresh_token:
                refresh = "rt-" + secrets.token_urlsafe(24)
                self.issued.refresh[refresh] = user
                answer["refresh_token"] = refresh
        return answer

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], dict[str, object]]:
        """(status, headers, JSON error) of a sign-in page request."""
        redirect = query.get("redirect_uri", "")
        target = urllib.parse.urlsplit(redirect)
        if query.get("client_id") != self.client_id:
            return 400, {}, {"error": "unauthorized_client", "error_description": "unknown client id"}
        if target.scheme != "http" or target.hostname != "127.0.0.1":
            return 400, {}, {"error": "invalid_request", "error_description": "redirect_uri must be loopback"}
        if (query.get("response_type") != "code" or query.get("code_challenge_method") != "S256"
                or len(query.get("code_challenge", "")) != 43):
            return 400, {}, {"error": "invalid_request", "error_description": "PKCE S256 is required"}
        if self.deny_next:
            self.deny_next = False
            params = {"error": "access_denied", "error_description": "The user declined.",
                      "state": query.get("state", "")}
        else:
            code = "code-" + secrets.token_urlsafe(16)
            with self.lock:
                self.codes[code] = _Code(self.client_id, redirect, query["code_challenge"], query.get("scope", ""),
                                         self.user)
            params = {"code": code, "state": query.get("state", "")}
        return 302, {"Location": redirect + "?" + urllib.parse.urlencode(params)}, {}

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        if form.get("client_id") != self.client_id:
            return 400, {"error": "invalid_client", "error_description": "unknown client id"}
        if self.client_secret and form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client", "error_description": "client secret missing or wrong"}
        grant = form.get("grant_type", "")
        if grant == "authorization_code":
            with self.lock:
                code = self.codes.pop(form.get("code", ""), None)
            if code is None or code.redirect_uri != form.get("redirect_uri"):
                return 400, {"error": "invalid_grant", "error_description": "unknown code or redirect_uri"}
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != code.challenge:
                return 400, {"error": "invalid_grant", "error_description": "code_verifier does not match"}
            return 200, self._tokens(code.user, code.scope)
        if grant == "refresh_token":
            old = form.get("refresh_token", "")
            with self.lock:
                user = self.issued.refresh.get(old)
                revoked = old in self.issued.revoked
            if user is None or revoked:
                return 400, {"error": "invalid_grant",
                             "error_description": "AADSTS70000: The refresh token was revoked or has expired.\r\n"
                                                  "Trace ID: 0000"}
            answer = self._tokens(user, form.get("scope", ""))
            if self.rotate_refresh:
                with self.lock:
                    self.issued.revoked.add(old)
            else:
                with self.lock:
                    self.issued.refresh.pop(str(answer.pop("refresh_token", "")), None)
            return 200, answer
        if grant == "urn:ietf:params:oauth:grant-type:device_code":
            with self.lock:
                device = self.devices.get(form.get("device_code", ""))
            if device is None:
                return 400, {"error": "invalid_grant", "error_description": "unknown device code"}
            if device.slow_down:
                device.slow_down = False
                return 400, {"error": "slow_down"}
            if device.pending > 0:
                device.pending -= 1
                return 400, {"error": "authorization_pending"}
            if device.outcome != "approve":
                return 400, {"error": device.outcome}
            return 200, self._tokens(self.user, device.scope)
        return 400, {"error": "unsupported_grant_type"}

    def device_code(self, form: dict[str, str]) -> tuple[int, dict[str, object]]:
        if form.get("client_id") != self.client_id:
            return 400, {"error": "unauthorized_client", "error_description": "unknown client id"}
        device, user_code = "dc-" + secrets.token_urlsafe(16), secrets.token_hex(4).upper()
        with self.lock:
            self.devices[device] = _Device(user_code, form.get("scope", ""), self.pending_polls,
                                           self.slow_down_first, self.device_outcome)
        return 200, {"device_code": device, "user_code": user_code, "verification_uri": f"{self.url}/device",
                     "expires_in": 900, "interval": self.interval, "message": f"Enter {user_code} at {self.url}/device"}


class _Handler(http.server.BaseHTTPRequestHandler):
    idp: FakeIdentityProvider

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        self.idp.requests.append((parts.path, ""))
        if not parts.path.endswith(("/authorize", "/auth")):
            self._json(404, {"error": "not_found"})
            return
        status, headers, body = self.idp.authorize(dict(urllib.parse.parse_qsl(parts.query)))
        if status != 302:
            self._json(status, body)
            return
        self.send_response(302)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        path = urllib.parse.urlsplit(self.path).path
        self.idp.requests.append((path, form.get("grant_type", "")))
        if path.endswith("/token"):
            self._json(*self.idp.token(form))
        elif path.endswith(("/devicecode", "/device/code")):
            self._json(*self.idp.device_code(form))
        else:
            self._json(404, {"error": "not_found"})

    def _json(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        return
