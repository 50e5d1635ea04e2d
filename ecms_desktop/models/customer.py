"""Customers: the buyers whose certificates the company must hold."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow

if TYPE_CHECKING:
    from .certificate import Certificate
    from .company import Company

_SPACES = re.compile(r"\s+")


def customer_number_key(number: str) -> str:
    """The form of a customer number used for matching: case folded, surrounding white space removed
    and inner runs of white space made single, so that ``" c-1001 "`` and ``"C-1001"`` are one customer
    (users of other systems lose exemptions to a trailing space)."""
    return _SPACES.sub(" ", number.strip()).casefold()


class Customer(Base):
    """A buyer of the company that may claim exemption. Matched by its normalised customer number."""

    __tablename__ = "customer"
    __table_args__ = (
        UniqueConstraint("company_id", "number_key"),
        # The grid sorts by customer name: walking this index gives certificates in that order without
        # sorting the whole company (see services/certificates/query.py).
        Index("ix_customer_company_sort_name", "company_id", text("lower(legal_name)"), "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="RESTRICT"), index=True)
    #: The customer number as the ERP shows it (surrounding white space removed).
    number: Mapped[str] = mapped_column(String(64))
    #: :func:`customer_number_key` of ``number``; unique per company.
    number_key: Mapped[str] = mapped_column(String(64), index=True)
    legal_name: Mapped[str] = mapped_column(String(300))
    email: Mapped[str] = mapped_column(String(320), default="")
    bill_to_line1: Mapped[str] = mapped_column(String(200), default="")
    bill_to_city: Mapped[str] = mapped_column(String(100), default="")
    bill_to_state: Mapped[str] = mapped_column(String(2), default="")
    bill_to_zip: Mapped[str] = mapped_column(String(20), default="")
    ship_to_line1: Mapped[str] = mapped_column(String(200), default="")
    ship_to_city: Mapped[str] = mapped_column(String(100), default="")
    ship_to_state: Mapped[str] = mapped_column(String(2), default="")
    ship_to_zip: Mapped[str] = mapped_column(String(20), default="")
    #: Internal account owner's e-mail: unanswered renewal requests escalate to this address.
    owner_email: Mapped[str] = mapped_column(String(320), default="")
    #: Parent account for subsidiaries and locations of one buyer.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    company: Mapped[Company] = relationship(back_populates="customers")
    parent: Mapped[Customer | None] = relationship(remote_side=[id])
    certificates: Mapped[list[Certificate]] = relationship(back_populates="customer")


class CustomerNumberAlias(Base):
    """A customer number that now means another customer: the number of a customer merged into that one
    (the same business entered twice). Imports, intake and sales that still use the old number resolve to
    the surviving customer. A key is either a customer's own number or an alias, never both."""

    __tablename__ = "customer_number_alias"
    __table_args__ = (UniqueConstraint("company_id", "number_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("company.id", ondelete="RESTRICT"), index=True)
    #: The old customer number as it was written.
    number: Mapped[str] = mapped_column(String(64))
    #: :func:`customer_number_key` of ``number``.
    number_key: Mapped[str] = mapped_column(String(64))
    #: The customer the number now means.
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id", ondelete="CASCADE"), index=True)
    #: The legal name the merged customer had (kept for the record).
    merged_name: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
