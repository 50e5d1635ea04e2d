"""New invoice lines dated inside a filed period: the import warns, and their determination is booked in
the current open period like a reprocessing correction, so that a filed return's figures never change.

Rule: a filed return's sales are never changed (PeriodService.file: "its sales are frozen from now on");
corrections go into the current open period (reprocessing, module docstring). Issue 15, point 7.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from ecms_desktop.cli import main
from ecms_desktop.models import AuditEvent
from ecms_desktop.models.transactions import Determination, DeterminationAdjustment
from ecms_desktop.services.sales.determination_service import DeterminationService
from ecms_desktop.services.sales.periods import PeriodService
from ecms_desktop.services.sales.transaction_import import TransactionImporter
from tests.factories import import_sales, make_signed_certificate, write_sales_csv

AS_OF = dt.date(2026, 11, 20)


def _filed_february(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import_sales(db, company_id, tmp_path, "F1,1,2026-02-10,C-1,TX,100,0,yes")
    DeterminationService(db).run(company_id, workers=0, as_of=AS_OF)
    PeriodService(db).file(company_id, "TX", "2026-02")


# (case, rows of the second file, lines named in the warning)
CASES = [
    ("a new line in the filed month is named with its period", ["F2,1,2026-02-20,C-1,TX,50,0,yes"],
     ["TX 2026-02: invoice F2 line 1 (2026-02-20)"]),
    ("a new line in an open month is not", ["O1,1,2026-03-02,C-1,TX,50,0,yes"], []),
    ("another state's February is not filed", ["X1,1,2026-02-20,C-1,OK,50,0,yes"], []),
    ("the filed line imported again unchanged is not new", ["F1,1,2026-02-10,C-1,TX,100,0,yes"], []),
]


@pytest.mark.parametrize(("case", "rows", "named"), CASES, ids=[c[0] for c in CASES])
def test_the_import_warns_of_new_lines_in_filed_periods(db, company_id, tmp_path, case, rows, named) -> None:  # type: ignore[no-untyped-def]
    _filed_february(db, company_id, tmp_path)
    result = TransactionImporter(db).import_file(write_sales_csv(tmp_path, *rows, name="more.csv"),
                                                 company_id=company_id)
    assert [x.invoice_number for x in result.in_filed_periods] == [n.split()[3] for n in named], case
    for words in named:
        assert words in result.warning and "filed" in result.warning
        assert result.warning.startswith("more.csv: 1 new line(s) are dated inside periods already filed")
    if not named:
        assert result.warning == ""


def test_the_late_line_is_booked_in_the_open_period_and_february_does_not_change(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    make_signed_certificate(db, company_id, "C-1", as_of=AS_OF, review="approved", certificate_number="TX-1")
    _filed_february(db, company_id, tmp_path)
    with db.reader() as s:
        filed_before = {r.transaction_line_id: (r.exempt, r.exempt_amount, r.taxable_amount, r.determined_at)
                        for r in s.execute(select(Determination)).scalars()}
    import_sales(db, company_id, tmp_path, "F2,1,2026-02-20,C-1,TX,50,0,yes", "O1,1,2026-11-02,C-1,TX,40,0,yes")
    summary = DeterminationService(db).run(company_id, workers=0, as_of=AS_OF)
    assert summary.lines == 2 and summary.booked_in_open_periods == 1
    with db.reader() as s:
        dets = {r.transaction_line_id: r for r in s.execute(select(Determination)).scalars()}
        adjs = s.execute(select(DeterminationAdjustment)).scalars().all()
        s.expunge_all()
        actions = list(s.execute(select(AuditEvent.action)).scalars())
    # February as filed: the first line unchanged, the late one reports nothing there
    f1 = next(iter(filed_before))
    got = dets[f1]
    assert (got.exempt, got.exempt_amount, got.taxable_amount, got.determined_at) == filed_before[f1]
    late = next(d for i, d in dets.items() if i not in filed_before and d.origin == "late")
    assert (late.exempt, late.exempt_amount, late.taxable_amount, late.exposure_kind) == (False, 0, 0, "")
    assert "not part of the filed return TX 2026-02" in late.explanation["summary"]
    assert late.explanation["booked_in"] == "2026-11"
    # ... and its decision is a correction entry of November, the open period as of the run
    (entry,) = adjs
    assert (entry.kind, entry.state, entry.period, entry.posted_on) == ("recreation", "TX", "2026-11", AS_OF)
    assert entry.exempt and entry.exempt_amount == Decimal("50.00") and entry.certificate_number == "TX-1"
    # the open-period line is decided as usual
    assert sum(1 for d in dets.values() if d.origin == "determine") == 2
    assert "determination.booked_in_open_period" in actions
    # a second run books nothing again
    assert DeterminationService(db).run(company_id, workers=0, as_of=AS_OF).booked_in_open_periods == 0


def test_the_cli_prints_the_warning(db, db_url, company_id, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    _filed_february(db, company_id, tmp_path)
    path = write_sales_csv(tmp_path, "F2,1,2026-02-20,C-1,TX,50,0,yes", name="late.csv")
    assert main(["--db", db_url, "transactions", "import", str(path)]) == 0
    err = capsys.readouterr().err
    assert "warning: late.csv: 1 new line(s) are dated inside periods already filed" in err
    assert "TX 2026-02: invoice F2 line 1 (2026-02-20)" in err


def test_a_first_decision_by_reprocessing_is_booked_in_the_open_period_too(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A line never determined before its period was filed, first decided by reprocessing: February's
    figures stay as filed (nothing), the decision goes to November (reprocessing's own rule: "a sale in a
    filed period is never changed")."""
    import_sales(db, company_id, tmp_path, "F1,1,2026-02-10,C-1,TX,100,0,yes")
    PeriodService(db).file(company_id, "TX", "2026-02")
    cert = make_signed_certificate(db, company_id, "C-1", as_of=AS_OF, review="approved", certificate_number="TX-1")
    plan = DeterminationService(db).preview_reprocess(cert.id, dt.date(2026, 1, 1), dt.date(2026, 12, 31),
                                                      as_of=AS_OF)
    (item,) = plan.items
    assert (item.action, item.filed_period, item.adjustment_period) == ("determine", "2026-02", "2026-11")
    DeterminationService(db).reprocess(cert.id, dt.date(2026, 1, 1), dt.date(2026, 12, 31), as_of=AS_OF)
    with db.reader() as s:
        (det,) = s.execute(select(Determination)).scalars().all()
        (entry,) = s.execute(select(DeterminationAdjustment)).scalars().all()
        assert (det.origin, det.exempt_amount, det.taxable_amount) == ("late", 0, 0)
        assert (entry.period, entry.exempt, entry.exempt_amount) == ("2026-11", True, Decimal("100.00"))
