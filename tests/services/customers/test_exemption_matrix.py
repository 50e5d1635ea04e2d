"""A customer's exemption matrix (each state where it buys, what covers it, the next action), the renewal
steps it offers taken through the renewal ladder, and the report of customers buying exempt without a
valid certificate, exported to Excel and CSV."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
from decimal import Decimal

import openpyxl
import pytest
from sqlalchemy import select

from ecms_desktop.models import Certificate
from ecms_desktop.models.renewal import RenewalRequest
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core.errors import NotFoundError, ValidationError
from ecms_desktop.services.customers.editing import CustomerEditService
from ecms_desktop.services.customers.matrix import Coverage, ExemptionMatrixService, NextAction
from ecms_desktop.services.customers.report import COLUMNS, UncoveredSalesReport
from ecms_desktop.services.renewals.customer_steps import take_renewal_step
from ecms_desktop.services.renewals.email_service import EmailService
from ecms_desktop.services.renewals.service import RenewalService
from tests.factories import DAY0, RULES, import_sales, make_customer, make_expiring_certificate
from tests.helpers.smtp_server import SmtpTestServer


def _days(n: int) -> dt.date:
    return DAY0 + dt.timedelta(days=n)


def _customer(db, company_id, tmp_path) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """C-1 ships to CA, holds TX (expiring in 20 days), OK (expired 10 days ago), NY (valid for a year), FL
    (pending review) and sold exempt in TX, OK and WA; C-2 holds a valid TX certificate and buys exempt there.
    Returns (C-1's id, its FL certificate id)."""
    make_expiring_certificate(db, company_id, "C-1", _days(20))
    make_expiring_certificate(db, company_id, "C-1", _days(-10), state="OK")
    make_expiring_certificate(db, company_id, "C-1", _days(400), state="NY")
    pending = make_expiring_certificate(db, company_id, "C-1", _days(400), state="FL", review="pending")
    make_expiring_certificate(db, company_id, "C-2", _days(400))
    customer_id = make_customer(db, company_id, "C-1")
    editor = CustomerEditService(db)
    record = editor.get(customer_id)
    editor.save(dataclasses.replace(record, ship_to_state="CA"), original=record)
    import_sales(db, company_id, tmp_path, "I1,1,2025-12-01,C-1,TX,100,0,yes", "I2,1,2025-12-02,C-1,OK,250.50,0,yes",
                 "I3,1,2025-12-03,C-1,WA,40,0,yes", "I4,1,2025-12-04,C-1,WA,10,0,yes",
                 "I5,1,2025-12-05,C-2,TX,99,0,yes", "I6,1,2026-02-01,C-1,AZ,500,0,yes")
    return customer_id, pending


def test_each_state_where_the_customer_buys_with_its_coverage_and_next_action(db, company_id, tmp_path) -> None:
    customer_id, pending = _customer(db, company_id, tmp_path)
    matrix = ExemptionMatrixService(db).matrix(customer_id, as_of=DAY0)
    got = {r.state: (r.sources, r.coverage, r.next_action) for r in matrix.rows}
    assert got == {
        "CA": (("ship-to",), Coverage.MISSING, NextAction.REQUEST),
        "FL": (("certificate",), Coverage.PENDING, NextAction.REVIEW),
        "NY": (("certificate",), Coverage.ACTIVE, NextAction.NONE),
        "OK": (("certificate", "sales"), Coverage.EXPIRED, NextAction.REQUEST),
        "TX": (("certificate", "sales"), Coverage.EXPIRING, NextAction.REQUEST),
        "WA": (("sales",), Coverage.MISSING, NextAction.REQUEST),
    }  # AZ: sold after the as-of date
    # a missing state also offers adding the certificate by hand
    assert {r.state for r in matrix.rows if r.other_action is NextAction.ADD} == {"CA", "WA"}
    assert matrix.row("FL").certificate_id == pending and matrix.row("TX").expiry_date == _days(20)
    assert (matrix.row("WA").exempt_sales, matrix.row("WA").exempt_amount) == (2, Decimal(50))
    with pytest.raises(NotFoundError, match="does not buy in ME"):
        matrix.row("ME")
    # The company's expiring-soon window decides "expiring": at 10 days TX is simply active.
    CompanyService(db).set_setting("expiring_soon_days", 10, company_id)
    assert ExemptionMatrixService(db).matrix(customer_id, as_of=DAY0).row("TX").coverage is Coverage.ACTIVE
    # A newer approved certificate makes the expired state active again.
    make_expiring_certificate(db, company_id, "C-1", _days(300), state="OK")
    assert ExemptionMatrixService(db).matrix(customer_id, as_of=DAY0).row("OK").coverage is Coverage.ACTIVE


def test_the_customer_of_a_certificate(db, company_id, tmp_path) -> None:
    customer_id, pending = _customer(db, company_id, tmp_path)
    assert ExemptionMatrixService(db).customer_of_certificate(pending) == customer_id
    with pytest.raises(NotFoundError):
        ExemptionMatrixService(db).customer_of_certificate(999_999)


def test_request_then_remind_go_through_the_renewal_ladder(db, company_id, tmp_path) -> None:
    customer_id, _ = _customer(db, company_id, tmp_path)
    with SmtpTestServer() as smtp:
        EmailService(db).set_profile(company_id, host="127.0.0.1", port=smtp.port, security="none",
                                     from_address="Acme Tax <tax@acme.example>")
        renewals = RenewalService(db, RULES)
        result = take_renewal_step(renewals, customer_id, "TX", as_of=DAY0)
        assert result.requests_opened == 1 and result.delivery is not None and result.delivery.sent == 1
        row = ExemptionMatrixService(db).matrix(customer_id, as_of=DAY0).row("TX")
        assert row.next_action is NextAction.REMIND and row.requested_on == DAY0
        with pytest.raises(ValidationError, match="no reminder is due on 2026-01-01"):
            take_renewal_step(renewals, customer_id, "TX", as_of=DAY0)
        later = take_renewal_step(renewals, customer_id, "TX", as_of=_days(7))
        assert later.reminders == 1 and len(smtp.messages) == 2
        with pytest.raises(ValidationError, match="not a renewal request or reminder"):
            take_renewal_step(renewals, customer_id, "NY", as_of=DAY0)
    with db.reader() as s:
        request = s.execute(select(RenewalRequest)).scalar_one()
        assert (request.state, request.reminders_sent) == ("TX", 1)
        assert s.get(Certificate, request.certificate_id).customer_id == customer_id  # type: ignore[union-attr]


def test_customers_without_a_valid_certificate_where_they_buy_exempt(db, company_id, tmp_path) -> None:
    _customer(db, company_id, tmp_path)
    report = UncoveredSalesReport(db)
    rows = report.rows(company_id, as_of=DAY0)
    assert [(r.customer_number, r.state, r.coverage, r.exempt_lines, r.exempt_amount) for r in rows] == [
        ("C-1", "OK", Coverage.EXPIRED, 1, Decimal("250.50")), ("C-1", "WA", Coverage.MISSING, 2, Decimal(50))]
    assert rows[0].values()[6] == _days(-10) and rows[1].last_exempt_sale == dt.date(2025, 12, 4)
    assert report.export(company_id, tmp_path / "uncovered.xlsx", as_of=DAY0) == 2
    sheet = openpyxl.load_workbook(tmp_path / "uncovered.xlsx").active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[1] == list(COLUMNS) and values[2][:5] == ["C-1", "Customer C-1", "c-1@buyer.example", "OK", "Expired"]
    assert values[2][8] == 250.5 and values[3][10] == "Request"
    report.export(company_id, tmp_path / "uncovered.csv", as_of=DAY0)
    with (tmp_path / "uncovered.csv").open(encoding="utf-8-sig", newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0] == list(COLUMNS) and [line[3] for line in lines[1:]] == ["OK", "WA"]
    with pytest.raises(ValidationError, match=r"written as \.xlsx or \.csv"):
        report.export(company_id, tmp_path / "uncovered.pdf", as_of=DAY0)
    assert not (tmp_path / "uncovered.pdf").exists()
