"""Determination over stored sales: evidence snapshot, exposure, reprocessing across filed and open periods."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ecms_desktop.models import AuditEvent
from ecms_desktop.models.transactions import Determination, DeterminationAdjustment
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificate_service import CertificateInput, CertificateService, LineInput
from ecms_desktop.services.customer_service import CustomerService
from ecms_desktop.services.determination_service import DeterminationService
from ecms_desktop.services.periods import PeriodService
from ecms_desktop.services.transaction_import import TransactionImporter

AS_OF = dt.date(2026, 11, 20)
HEADER = ("invoice_number,line,invoice_date,customer_number,ship_to_state,amount,tax_collected,exempt_claimed,"
          "product_code,po_number\n")


def make_cert(db, company_id, customer="C-1", *, state="TX", review="approved", **kw):  # type: ignore[no-untyped-def]
    cust = CustomerService(db).get_or_create(company_id, customer, legal_name=f"Customer {customer}")
    data = CertificateInput(company_id=company_id, customer_id=cust.id, form_code="TX-01-339",
                            lines=(LineInput(state),), signed=True, signed_date=dt.date(2026, 1, 1),
                            effective_date=dt.date(2026, 1, 1), **kw)
    return CertificateService(db).create(data, as_of=AS_OF, review_state=review)


def import_lines(db, company_id, tmp_path: Path, *rows: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "sales.csv"
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    TransactionImporter(db).import_file(path, company_id=company_id)


def test_run_decides_each_line_once_and_stores_the_evidence(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert = make_cert(db, company_id, certificate_number="TX-77")
    import_lines(db, company_id, tmp_path, "I1,1,2026-03-01,C-1,TX,100,0,yes,,", "I2,1,2026-03-01,C-2,TX,50,0,yes,,",
                 "I3,1,2026-03-01,C-1,OK,70,0,no,,")
    svc = DeterminationService(db)
    summary = svc.run(company_id)
    assert (summary.lines, summary.exempt, summary.exposures) == (3, 1, 1)
    assert svc.run(company_id).lines == 0  # nothing left to decide
    rows = {r.invoice_number: r for r in svc.iter_results(company_id)}
    good = rows["I1"]
    assert good.exempt and good.certificate_id == cert.id and good.certificate_number == "TX-77"
    assert good.certificate_version == cert.version and good.rules_pack_version == load_rules_pack().version
    assert good.explanation["candidates"][0]["outcome"] == "applied"
    assert rows["I2"].exposure_kind == "unsupported_claim" and rows["I2"].exposure_amount == Decimal("50")
    assert not rows["I3"].exempt and rows["I3"].exposure_kind == ""
    with db.reader() as s:
        det = s.get(Determination, good.transaction_line_id)
        assert det.coverage_line_id is not None and det.certificate_status == "approved"


def test_a_later_certificate_edit_never_rewrites_a_past_determination(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert = make_cert(db, company_id, certificate_number="TX-1")
    import_lines(db, company_id, tmp_path, "I1,1,2026-03-01,C-1,TX,100,0,yes,P1,")
    svc = DeterminationService(db)
    svc.run(company_id)
    before = next(svc.iter_results(company_id))
    certs = CertificateService(db)
    edited = certs.save(cert.id, replace(cert.data, product_codes=("P9",), certificate_number="TX-1-B"),
                        expected_version=cert.version, as_of=AS_OF)
    assert edited.version > cert.version
    after = next(svc.iter_results(company_id))
    assert after == before
    assert after.certificate_version == cert.version and after.certificate_number == "TX-1"
    assert after.explanation == before.explanation
    # a fresh decision with the edited certificate would differ: it no longer covers product P1
    plan = svc.preview_reprocess(cert.id, dt.date(2026, 3, 1), dt.date(2026, 3, 1), as_of=AS_OF)
    assert plan.items[0].new_exempt is False and plan.items[0].action == "update"


def test_exposure_by_state_period_and_customer(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    make_cert(db, company_id, "C-1")
    import_lines(db, company_id, tmp_path,
                 "I1,1,2026-03-01,C-1,TX,100,8.25,no,,",  # taxed although covered
                 "I2,1,2026-03-02,C-2,TX,50,0,yes,,",  # exempt without certificate
                 "I3,1,2026-04-02,C-2,TX,30,0,yes,,",
                 "I4,1,2026-04-02,C-1,TX,20,0,yes,,")  # fine
    PeriodService(db).set_frequency(company_id, "TX", "quarterly")
    svc = DeterminationService(db)
    svc.run(company_id)
    report = svc.exposure(company_id, dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    rows = {(r.period, r.customer_number, r.kind): r for r in report.rows}
    assert set(rows) == {("2026-Q1", "C-1", "tax_on_exempt"), ("2026-Q1", "C-2", "unsupported_claim"),
                         ("2026-Q2", "C-2", "unsupported_claim")}
    assert rows[("2026-Q1", "C-1", "tax_on_exempt")].exposure_amount == Decimal("8.25")
    assert report.total == Decimal("88.25")
    assert report.totals_by("customer")[0] == ("C-2", Decimal("80"))
    assert svc.exposure(company_id, dt.date(2026, 1, 1), dt.date(2026, 12, 31), state="OK").rows == ()


def test_reprocessing_adjusts_filed_periods_and_updates_open_ones(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import_lines(db, company_id, tmp_path,
                 "F1,1,2026-02-10,C-1,TX,100,0,yes,,",  # February: will be filed
                 "O1,1,2026-10-05,C-1,TX,40,0,yes,,")   # October: open
    svc = DeterminationService(db)
    svc.run(company_id)  # no certificate yet: both taxable, both exposures
    periods = PeriodService(db)
    periods.file(company_id, "TX", "2026-02")
    with db.reader() as s:
        filed_before = {r.transaction_line_id: (r.exempt, r.exempt_amount, r.determined_at)
                        for r in s.execute(select(Determination)).scalars()}
    cert = make_cert(db, company_id, certificate_number="LATE-1")  # the certificate arrives late
    plan = svc.preview_reprocess(cert.id, dt.date(2026, 1, 1), dt.date(2026, 10, 31), as_of=AS_OF)
    by_inv = {i.invoice_number: i for i in plan.items}
    assert by_inv["F1"].action == "adjust" and by_inv["F1"].filed_period == "2026-02"
    assert by_inv["F1"].adjustment_period == "2026-11"
    assert by_inv["O1"].action == "update" and plan.exempt_delta == Decimal("140.00")
    with db.reader() as s:  # preview changes nothing
        assert s.execute(select(func.count()).select_from(DeterminationAdjustment)).scalar_one() == 0
    svc.reprocess(cert.id, dt.date(2026, 1, 1), dt.date(2026, 10, 31), as_of=AS_OF)
    with db.reader() as s:
        dets = {r.transaction_line_id: r for r in s.execute(select(Determination)).scalars()}
        adjs = s.execute(select(DeterminationAdjustment).order_by(DeterminationAdjustment.id)).scalars().all()
        s.expunge_all()
        actions = set(s.execute(select(AuditEvent.action)).scalars())
    f1, o1 = by_inv["F1"].transaction_line_id, by_inv["O1"].transaction_line_id
    # the filed row is untouched
    assert (dets[f1].exempt, dets[f1].exempt_amount, dets[f1].determined_at) == filed_before[f1]
    assert [a.kind for a in adjs] == ["negation", "recreation"]
    neg, rec = adjs
    assert neg.exempt_amount == 0 and neg.taxable_amount == Decimal("-100.00") and not neg.exempt
    assert rec.exempt and rec.exempt_amount == Decimal("100.00") and rec.certificate_number == "LATE-1"
    assert neg.period == rec.period == "2026-11" and rec.certificate_version == cert.version
    # the open-period row is updated in place
    assert dets[o1].exempt and dets[o1].origin == "reprocess" and dets[o1].exposure_kind == ""
    assert {"determination.reprocessed.adjust", "determination.reprocessed.update",
            "certificate.reprocessed"} <= actions
    # exposure follows the correction; a second reprocess changes nothing
    assert svc.exposure(company_id, dt.date(2026, 1, 1), dt.date(2026, 12, 31)).rows == ()
    again = svc.preview_reprocess(cert.id, dt.date(2026, 1, 1), dt.date(2026, 10, 31), as_of=AS_OF)
    assert again.changes == []


def test_reprocess_with_customer_address(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from ecms_desktop.models import Customer

    cert = make_cert(db, company_id, "C-1", state="OK")
    with db.transaction() as s:
        cust = s.execute(select(Customer).where(Customer.number == "C-1")).scalar_one()
        cust.ship_to_state = "OK"
    import_lines(db, company_id, tmp_path, "I1,1,2026-03-01,C-1,TX,100,0,yes,,")
    svc = DeterminationService(db)
    svc.run(company_id)
    assert svc.preview_reprocess(cert.id, dt.date(2026, 1, 1), dt.date(2026, 12, 31), as_of=AS_OF).items == ()
    plan = svc.preview_reprocess(cert.id, dt.date(2026, 1, 1), dt.date(2026, 12, 31), as_of=AS_OF,
                                 prefer_customer_address=True)
    assert plan.items[0].new_exempt and plan.items[0].action == "update"


def test_reprocess_rejects_a_backwards_range(db, company_id) -> None:  # type: ignore[no-untyped-def]
    from ecms_desktop.errors import ValidationError

    cert = make_cert(db, company_id)
    with pytest.raises(ValidationError, match="ends"):
        DeterminationService(db).preview_reprocess(cert.id, dt.date(2026, 2, 1), dt.date(2026, 1, 1), as_of=AS_OF)
