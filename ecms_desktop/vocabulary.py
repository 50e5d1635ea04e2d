"""Closed vocabularies used across the domain, stored as their string values.

They live outside the models package so that the command line can offer them as choices without loading
SQLAlchemy (``ecms --help`` stays quick); :mod:`ecms_desktop.models.enums` gives them to the models.
"""

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


class Role(StrEnum):
    """A person's role in team mode: each one can do what the one before can, and more."""

    REVIEWER = "reviewer"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    @property
    def label(self) -> str:
        return {"reviewer": "a reviewer", "approver": "an approver", "admin": "an admin"}[self.value]


_RANKS = {Role.REVIEWER: 1, Role.APPROVER: 2, Role.ADMIN: 3}


class CheckFilter(StrEnum):
    """A work list made of the checks' findings: what is left to do after validation."""

    #: The latest validation of the certificate found errors (approval is blocked until corrected).
    ERRORS = "errors"
    #: Pending certificates whose latest validation found warnings and no errors, not yet acknowledged.
    WARNINGS = "warnings"
    #: Pending or approved certificates with a state whose permit number was never checked (a check
    #: that could not be made, "unavailable", does not count).
    PERMIT_UNCHECKED = "permit_unchecked"

    @property
    def label(self) -> str:
        return {"errors": "Validation errors", "warnings": "Warnings to acknowledge",
                "permit_unchecked": "Permit not checked"}[self.value]


#: How an SMTP connection is secured.
SECURITY_MODES = ("none", "starttls", "ssl")
#: How the program logs in to the mail server: a password in the keyring, or an OAuth sign-in.
AUTH_METHODS = ("password", "oauth")
#: The outbox's states as the accountant sees them, and the stored states each covers.
OUTBOX_STATUSES: dict[str, tuple[str, ...]] = {"queued": ("pending", "sending"), "sent": ("sent",),
                                               "failed": ("failed",)}
#: How often a company files its sales-tax returns in a state.
FILING_FREQUENCIES = ("monthly", "quarterly", "annual")
#: Fields a permit registry file can be mapped to (``--map column=field``).
REGISTRY_FIELDS: tuple[str, ...] = ("permit_number", "legal_name", "status", "issue_date", "end_date", "dba_name")
