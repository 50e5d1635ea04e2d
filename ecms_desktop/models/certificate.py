"""Exemption and resale certificates and their per-state coverage lines."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JsonType, Money, Percent, utcnow
from .enums import CertificateType, ExemptReason, ReviewState, check_in

if TYPE_CHECKING:
    from .company import Company
    from .customer import Customer
    from .document import Document


class Certificate(Base):
    """A certificate a customer gave the company to buy without sales tax.

    It names a form from the rules pack, the purchaser's details as written on the form, the reason
    for the exemption and its dates. A multi-state form (SST, MTC) is one certificate with one
    :class:`CoverageLine` per state; each line has its own expiry and status.
    """

    __tablename__ = "certificate"
    __table_args__ = (
        # '' : not known yet (a certificate made from an inbox document before anyone read it).
        CheckConstraint(check_in("exempt_reason", ExemptReason, empty=True), name="exempt_reason"),
        CheckConstraint(check_in("certificate_type", CertificateType, empty=True), name="certificate_type"),
        CheckConstraint(check_in("review_state", ReviewState), name="review_state"),
        CheckConstraint("exempt_percent IS NULL OR (exempt_percent > 0 AND exempt_percent <= 100)",
                        name="exempt_percent"),
        Index("ix_certificate_company_expiry", "company_id", "expiry_date"),
        Index("ix_certificate_review_expiry", "review_state", "expiry_date"),
        # Covers the status strip's counts (status = review state + earliest expiry) and the text filter.
        Index("ix_certificate_company_status", "company_id", "review_state", "expiry_date", "customer_id"),
        # Certificates of a customer in id order, covering the company filter (grid sorted by customer).
        Index("ix_certificate_customer_company", "customer_id", "company_id"),
        # A narrow index the free-text filter scans instead of the wide certificate rows.
        Index("ix_certificate_company_numbers", "company_id", text("lower(certificate_number)"),
              text("lower(purchaser_tax_id)")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="RESTRICT"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="RESTRICT"), index=True)
    #: Form code from the rules pack, e.g. ``TX-01-339``, ``SST-F0003``, ``MTC-UNIFORM``; '' while not known.
    form_code: Mapped[str] = mapped_column(String(40), index=True)
    #: Number printed on the certificate (or the state-issued certificate number), if any.
    certificate_number: Mapped[str] = mapped_column(String(64), default="", index=True)
    #: Purchaser's name as written on the certificate (compared with the customer's legal name).
    purchaser_name: Mapped[str] = mapped_column(String(300), default="")
    purchaser_address: Mapped[str] = mapped_column(Text, default="")
    #: Purchaser's sales-tax permit / registration number in the issuing state.
    purchaser_tax_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    #: Federal Employer Identification Number, where the form asks for it.
    purchaser_ein: Mapped[str] = mapped_column(String(20), default="")
    business_type: Mapped[str] = mapped_column(String(100), default="")
    #: What the purchaser's business does (many forms require it).
    business_description: Mapped[str] = mapped_column(Text, default="")
    #: The property or services bought exempt, as described on the form.
    property_description: Mapped[str] = mapped_column(Text, default="")
    #: One of ExemptReason; '' while not known.
    exempt_reason: Mapped[str] = mapped_column(String(20), default=ExemptReason.RESALE.value)
    #: Explanation or ID number that some exempt reasons need (e.g. a nonprofit's exemption number).
    exemption_detail: Mapped[str] = mapped_column(Text, default="")
    #: One of CertificateType; '' while not known.
    certificate_type: Mapped[str] = mapped_column(String(20), default=CertificateType.BLANKET.value)
    #: PO or invoice number a single-use certificate is limited to.
    po_number: Mapped[str] = mapped_column(String(64), default="")
    #: Whether the certificate bears the purchaser's signature.
    signed: Mapped[bool] = mapped_column(Boolean, default=False)
    signer_name: Mapped[str] = mapped_column(String(200), default="")
    signer_title: Mapped[str] = mapped_column(String(200), default="")
    signed_date: Mapped[dt.date | None] = mapped_column(Date)
    #: Date from which the certificate applies; the signed date when empty.
    effective_date: Mapped[dt.date | None] = mapped_column(Date)
    #: Expiry date set by hand instead of the one computed from the rules (needs a reason).
    expiry_override: Mapped[dt.date | None] = mapped_column(Date)
    expiry_override_reason: Mapped[str] = mapped_column(Text, default="")
    #: Earliest expiry of the coverage lines (empty: no line expires); kept for sorting and filtering.
    expiry_date: Mapped[dt.date | None] = mapped_column(Date)
    review_state: Mapped[str] = mapped_column(String(20), default=ReviewState.PENDING.value)
    #: Why it was rejected or archived.
    review_reason: Mapped[str] = mapped_column(Text, default="")
    #: Review state before archiving, restored by unarchive.
    state_before_archive: Mapped[str | None] = mapped_column(String(20))
    reviewed_by: Mapped[str] = mapped_column(String(100), default="")
    reviewed_at: Mapped[dt.datetime | None]
    #: The version the last review decision (approve, reject, archive, unarchive) was made on: what
    #: the reviewer saw. The decision itself raises ``version`` by one.
    reviewed_version: Mapped[int | None] = mapped_column(Integer)
    #: Only sales lines with one of these product codes are exempt (empty: all products).
    product_codes: Mapped[list[str]] = mapped_column(JsonType, default=list)
    #: Only sales lines with one of these commodity codes are exempt (empty: all).
    commodity_codes: Mapped[list[str]] = mapped_column(JsonType, default=list)
    #: Partial exemption as a percentage of each covered line (1-100), or ...
    exempt_percent: Mapped[Decimal | None] = mapped_column(Percent)
    #: ... as a fixed exempt amount in ``currency``.
    exempt_amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    notes: Mapped[str] = mapped_column(Text, default="")
    #: Internal owner for escalations (falls back to the customer's owner).
    owner_email: Mapped[str] = mapped_column(String(320), default="")
    #: How the record was created: manual, import, intake, renewal, demo.
    origin: Mapped[str] = mapped_column(String(20), default="manual")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    #: Optimistic-locking version of everything the certificate is: its fields, its coverage lines and
    #: its attached documents (see :mod:`ecms_desktop.models.versioning`). A change made from an older
    #: version is refused as a conflict.
    version: Mapped[int] = mapped_column(Integer, default=1)

    # The ORM checks the version on every UPDATE ("WHERE version = the one read"); raising it is left
    # to models.versioning, which raises it once per transaction for any change of the certificate,
    # its lines or its documents.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}

    company: Mapped[Company] = relationship()
    customer: Mapped[Customer] = relationship(back_populates="certificates")
    lines: Mapped[list[CoverageLine]] = relationship(
        back_populates="certificate", cascade="all, delete-orphan", order_by="CoverageLine.state"
    )
    documents: Mapped[list[Document]] = relationship(back_populates="certificate", order_by="Document.id")

    @property
    def states(self) -> list[str]:
        return [line.state for line in self.lines]


class CoverageLine(Base):
    """One state a certificate covers, with that state's expiry.

    The expiry is computed from the rules pack (or the company's own policy) for the state, form and
    reason, unless the certificate carries an override; ``expiry_basis`` says which and why.
    """

    __tablename__ = "coverage_line"
    __table_args__ = (
        Index("ix_coverage_line_state_expiry", "state", "expiry_date"),
        Index("uq_coverage_line_certificate_state", "certificate_id", "state", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificate.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(2))
    #: The purchaser's ID number for this state where a multi-state form lists one per state.
    state_tax_id: Mapped[str] = mapped_column(String(64), default="")
    #: Local jurisdictions (county/city/zone codes) the line is limited to; empty = the whole state.
    local_jurisdictions: Mapped[list[str]] = mapped_column(JsonType, default=list)
    #: Last day the line is valid (inclusive); empty = the state sets no expiry.
    expiry_date: Mapped[dt.date | None] = mapped_column(Date)
    #: How ``expiry_date`` was decided, e.g. "3 years from 2026-03-15 (regulation): ...".
    expiry_basis: Mapped[str] = mapped_column(Text, default="")
    expiry_source: Mapped[str] = mapped_column(Text, default="")
    #: ``rules`` (rules pack), ``company`` (company policy) or ``override`` (set by hand).
    expiry_origin: Mapped[str] = mapped_column(String(20), default="rules")
    #: Set when exempt status in this state was suspended at expiry (renewal loop).
    suspended_at: Mapped[dt.datetime | None]

    certificate: Mapped[Certificate] = relationship(back_populates="lines")
