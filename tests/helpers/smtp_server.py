"""A real SMTP server on 127.0.0.1 (aiosmtpd) for tests and benchmarks, with controllable failures.

    with SmtpTestServer() as server:
        server.fail_next(451, times=2)          # transient refusals at end of DATA, then accept
        server.refuse_recipient("bad@x.example", 550)   # permanent refusal at RCPT
        ... send to server.port ...
        server.messages  # list of ReceivedMessage (envelope and parsed message)

``SmtpTestServer(oauth=idp)`` demands ``AUTH XOAUTH2`` before MAIL and accepts only access tokens the
fake identity provider (tests/helpers/fake_idp.py) issued to that user and that have not expired; a
refused token gets the 334 error challenge (base64 JSON) and, after the client's empty line, 535 -
as Gmail and Microsoft 365 answer.

``hold_after(n)`` makes the n-th accepted message block before the server answers, so a test can
kill the sending process while that message is in flight (``held`` is set when it is reached;
``release()`` lets it finish).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import email
import email.policy
import json
import socket
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, Envelope, Session

if TYPE_CHECKING:
    from tests.helpers.fake_idp import FakeIdentityProvider


@dataclass
class ReceivedMessage:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)  # type: ignore[return-value]

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


class _Handler:
    def __init__(self, server: SmtpTestServer) -> None:
        self.server = server

    async def handle_RCPT(self, smtp: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        code = self.server.refused.get(address.lower())
        if code is not None:
            return f"{code} {'5.1.1 No such user' if code >= 500 else '4.2.0 Try later'}: {address}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        with self.server.lock:
            if self.server.failures:
                code = self.server.failures.pop(0)
                self.server.refusals += 1
                return f"{code} {'4.3.0 Temporary failure, try again' if code < 500 else '5.7.1 Rejected'}"
            data = bytes(envelope.content) if self.server.keep_data else b""
            received = ReceivedMessage(str(envelope.mail_from), list(envelope.rcpt_tos), data)
            self.server.messages.append(received)
            count = len(self.server.messages)
        if self.server.hold_at is not None and count == self.server.hold_at:
            self.server.held.set()
            while not self.server.released.is_set():
                await asyncio.sleep(0.01)
        return "250 Message accepted"


class _OAuthHandler(_Handler):
    """Also ``AUTH XOAUTH2`` (aiosmtpd calls a handler's ``auth_<MECHANISM>`` methods)."""

    async def handle_MAIL(self, smtp: SMTP, session: Session, envelope: Envelope, address: str,
                          mail_options: list[str]) -> str:
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def auth_XOAUTH2(self, smtp: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 2:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                await smtp.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            answer = await smtp.challenge_auth("", encode_to_b64=False)
            if answer is MISSING:
                return AuthResult(success=False, handled=True)
            blob = bytes(answer)  # type: ignore[arg-type]
        fields = dict(part.split("=", 1) for part in blob.decode("utf-8", "replace").split("\x01") if "=" in part)
        user, auth = fields.get("user", ""), fields.get("auth", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        assert self.server.oauth is not None
        if token and self.server.oauth.accepts(token, user):
            with self.server.lock:
                self.server.oauth_logins.append(user)
            return AuthResult(success=True, auth_data=user)
        with self.server.lock:
            self.server.oauth_refusals += 1
        await smtp.challenge_auth(json.dumps({"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}))
        return AuthResult(success=False, handled=False, message="535 5.7.8 Username and Password not accepted")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpTestServer:
    """aiosmtpd on a free loopback port, run in a thread."""

    def __init__(self, *, data_size_limit: int = 64 * 1024 * 1024, keep_data: bool = True,
                 oauth: FakeIdentityProvider | None = None) -> None:
        #: With ``keep_data=False`` (benchmarks) only the envelope is kept, not the message bytes.
        self.keep_data = keep_data
        self.messages: list[ReceivedMessage] = []
        self.failures: list[int] = []
        self.refused: dict[str, int] = {}
        self.refusals = 0
        self.lock = threading.Lock()
        self.hold_at: int | None = None
        self.held = threading.Event()
        self.released = threading.Event()
        self.oauth = oauth
        self.oauth_logins: list[str] = []
        self.oauth_refusals = 0
        self.port = _free_port()
        if oauth is None:
            self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                         data_size_limit=data_size_limit, ready_timeout=10)
        else:  # plain on loopback; only the XOAUTH2 login is offered, and MAIL needs it
            self.controller = Controller(_OAuthHandler(self), hostname="127.0.0.1", port=self.port,
                                         data_size_limit=data_size_limit, ready_timeout=10, auth_require_tls=False,
                                         auth_exclude_mechanism=["LOGIN", "PLAIN"])

    def start(self) -> SmtpTestServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.released.set()
        self.controller.stop()

    def __enter__(self) -> SmtpTestServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, code: int, times: int = 1) -> None:
        """Answer the next ``times`` messages with ``code`` at the end of DATA."""
        with self.lock:
            self.failures.extend([code] * times)

    def refuse_recipient(self, address: str, code: int = 550) -> None:
        self.refused[address.lower()] = code

    def hold_after(self, n: int) -> None:
        """Block the n-th accepted message (already recorded) until :meth:`release`."""
        self.hold_at = n

    def release(self) -> None:
        self.released.set()


def closed_port() -> int:
    """A loopback port nothing listens on (a mail server that is down)."""
    return _free_port()
