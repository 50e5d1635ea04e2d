"""``ecms customers``: list and search, show, add, edit, merge (shown first, done with --yes), the exemption
matrix and the report of customers buying exempt without a valid certificate."""

from __future__ import annotations

import datetime as dt
import json

import openpyxl

from ecms_desktop.cli import main
from ecms_desktop.services.customers.service import CustomerService
from ecms_desktop.services.integrity.check import check_database
from ecms_desktop.services.renewals.email_service import EmailService
from tests.factories import DAY0, import_sales, make_expiring_certificate
from tests.helpers.smtp_server import SmtpTestServer


def run(db, capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    code = main(["--db", db.url, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_edit_list_and_show(db, company_id, capsys) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = run(db, capsys, "customers", "add", "C-9", "--legal-name", "Prairie Feed LLC", "--ship-to-state",
                       "ks", "--email", "ap@prairie.example")
    assert code == 0 and "legal name: Prairie Feed LLC" in out and "ship to state: KS" in out
    code, _, err = run(db, capsys, "customers", "add", "c-9", "--legal-name", "Someone Else")
    assert code == 1 and "already the number of Prairie Feed LLC" in err
    code, out, _ = run(db, capsys, "customers", "edit", "C-9", "--owner-email", "rep@acme.example", "--number",
                       "C-0009", "--format", "json")
    assert code == 0 and json.loads(out)["number"] == "C-0009" and json.loads(out)["owner_email"] == "rep@acme.example"
    code, out, _ = run(db, capsys, "customers", "--search", "prairie")
    assert code == 0 and "C-0009" in out
    code, out, _ = run(db, capsys, "customers", "show", "Prairie Feed LLC")
    assert code == 0 and "owner email: rep@acme.example" in out


def test_merge_matrix_and_report(db, company_id, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=-5))
    make_expiring_certificate(db, company_id, "C-1B", DAY0 + dt.timedelta(days=300), state="OK")
    import_sales(db, company_id, tmp_path, "I1,1,2025-12-01,C-1,TX,100,0,yes", "I2,1,2025-12-02,C-1B,WA,5,0,yes")
    code, out, _ = run(db, capsys, "customers", "merge", "C-1B", "C-1")
    assert code == 0 and out.startswith("Would merge: C-1B Customer C-1B is merged into C-1") and "--yes" in out
    assert CustomerService(db).find(company_id, "C-1B").number == "C-1B"  # nothing changed yet
    code, out, _ = run(db, capsys, "customers", "merge", "C-1B", "C-1", "--yes", "--format", "json")
    assert code == 0 and json.loads(out)["certificates"] == 1 and json.loads(out)["merged"] is True
    code, _, err = run(db, capsys, "customers", "merge", "C-1", "C-1B", "--yes")
    assert code == 1 and "cannot be merged into itself" in err
    code, out, _ = run(db, capsys, "customers", "matrix", "c-1b", "--as-of", DAY0.isoformat(), "--format", "json")
    rows = {r["state"]: (r["coverage"], r["next_action"]) for r in json.loads(out)["rows"]}
    assert code == 0 and rows == {"OK": ("active", ""), "TX": ("expired", "request"), "WA": ("missing", "request")}
    code, out, _ = run(db, capsys, "customers", "report", "--as-of", DAY0.isoformat())
    assert code == 0 and "Expired" in out and "Missing" in out
    code, out, _ = run(db, capsys, "customers", "report", "--as-of", DAY0.isoformat(), "-o", str(tmp_path / "r.xlsx"))
    assert code == 0 and out.startswith("2 customer/state rows written")
    sheet = openpyxl.load_workbook(tmp_path / "r.xlsx").active
    assert sheet is not None and [r[3] for r in sheet.iter_rows(min_row=3, values_only=True)] == ["TX", "WA"]
    assert check_database(db).ok


def test_request_sends_a_missing_states_first_request_then_its_reminder(db, company_id, capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=300))
    import_sales(db, company_id, tmp_path, "I1,1,2025-12-01,C-1,OK,40,0,yes")
    with SmtpTestServer() as smtp:
        EmailService(db).set_profile(company_id, host="127.0.0.1", port=smtp.port, security="none",
                                     from_address="Acme Tax <tax@acme.example>")
        code, out, err = run(db, capsys, "customers", "request", "C-1", "--state", "ok", "--as-of", DAY0.isoformat())
        assert code == 0, err
        assert out.startswith("1 requests, 0 reminders") and "1 sent" in out
        assert [m.rcpt_tos for m in smtp.messages] == [["c-1@buyer.example"]]
        code, _, err = run(db, capsys, "customers", "request", "C-1", "--state", "OK", "--as-of", DAY0.isoformat())
        assert code == 1 and "no reminder is due on 2026-01-01 for the request sent on 2026-01-01" in err
        day7 = (DAY0 + dt.timedelta(days=7)).isoformat()
        code, out, _ = run(db, capsys, "renewals", "plan", "--as-of", day7)
        assert code == 0 and "reminder 1  first request  OK     Customer C-1 (C-1)" in out
        code, out, _ = run(db, capsys, "customers", "request", "C-1", "--state", "OK", "--as-of", day7)
        assert code == 0 and out.startswith("0 requests, 1 reminders") and len(smtp.messages) == 2
        code, _, err = run(db, capsys, "customers", "request", "C-1", "--state", "TX", "--as-of", DAY0.isoformat())
        assert code == 1 and "TX: the next action is not a renewal request or reminder (active)" in err
    code, out, _ = run(db, capsys, "customers", "matrix", "C-1", "--as-of", day7, "--format", "json")
    rows = {r["state"]: (r["coverage"], r["next_action"]) for r in json.loads(out)["rows"]}
    assert rows == {"OK": ("missing", "remind"), "TX": ("active", "")}
