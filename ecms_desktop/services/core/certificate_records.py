"""What a certificate holds, as the services hand it to the desk, the CLI and each other: frozen
records, never live ORM objects. :mod:`~ecms_desktop.services.certificates.service` reads and writes
them; the validation engine reads them too, so they live below both."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from ecms_desktop.models import CertificateType, ExemptReason, Status
from ecms_desktop.services.core import audit


@dataclass(frozen=True)
class LineInput:
    """A state the certificate covers, with the purchaser's ID for that state where the form lists one."""

    state: str
    state_tax_id: str = ""
    local_jurisdictions: tuple[str, ...] = ()


@dataclass(frozen=True)
class CertificateInput:
    """The editable content of a certificate: what the form says plus the accountant's decisions."""

    company_id: int
    customer_id: int
    form_code: str
    lines: tuple[LineInput, ...]
    exempt_reason: str = ExemptReason.RESALE.value
    certificate_type: str = CertificateType.BLANKET.value
    certificate_number: str = ""
    purchaser_name: str = ""
    purchaser_address: str = ""
    purchaser_tax_id: str = ""
    purchaser_ein: str = ""
    business_type: str = ""
    business_description: str = ""
    property_description: str = ""
    exemption_detail: str = ""
    po_number: str = ""
    signed: bool = False
    signer_name: str = ""
    signer_title: str = ""
    signed_date: dt.date | None = None
    effective_date: dt.date | None = None
    expiry_override: dt.date | None = None
    expiry_override_reason: str = ""
    product_codes: tuple[str, ...] = ()
    commodity_codes: tuple[str, ...] = ()
    exempt_percent: Decimal | None = None
    exempt_amount: Decimal | None = None
    currency: str = "USD"
    notes: str = ""
    owner_email: str = ""

    @property
    def states(self) -> tuple[str, ...]:
        return tuple(line.state for line in self.lines)



@dataclass(frozen=True)
class LineDetail:
    """A coverage line with its expiry and status as of the date asked."""

    state: str
    state_tax_id: str
    local_jurisdictions: tuple[str, ...]
    expiry_date: dt.date | None
    expiry_basis: str
    expiry_source: str
    expiry_origin: str
    status: Status
    days_left: int | None
    suspended_at: dt.datetime | None
    #: "lapsed for new sales on D (no purchase since ...)" where the SST recurring-relationship rule has
    #: ended the line for new sales as of the date asked ("" otherwise).
    lapse: str = ""


@dataclass(frozen=True)
class DocumentInfo:
    """A file attached to a certificate (its bytes are fetched separately)."""

    id: int
    sha256: str
    original_name: str
    media_type: str
    page_count: int
    size: int
    received_via: str
    received_at: dt.datetime
    view_rotation: int
    #: What was read from the document when it arrived (``document.extraction``); None when it was not read.
    extraction: dict[str, Any] | None = None


@dataclass(frozen=True)
class CertificateDetail:
    """Everything about one certificate for the edit form, ``ecms show`` and the audit pack."""

    id: int
    version: int
    data: CertificateInput
    company_name: str
    customer_number: str
    customer_name: str
    customer_email: str
    review_state: str
    review_reason: str
    reviewed_by: str
    reviewed_at: dt.datetime | None
    #: The version the last review decision was made on (None: no decision recorded with it).
    reviewed_version: int | None
    status: Status
    expiry_date: dt.date | None
    lines: tuple[LineDetail, ...]
    documents: tuple[DocumentInfo, ...]
    origin: str
    created_at: dt.datetime
    updated_at: dt.datetime
    as_of: dt.date

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``ecms show --format json``)."""
        out: dict[str, Any] = {"id": self.id, "version": self.version}
        body = asdict(self.data)
        body["lines"] = [asdict(line) for line in self.data.lines]
        out.update({k: v for k, v in body.items() if k != "lines"})
        out.update({
            "company": self.company_name, "customer_number": self.customer_number,
            "customer_name": self.customer_name, "customer_email": self.customer_email,
            "review_state": self.review_state, "review_reason": self.review_reason,
            "reviewed_by": self.reviewed_by, "reviewed_at": self.reviewed_at,
            "reviewed_version": self.reviewed_version, "status": self.status.value,
            "expiry_date": self.expiry_date, "as_of": self.as_of,
            "lines": [{**asdict(line), "status": line.status.value} for line in self.lines],
            "documents": [asdict(d) for d in self.documents],
            "origin": self.origin, "created_at": self.created_at, "updated_at": self.updated_at,
        })
        shown = audit.jsonable(out)
        # a document's reading is stored as JSON already: its confidences stay numbers
        for doc, info in zip(shown["documents"], self.documents, strict=True):
            doc["extraction"] = info.extraction
        return shown
