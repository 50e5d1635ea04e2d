"""What the demo is to make (:class:`DemoOptions`) and the plans drawn for it: customers, certificates
and their coverage lines as pure data, before anything has a database id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from ecms_desktop.rules.pack import FormRule


@dataclass(frozen=True)
class DemoOptions:
    """What demo data to make: how many certificates, the random seed, the date the statuses are
    for, the name of the default (first) company, and whether to add beside existing data."""

    certificates: int = 1000
    seed: int = 1
    as_of: dt.date = field(default_factory=dt.date.today)
    company: str = ""
    add: bool = False


@dataclass
class CustomerPlan:
    index: int
    company: int
    kind: str
    number: str
    legal_name: str
    email: str
    bill: tuple[str, str, str, str]  # line1, city, state, zip
    ship: tuple[str, str, str, str]
    phone: str
    owner_email: str
    parent: int | None
    trade: tuple[str, str, str]
    contact: tuple[str, str]  # signer name, title
    notes: str = ""


@dataclass
class LinePlan:
    state: str
    state_tax_id: str
    expiry_date: dt.date | None = None
    expiry_basis: str = ""
    expiry_source: str = ""
    expiry_origin: str = "rules"


@dataclass
class CertPlan:
    index: int
    customer: int
    company: int
    form: FormRule
    reason: str
    lines: list[LinePlan]
    review_state: str
    review_reason: str
    signed_date: dt.date
    effective_date: dt.date | None
    certificate_type: str
    po_number: str
    certificate_number: str
    purchaser_tax_id: str
    purchaser_ein: str
    exemption_detail: str
    product_codes: list[str]
    commodity_codes: list[str]
    exempt_percent: Decimal | None
    exempt_amount: Decimal | None
    expiry_override: dt.date | None
    expiry_override_reason: str
    expiry_date: dt.date | None
    has_document: bool
    notes: str = ""
