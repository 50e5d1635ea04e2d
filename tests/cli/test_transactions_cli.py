"""``ecms transactions import``, ``periods``, ``determine``, ``exposure``, ``reprocess``, ``exemptions``."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from ecms_desktop.cli import main
from ecms_desktop.services.certificates.service import CertificateService
from tests.factories import make_signed_certificate, write_sales_csv


@pytest.fixture
def setup(db, db_url, company_id, tmp_path):  # type: ignore[no-untyped-def]
    cert = make_signed_certificate(db, company_id, as_of=dt.date(2026, 11, 1), review="approved",
                                   customer_name="Customer One", certificate_number="TX-100",
                                   effective_date=dt.date(2026, 5, 1))
    path = write_sales_csv(tmp_path, "A1,1,2026-02-10,C-1,TX,100,0,yes", "A2,1,2026-06-10,C-1,TX,40,0,yes",
                           "A3,1,2026-06-11,C-9,TX,25,0,yes")
    return db_url, cert, path


def run(capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_import_determine_json_and_exposure(setup, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url, _cert, path = setup
    code, out, _ = run(capsys, "--db", url, "transactions", "import", str(path))
    assert code == 0 and "3 new lines" in out
    code, out, _ = run(capsys, "--db", url, "transactions", "import", str(path))
    assert "0 new lines" in out and "3 already present" in out
    code, out, _ = run(capsys, "--db", url, "determine", "--format", "json")
    rows = {r["invoice_number"]: r for r in json.loads(out)}
    assert code == 0 and set(rows) == {"A1", "A2", "A3"}
    assert rows["A2"]["exempt"] is True and rows["A2"]["certificate_number"] == "TX-100"
    assert rows["A2"]["exempt_amount"] == "40.00" and rows["A2"]["also_eligible"] == []
    assert rows["A1"]["exempt"] is False and rows["A1"]["certificate_number"] is None
    assert "not yet effective" in json.dumps(rows["A1"]["explanation"])
    code, out, _ = run(capsys, "--db", url, "exposure", "--from", "2026-01-01", "--to", "2026-12-31",
                       "--format", "json")
    data = json.loads(out)
    assert "total" not in data and data["sales_lines"] == 3 and data["undecided_lines"] == 0
    assert data["uncovered_exempt_sales"] == {"lines": 2, "sales_amount": "125.00", "untaxed_amount": "125.00"}
    assert data["tax_on_covered_sales"]["tax_collected"] == "0.00"
    assert {r["customer_number"] for r in data["rows"]} == {"C-1", "C-9"}
    assert {r["customer_name"] for r in data["rows"]} == {"Customer One", ""}
    code, out, _ = run(capsys, "--db", url, "exposure", "--from", "2026-01-01", "--to", "2026-12-31")
    assert "untaxed amount 125.00" in out and "tax 0.00" in out and "Customer One" in out
    code, out, _ = run(capsys, "--db", url, "exposure", "--from", "2025-01-01", "--to", "2025-12-31")
    assert code == 0 and "No sales imported for this period" in out
    code, out, _ = run(capsys, "--db", url, "exposure", "--from", "2026-01-01", "--to", "2026-12-31",
                       "--format", "csv")
    lines = out.splitlines()
    assert lines[0] == ("state,period,customer,name,uncovered lines,untaxed amount,taxed covered lines,"
                        "tax collected,past-policy lines,covered in law")
    assert "TX,2026-02,C-1,Customer One,1,100.00,0,0.00,0,0.00" in lines
    xlsx = tmp_path / "exposure.xlsx"
    code, out, _ = run(capsys, "--db", url, "exposure", "--from", "2026-01-01", "--to", "2026-12-31",
                       "--format", "xlsx", "--out", str(xlsx))
    from openpyxl import load_workbook

    wb = load_workbook(xlsx)
    ws = wb["Exposure"]
    assert [c.value for c in ws[2]][:4] == ["State", "Period", "Customer", "Customer name"]
    assert ws.cell(ws.max_row, 7).value == 125 and ws.cell(ws.max_row, 10).value == 0
    assert wb.sheetnames == ["Exposure", "By state", "By period", "By customer"]


def test_bad_import_names_row_and_column(setup, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url, _, _ = setup
    bad = write_sales_csv(tmp_path, "B1,1,2026-02-30,C-1,TX,100,0,yes", name="bad.csv")
    code, _, err = run(capsys, "--db", url, "transactions", "import", str(bad))
    assert code == 1 and "bad.csv, row 2, column 'invoice_date'" in err


def test_periods_and_reprocess_with_confirmation(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    url, cert, path = setup
    run(capsys, "--db", url, "transactions", "import", str(path))
    run(capsys, "--db", url, "determine")
    code, _, err = run(capsys, "--db", url, "periods", "file", "--state", "TX", "--period", "2026-Q1")
    assert code == 1 and "TX files monthly" in err
    assert run(capsys, "--db", url, "periods", "set", "--state", "TX", "--frequency", "quarterly")[0] == 0
    code, out, _ = run(capsys, "--db", url, "periods", "file", "--state", "TX", "--period", "2026-Q1")
    assert code == 0 and "Filed TX 2026-Q1" in out
    # the certificate was in fact effective from January: fix it, then reprocess
    svc = CertificateService(__import__("ecms_desktop.services.core.database", fromlist=["Database"]).Database(url))
    detail = svc.get(cert.id, dt.date(2026, 11, 1))
    from dataclasses import replace

    svc.save(cert.id, replace(detail.data, effective_date=dt.date(2026, 1, 1)), expected_version=detail.version,
             as_of=dt.date(2026, 11, 1))
    code, out, err = run(capsys, "--db", url, "reprocess", str(cert.id), "--from", "2026-01-01", "--to",
                         "2026-12-31", "--as-of", "2026-11-20")
    assert code == 1 and "1 in filed periods" in out and "--yes" in err  # not confirmed: nothing applied
    code, out, _ = run(capsys, "--db", url, "reprocess", str(cert.id), "--from", "2026-01-01", "--to",
                       "2026-12-31", "--as-of", "2026-11-20", "--format", "json")
    preview = json.loads(out)
    assert preview["applied"] is False and preview["preview"]["adjusted_from_filed_periods"] == 1
    code, out, _ = run(capsys, "--db", url, "reprocess", str(cert.id), "--from", "2026-01-01", "--to",
                       "2026-12-31", "--as-of", "2026-11-20", "--yes")
    assert code == 0 and "Applied 1 changes" in out
    code, out, _ = run(capsys, "--db", url, "reprocess", str(cert.id), "--from", "2026-01-01", "--to",
                       "2026-12-31", "--as-of", "2026-11-20", "--yes")
    assert "Nothing to change" in out


def test_exemption_status_json(setup, capsys) -> None:  # type: ignore[no-untyped-def]
    url, _, _ = setup
    code, out, _ = run(capsys, "--db", url, "exemptions", "status", "--customer", "c-1", "--state", "TX",
                       "--as-of", "2026-06-01", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["states"][0]["exempt"] is True and data["states"][0]["certificate_number"] == "TX-100"
    code, out, _ = run(capsys, "--db", url, "exemptions", "status", "--customer", "C-1", "--as-of", "2026-03-01",
                       "--format", "json")
    assert json.loads(out)["states"][0]["exempt"] is False


def test_deliver_to_a_feed_folder(setup, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    url, _, _ = setup
    folder = tmp_path / "feed"
    folder.mkdir()
    assert run(capsys, "--db", url, "exemptions", "add-folder", "erp", str(folder))[0] == 0
    code, out, _ = run(capsys, "--db", url, "exemptions", "deliver", "--as-of", "2026-11-20")
    assert code == 0 and "folder erp: delivered 0 events" in out
