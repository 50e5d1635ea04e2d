"""Sending e-mail through the company's SMTP server, effectively once.

Every message is first written to the outbox (:class:`~ecms_desktop.models.renewal.OutboxMessage`)
and committed, with its Message-ID and its complete bytes, before anything is sent. Delivery then
walks the messages it was given - the ones a send just queued, the queued ones the accountant chose to
send (:meth:`EmailService.send_queued`) or one refused message retried (:meth:`EmailService.retry`);
never, silently, every message left in the outbox - over one SMTP connection:

- each message is marked ``sending`` (committed) just before it is handed to the server and
  ``sent`` (committed) as soon as the server accepts it, so after a crash, kill or network failure a
  re-run sends every message still ``pending`` and none already ``sent``;
- a message found in ``sending`` was in flight when the previous run died: the server may or may
  not have it. It is sent again with the same bytes and Message-ID (mail clients show one message)
  and the case is recorded (``resent_after_interruption`` and an audit event);
- transient refusals (4xx, a dropped connection) are retried with exponential back-off; a message
  still refused after the last attempt stays ``pending`` (queued) until the accountant sends the
  queued messages;
- permanent refusals (5xx, e.g. an unknown mailbox) mark the message ``failed`` and are recorded
  against the customer (audit event ``email.failed`` on the customer) and listed by
  :meth:`EmailService.failed_messages`;
- a rate limit (messages per minute, business setting ``smtp_rate_per_minute``; 0 = none) spaces
  the messages.

The server is logged in to with the user name and the password kept in the keyring, or - for
Microsoft 365 and Gmail - with ``AUTH XOAUTH2`` and an access token of the mailbox's OAuth sign-in
(:mod:`.mail_sign_in`), refreshed before it expires and once more when the server refuses it. A sign-in
that is no longer valid stops the run before anything is claimed: every message stays queued.

One sender per company at a time is assumed (the GUI and a scheduled ``ecms renewals send`` should
not run together on the same company).
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecms_desktop.models import Company, Customer, utcnow
from ecms_desktop.models.renewal import OutboxMessage, SmtpProfile
from ecms_desktop.services.core import audit, people
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import (
    Cancelled,
    ConflictError,
    ExternalServiceError,
    NotFoundError,
    NotSetUpError,
    ValidationError,
)
from ecms_desktop.services.core.people import Permission
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.core.settings import business_settings
from ecms_desktop.services.renewals import mail_oauth, mail_tokens
from ecms_desktop.services.renewals import smtp_passwords as password_keyring
from ecms_desktop.services.renewals.mail_oauth import SignInNeeded
from ecms_desktop.vocabulary import AUTH_METHODS, OUTBOX_STATUSES, SECURITY_MODES


@dataclass(frozen=True)
class SmtpSettings:
    """A company's SMTP server settings (the password and the tokens are never part of them)."""

    company_id: int
    host: str
    port: int
    security: str
    username: str
    from_address: str
    #: ``password`` or ``oauth`` (``AUTH XOAUTH2`` with a token from ``oauth_provider``).
    auth_method: str = "password"
    oauth_provider: str = ""
    oauth_client_id: str = ""
    oauth_tenant: str = ""
    oauth_idp_url: str = ""

    @property
    def keyring_account(self) -> str:
        return password_keyring.smtp_account(self.company_id, self.host, self.username)

    def describe(self) -> str:
        who = f" as {self.username}" if self.username else ""
        if self.auth_method == "oauth":
            who += f" (signed in at {mail_oauth.provider(self.oauth_provider).name})"
        return f"{self.host}:{self.port} ({self.security}){who}, from {self.from_address}"


@dataclass(frozen=True)
class ProfileSaved:
    """What ``set_profile`` did with the password."""

    settings: SmtpSettings
    password_stored: bool
    keyring: password_keyring.KeyringStatus


@dataclass(frozen=True)
class FailedDelivery:
    """A message the server refused for good, shown to the accountant against the customer."""

    outbox_id: int
    customer_id: int | None
    customer_name: str
    to_address: str
    subject: str
    code: int | None
    error: str
    at: dt.datetime | None


