"""ORM classes (SQLAlchemy 2, no Qt). Importing this package registers every table."""

# The feature modules' tables must be registered too (migrations and comparisons use the metadata).
from . import renewal, transactions, validation  # noqa: F401  # isort: skip
# A certificate's version covers its lines and documents too (flush hook, for every ORM write).
from . import versioning  # noqa: F401  # isort: skip

from .audit import AuditDigest, AuditEvent, AuditHead
from .base import Base, utcnow
from .certificate import Certificate, CoverageLine
from .company import Company, CompanyRegistration, ExpiryPolicyOverride, Setting
from .customer import Customer, CustomerNumberAlias, customer_number_key
from .document import Document, DocumentExtraction, DocumentFile
from .enums import CertificateType, DocumentSource, ExemptReason, ReviewState, Status
from .people import CertificateClaim, Person
from .rules_pack import InstalledRulesPack

__all__ = [
    "AuditDigest",
    "AuditEvent",
    "AuditHead",
    "Base",
    "Certificate",
    "CertificateClaim",
    "CertificateType",
    "Company",
    "CompanyRegistration",
    "CoverageLine",
    "Customer",
    "CustomerNumberAlias",
    "Document",
    "DocumentExtraction",
    "DocumentFile",
    "DocumentSource",
    "ExemptReason",
    "ExpiryPolicyOverride",
    "InstalledRulesPack",
    "Person",
    "ReviewState",
    "Setting",
    "Status",
    "customer_number_key",
    "utcnow",
]
