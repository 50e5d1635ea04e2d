"""Closed vocabularies used across the domain. Stored as their string values."""

from __future__ import annotations

from enum import StrEnum


class ExemptReason(StrEnum):
    """Why the buyer does not pay sales tax (the rules pack documents each)."""

    RESALE = "resale"
    GOVERNMENT = "government"
    NONPROFIT = "nonprofit"
    RELIGIOUS = "religious"
    EDUCATIONAL = "educational"
    MANUFACTURING = "manufacturing"
    AGRICULTURAL = "agricultural"
    DIRECT_PAY = "direct_pay"
    OTHER = "other"


class CertificateType(StrEnum):
    """A blanket certificate covers all qualifying purchases; a single-use one covers one PO/invoice."""

    BLANKET = "blanket"
    SINGLE_USE = "single_use"


class ReviewState(StrEnum):
    """Where a certificate stands in the accountant's review."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    ARCHIVED = "archived"


class Status(StrEnum):
    """The status shown as a badge, as of a date. Only approved certificates are active/expiring/expired."""

    PENDING_REVIEW = "pending_review"
    REJECTED = "rejected"
    ARCHIVED = "archived"
    ACTIVE = "active"
    EXPIRING_SOON = "expiring_soon"
    EXPIRED = "expired"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


class DocumentSource(StrEnum):
    """How a document arrived."""

    SCAN = "scan"
    EMAIL = "email"
    IMPORT = "import"
    UPLOAD = "upload"
    RENEWAL_RETURN = "renewal_return"
    DEMO = "demo"


def check_in(column: str, enum: type[StrEnum], *, empty: bool = False) -> str:
    """SQL CHECK text restricting ``column`` to the enum's values (and, with ``empty``, to '' for "not known
    yet")."""
    values = ", ".join([*(["''"] if empty else []), *(f"'{m.value}'" for m in enum)])
    return f"{column} IN ({values})"