@dataclass(frozen=True)
class OutboxEntry:
    """One message of the outbox as the accountant sees it: queued (not sent yet), sent, or failed
    (refused by the server for good), with the reason it failed or was held back."""

    outbox_id: int
    #: ``queued``, ``sent`` or ``failed``.
    status: str
    #: The stored state (``pending``, ``sending``, ``sent``, ``failed``).
    state: str
    kind: str
    customer_id: int | None
    customer_name: str
    to_address: str
    subject: str
    attempts: int
    code: int | None
    #: Why it failed (or, for a queued message, why the last attempt did not go through); else empty.
    reason: str
    created_at: dt.datetime
    sent_at: dt.datetime | None


@dataclass
class DeliveryReport:
    """What a delivery run did."""

    sent: int = 0
    failed: list[FailedDelivery] = field(default_factory=list)
    #: Message-IDs resent because a previous run died while sending them.
    resent_after_interruption: list[str] = field(default_factory=list)
    #: Outbox ids still pending after the last retry of a transient refusal.
    deferred: list[int] = field(default_factory=list)
    retries: int = 0

    def summary(self) -> str:
        parts = [f"{self.sent} sent"]
        if self.failed:
            parts.append(f"{len(self.failed)} refused permanently")
        if self.deferred:
            parts.append(f"{len(self.deferred)} deferred (server busy; they stay queued in the outbox)")
        if self.resent_after_interruption:
            parts.append(f"{len(self.resent_after_interruption)} resent after an interrupted run")
        return ", ".join(parts)


# -- building messages --------------------------------------------------------------------------------


def new_message_id(from_address: str) -> str:
    """A fresh, globally unique Message-ID in the sender's domain."""
    domain = from_address.rsplit("@", 1)[-1].strip(" >") or "ecms.invalid"
    return email.utils.make_msgid(idstring="ecms", domain=domain)


def build_message(*, from_address: str, to_address: str, subject: str, text: str, html: str | None,
                  message_id: str, reply_to: str = "", attachments: Sequence[tuple[str, bytes, str]] = (),
                  headers: dict[str, str] | None = None, date: dt.datetime | None = None) -> EmailMessage:
    """A MIME message: plain text with an HTML alternative, and attachments (name, bytes, type)."""
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = from_address
    msg["To"] = to_address
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(date or utcnow())
    msg["Message-ID"] = message_id
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(text)
    if html:
        msg.add_alternative(html, subtype="html")
    for name, data, media_type in attachments:
        maintype, _, subtype = media_type.partition("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream", filename=name)
    return msg


def enqueue(session: Session, *, company_id: int, customer_id: int | None, request_id: int | None, kind: str,
            message: EmailMessage) -> OutboxMessage:
    """Put a message in the outbox in the caller's transaction (it is sent after the commit)."""
    raw = message.as_bytes(policy=email.policy.SMTP)
    row = OutboxMessage(company_id=company_id, customer_id=customer_id, request_id=request_id, kind=kind,
                        message_id=str(message["Message-ID"]), from_address=str(message["From"]),
                        to_address=str(message["To"]), subject=str(message["Subject"]), state="pending",
                        attempts=0, last_error="", resent_after_interruption=False, size=len(raw), raw=raw)
    session.add(row)
    session.flush()
    return row


# -- the service ----------------------------------------------------------------------------------------


class _Transient(Exception):
    def __init__(self, code: int | None, text: str) -> None:
        super().__init__(text)
        self.code, self.text = code, text


class _Permanent(Exception):
    def __init__(self, code: int | None, text: str) -> None:
        super().__init__(text)
        self.code, self.text = code, text


