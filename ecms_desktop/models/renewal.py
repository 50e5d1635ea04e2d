"""The renewal loop: renewal requests and their steps, the e-mail outbox, SMTP profiles, e-mail
templates, the company's forms library and the record of returned forms read back.

Ladder settings (window, reminder days, escalation day) are business settings
(:mod:`ecms_desktop.services.companies.service`), changed through the audited settings service.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JsonType, utcnow


class RenewalRequest(Base):
    """A request to a customer for a new certificate for one state: the renewal of a certificate line
    that runs out, or a first request for a state where the customer buys but no certificate covers it
    (no ``certificate_id`` then).

    It opens with the first e-mail, counts the reminders sent, may be escalated to the internal
    owner, and closes when the customer's returned form is read back (``answered``) or when the
    accountant cancels it. Its ``token`` travels in the e-mail subject and the request packet so a
    returned form finds its way back.
    """

    __tablename__ = "renewal_request"
    __table_args__ = (Index("ix_renewal_request_line_status", "coverage_line_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    #: The certificate being renewed; none for a first request (the state was missing).
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificate.id", ondelete="CASCADE"),
                                                       index=True)
    coverage_line_id: Mapped[int | None] = mapped_column(ForeignKey("coverage_line.id", ondelete="SET NULL"))
    state: Mapped[str] = mapped_column(String(2))
    #: Form the customer is asked to fill in (the certificate's own when the state accepts it).
    form_code: Mapped[str] = mapped_column(String(40))
    #: Printed in the subject and embedded in the packet, e.g. ``RQ-7K2M9QXD4T``.
    token: Mapped[str] = mapped_column(String(20), unique=True)
    #: ``open``, ``answered`` (a returned form was read back) or ``cancelled``.
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    #: Expiry of the line when the request was opened.
    line_expiry: Mapped[dt.date | None] = mapped_column(Date)
    #: The (as-of) day the first request was sent: reminder and escalation days count from it.
    requested_on: Mapped[dt.date] = mapped_column(Date)
    #: The person who sent the request (empty for requests from before people were recorded).
    requested_by: Mapped[str] = mapped_column(String(100), default="", server_default="")
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    escalated_on: Mapped[dt.date | None] = mapped_column(Date)
    last_step_on: Mapped[dt.date | None] = mapped_column(Date)
    closed_at: Mapped[dt.datetime | None]
    closed_reason: Mapped[str] = mapped_column(Text, default="")
    #: The pending certificate created from the returned form.
    result_certificate_id: Mapped[int | None] = mapped_column(
        ForeignKey("certificate.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RenewalStep(Base):
    """One step of the renewal ladder taken for a request (request, reminder, escalation) or a
    line's suspension at expiry: the evidence that follow-up was systematic."""

    __tablename__ = "renewal_step"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"), index=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("renewal_request.id", ondelete="CASCADE"),
                                                   index=True)
    #: None for the steps of a first request (no certificate yet).
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificate.id", ondelete="CASCADE"),
                                                       index=True)
    state: Mapped[str] = mapped_column(String(2))
    #: ``request``, ``reminder``, ``escalation`` or ``suspension``.
    kind: Mapped[str] = mapped_column(String(20))
    #: Reminder number (1, 2 ...); 0 for the other kinds.
    number: Mapped[int] = mapped_column(Integer, default=0)
    #: The as-of day the step belongs to.
    step_on: Mapped[dt.date] = mapped_column(Date)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_message.id", ondelete="SET NULL"))
    #: Why no e-mail went out for this step (e.g. the customer has no address), else empty.
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class OutboxMessage(Base):
    """One e-mail to send, written (and committed) before any attempt to send it.

    ``state`` goes pending -> sending -> sent, or failed (permanent refusal). A row found in
    ``sending`` after a crash was possibly delivered: it is sent again with the same bytes and
    Message-ID (mail clients show one message) and ``resent_after_interruption`` records it.
    """

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_message_company_state", "company_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"),
                                                    index=True)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("renewal_request.id", ondelete="SET NULL"),
                                                   index=True)
    #: ``request``, ``reminder`` or ``escalation``.
    kind: Mapped[str] = mapped_column(String(20))
    #: The RFC 5322 Message-ID header, angle brackets included.
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    from_address: Mapped[str] = mapped_column(String(320))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    #: ``pending``, ``sending``, ``sent`` or ``failed``.
    state: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: The last SMTP reply code (e.g. 451, 550) and text when an attempt failed.
    last_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text, default="")
    #: Set when a message left in ``sending`` by an interrupted run was sent again.
    resent_after_interruption: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[int] = mapped_column(Integer, default=0)
    #: The complete message as sent (RFC 5322 bytes), so a resend is byte-identical.
    raw: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sending_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]


