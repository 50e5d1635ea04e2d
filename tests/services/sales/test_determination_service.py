"""Determination over stored sales: evidence snapshot, exposure, reprocessing across filed and open periods."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from ecms_desktop.models import AuditEvent
from ecms_desktop.models.transactions import Determination, DeterminationAdjustment
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.sales.determination_service import DeterminationService
from ecms_desktop.services.sales.exposure import TAX_ON_COVERED, UNCOVERED, TaxOnCoveredSales, UncoveredExemptSales
from ecms_desktop.services.sales.periods import PeriodService
from tests.factories import SALES_COLUMNS, import_sales, make_signed_certificate

AS_OF = dt.date(2026, 11, 20)
#: The sales files of these tests also name each line's product and purchase order.
COLUMNS = (*SALES_COLUMNS, "product_code", "po_number")


def test_run_decides_each_line_once_and_stores_the_evidence(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert = make_signed_certificate(db, company_id, as_of=AS_OF, review="approved", certificate_number="TX-77")
    import_sales(db, company_id, tmp_path, "I1,1,2026-03-01,C-1,TX,100,0,yes,,", "I2,1,2026-03-01,C-2,TX,50,0,yes,,",
                 "I3,1,2026-03-01,C-1,OK,70,0,no,,", columns=COLUMNS)
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
    cert = make_signed_certificate(db, company_id, as_of=AS_OF, review="approved", certificate_number="TX-1")
    import_sales(db, company_id, tmp_path, "I1,1,2026-03-01,C-1,TX,100,0,yes,P1,", columns=COLUMNS)
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
    make_signed_certificate(db, company_id, "C-1", as_of=AS_OF, review="approved")
    import_sales(db, company_id, tmp_path,
                 "I1,1,2026-03-01,C-1,TX,100,8.25,no,,",  # taxed although covered
                 "I2,1,2026-03-02,C-2,TX,50,0,yes,,",  # exempt without certificate
                 "I3,1,2026-04-02,C-2,TX,30,0,yes,,",
                 "I4,1,2026-04-02,C-1,TX,20,0,yes,,",  # fine
                 columns=COLUMNS)
    PeriodService(db).set_frequency(company_id, "TX", "quarterly")
    svc = DeterminationService(db)
    svc.run(company_id)
    report = svc.exposure(company_id, dt.date(2026, 1, 1), dt.date(2026, 12, 31))
    rows = {(r.period, r.customer_number): r for r in report.rows}
    assert set(rows) == {("2026-Q1", "C-1"), ("2026-Q1", "C-2"), ("2026-Q2", "C-2")}
    assert rows[("2026-Q1", "C-1")].tax_on_covered == TaxOnCoveredSales(1, Decimal("100.00"), Decimal("8.25"))
    assert rows[("2026-Q1", "C-1")].uncovered == UncoveredExemptSales()
    assert rows[("2026-Q1", "C-2")].uncovered == UncoveredExemptSales(1, Decimal("50.00"), Decimal("50.00"))
    assert report.uncovered.untaxed_amount == Decimal("80") and report.tax_on_covered.tax_collected == Decimal("8.25")
    assert report.totals_by("customer", UNCOVERED) == [("C-2", Decimal("80"))]
    assert report.totals_by("customer", TAX_ON_COVERED)[0][1] == Decimal("8.25")
    assert svc.exposure(company_id, dt.date(2026, 1, 1), dt.date(2026, 12, 31), state="OK").rows == ()


def test_reprocessing_adjusts_filed_periods_and_updates_open_ones(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import_sales(db, company_id, tmp_path,
                 "F1,1,2026-02-10,C-1,TX,100,0,yes,,",  # February: will be filed
                 "O1,1,2026-10-05,C-1,TX,40,0,yes,,",  # October: open
                 columns=COLUMNS)
    svc = DeterminationService(db)
    svc.run(company_id)  # no certificate yet: both taxable, both exposures
    periods = PeriodService(db)
    periods.file(company_id, "TX", "2026-02")
    with db.reader() as s:
        filed_before = {r.transaction_line_id: (r.exempt, r.exempt_amount, r.determined_at)
                        for r in s.execute(select(Determination)).scalars()}
    # the certificate arrives late:
    cert = make_signed_certificate(db, company_id, as_of=AS_OF, review="approved", certificate_number="LATE-1")
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

    cert = make_signed_certificate(db, company_id, "C-1", as_of=AS_OF, review="approved", states=("OK",),
                                   form="OK-RESALE")  # Oklahoma's own resale form
    with db.transaction() as s:
        cust = s.execute(select(Customer).where(Customer.number == "C-1")).scalar_one()
        cust.ship_to_state = "OK"
    import_sales(db, company_id, tmp_path, "I1,1,2026-03-01,C-1,TX,100,0,yes,,", columns=COLUMNS)
    svc = DeterminationService(db)
    svc.run(company_id)
    assert svc.preview_reprocess(cert.id, dt.date(2026, 1, 1), dt.date(2026, 12, 31), as_of=AS_OF).items == ()
    plan = svc.preview_reprocess(cert.id, dt.date(2026, 1, 1), dt.date(2026, 12, 31), as_of=AS_OF,
                                 prefer_customer_address=True)
    assert plan.items[0].new_exempt and plan.items[0].action == "update"


def test_reprocess_rejects_a_backwards_range(db, company_id) -> None:  # type: ignore[no-untyped-def]
    from ecms_desktop.services.core.errors import ValidationError

    cert = make_signed_certificate(db, company_id, as_of=AS_OF, review="approved")
    with pytest.raises(ValidationError, match="ends"):
        DeterminationService(db).preview_reprocess(cert.id, dt.date(2026, 2, 1), dt.date(2026, 1, 1), as_of=AS_OF)


def _stored(db) -> dict[int, dict[str, object]]:  # type: ignore[no-untyped-def]
    cols = ("exempt", "certificate_id", "certificate_number", "certificate_version", "coverage_line_id",
            "coverage_state", "coverage_expiry", "certificate_status", "rules_pack_version", "exempt_amount",
            "taxable_amount", "also_eligible", "conflict", "explanation", "exposure_kind", "exposure_amount", "origin")
    with db.reader() as s:
        return {r.transaction_line_id: {c: getattr(r, c) for c in cols}
                for r in s.execute(select(Determination)).scalars()}


SALES = ("A1,1,2026-03-01,C-1,TX,100,0,yes,P1,",      # covered by two: product-limited wins, conflict
         "A2,1,2026-03-01,C-1,TX,80.555,8.25,no,P9,",  # only the statewide one: tax on exempt
         "A3,1,2026-03-01,C-2,TX,50,0,yes,,",          # half exempt
         "A4,1,2026-03-01,C-3,TX,70,0,yes,,PO-7",      # single use for this PO
         "A5,1,2026-03-01,C-3,TX,70,0,yes,,PO-8",      # single use for another PO: taxable
         "A6,1,2026-03-01,C-4,TX,30,0,yes,,",          # no certificate at all
         "A7,1,2025-03-01,C-1,TX,30,0,no,P1,",         # before the certificates took effect
         "A8,1,2026-03-01,C-1,OK,12.345,0,yes,,")      # no certificate in the state


def _sales_with_certificates(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    make_signed_certificate(db, company_id, "C-1", as_of=AS_OF, review="approved", certificate_number="ALL")
    make_signed_certificate(db, company_id, "C-1", as_of=AS_OF, review="approved", certificate_number="P1-ONLY",
                            product_codes=("P1",))
    make_signed_certificate(db, company_id, "C-2", as_of=AS_OF, review="approved", certificate_number="HALF",
                            exempt_percent=Decimal(50))
    make_signed_certificate(db, company_id, "C-3", as_of=AS_OF, review="approved", certificate_number="ONCE",
                            certificate_type="single_use", po_number="PO-7")
    import_sales(db, company_id, tmp_path, *SALES, columns=COLUMNS)


def _as_the_engine_decides(db, company_id, svc, stored):  # type: ignore[no-untyped-def]
    """What the engine and the evidence snapshot give each stored line, one by one (the columns of
    ``stored``)."""
    from ecms_desktop.services.sales.candidates import load_candidates
    from ecms_desktop.services.sales.determination import determine
    from ecms_desktop.services.sales.determination_records import _TL, LINE_COLUMNS, determination_row, sale_of

    with db.reader() as s:
        index = load_candidates(s, company_id)
        lines = s.execute(select(*LINE_COLUMNS).where(_TL.c.company_id == company_id)).all()
    expected = {}
    for r in lines:
        result = determine(sale_of(r), index.get((r.customer_key, r.ship_to_state), ()))
        row = determination_row(r.id, company_id, result, svc.rules_version, r.exempt_claimed, r.tax_collected,
                                "determine", dt.datetime.now(dt.UTC), r.ship_to_state)
        expected[r.id] = {k: row[k] for k in stored[r.id]}
    return expected


def test_bulk_run_stores_exactly_what_the_engine_decides(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The bulk path (driver tuples, lines without candidates decided without engine objects) gives
    each line the determination the engine and the evidence snapshot give it one by one."""
    _sales_with_certificates(db, company_id, tmp_path)
    svc = DeterminationService(db)
    summary = svc.run(company_id, workers=0)
    stored = _stored(db)
    assert summary.lines == len(SALES) == len(stored)
    assert stored == _as_the_engine_decides(db, company_id, svc, stored)
    by_invoice = {r.invoice_number: r for r in svc.iter_results(company_id)}
    assert by_invoice["A1"].certificate_number == "P1-ONLY" and by_invoice["A1"].conflict
    assert by_invoice["A2"].exposure_kind == "tax_on_exempt" and by_invoice["A2"].exposure_amount == Decimal("8.25")
    assert by_invoice["A3"].exempt_amount == Decimal("25.00") and by_invoice["A3"].taxable_amount == Decimal("25.00")
    assert by_invoice["A4"].certificate_number == "ONCE" and not by_invoice["A5"].exempt
    assert by_invoice["A6"].explanation == {"summary": "taxable: customer has no certificate for TX", "candidates": [],
                                              "rule": "coverage.none"}
    assert by_invoice["A8"].taxable_amount == Decimal("12.35") and by_invoice["A8"].exposure_kind == "unsupported_claim"