def _reply_text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class EmailService:
    """SMTP settings per company, connection test, and outbox delivery.

    ``sleep`` and ``clock`` are injectable so tests run the back-off and the rate limit without
    waiting; ``backoff`` is the first retry delay in seconds (doubled at each further attempt).
    """

    def __init__(self, db: Database, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic, max_attempts: int = 4, backoff: float = 2.0,
                 timeout: float = 30.0, now: Callable[[], dt.datetime] = utcnow) -> None:
        self.db = db
        self.sleep, self.clock = sleep, clock
        self.max_attempts, self.backoff, self.timeout = max_attempts, backoff, timeout
        #: OAuth tokens; ``now`` is the clock their expiry is compared with.
        self.tokens = mail_tokens.TokenKeeper(now=now, http_timeout=timeout)

    # -- settings

    def get_profile(self, company_id: int) -> SmtpSettings | None:
        with self.db.reader() as s:
            row = s.execute(select(SmtpProfile).where(SmtpProfile.company_id == company_id)).scalar_one_or_none()
            return None if row is None else _settings(row)

    def require_profile(self, company_id: int) -> SmtpSettings:
        settings = self.get_profile(company_id)
        if settings is None:
            raise NotSetUpError("No SMTP server is set for this company: run `ecms smtp set --host ... --port ... "
                                "--security ... --from ...` or use Settings > E-mail.")
        return settings

    def set_profile(self, company_id: int, *, host: str, port: int, security: str, from_address: str,
                    username: str = "", password: str | None = None, auth_method: str = "password",
                    oauth_provider: str = "", oauth_client_id: str = "", oauth_tenant: str = "",
                    oauth_idp_url: str = "", client_secret: str | None = None) -> ProfileSaved:
        """Save the company's SMTP settings (audited). A password given goes to the OS keyring only;
        ``password_stored`` is False when there is no keyring (it must then be given each time).
        With ``auth_method="oauth"`` the mailbox is signed in separately (:mod:`.mail_sign_in`); a
        client secret given (Google desktop clients) goes to the keyring; a changed sign-in (provider,
        app, tenant, mailbox) forgets the tokens of the old one."""
        host, from_address, username = host.strip(), from_address.strip(), username.strip()
        wanted = checked_settings(company_id, host=host, port=port, security=security, from_address=from_address,
                                  username=username, doing="saved", auth_method=auth_method,
                                  oauth_provider=oauth_provider, oauth_client_id=oauth_client_id,
                                  oauth_tenant=oauth_tenant, oauth_idp_url=oauth_idp_url)
        if password and not username:
            raise ValidationError("The SMTP settings cannot be saved: a password was given without a user name.")
        if password and auth_method == "oauth":
            raise ValidationError("The SMTP settings cannot be saved: a password was given for a sign-in with "
                                  f"{mail_oauth.provider(oauth_provider).name}, which uses no password.")
        with self.db.transaction() as s:
            people.require(s, Permission.ADMINISTER, "change the mail server settings")
            if s.get(Company, company_id) is None:
                raise NotFoundError(f"There is no company {company_id}.")
            row = s.execute(select(SmtpProfile).where(SmtpProfile.company_id == company_id)).scalar_one_or_none()
            old = None if row is None else _settings(row)
            if row is None:
                row = SmtpProfile(company_id=company_id)
                s.add(row)
            row.host, row.port, row.security = host, port, security
            row.username, row.from_address = username, from_address
            row.auth_method, row.oauth_provider, row.oauth_client_id = (
                wanted.auth_method, wanted.oauth_provider, wanted.oauth_client_id)
            row.oauth_tenant, row.oauth_idp_url = wanted.oauth_tenant, wanted.oauth_idp_url
            s.flush()
            settings = _settings(row)
            status = password_keyring.keyring_status()
            stored = bool(password) and username != "" and password_keyring.store_password(settings.keyring_account,
                                                                                  password or "")
            details: dict[str, object] = {"password_in_keyring": stored, "keyring": status.description}
            if settings.auth_method == "oauth" and client_secret is not None:
                details["client_secret_in_keyring"] = mail_tokens.store_client_secret(
                    company_id, settings.oauth_provider, settings.oauth_client_id, client_secret.strip())
            if old is not None and old.auth_method == "oauth" and _sign_in_of(old) != _sign_in_of(settings):
                self.tokens.forget(old)
                details["signed_out"] = old.username
            audit.record(s, "smtp.settings_changed", "smtp_profile", company_id, company_id=company_id,
                         before=None if old is None else _public(old), after=_public(settings), details=details)
        return ProfileSaved(settings, stored, status)

    def stored_password(self, settings: SmtpSettings) -> str | None:
        """The password kept in the keyring for these settings, if any."""
        return password_keyring.get_password(settings.keyring_account) if settings.username else None

    def test_connection(self, company_id: int, password: str | None = None) -> str:
        """Connect, say hello, log in and quit; a message saying what worked, or ExternalServiceError."""
        settings = self.require_profile(company_id)
        conn = self._connect(settings, self._password(settings, password))
        try:
            code, _ = conn.noop()
        finally:
            _quit(conn)
        return f"Connected to {settings.describe()}: the server answered {code}."

    def check_server(self, company_id: int, password: str | None = None) -> str | None:
        """Before a send creates anything: the company has a mail server, its password is at hand, and
        the server can be reached and logged in to. Returns the password to send with; raises
        NotFoundError, ValidationError or ExternalServiceError (nothing is changed)."""
        settings = self.require_profile(company_id)
        pwd = self._password(settings, password)
        _quit(self._connect(settings, pwd))
        return pwd

    def send_test_message(self, settings: SmtpSettings, to_address: str, password: str | None = None) -> str:
        """Send a short test message to ``to_address`` with these settings (saved or not yet), so the
        accountant sees that mail really goes out. Nothing is stored; the test is audited."""
        checked_settings(settings.company_id, host=settings.host, port=settings.port, security=settings.security,
                         from_address=settings.from_address, username=settings.username, doing="tested")
        rcpt = email.utils.parseaddr(to_address.strip())[1]
        if "@" not in rcpt:
            raise ValidationError(f"Send the test message to an e-mail address: {to_address.strip()!r} is not one.")
        msg = build_message(
            from_address=settings.from_address, to_address=rcpt, subject="ECMS test message",
            text=(f"This test message was sent by ECMS Desktop through {settings.describe()}.\n"
                  "Renewal requests will be sent the same way."),
            html=None, message_id=new_message_id(settings.from_address))
        conn = self._connect(settings, self._password(settings, password))
        try:
            self._send_one(conn, settings.from_address, rcpt, msg.as_bytes(policy=email.policy.SMTP))
        except (_Transient, _Permanent) as exc:
            raise ExternalServiceError(f"The SMTP server {settings.host}:{settings.port} refused the test "
                                       f"message to {rcpt}: {exc}") from exc
        finally:
            _quit(conn)
        with self.db.transaction() as s:
            audit.record(s, "smtp.test_sent", "smtp_profile", settings.company_id, company_id=settings.company_id,
                         details={"to": rcpt, "server": _public(settings)})
        return f"A test message was sent to {rcpt} through {settings.describe()}."

    # -- outbox

    def failed_messages(self, company_id: int) -> list[FailedDelivery]:
        """Messages refused for good (most recent first), for the accountant to fix the addresses."""
        with self.db.reader() as s:
            rows = s.execute(select(OutboxMessage, Customer.legal_name).outerjoin(
                Customer, Customer.id == OutboxMessage.customer_id).where(
                OutboxMessage.company_id == company_id, OutboxMessage.state == "failed").order_by(
                OutboxMessage.id.desc())).all()
            return [_failed(row, name or "") for row, name in rows]

    def queued_count(self, company_id: int) -> int:
        """How many messages wait in the outbox, queued and not sent."""
        with self.db.reader() as s:
            return int(s.execute(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.company_id == company_id,
                OutboxMessage.state.in_(OUTBOX_STATUSES["queued"]))).scalar_one())

    def outbox(self, company_id: int, *, status: str | None = None, limit: int = 2000) -> list[OutboxEntry]:
        """The company's outbox, newest first: every message, or only the ``queued``, ``sent`` or
        ``failed`` ones, with recipient, subject, when, and the reason of a failure."""
        if status is not None and status not in OUTBOX_STATUSES:
            raise ValidationError(f"Unknown outbox status {status!r}: one of {', '.join(OUTBOX_STATUSES)}.")
        query = select(OutboxMessage, Customer.legal_name).outerjoin(
            Customer, Customer.id == OutboxMessage.customer_id).where(OutboxMessage.company_id == company_id)
        if status is not None:
            query = query.where(OutboxMessage.state.in_(OUTBOX_STATUSES[status]))
        with self.db.reader() as s:
            rows = s.execute(query.order_by(OutboxMessage.id.desc()).limit(limit)).all()
            return [_entry(row, name or "") for row, name in rows]

    def send_queued(self, company_id: int, ids: Sequence[int] | None = None, *, password: str | None = None,
                    progress: Progress | None = None, cancel: CancelCheck | None = None) -> DeliveryReport:
        """Send the messages waiting in the outbox - the ones named by ``ids``, else all queued ones -
        when the accountant asks for it (a send of renewal steps never sends them on its own)."""
        with self.db.reader() as s:
            query = select(OutboxMessage.id).where(OutboxMessage.company_id == company_id,
                                                   OutboxMessage.state.in_(OUTBOX_STATUSES["queued"]))
            if ids is not None:
                query = query.where(OutboxMessage.id.in_(list(ids)))
            found = list(s.execute(query.order_by(OutboxMessage.id)).scalars())
        if ids is not None and set(ids) - set(found):
            missing = ", ".join(str(i) for i in sorted(set(ids) - set(found)))
            raise ValidationError(f"Outbox message {missing} is not queued (sent, failed or not of this "
                                  "company); nothing was sent.")
        return self.deliver(company_id, found, password=password, progress=progress, cancel=cancel)

    def retry(self, company_id: int, outbox_id: int, *, password: str | None = None,
              progress: Progress | None = None, cancel: CancelCheck | None = None) -> DeliveryReport:
        """Send a message the server refused again (after the customer's address was fixed, or when the
        refusal was the server's mistake). The server is checked first: when it cannot be reached the
        message stays failed. The retry is audited."""
        with self.db.reader() as s:
            row = s.get(OutboxMessage, outbox_id)
            if row is None or row.company_id != company_id:
                raise NotFoundError(f"There is no outbox message {outbox_id} for this company.")
            if row.state != "failed":
                shown = next(k for k, v in OUTBOX_STATUSES.items() if row.state in v)
                raise ValidationError(f"Outbox message {outbox_id} is {shown}, not failed: only a failed "
                                      "message is retried.")
        pwd = self.check_server(company_id, password)
        with self.db.transaction() as s:
            row = s.get(OutboxMessage, outbox_id)
            if row is None or row.state != "failed":
                raise ConflictError(f"Outbox message {outbox_id} changed meanwhile; look at the outbox again.")
            before = {"state": row.state, "code": row.last_code, "error": row.last_error}
            row.state = "pending"
            audit.record(s, "email.retry_requested", "outbox_message", row.id, company_id=company_id,
                         before=before, after={"state": "pending"},
                         details={"message_id": row.message_id, "to": row.to_address})
        return self.deliver(company_id, [outbox_id], password=pwd, progress=progress, cancel=cancel)

    def deliver(self, company_id: int, ids: Sequence[int], *, password: str | None = None,
                rate_per_minute: int | None = None, progress: Progress | None = None,
                cancel: CancelCheck | None = None) -> DeliveryReport:
        """Send exactly the outbox messages ``ids`` of the company that are not sent yet (see the
        module text). Raises :class:`Cancelled` between messages when asked (what was sent stays sent)
        and :class:`ExternalServiceError` when the server cannot be reached or refuses the login."""
        report = DeliveryReport()
        ids = sorted(set(ids))
        if not ids:
            return report
        settings = self.require_profile(company_id)
        with self.db.reader() as s:
            rate = (rate_per_minute if rate_per_minute is not None
                    else business_settings(s, company_id).smtp_rate_per_minute)
        pwd = self._password(settings, password)
        interval = 60.0 / rate if rate and rate > 0 else 0.0
        conn: smtplib.SMTP | None = self._connect(settings, pwd)  # fails before anything is claimed
        last_sent: float | None = None
        try:
            for n, outbox_id in enumerate(ids):
                if cancel and cancel():
                    raise Cancelled(f"Sending cancelled: {report.summary()}; the other {len(ids) - n} "
                                    "messages stay queued in the outbox (Renewals > Outbox…).")
                if progress:
                    progress(n, len(ids), f"Sending message {n + 1} of {len(ids)}")
                claimed = self._claim(company_id, outbox_id)
                if claimed is None:
                    continue
                to_address, from_address, raw, message_id, was_in_flight = claimed
                if was_in_flight:
                    report.resent_after_interruption.append(message_id)
                if interval and last_sent is not None:
                    wait = last_sent + interval - self.clock()
                    if wait > 0:
                        self.sleep(wait)
                attempt = 0
                while True:
                    attempt += 1
                    try:
                        if conn is None:
                            try:
                                conn = self._connect(settings, pwd)
                            except SignInNeeded as exc:  # no use retrying: back to the queue, and say so
                                self._defer(outbox_id, None, str(exc))
                                raise
                            except ExternalServiceError as exc:
                                raise _Transient(None, str(exc)) from exc
                        self._send_one(conn, from_address, to_address, raw)
                    except _Transient as exc:
                        if exc.code is None:  # connection lost: open a new one on the next attempt
                            _quit(conn)
                            conn = None
                        if attempt >= self.max_attempts:
                            self._defer(outbox_id, exc.code, exc.text)
                            report.deferred.append(outbox_id)
                            break
                        report.retries += 1
                        self.sleep(self.backoff * (2 ** (attempt - 1)))
                        continue
                    except _Permanent as exc:
                        report.failed.append(self._fail(outbox_id, exc.code, exc.text))
                        break
                    self._mark_sent(outbox_id)
                    report.sent += 1
                    break
                last_sent = self.clock()
            if progress:
                progress(len(ids), len(ids), report.summary())
        finally:
            _quit(conn)
        return report

    # -- internals

    def _password(self, settings: SmtpSettings, supplied: str | None) -> str | None:
        if not settings.username or settings.auth_method == "oauth":
            return None
        if supplied:
            return supplied
        stored = self.stored_password(settings)
        if stored:
            return stored
        status = password_keyring.keyring_status()
        reason = ("no password is stored in the keyring" if status.available
                  else f"{status.description}, so the password is not stored")
        raise ValidationError(f"The SMTP server {settings.host} needs the password of {settings.username}: "
                              f"{reason}. Give it when asked (or with --password-stdin).")

    def _connect(self, settings: SmtpSettings, password: str | None) -> smtplib.SMTP:
        where = f"{settings.host}:{settings.port}"
        problem = _plain_oauth_problem(settings)
        if problem:
            raise ValidationError(f"Not connecting to {where}: {problem}.")
        # the sign-in is checked (and the token refreshed) before the server is called
        token = self.tokens.access_token(settings) if settings.auth_method == "oauth" else ""
        try:
            conn: smtplib.SMTP
            if settings.security == "ssl":
                conn = smtplib.SMTP_SSL(settings.host, settings.port, timeout=self.timeout,
                                        context=ssl.create_default_context())
            else:
                conn = smtplib.SMTP(settings.host, settings.port, timeout=self.timeout)
                conn.ehlo()
                if settings.security == "starttls":
                    conn.starttls(context=ssl.create_default_context())
                    conn.ehlo()
            if settings.auth_method == "oauth":
                self._sign_in_xoauth2(conn, settings, token)
            elif settings.username:
                conn.login(settings.username, password or "")
            return conn
        except smtplib.SMTPAuthenticationError as exc:
            raise ExternalServiceError(f"The SMTP server {where} refused the login of {settings.username} "
                                       f"({exc.smtp_code} {_reply_text(exc.smtp_error)}): check the user "
                                       "name and password.") from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise ExternalServiceError(f"The SMTP server {where} does not support {settings.security}: "
                                       f"{exc}. Check the security setting.") from exc
        except ssl.SSLError as exc:
            raise ExternalServiceError(f"Secure connection to {where} failed: {exc}. Check the port and "
                                       "the security setting (ssl is usually port 465, starttls 587).") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise ExternalServiceError(f"Cannot reach the SMTP server {where}: {exc}. Nothing was sent; "
                                       "the messages stay in the outbox.") from exc

    def _sign_in_xoauth2(self, conn: smtplib.SMTP, settings: SmtpSettings, token: str) -> None:
        """``AUTH XOAUTH2`` with a current access token; refused (535) once, the token is refreshed and
        the login tried again."""
        where = f"{settings.host}:{settings.port}"
        offered = conn.esmtp_features.get("auth", "").upper().split()
        if "XOAUTH2" not in offered:
            raise ExternalServiceError(f"The SMTP server {where} does not offer the OAuth login (AUTH XOAUTH2; it "
                                       f"offers {', '.join(offered) or 'no login'}). Check the server, or use "
                                       "the password method.")
        for force_refresh in (False, True):
            if force_refresh:
                token = self.tokens.access_token(settings, force_refresh=True)
            try:
                conn.auth("XOAUTH2", _xoauth2_answer(settings.username, token))
                return
            except smtplib.SMTPAuthenticationError as exc:
                if exc.smtp_code != 535 or force_refresh:
                    fresh = " even with a fresh token" if force_refresh else ""
                    raise ExternalServiceError(
                        f"The SMTP server {where} refused the OAuth login of {settings.username} "
                        f"({exc.smtp_code} {_reply_text(exc.smtp_error)}){fresh}: check that "
                        f"{settings.username} is the account signed in and may send mail by SMTP (Microsoft 365: "
                        "'Authenticated SMTP' turned on for the mailbox).") from exc

    @staticmethod
    def _send_one(conn: smtplib.SMTP, from_address: str, to_address: str, raw: bytes) -> None:
        sender = email.utils.parseaddr(from_address)[1] or from_address
        rcpt = email.utils.parseaddr(to_address)[1] or to_address
        try:
            conn.sendmail(sender, [rcpt], raw)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()), (None, b""))
            _classify(code, _reply_text(text))
        except smtplib.SMTPResponseException as exc:
            _classify(exc.smtp_code, _reply_text(exc.smtp_error))
        except OSError as exc:  # includes SMTPServerDisconnected and timeouts
            raise _Transient(None, f"connection lost: {exc}") from exc

    def _claim(self, company_id: int, outbox_id: int) -> tuple[str, str, bytes, str, bool] | None:
        """Mark the message ``sending`` (committed) and return what to send, or None when another
        run sent it meanwhile."""
        with self.db.transaction() as s:
            row = s.get(OutboxMessage, outbox_id)
            if row is None or row.company_id != company_id or row.state not in ("pending", "sending"):
                return None
            in_flight = row.state == "sending"
            row.state = "sending"
            row.attempts += 1
            row.sending_at = utcnow()
            if in_flight:
                row.resent_after_interruption = True
                audit.record(s, "email.resent_after_interruption", "outbox_message", row.id,
                             company_id=row.company_id,
                             details={"message_id": row.message_id, "to": row.to_address,
                                      "reason": "a previous run stopped while this message was being sent; "
                                                "it is sent again with the same Message-ID"})
            return row.to_address, row.from_address, row.raw, row.message_id, in_flight

    def _mark_sent(self, outbox_id: int) -> None:
        with self.db.transaction() as s:
            row = s.get(OutboxMessage, outbox_id)
            if row is None:
                return
            row.state, row.sent_at, row.last_error = "sent", utcnow(), ""
            audit.record(s, "email.sent", "outbox_message", row.id, company_id=row.company_id,
                         details={"message_id": row.message_id, "to": row.to_address, "kind": row.kind,
                                  "request_id": row.request_id, "attempts": row.attempts})

    def _defer(self, outbox_id: int, code: int | None, text: str) -> None:
        with self.db.transaction() as s:
            row = s.get(OutboxMessage, outbox_id)
            if row is None:
                return
            row.state, row.last_code, row.last_error = "pending", code, text[:2000]

    def _fail(self, outbox_id: int, code: int | None, text: str) -> FailedDelivery:
        with self.db.transaction() as s:
            row = s.get(OutboxMessage, outbox_id)
            assert row is not None
            row.state, row.last_code, row.last_error = "failed", code, text[:2000]
            customer = s.get(Customer, row.customer_id) if row.customer_id else None
            details = {"message_id": row.message_id, "to": row.to_address, "code": code, "error": text[:500],
                       "kind": row.kind, "request_id": row.request_id}
            if customer is not None:
                audit.record(s, "email.failed", "customer", customer.id, company_id=row.company_id,
                             details=details)
            else:
                audit.record(s, "email.failed", "outbox_message", row.id, company_id=row.company_id,
                             details=details)
            return _failed(row, customer.legal_name if customer else "")


