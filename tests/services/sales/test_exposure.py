"""The exposure report's two measures kept apart (the untaxed amount of exempt sales without a covering
certificate; the tax collected on covered sales), "no sales" told from "no exposure", customer names,
the sales behind a row with their explanations, and the workbook."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.sales.determination_service import DeterminationService
from ecms_desktop.services.sales.exposure import (
    TAX_ON_COVERED,
    UNCOVERED,
    ExposureReport,
    TaxOnCoveredSales,
    UncoveredExemptSales,
)
from ecms_desktop.services.sales.exposure_workbook import DETAIL_HEADINGS, SUMMARY_HEADINGS, write_exposure_xlsx
from ecms_desktop.services.sales.periods import PeriodService
from tests.factories import import_sales, make_signed_certificate

AS_OF = dt.date(2026, 11, 20)
YEAR = (dt.date(2026, 1, 1), dt.date(2026, 12, 31))


@pytest.fixture
def report_db(db, company_id, tmp_path):  # type: ignore[no-untyped-def]
    """C-1 (named "Harbor Freight Depot") has a TX certificate; C-2 has none and is not in the customer list."""
    make_signed_certificate(db, company_id, "C-1", as_of=AS_OF, review="approved", customer_name="Harbor Freight Depot",
                            certificate_number="TX-1")
    import_sales(db, company_id, tmp_path,
                 "I1,1,2026-03-01,C-1,TX,100,8.25,no",  # covered, but tax collected: 8.25 of tax
                 "I2,1,2026-03-05,C-1,TX,40,3.30,no",  # the same again: 3.30 of tax
                 "I3,1,2026-03-02,C-2,TX,50,0,yes",  # exempt without certificate: 50 untaxed
                 "I4,1,2026-03-09,C-1,TX,20,0,yes",  # fine: covered and untaxed
                 "I5,1,2026-03-10,C-1,OK,70,0,yes")  # exempt in OK, where C-1 has no certificate: 70 untaxed
    DeterminationService(db).run(company_id)
    return db


def test_the_two_measures_are_separate_figures_never_summed(report_db, company_id) -> None:  # type: ignore[no-untyped-def]
    report = DeterminationService(report_db).exposure(company_id, *YEAR)
    rows = {(r.state, r.customer_number): r for r in report.rows}
    assert set(rows) == {("TX", "C-1"), ("TX", "C-2"), ("OK", "C-1")}
    assert rows[("TX", "C-1")].tax_on_covered == TaxOnCoveredSales(2, Decimal("140.00"), Decimal("11.55"))
    assert rows[("TX", "C-1")].uncovered == UncoveredExemptSales()
    assert rows[("TX", "C-2")].uncovered == UncoveredExemptSales(1, Decimal("50.00"), Decimal("50.00"))
    assert report.uncovered == UncoveredExemptSales(2, Decimal("120.00"), Decimal("120.00"))
    assert report.tax_on_covered == TaxOnCoveredSales(2, Decimal("140.00"), Decimal("11.55"))
    assert report.totals_by("state", UNCOVERED) == [("OK", Decimal("70.00")), ("TX", Decimal("50.00"))]
    assert report.totals_by("state", TAX_ON_COVERED) == [("TX", Decimal("11.55"))]
    with pytest.raises(ValueError):
        report.totals_by("state", "everything")


def test_customer_names_come_from_the_customer_list(report_db, company_id) -> None:  # type: ignore[no-untyped-def]
    report = DeterminationService(report_db).exposure(company_id, *YEAR)
    names = {r.customer_number: r.customer_name for r in report.rows}
    assert names == {"C-1": "Harbor Freight Depot", "C-2": ""}
    assert report.totals_by("customer", UNCOVERED) == [("C-1 Harbor Freight Depot", Decimal("70.00")),
                                                       ("C-2", Decimal("50.00"))]


def test_no_sales_is_told_from_no_exposure(report_db, company_id) -> None:  # type: ignore[no-untyped-def]
    svc = DeterminationService(report_db)
    empty = svc.exposure(company_id, dt.date(2025, 1, 1), dt.date(2025, 12, 31))
    assert empty.rows == () and not empty.has_sales and empty.sales_lines == 0
    clean = svc.exposure(company_id, dt.date(2026, 3, 9), dt.date(2026, 3, 9))  # only I4, which is fine
    assert clean.rows == () and clean.has_sales and clean.sales_lines == 1
    assert svc.exposure(company_id, *YEAR, state="ok").sales_lines == 1
    assert clean.undecided_lines == 0
    with pytest.raises(ValidationError, match="before it starts"):
        svc.exposure(company_id, YEAR[1], YEAR[0])


def test_lines_not_decided_yet_are_counted_apart(report_db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import_sales(report_db, company_id, tmp_path, "U1,1,2026-03-20,C-2,TX,10,0,yes", "U2,1,2025-03-20,C-2,TX,10,0,yes")
    svc = DeterminationService(report_db)
    report = svc.exposure(company_id, *YEAR)
    assert (report.sales_lines, report.undecided_lines) == (6, 1)
    assert report.uncovered.untaxed_amount == Decimal("120.00"), "an undecided line is in no figure"
    svc.run(company_id, date_from=YEAR[0], date_to=YEAR[1])
    after = svc.exposure(company_id, *YEAR)
    assert after.undecided_lines == 0 and after.uncovered.untaxed_amount == Decimal("130.00")


def test_lines_behind_a_row_say_which_certificate_and_why(report_db, company_id) -> None:  # type: ignore[no-untyped-def]
    svc = DeterminationService(report_db)
    covered = svc.exposure_lines(company_id, *YEAR, state="TX", period="2026-03", customer_number="C-1")
    assert [(x.invoice_number, x.measure, x.figure) for x in covered] == [
        ("I1", TAX_ON_COVERED, Decimal("8.25")), ("I2", TAX_ON_COVERED, Decimal("3.30"))]
    assert covered[0].certificate_number == "TX-1" and not covered[0].corrected
    assert covered[0].explanation and any(c.startswith("TX-1: covers the sale") for c in covered[0].candidates)
    uncovered = svc.exposure_lines(company_id, *YEAR, state="OK", period="2026-03", customer_number="C-1")
    assert [(x.invoice_number, x.measure, x.figure) for x in uncovered] == [("I5", UNCOVERED, Decimal("70.00"))]
    why = uncovered[0].explanation + " ".join(uncovered[0].candidates)
    assert uncovered[0].certificate_number == "" and "OK" in why
    assert svc.exposure_lines(company_id, *YEAR, state="TX", period="2026-04", customer_number="C-1") == ()


def test_a_correction_of_a_filed_period_counts_in_the_report_and_its_lines(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import_sales(db, company_id, tmp_path, "F1,1,2026-02-10,C-1,TX,100,0,yes")
    svc = DeterminationService(db)
    svc.run(company_id)
    assert svc.exposure(company_id, *YEAR).uncovered.untaxed_amount == Decimal("100.00")
    PeriodService(db).file(company_id, "TX", "2026-02")
    cert = make_signed_certificate(db, company_id, "C-1", as_of=AS_OF, review="approved", certificate_number="LATE")
    svc.reprocess(cert.id, *YEAR, as_of=AS_OF)
    report = svc.exposure(company_id, *YEAR)
    assert report.rows == () and report.has_sales
    assert svc.exposure_lines(company_id, *YEAR, state="TX", period="2026-02", customer_number="C-1") == ()


def test_workbook_has_each_measure_in_its_own_columns_and_totals(report_db, company_id, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    report = DeterminationService(report_db).exposure(company_id, *YEAR)
    path = tmp_path / "exposure.xlsx"
    write_exposure_xlsx(report, path)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Exposure", "By state", "By period", "By customer"]
    ws = wb["Exposure"]
    assert tuple(c.value for c in ws[2]) == DETAIL_HEADINGS
    body = {(row[0], row[2]): row for row in ws.iter_rows(min_row=3, max_row=ws.max_row - 1, values_only=True)}
    assert body[("TX", "C-1")] == ("TX", "2026-03", "C-1", "Harbor Freight Depot", 0, 0, 0, 2, 140, 11.55, 0, 0, 0)
    assert body[("TX", "C-2")][4:7] == (1, 50, 50) and body[("TX", "C-2")][9] == 0
    total = [c.value for c in ws[ws.max_row]]
    assert total[0].startswith("Totals") and total[6] == 120 and total[9] == 11.55
    assert 131.55 not in [c.value for row in ws.iter_rows() for c in row], "the two measures are never added"
    by_state = wb["By state"]
    assert [c.value for c in by_state[1]] == ["State", *SUMMARY_HEADINGS]
    assert {r[0]: r[1:] for r in by_state.iter_rows(min_row=2, values_only=True)} == {"OK": (70, 0, 0),
                                                                                      "TX": (50, 11.55, 0)}


def test_workbook_of_a_period_without_sales_says_so(tmp_path: Path) -> None:
    path = tmp_path / "empty.xlsx"
    write_exposure_xlsx(ExposureReport(*YEAR, rows=()), path)
    ws = openpyxl.load_workbook(path)["Exposure"]
    assert "no sales imported for this period" in ws["A1"].value