@pytest.mark.parametrize(("workers", "split"), [(1, "learnt"), (1, "half"), (2, "half"), (2, "all to the parent")])
def test_a_run_with_worker_processes_decides_the_same(db, company_id, tmp_path, monkeypatch, workers,  # type: ignore[no-untyped-def]
                                                      split) -> None:
    """Workers read and decide the first part of each window (by id), the parent the rest: whatever the
    split, every line is stored once and exactly as a run in one process stores it."""
    from ecms_desktop.services.sales import determination_run

    _sales_with_certificates(db, company_id, tmp_path)
    import_sales(db, company_id, tmp_path, *SALES, *(s.replace("A", "Z") for s in SALES), columns=COLUMNS)
    svc = DeterminationService(db)
    svc.run(company_id, workers=0)
    alone = _stored(db)
    with db.transaction() as s:
        s.execute(Determination.__table__.delete())
    if split == "half":
        monkeypatch.setattr(determination_run._Balance, "split", lambda self, a, t: (a + t) // 2)
    elif split == "all to the parent":
        monkeypatch.setattr(determination_run._Balance, "split", lambda self, a, t: a)
    summary = svc.run(company_id, workers=workers, batch=5)  # several windows
    assert summary.lines == 2 * len(SALES)
    assert _stored(db) == alone


def test_a_run_stopped_between_windows_and_run_again_decides_every_line_once_as_one_run_does(  # type: ignore[no-untyped-def]
        db, company_id, tmp_path, monkeypatch) -> None:
    """On PostgreSQL the worker commits the lines it decided in its own transaction, apart from the
    parent's window: a stop can leave a window with only one of its parts stored. The next run (which
    reads the windows below the highest determined line with the anti-join) decides exactly the
    missing lines, and the result is what one run in one process stores."""
    from ecms_desktop.services.core.errors import Cancelled
    from ecms_desktop.services.sales import determination_run

    _sales_with_certificates(db, company_id, tmp_path)
    import_sales(db, company_id, tmp_path, *SALES, *(s.replace("A", "Z") for s in SALES), columns=COLUMNS)
    svc = DeterminationService(db)
    svc.run(company_id, workers=0)
    alone = _stored(db)
    with db.transaction() as s:
        s.execute(Determination.__table__.delete())
    monkeypatch.setattr(determination_run._Balance, "split", lambda self, a, t: (a + t) // 2)
    windows: list[int] = []
    with pytest.raises(Cancelled):
        svc.run(company_id, workers=1, batch=5, cancel=lambda: len(windows) > 2,
                progress=lambda done, total, text: windows.append(done))
    partial = _stored(db)
    assert 0 < len(partial) < len(alone)
    assert all(alone[k] == v for k, v in partial.items())
    summary = svc.run(company_id, workers=1, batch=5)
    assert summary.lines == len(alone) - len(partial)
    assert _stored(db) == alone


def test_the_balance_gives_the_parent_what_the_workers_leave_it() -> None:
    from ecms_desktop.services.sales.determination_run import _Balance

    balance = _Balance(1)
    assert balance.split(0, 100) == 100  # nothing measured yet: the first window goes to the worker
    balance.learn(worker_seconds=2.0, worker_ids=100, parent_seconds=0.0, parent_ids=0, fixed_seconds=1.0,
                  window_ids=100)
    # worker 0.02 s an id, parent fixed 0.01 s an id and (not measured) as fast as the worker: the parent
    # takes x of the window where 0.01 + 0.02 x = 0.02 (1 - x), x = 1/4
    assert balance.split(0, 100) == 75
    balance.learn(worker_seconds=1.5, worker_ids=75, parent_seconds=0.75, parent_ids=25, fixed_seconds=1.0,
                  window_ids=100)
    assert balance.split(0, 100) == 80  # the parent turned out slower (0.03 s an id): it takes less, 1/5
    busy = _Balance(1)
    busy.learn(worker_seconds=1.0, worker_ids=100, parent_seconds=0.0, parent_ids=0, fixed_seconds=3.0,
               window_ids=100)
    assert busy.split(0, 100) == 100  # the parent's own work already takes longer: the worker takes all


def test_a_run_from_a_threaded_program_spawns_its_worker(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The GUI determines in a worker thread of a Qt process: the worker process is spawned there."""
    import threading

    from ecms_desktop.services.core.bulk import worker_start_method

    _sales_with_certificates(db, company_id, tmp_path)
    svc = DeterminationService(db)
    svc.run(company_id, workers=0)
    alone = _stored(db)
    with db.transaction() as s:
        s.execute(Determination.__table__.delete())
    out: list[object] = []

    def work() -> None:
        out.append(worker_start_method())
        try:
            out.append(svc.run(company_id, workers=1, batch=4).lines)
        except Exception as exc:  # reported below
            out.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(120)
    assert out == ["spawn", len(SALES)]
    assert _stored(db) == alone


def test_a_second_run_only_decides_new_lines_even_below_the_last_determined_one(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Lines above the highest determined id are read without the anti-join; lines below it with it."""
    import_sales(db, company_id, tmp_path, "B1,1,2026-03-01,C-1,TX,10,0,yes,,", "B2,1,2026-03-01,C-1,TX,10,0,yes,,",
                 columns=COLUMNS)
    svc = DeterminationService(db)
    assert svc.run(company_id, workers=0).lines == 2
    with db.transaction() as s:  # forget the first line's determination: it lies below the last determined id
        first = min(_stored(db))
        s.execute(Determination.__table__.delete().where(Determination.transaction_line_id == first))
    import_sales(db, company_id, tmp_path, "B1,1,2026-03-01,C-1,TX,10,0,yes,,", "B2,1,2026-03-01,C-1,TX,10,0,yes,,",
                 "B3,1,2026-03-01,C-1,TX,10,0,yes,,", columns=COLUMNS)
    assert svc.run(company_id, workers=0, batch=1).lines == 2  # B1 again and the new B3, not B2
    assert len(_stored(db)) == 3


EDGE_AMOUNTS = ("12.345", "-12.345", "0.005", "0.0049", "0.004", "-0.005", "0", "2.675", "1.005", "1000000.005",
                "80.555", "0.015", "-2.675", "99999999.9999", "1.00005", "3.14159")


def test_lines_without_a_certificate_are_decided_in_sql_exactly_as_the_engine_decides(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The lines whose customer has no certificate in the state are written by one INSERT ... SELECT:
    the taxable amount to the cent (half up, also for negative amounts and half cents that binary
    floating point cannot hold), exposure when sold exempt, the state's explanation; the stored
    values are the engine's, and on SQLite even the storage classes are the same."""
    from sqlalchemy import text

    make_signed_certificate(db, company_id, "C-1", as_of=AS_OF, review="approved", certificate_number="ALL")
    rows = []
    for i, amount in enumerate(EDGE_AMOUNTS):
        for customer, state in (("C-1", "TX"), ("C-1", "OK"), ("C-9", "TX")):  # engine, SQL, SQL
            for claimed in ("yes", "no"):
                rows.append(f"E{i}-{customer}-{state}-{claimed},1,2026-03-01,{customer},{state},{amount},"
                            f"{'0' if claimed == 'yes' else '1.25'},{claimed},,")
    import_sales(db, company_id, tmp_path, *rows, columns=COLUMNS)
    svc = DeterminationService(db)
    summary = svc.run(company_id, workers=0, batch=7)  # several windows
    stored = _stored(db)
    assert summary.lines == len(rows) == len(stored)
    assert stored == _as_the_engine_decides(db, company_id, svc, stored)
    assert summary.exposures == sum(1 for v in stored.values() if v["exposure_kind"])
    by_invoice = {r.invoice_number: r for r in svc.iter_results(company_id)}
    assert by_invoice["E0-C-9-TX-yes"].taxable_amount == Decimal("12.35")
    assert by_invoice["E1-C-9-TX-yes"].taxable_amount == Decimal("-12.35")
    assert by_invoice["E1-C-9-TX-yes"].amount == Decimal("-12.35")  # shown rounded the same way (half up)
    assert by_invoice["E1-C-9-TX-yes"].exposure_kind == ""  # a credit is not an uncovered sale
    assert by_invoice["E2-C-9-TX-yes"].exposure_amount == Decimal("0.01")
    assert by_invoice["E3-C-9-TX-yes"].exposure_kind == ""  # 0.0049 rounds to 0.00
    assert by_invoice["E7-C-9-TX-yes"].taxable_amount == Decimal("2.68")
    assert by_invoice["E14-C-1-OK-yes"].taxable_amount == Decimal("1.00")  # stored as 1.0001
    assert by_invoice["E0-C-1-OK-no"].explanation == {
        "summary": "taxable: customer has no certificate for OK", "candidates": [], "rule": "coverage.none"}
    if db.dialect == "sqlite":
        # Same storage classes and values as the engine's rows (REAL, INTEGER for whole amounts, TEXT).
        def of(customer: str, state: str) -> set[tuple[str, ...]]:
            with db.reader() as s:
                return {tuple(r) for r in s.execute(text(
                    "SELECT typeof(taxable_amount), typeof(exposure_amount), typeof(exempt_amount), "
                    "typeof(explanation), typeof(also_eligible), typeof(exempt), typeof(determined_at), "
                    "typeof(certificate_id), taxable_amount, exposure_amount FROM determination d "
                    "JOIN transaction_line t ON t.id = d.transaction_line_id "
                    "WHERE t.customer_number = :c AND t.ship_to_state = :st AND d.certificate_id IS NULL"),
                    {"c": customer, "st": state})}

        by_sql = of("C-9", "TX")
        with db.transaction() as s:  # the same lines decided by the engine: give C-9 a pending certificate
            s.execute(Determination.__table__.delete())
        make_signed_certificate(db, company_id, "C-9", as_of=AS_OF, certificate_number="PENDING")
        svc.run(company_id, workers=0)
        assert of("C-9", "TX") == by_sql


def test_a_line_in_a_state_without_a_prepared_explanation_is_decided_by_the_engine(db, company_id, tmp_path,  # type: ignore[no-untyped-def]
                                                                                    monkeypatch) -> None:
    from ecms_desktop.services.sales import determination_run

    import_sales(db, company_id, tmp_path, "S1,1,2026-03-01,C-4,TX,30,0,yes,,", "S2,1,2026-03-01,C-4,OK,30,0,yes,,",
                 columns=COLUMNS)
    real = determination_run.load_rules_pack()

    class WithoutTexas:
        version = real.version
        states = {k: v for k, v in real.states.items() if k != "TX"}

    monkeypatch.setattr(determination_run, "load_rules_pack", lambda: WithoutTexas)
    summary = DeterminationService(db, rules_version=real.version).run(company_id, workers=0)
    assert summary.lines == 2 and summary.exposures == 2
    texts = {r.invoice_number: r.explanation["summary"] for r in DeterminationService(db).iter_results(company_id)}
    assert texts == {"S1": "taxable: customer has no certificate for TX",
                     "S2": "taxable: customer has no certificate for OK"}
