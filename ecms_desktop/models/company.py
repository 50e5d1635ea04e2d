"""The seller's legal entities, their state registrations and business settings."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JsonType, utcnow

if TYPE_CHECKING:
    from .customer import Customer


class Company(Base):
    """A legal entity that sells and must hold its customers' exemption certificates.

    A group with several subsidiaries has several companies; certificates, customers, settings and
    filing periods belong to one of them.
    """

    __tablename__ = "company"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    #: Full legal name as printed on the seller part of certificates and on audit packs.
    legal_name: Mapped[str] = mapped_column(String(300), default="")
    address_line1: Mapped[str] = mapped_column(String(200), default="")
    address_line2: Mapped[str] = mapped_column(String(200), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    state: Mapped[str] = mapped_column(String(2), default="")
    postal_code: Mapped[str] = mapped_column(String(20), default="")
    country: Mapped[str] = mapped_column(String(2), default="US")
    #: Reply-to address used on renewal e-mails and printed on audit packs.
    reply_to_email: Mapped[str] = mapped_column(String(320), default="")
    #: Company logo (PNG or JPEG bytes) for e-mails and audit-pack covers.
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    logo_media_type: Mapped[str | None] = mapped_column(String(50))
    #: Accent colour for branding, as #RRGGBB.
    brand_color: Mapped[str] = mapped_column(String(7), default="#1F4E79")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    registrations: Mapped[list[CompanyRegistration]] = relationship(
        back_populates="company", cascade="all, delete-orphan", order_by="CompanyRegistration.state"
    )
    customers: Mapped[list[Customer]] = relationship(back_populates="company")

    def address_text(self) -> str:
        """The postal address on one line per part, for printing."""
        city_line = " ".join(p for p in (self.city + ("," if self.city else ""), self.state, self.postal_code) if p)
        return "\n".join(p for p in (self.address_line1, self.address_line2, city_line) if p)


class CompanyRegistration(Base):
    """The company's own sales-tax registration (permit) number in one state."""

    __tablename__ = "company_registration"
    __table_args__ = (UniqueConstraint("company_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(2))
    number: Mapped[str] = mapped_column(String(64))

    company: Mapped[Company] = relationship(back_populates="registrations")


class Setting(Base):
    """A business setting shared by everyone on the database (a team agrees on one value).

    ``company_id`` empty means the setting applies to every company that has none of its own.
    Per-user UI state (window geometry, column widths) is not here but in the user's QSettings.
    """

    __tablename__ = "setting"
    __table_args__ = (UniqueConstraint("company_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(100))
    #: The value as JSON (number, text, list or object).
    value: Mapped[Any] = mapped_column(JsonType)


class ExpiryPolicyOverride(Base):
    """A company's own expiry policy for a state and certificate kind, replacing the rules pack's.

    For example a company may decide to renew Kentucky certificates every 3 years instead of the
    recommended 4. Every change is audited with the reason given.
    """

    __tablename__ = "expiry_policy_override"
    __table_args__ = (UniqueConstraint("company_id", "state", "purpose"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(2))
    #: ``resale`` or ``exemption``: which of the state's two policies this replaces.
    purpose: Mapped[str] = mapped_column(String(20))
    #: ``none``, ``years`` or ``end_of_year`` (see the rules pack's expiry rules).
    kind: Mapped[str] = mapped_column(String(20))
    years: Mapped[int | None]
    reason: Mapped[str] = mapped_column(Text)
    changed_by: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