def checked_settings(company_id: int, *, host: str, port: int, security: str, from_address: str, username: str,
                     doing: str, auth_method: str = "password", oauth_provider: str = "", oauth_client_id: str = "",
                     oauth_tenant: str = "", oauth_idp_url: str = "") -> SmtpSettings:
    """The settings, or one ValidationError naming every problem (``doing``: "saved", "tested")."""
    problems = []
    oauth = auth_method == "oauth"
    if auth_method not in AUTH_METHODS:
        problems.append(f"the login method {auth_method!r} is not one of {', '.join(AUTH_METHODS)}")
    if oauth and oauth_provider not in mail_oauth.PROVIDERS:
        problems.append(f"the sign-in provider {oauth_provider!r} is not one of {', '.join(mail_oauth.PROVIDERS)}")
    if oauth and not oauth_client_id.strip():
        problems.append("the client id (your app registration at the provider) is empty")
    if oauth and not username.strip():
        problems.append("the user (the mailbox that signs in) is empty")
    if oauth and oauth_idp_url.strip():
        url_problem = mail_oauth.check_idp_url(oauth_idp_url.strip())
        if url_problem:
            problems.append(url_problem)
    if not host.strip():
        problems.append("the server (host) is empty")
    if not 0 < port < 65536:
        problems.append(f"port {port} is not between 1 and 65535")
    if security not in SECURITY_MODES:
        problems.append(f"security {security!r} is not one of {', '.join(SECURITY_MODES)}")
    if "@" not in email.utils.parseaddr(from_address)[1]:
        problems.append(f"the sender address {from_address!r} is not an e-mail address")
    if not oauth:
        oauth_provider = oauth_client_id = oauth_tenant = oauth_idp_url = ""
    settings = SmtpSettings(company_id, host.strip(), port, security, username.strip(), from_address.strip(),
                            auth_method, oauth_provider, oauth_client_id.strip(), oauth_tenant.strip(),
                            oauth_idp_url.strip())
    plain = _plain_oauth_problem(settings)
    if plain:
        problems.append(plain)
    if problems:
        raise ValidationError(f"The SMTP settings cannot be {doing}: " + "; ".join(problems) + ".")
    return settings


