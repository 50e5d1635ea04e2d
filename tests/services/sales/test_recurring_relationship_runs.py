"""The SST recurring-relationship rule over stored sales: the bulk run (with and without its worker
process), reprocessing and the ERP status question decide alike.

Rule ``sst.recurring_relationship`` (Ohio, a full SST member). Source: SSUTA s.317 ("no more than 12
months between sales"; the certificate lapses for new sales only). The gap is counted over the
customer's sales in any state (the relationship is between seller and purchaser).
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from ecms_desktop.models.transactions import Determination
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.sales.determination_service import DeterminationService
from ecms_desktop.services.sales.exemption_feed import customer_status
from tests.factories import import_sales, make_signed_certificate

AS_OF = dt.date(2026, 11, 20)
OHIO_CERT = {"states": ("OH",), "form": "SST-F0003", "review": "approved", "certificate_number": "OH-SST",
             "effective_date": dt.date(2024, 1, 1), "signed_date": dt.date(2024, 1, 1)}

# (invoice, expected exempt, why - from SSUTA s.317)
SALES = [
    ("L1,1,2024-02-01,C-1,OH,100,0,yes", True, "first purchase a month after the certificate"),
    ("L2,1,2025-03-01,C-1,OH,100,0,yes", False, "13 months without a purchase: lapsed on 2025-02-02"),
    ("L3,1,2025-04-01,C-1,OH,100,0,yes", False, "a later purchase does not revive it"),
    ("K1,1,2024-02-01,C-2,OH,100,0,yes", True, "first purchase a month after the certificate"),
    ("K2,1,2024-12-01,C-2,TX,100,8.25,no", False, "a taxable purchase in Texas keeps the relationship"),
    ("K3,1,2025-03-01,C-2,OH,100,0,yes", True, "previous purchase 2024-12-01 (Texas) within 12 months"),
]


def _setup(db: Database, company_id: int, tmp_path) -> None:  # type: ignore[no-untyped-def]
    make_signed_certificate(db, company_id, "C-1", as_of=AS_OF, **OHIO_CERT)
    make_signed_certificate(db, company_id, "C-2", as_of=AS_OF, **{**OHIO_CERT, "certificate_number": "OH-SST-2"})
    import_sales(db, company_id, tmp_path, *(s for s, _, _ in SALES))


def _decided(db: Database) -> dict[int, tuple[bool, str]]:
    with db.reader() as s:
        return {r.transaction_line_id: (r.exempt, r.explanation["summary"], r.explanation)
                for r in s.execute(select(Determination)).scalars()}


def test_the_bulk_run_applies_the_rule_per_sale(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _setup(db, company_id, tmp_path)
    svc = DeterminationService(db)
    svc.run(company_id, workers=0)
    by_invoice = {r.invoice_number: r for r in svc.iter_results(company_id)}
    for row, exempt, why in SALES:
        invoice = row.split(",")[0]
        assert by_invoice[invoice].exempt is exempt, f"{invoice}: {why}"
    lapsed = " ".join(by_invoice["L2"].explanation["candidates"][0]["reasons"])
    assert "lapsed for new sales on 2025-02-02 (no purchase since 2024-02-01)" in lapsed
    assert "SSUTA s.317" in lapsed
    assert by_invoice["L2"].exposure_kind == "unsupported_claim"  # claimed exempt, no certificate in force
    kept = " ".join(by_invoice["K3"].explanation["candidates"][0]["reasons"])
    assert "previous purchase 2024-12-01" in kept


@pytest.mark.parametrize("workers", [1])
def test_the_worker_process_decides_the_same(db, company_id, tmp_path, monkeypatch, workers) -> None:  # type: ignore[no-untyped-def]
    """The worker gets the same sales histories as the parent: a run split between them stores exactly
    what a run in one process stores."""
    from ecms_desktop.services.sales import determination_run

    _setup(db, company_id, tmp_path)
    svc = DeterminationService(db)
    svc.run(company_id, workers=0)
    alone = _decided(db)
    with db.transaction() as s:
        s.execute(Determination.__table__.delete())
    monkeypatch.setattr(determination_run._Balance, "split", lambda self, a, t: t)  # all to the worker
    svc.run(company_id, workers=workers, batch=2)
    assert _decided(db) == alone
    assert sum(not exempt for exempt, _, _ in alone.values()) == 3


def test_reprocessing_and_the_status_question_agree_with_the_run(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _setup(db, company_id, tmp_path)
    svc = DeterminationService(db)
    svc.run(company_id, workers=0)
    with db.reader() as s:
        from ecms_desktop.models import Certificate

        cert_id = s.execute(select(Certificate.id).where(Certificate.certificate_number == "OH-SST")).scalar_one()
    plan = svc.preview_reprocess(cert_id, dt.date(2024, 1, 1), dt.date(2025, 12, 31), as_of=AS_OF)
    assert plan.changes == []  # reprocessing decides as the run did
    assert {i.invoice_number: i.new_exempt for i in plan.items} == {"L1": True, "L2": False, "L3": False}
    # "is C-1 exempt in Ohio on this day?": yes while the relationship held, no after the lapse
    (before,) = customer_status(db, company_id, "C-1", as_of=dt.date(2025, 2, 1), state="OH")
    (after,) = customer_status(db, company_id, "C-1", as_of=dt.date(2025, 2, 2), state="OH")
    assert before.exempt and not after.exempt
    assert "lapsed for new sales on 2025-02-02" in " ".join(after.explanation["candidates"][0]["reasons"])


def test_the_daily_sweep_tells_the_erp_of_a_lapse_once(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """C-1's Ohio certificate lapses for new sales on 2025-02-02 (no purchase after 2024-02-01 for more than
    12 months, SSUTA s.317): the sweep records one ``lapse`` event effective that day, the customer no longer
    exempt there; C-2 (purchases in Texas keep the relationship) gets none before its own gap."""
    from ecms_desktop.services.sales.exemption_feed import emit_expiries, list_events

    _setup(db, company_id, tmp_path)
    assert emit_expiries(db, dt.date(2025, 2, 1), company_id=company_id) == 0
    assert emit_expiries(db, dt.date(2025, 3, 1), company_id=company_id) == 1
    (event,) = list_events(db, company_id=company_id)
    assert (event["reason"], event["customer_number"], event["state"], event["effective_date"]) == \
        ("lapse", "C-1", "OH", "2025-02-02")
    assert event["new_status"] == "not_exempt" and event["customer_exempt"] is False
    assert emit_expiries(db, dt.date(2025, 3, 1), company_id=company_id) == 0  # never twice
