"""Small builders for test data through the real services."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.core.certificate_records import CertificateInput, LineInput
from ecms_desktop.services.customers.service import CustomerService
from ecms_desktop.services.demo.service import PermitNumbers

AS_OF = dt.date(2026, 11, 22)
_PERMITS = PermitNumbers(load_rules_pack())


def permit_number(state: str, seed: int = 1) -> str:
    """A permit number of the state's known format (so validation passes)."""
    return _PERMITS.make(state, random.Random(f"{state}-{seed}"))


def make_certificate(db: Any, company_id: int, *, customer: str = "C-1", name: str = "Buyer Inc",
                     form: str = "TX-01-339", states: tuple[str, ...] = ("TX",), reason: str = "resale",
                     signed: dt.date | None = dt.date(2026, 3, 15), effective: dt.date | None = None,
                     approve: bool = True, **fields: Any) -> Any:
    """A complete certificate (every field the forms commonly require is filled), approved with its
    warnings acknowledged unless ``approve`` is false."""
    customer_id = CustomerService(db).get_or_create(company_id, customer, name, f"{customer.lower()}@example.com").id
    service = CertificateService(db)
    values: dict[str, Any] = {
        "purchaser_name": name, "purchaser_address": "1 Main St, Springfield",
        "purchaser_tax_id": permit_number(states[0]), "business_description": "Retail store",
        "property_description": "Goods for resale", "business_type": "Retailer", "signer_name": "Pat Buyer",
        "signer_title": "Owner", "exemption_detail": "Exempt organization 123",
        **fields,
    }
    lines = tuple(LineInput(s, state_tax_id=permit_number(s)) for s in states)
    data = CertificateInput(company_id=company_id, customer_id=customer_id, form_code=form, lines=lines,
                            exempt_reason=reason, signed=True, signed_date=signed, effective_date=effective,
                            **values)
    detail = service.create(data, as_of=AS_OF)
    if approve:
        detail = service.approve(detail.id, expected_version=detail.version, as_of=AS_OF, acknowledge_warnings=True)
    return detail
