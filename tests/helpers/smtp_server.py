"""A real SMTP server on 127.0.0.1 (aiosmtpd) for tests and benchmarks, with controllable failures.

    with SmtpTestServer() as server:
        server.fail_next(451, times=2)          # transient refusals at end of DATA, then accept
        server.refuse_recipient("bad@x.example", 550)   # permanent refusal at RCPT
        ... send to server.port ...
        server.messages  # list of ReceivedMessage (envelope and parsed message)

``hold_after(n)`` makes the n-th accepted message block before the server answers, so a test can
kill the sending process while that message is in flight (``held`` is set when it is reached;
``release()`` lets it finish).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from dataclasses import dataclass
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpTestServer:
    """aiosmtpd on a free loopback port, run in a thread."""

    def __init__(self, *, data_size_limit: int = 64 * 1024 * 1024, keep_data: bool = True) -> None:
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
        self.port = _free_port()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port,
                                     data_size_limit=data_size_limit, ready_timeout=10)

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
