"""Sales lines from the ERP, filing periods, exemption determinations and the exemption-status outbox.

A :class:`TransactionLine` is one invoice line as the ERP sent it. A :class:`Determination` says
whether that sale was exempt, under which certificate, and keeps the evidence (certificate version,
coverage line, status, rules-pack version, explanation) so that a later edit of the certificate never
rewrites why a past sale was exempt. Filed returns are never changed: corrections for sales in a
filed period are :class:`DeterminationAdjustment` entries posted to the current open period.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JsonType, Money, utcnow

_BIGINT = BigInteger().with_variant(Integer(), "sqlite")


class TransactionLine(Base):
    """One invoice line imported from the ERP (unique per company, invoice number and line number:
    importing the same file again does not duplicate it)."""

    __tablename__ = "transaction_line"
    __table_args__ = (
        UniqueConstraint("company_id", "invoice_number", "line"),
        Index("ix_transaction_line_company_date", "company_id", "invoice_date"),
        Index("ix_transaction_line_company_customer", "company_id", "customer_key", "invoice_date"),
    )

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="RESTRICT"))
    invoice_number: Mapped[str] = mapped_column(String(64))
    #: Line number within the invoice.
    line: Mapped[int] = mapped_column(Integer)
    invoice_date: Mapped[dt.date] = mapped_column(Date)
    #: The customer number as the ERP wrote it.
    customer_number: Mapped[str] = mapped_column(String(64))
    #: ``customer_number_key`` of the customer number: what certificates are matched on.
    customer_key: Mapped[str] = mapped_column(String(64))
    ship_to_state: Mapped[str] = mapped_column(String(2))
    ship_to_county: Mapped[str] = mapped_column(String(100), default="")
    ship_to_city: Mapped[str] = mapped_column(String(100), default="")
    ship_to_zip: Mapped[str] = mapped_column(String(20), default="")
    product_code: Mapped[str] = mapped_column(String(64), default="")
    commodity_code: Mapped[str] = mapped_column(String(64), default="")
    #: Sale amount of the line (before tax).
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    #: Sales tax the ERP charged on the line.
    tax_collected: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    #: The amount the ERP charged that tax on, where it sends it (empty: not given); it tells tax on the
    #: exempt portion of a partly exempt sale from tax on its taxable portion.
    taxed_amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True, default=None)
    #: Whether the ERP sold it as exempt.
    exempt_claimed: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Exempt reason the ERP recorded (empty: none given).
    exempt_reason: Mapped[str] = mapped_column(String(20), default="")
    po_number: Mapped[str] = mapped_column(String(64), default="")
    imported_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class FilingPeriodConfig(Base):
    """How often the company files sales-tax returns in a state (monthly, quarterly or annual)."""

    __tablename__ = "filing_period_config"
    __table_args__ = (
        UniqueConstraint("company_id", "state"),
        CheckConstraint("frequency IN ('monthly', 'quarterly', 'annual')", name="frequency"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(2))
    frequency: Mapped[str] = mapped_column(String(10))
    changed_by: Mapped[str] = mapped_column(String(100), default="")
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class FiledPeriod(Base):
    """A return the company has filed for a state and period: its sales are never changed again."""

    __tablename__ = "filed_period"
    __table_args__ = (UniqueConstraint("company_id", "state", "start_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(2))
    #: ``2026-09``, ``2026-Q3`` or ``2026``.
    period: Mapped[str] = mapped_column(String(10))
    start_date: Mapped[dt.date] = mapped_column(Date)
    #: Last day of the period (inclusive).
    end_date: Mapped[dt.date] = mapped_column(Date)
    filed_by: Mapped[str] = mapped_column(String(100), default="")
    filed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Determination(Base):
    """Whether one sale was exempt, under which certificate, and the evidence that justified it.

    The snapshot columns (certificate number and version, coverage line and its expiry, review state,
    rules-pack version, explanation) are written once and only replaced by a reprocessing in an open
    period; an edit of the certificate afterwards does not change them.
    """

    __tablename__ = "determination"
    __table_args__ = (
        Index("ix_determination_certificate", "certificate_id"),
        Index("ix_determination_company_exposure", "company_id", "exposure_kind"),
    )

    #: One current determination per transaction line.
    transaction_line_id: Mapped[int] = mapped_column(
        _BIGINT, ForeignKey("transaction_line.id", ondelete="CASCADE"), primary_key=True, autoincrement=False)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="RESTRICT"))
    exempt: Mapped[bool] = mapped_column(Boolean)
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificate.id", ondelete="RESTRICT"))
    #: Evidence snapshot: the certificate's number and version when it was applied.
    certificate_number: Mapped[str] = mapped_column(String(64), default="")
    certificate_version: Mapped[int | None] = mapped_column(Integer)
    coverage_line_id: Mapped[int | None] = mapped_column(Integer)
    coverage_state: Mapped[str] = mapped_column(String(2), default="")
    #: The coverage line's expiry as it stood (empty: no expiry).
    coverage_expiry: Mapped[dt.date | None] = mapped_column(Date)
    #: The certificate's review state when applied (always ``approved`` for an exempt sale).
    certificate_status: Mapped[str] = mapped_column(String(20), default="")
    rules_pack_version: Mapped[str] = mapped_column(String(40), default="")
    exempt_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    taxable_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    #: Ids of other certificates that could also have applied (a conflict the precedence settled).
    also_eligible: Mapped[list[Any]] = mapped_column(JsonType, default=list)
    conflict: Mapped[bool] = mapped_column(Boolean, default=False)
    #: For each candidate certificate, why it applied or why not.
    explanation: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    #: ``unsupported_claim`` (sold exempt without a covering certificate), ``tax_on_exempt`` (tax
    #: collected on the exempt portion although a valid certificate existed), ``past_policy`` (sold exempt,
    #: covered in law past our renewal policy: not exposure, the report's third measure), or empty.
    exposure_kind: Mapped[str] = mapped_column(String(20), default="")
    #: The amount at stake: the uncovered sale amount, the tax on the exempt portion, or (past policy)
    #: the amount covered only in law.
    exposure_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    #: ``determine`` or ``reprocess``.
    origin: Mapped[str] = mapped_column(String(20), default="determine")
    determined_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DeterminationAdjustment(Base):
    """A correction of a sale in a filed period, posted to the current open period.

    Reprocessing writes two entries: a ``negation`` that reverses what was reported, and a
    ``recreation`` with the new result. The filed determination itself is never touched.
    """

    __tablename__ = "determination_adjustment"
    __table_args__ = (
        CheckConstraint("kind IN ('negation', 'recreation')", name="kind"),
        Index("ix_determination_adjustment_line", "transaction_line_id", "id"),
    )

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="RESTRICT"))
    transaction_line_id: Mapped[int] = mapped_column(_BIGINT, ForeignKey("transaction_line.id",
                                                                         ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(String(12))
    #: The state and open period the entry is reported in.
    state: Mapped[str] = mapped_column(String(2))
    period: Mapped[str] = mapped_column(String(10))
    posted_on: Mapped[dt.date] = mapped_column(Date)
    exempt: Mapped[bool] = mapped_column(Boolean)
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificate.id", ondelete="RESTRICT"))
    certificate_number: Mapped[str] = mapped_column(String(64), default="")
    certificate_version: Mapped[int | None] = mapped_column(Integer)
    coverage_line_id: Mapped[int | None] = mapped_column(Integer)
    coverage_expiry: Mapped[dt.date | None] = mapped_column(Date)
    certificate_status: Mapped[str] = mapped_column(String(20), default="")
    rules_pack_version: Mapped[str] = mapped_column(String(40), default="")
    #: Signed amounts: a negation carries the reported amounts with the opposite sign.
    exempt_amount: Mapped[Decimal] = mapped_column(Money)
    taxable_amount: Mapped[Decimal] = mapped_column(Money)
    explanation: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ExemptionStatusEvent(Base):
    """Outbox: a change of a customer's exempt status in a state, to be delivered to the ERP.

    Written in the same transaction as the change (approval, expiry, suspension, archive,
    revocation); connectors deliver events in ``id`` order at least once, each with its
    ``idempotency_key`` so that the receiver can ignore repeats.
    """

    __tablename__ = "exemption_status_event"
    __table_args__ = (
        Index("ix_exemption_status_event_certificate", "certificate_id", "state", "reason"),
    )

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="RESTRICT"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"))
    customer_number: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(2))
    certificate_id: Mapped[int | None] = mapped_column(ForeignKey("certificate.id", ondelete="RESTRICT"))
    certificate_number: Mapped[str] = mapped_column(String(64), default="")
    #: ``approval``, ``expiry``, ``suspension``, ``archive``, ``revocation``, ``reinstatement``,
    #: ``amendment``, ``lapse`` (SST recurring relationship: no purchase for more than 12 months).
    reason: Mapped[str] = mapped_column(String(20))
    #: The certificate line's status in the state before and after (``exempt`` / ``not_exempt``).
    old_status: Mapped[str] = mapped_column(String(20))
    new_status: Mapped[str] = mapped_column(String(20))
    #: Whether the customer is still exempt in the state through any certificate after the change.
    customer_exempt: Mapped[bool] = mapped_column(Boolean)
    effective_date: Mapped[dt.date] = mapped_column(Date)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WebhookEndpoint(Base):
    """An HTTP endpoint of the ERP that receives exemption-status events as signed JSON.

    The HMAC secret is not stored here but in the OS keyring under ``secret_ref``.
    """

    __tablename__ = "webhook_endpoint"
    __table_args__ = (UniqueConstraint("company_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(String(500))
    #: Keyring user name of the HMAC-SHA256 secret (service ``ecms-desktop``).
    secret_ref: Mapped[str] = mapped_column(String(200), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Every event up to this id has been delivered (events go out in order).
    delivered_through: Mapped[int] = mapped_column(_BIGINT, default=0)
    #: After a failed run, no new attempt before this time (back-off across runs).
    next_attempt_at: Mapped[dt.datetime | None]
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    #: A delivery of this event was refused for good (a redirect, a 4xx other than 408/429): the
    #: endpoint stops there, in event order, until the user retries or skips it (``last_error`` says why).
    held_event_id: Mapped[int | None] = mapped_column(_BIGINT)
    held_at: Mapped[dt.datetime | None]
    #: The HTTP status of that refusal.
    held_status: Mapped[int | None] = mapped_column(Integer)


class FeedFolder(Base):
    """A folder the ERP reads exemption-status events from, as CSV and/or JSON files."""

    __tablename__ = "feed_folder"
    __table_args__ = (UniqueConstraint("company_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    path: Mapped[str] = mapped_column(Text)
    #: Comma-separated: ``csv``, ``json`` or both.
    formats: Mapped[str] = mapped_column(String(20), default="csv,json")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    delivered_through: Mapped[int] = mapped_column(_BIGINT, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")


class DeliveryAttempt(Base):
    """One try to deliver events through a connector (kept for the audit of the ERP feed)."""

    __tablename__ = "delivery_attempt"
    __table_args__ = (Index("ix_delivery_attempt_connector", "connector_kind", "connector_id", "id"),)

    id: Mapped[int] = mapped_column(_BIGINT, primary_key=True)
    #: ``webhook`` or ``folder``.
    connector_kind: Mapped[str] = mapped_column(String(10))
    connector_id: Mapped[int] = mapped_column(Integer)
    first_event_id: Mapped[int] = mapped_column(_BIGINT)
    last_event_id: Mapped[int] = mapped_column(_BIGINT)
    attempt: Mapped[int] = mapped_column(Integer)
    ok: Mapped[bool] = mapped_column(Boolean)
    #: HTTP status, when there was a response.
    http_status: Mapped[int | None] = mapped_column(Integer)
    #: The failure will not go away by trying again (a redirect, a 4xx other than 408/429).
    permanent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    error: Mapped[str] = mapped_column(Text, default="")
    #: Files written by a feed-folder delivery.
    files: Mapped[list[Any]] = mapped_column(JsonType, default=list)
    attempted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