def _plain_oauth_problem(settings: SmtpSettings) -> str | None:
    """A token is never sent in clear text, except to this machine."""
    if settings.auth_method == "oauth" and settings.security == "none" and not mail_oauth.is_loopback(settings.host):
        return (f"the OAuth login is sent only over an encrypted connection (starttls or ssl) to {settings.host}; "
                "security 'none' is allowed only to 127.0.0.1")
    return None


def _xoauth2_answer(username: str, token: str) -> Callable[..., str]:
    """smtplib's answer to ``AUTH XOAUTH2``: the bearer token first; to a 334 challenge (the server's
    error details, base64 JSON) an empty line, after which the server says 535."""
    first = f"user={username}\x01auth=Bearer {token}\x01\x01"

    def answer(challenge: bytes | None = None) -> str:
        return first if challenge is None else ""

    return answer


def _sign_in_of(settings: SmtpSettings) -> tuple[str, ...]:
    return (settings.oauth_provider, settings.oauth_client_id, settings.oauth_tenant, settings.oauth_idp_url,
            settings.username, settings.auth_method)


def _classify(code: int | None, text: str) -> None:
    if code is not None and 400 <= code < 500:
        raise _Transient(code, f"{code} {text}")
    raise _Permanent(code, f"{code} {text}")