class SmtpProfile(Base):
    """How one company sends e-mail. The password is never here: it is in the OS keyring."""

    __tablename__ = "smtp_profile"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    #: ``none``, ``starttls`` or ``ssl``.
    security: Mapped[str] = mapped_column(String(10))
    username: Mapped[str] = mapped_column(String(320), default="")
    from_address: Mapped[str] = mapped_column(String(320))
    #: ``password`` (the user name and a password in the keyring) or ``oauth`` (signed in at the provider).
    auth_method: Mapped[str] = mapped_column(String(10), default="password", server_default="password")
    #: With ``oauth``: ``microsoft`` or ``google``.
    oauth_provider: Mapped[str] = mapped_column(String(20), default="", server_default="")
    #: The customer's own app registration (application / client id) at the provider.
    oauth_client_id: Mapped[str] = mapped_column(String(255), default="", server_default="")
    #: Microsoft: ``organizations`` (any work account) or the tenant id or domain; unused for Google.
    oauth_tenant: Mapped[str] = mapped_column(String(255), default="", server_default="")
    #: Replaces the provider's sign-in host (a sovereign cloud); empty: the provider's own.
    oauth_idp_url: Mapped[str] = mapped_column(String(500), default="", server_default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class EmailTemplate(Base):
    """A company's own wording of one renewal e-mail (Jinja2), replacing the built-in template."""

    __tablename__ = "email_template"
    __table_args__ = (UniqueConstraint("company_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    #: ``request``, ``reminder`` or ``escalation``.
    kind: Mapped[str] = mapped_column(String(20))
    subject: Mapped[str] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(100), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class FormLibraryEntry(Base):
    """An official fill-in PDF the company keeps for a form code; its bytes are stored once by hash
    (:class:`~ecms_desktop.models.document.DocumentFile`)."""

    __tablename__ = "form_library_entry"
    __table_args__ = (UniqueConstraint("company_id", "form_code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    form_code: Mapped[str] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(ForeignKey("document_file.sha256", ondelete="RESTRICT"))
    original_name: Mapped[str] = mapped_column(String(255))
    #: The AcroForm field names found in the file.
    field_names: Mapped[list[str]] = mapped_column(JsonType, default=list)
    added_by: Mapped[str] = mapped_column(String(100), default="")
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class IntakeRecord(Base):
    """One returned file read back: when it came (the e-mail's Date and the receipt time), its hash,
    which request it answered and how it was matched, the values read, and the certificate made."""

    __tablename__ = "intake_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    source_name: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: The e-mail's Date header, for files that came in an .eml.
    sent_at: Mapped[dt.datetime | None]
    sender: Mapped[str] = mapped_column(String(320), default="")
    #: ``token``, ``sender`` or ``none``.
    matched_by: Mapped[str] = mapped_column(String(20))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("renewal_request.id", ondelete="SET NULL"))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("document.id", ondelete="SET NULL"))
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificate.id", ondelete="SET NULL"))
    #: Certificate field -> value read from the form.
    values: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    #: ``answered`` (request closed), ``attached`` (to the certificate made from another attachment of
    #: the same e-mail), ``inbox`` (stored, no request found: it waits in the intake inbox; ``unmatched``
    #: before the inbox) or ``refused``.
    outcome: Mapped[str] = mapped_column(String(20))
