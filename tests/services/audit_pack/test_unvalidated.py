"""Before a pack is made: how many of the certificates its selection considers were never validated."""

from __future__ import annotations

import datetime as dt

import pytest

from ecms_desktop.services.audit_pack.content import AuditPackSelection
from ecms_desktop.services.audit_pack.service import AuditPackService
from ecms_desktop.services.core.errors import NotFoundError, ValidationError
from ecms_desktop.services.validation.service import ValidationService
from tests.factories import make_signed_certificate, seed_certificates

PERIOD = (dt.date(2021, 1, 1), dt.date(2026, 12, 31))


def test_never_validated_certificates_of_the_selected_customers_are_counted(db, company_id) -> None:  # type: ignore[no-untyped-def]
    seeded = seed_certificates(db, company_id, 4, customers=2)  # stored without validation
    checked = make_signed_certificate(db, company_id, "C-9", as_of=dt.date(2026, 6, 1), review="approved")
    svc = AuditPackService(db)

    def count(*customers: str):  # type: ignore[no-untyped-def]
        return svc.unvalidated(AuditPackSelection(*PERIOD, company=company_id, customers=customers))

    assert count("C-9").certificates == 1 and count("C-9").never_validated == 0
    first = count("C-1000")
    assert first.certificates == first.never_validated == 2 and first.customers == ("C-1000",)
    everyone = count()
    assert everyone.certificates == 5 and everyone.never_validated == 4
    assert everyone.customers == ("C-1000", "C-1001")
    ValidationService(db).validate(seeded[0], as_of=dt.date(2026, 6, 1))
    assert count("C-1000").never_validated == 1 and checked.id not in seeded


def test_a_bad_selection_is_refused_as_the_pack_refuses_it(db, company_id) -> None:  # type: ignore[no-untyped-def]
    svc = AuditPackService(db)
    with pytest.raises(ValidationError, match="before it starts"):
        svc.unvalidated(AuditPackSelection(PERIOD[1], PERIOD[0], company=company_id))
    with pytest.raises(NotFoundError):
        svc.unvalidated(AuditPackSelection(*PERIOD, company=company_id, customers=("NOBODY",)))