def _quit(conn: smtplib.SMTP | None) -> None:
    if conn is None:
        return
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


def _settings(row: SmtpProfile) -> SmtpSettings:
    return SmtpSettings(row.company_id, row.host, row.port, row.security, row.username, row.from_address,
                        row.auth_method, row.oauth_provider, row.oauth_client_id, row.oauth_tenant, row.oauth_idp_url)


def _public(settings: SmtpSettings) -> dict[str, object]:
    public: dict[str, object] = {"host": settings.host, "port": settings.port, "security": settings.security,
                                 "username": settings.username, "from": settings.from_address,
                                 "auth": settings.auth_method}
    if settings.auth_method == "oauth":
        public.update(provider=settings.oauth_provider, client_id=settings.oauth_client_id,
                      tenant=settings.oauth_tenant, idp_url=settings.oauth_idp_url)
    return public


def _entry(row: OutboxMessage, customer_name: str) -> OutboxEntry:
    status = next(k for k, v in OUTBOX_STATUSES.items() if row.state in v)
    return OutboxEntry(row.id, status, row.state, row.kind, row.customer_id, customer_name, row.to_address,
                       row.subject, row.attempts, row.last_code, row.last_error, row.created_at, row.sent_at)


def _failed(row: OutboxMessage, customer_name: str) -> FailedDelivery:
    return FailedDelivery(row.id, row.customer_id, customer_name, row.to_address, row.subject, row.last_code,
                          row.last_error, row.sending_at)
