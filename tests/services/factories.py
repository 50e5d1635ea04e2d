"""Small builders for test data through the real services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ecms_desktop.services.certificate_service import CertificateInput, CertificateService, LineInput
from ecms_desktop.services.customer_service import CustomerService

AS_OF = dt.date(2026, 11, 22)


def make_certificate(db: Any, company_id: int, *, customer: str = "C-1", name: str = "Buyer Inc",
                     form: str = "TX-01-339", states: tuple[str, ...] = ("TX",), reason: str = "resale",
                     signed: dt.date | None = dt.date(2026, 3, 15), effective: dt.date | None = None,
                     approve: bool = True, **fields: Any) -> Any:
    customer_id = CustomerService(db).get_or_create(company_id, customer, name, f"{customer.lower()}@example.com").id
    service = CertificateService(db)
    data = CertificateInput(company_id=company_id, customer_id=customer_id, form_code=form,
                            lines=tuple(LineInput(s) for s in states), exempt_reason=reason,
                            signed=True, signed_date=signed, effective_date=effective,
                            purchaser_name=name, **fields)
    detail = service.create(data, as_of=AS_OF)
    if approve:
        detail = service.approve(detail.id, expected_version=detail.version, as_of=AS_OF)
    return detail
