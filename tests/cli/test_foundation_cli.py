"""The `ecms` tool end to end: init, companies, import, list, show, audit, policy, exit statuses."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from ecms_desktop import __version__
from tests.helpers.cli import ecms

HEADER = ("customer_number,customer_name,customer_email,state,form,certificate_number,exempt_reason,"
          "purchaser_tax_id,certificate_type,po_number,signed_date,effective_date,expiry_date,review_status,document\n")


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A database created with ``ecms init`` (the only way one comes to be)."""
    created = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    assert ecms("--db", created, "init")[0] == 0
    return created


def test_version() -> None:
    code, out, _ = ecms("--version")
    assert code == 0 and out.strip() == f"ecms {__version__}"


def test_init_creates_then_reports_up_to_date(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.sqlite'}"
    code, out, _ = ecms("--db", url, "init")
    assert code == 0 and out.startswith("Created")
    code, out, _ = ecms("--db", url, "init")
    assert code == 0 and "up to date" in out


def test_import_list_show_and_audit(url: str, tmp_path: Path) -> None:
    """(R-1 and F-1 carry every field their forms require, so they stay approved; this test used to
    import them without those fields and expect them active. R-4 lacks them and lands pending.)"""
    csv_path = tmp_path / "certs.csv"
    extra = ",purchaser_address,property_description,business_description,signer_title,expiry_override_reason\n"
    # F-1 (FL DR-13) carries the expiry date Florida prints on it (brochure GT-800060), entered as printed.
    csv_path.write_text(HEADER.rstrip("\n") + extra +
                        "C-1,Bluebonnet Resale LLC,,TX,TX-01-339,R-1,resale,32098765432,blanket,,2026-03-15,,,,,"
                        "1 Main St Austin TX,goods for resale,retail store,Owner,\n"
                        "C-2,Sunshine Co,,FL,fl dr-13,F-1,resale,78-8012345678-9,blanket,,2026-02-01,,2026-12-31,,,"
                        "2 Beach Rd Miami FL,,,,printed on the certificate\n"
                        "C-3,Lakes Supply,,OH;MI,SST-F0003,S-1,resale,,blanket,,2025-05-01,,,pending,,,,,,\n"
                        "C-4,Half Done LLC,,TX,TX-01-339,R-4,resale,32098765432,blanket,,2026-03-15,,,,,,,,,\n",
                        encoding="utf-8")
    assert ecms("--db", url, "company", "add", "Acme", "--state", "TX", "--registration", "TX=32012345678")[0] == 0
    code, out, _ = ecms("--db", url, "import", "certificates", str(csv_path), "--as-of", "2026-11-22")
    assert code == 0 and "Imported 4 certificates" in out
    assert "Validation: 2 with errors, 0 with warnings." in out
    assert "1 certificate asked for as approved is pending review" in out

    code, out, _ = ecms("--db", url, "list", "--format", "json", "--as-of", "2026-12-10")
    rows = {r["certificate_number"]: r for r in json.loads(out)}
    assert set(rows) == {"R-1", "F-1", "S-1", "R-4"}
    assert rows["R-4"]["status"] == "pending_review"
    for row in rows.values():
        assert {"id", "customer_number", "customer_name", "form", "certificate_number", "status",
                "expiry_date", "lines"} <= set(row)
    assert rows["F-1"]["status"] == "expiring_soon" and rows["F-1"]["expiry_date"] == "2026-12-31"
    assert rows["F-1"]["lines"] == [{"state": "FL", "status": "expiring_soon", "expiry_date": "2026-12-31"}]
    assert rows["R-1"]["status"] == "active" and rows["R-1"]["expiry_date"] is None
    assert [line["state"] for line in rows["S-1"]["lines"]] == ["MI", "OH"]
    assert rows["S-1"]["status"] == "pending_review"

    code, out, _ = ecms("--db", url, "list", "--status", "expired", "--format", "json", "--as-of", "2027-01-01")
    assert [r["certificate_number"] for r in json.loads(out)] == ["F-1"]
    code, out, _ = ecms("--db", url, "list", "--state", "mi", "--format", "csv")
    assert out.splitlines()[0].startswith("id,customer_number") and len(out.splitlines()) == 2
    code, out, _ = ecms("--db", url, "list", "--customer", " c-1 ")
    assert "Bluebonnet" in out and "Sunshine" not in out

    fl_id = rows["F-1"]["id"]
    code, out, _ = ecms("--db", url, "show", str(fl_id), "--format", "json", "--as-of", "2027-01-01")
    shown = json.loads(out)
    assert shown["status"] == "expired" and shown["form_code"] == "FL-DR-13"
    assert shown["lines"][0]["expiry_basis"].startswith("As printed on the document")

    code, out, _ = ecms("--db", url, "audit", "verify")
    assert code == 0 and "intact" in out
    code, out, _ = ecms("--db", url, "audit", "log", str(fl_id), "--format", "json")
    assert [e["action"] for e in json.loads(out)] == ["certificate.created", "certificate.validated"]
    code, out, _ = ecms("--db", url, "audit", "log", str(fl_id))  # in words, as the History tab tells it
    assert code == 0 and "Certificate created (from import) by " in out and "Validated (" in out


def test_policy_change_through_the_cli_is_audited(url: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "certs.csv"
    csv_path.write_text(HEADER + "C-1,Blue LLC,,KY,KY-51A105,K-1,resale,,blanket,,2026-03-15,,,,\n", encoding="utf-8")
    ecms("--db", url, "company", "add", "Acme")
    ecms("--db", url, "import", "certificates", str(csv_path))
    code, out, err = ecms("--db", url, "policy", "set", "--state", "KY", "--purpose", "resale", "--kind", "years",
                          "--years", "3", "--reason", "auditor's request")
    assert code == 0, err
    code, out, _ = ecms("--db", url, "show", "1", "--format", "json")
    assert json.loads(out)["lines"][0]["expiry_date"] == "2029-03-14"
    code, out, _ = ecms("--db", url, "audit", "log", "--format", "json")
    assert "expiry_policy.changed" in [e["action"] for e in json.loads(out)]


def test_bad_import_exits_1_and_names_rows(url: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "bad.csv"
    csv_path.write_text(HEADER + "C-1,Blue LLC,,TX,TX-01-339,R-1,resale,,blanket,,2026-13-45,,,,\n"
                        "C-2,Red LLC,,ZZ,TX-01-339,R-2,resale,,blanket,,2026-01-01,,,,\n", encoding="utf-8")
    ecms("--db", url, "company", "add", "Acme")
    code, out, err = ecms("--db", url, "import", "certificates", str(csv_path))
    assert code == 1
    assert "bad.csv, row 2, column 'signed_date'" in err and "bad.csv, row 3, column 'state'" in err
    assert "Nothing was imported" in err
    code, out, _ = ecms("--db", url, "list", "--format", "json")
    assert json.loads(out) == []


def test_tampering_makes_audit_verify_fail(url: str) -> None:
    ecms("--db", url, "company", "add", "Acme")
    ecms("--db", url, "company", "add", "Beta")
    con = sqlite3.connect(url.removeprefix("sqlite:///"))
    con.execute("UPDATE audit_event SET after = '{\"name\": \"Evil\"}' WHERE seq = 2")
    con.commit()
    con.close()
    code, out, _ = ecms("--db", url, "audit", "verify")
    assert code == 1 and "BROKEN at event 2" in out


def test_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    foreign = tmp_path / "other.sqlite"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t (x)")
    con.close()
    code, _, err = ecms("--db", f"sqlite:///{foreign}", "list")
    assert code == 1 and err.startswith("error: ") and "not an ECMS Desktop database" in err
    assert ecms("--db", f"sqlite:///{tmp_path / 'x.sqlite'}", "init")[0] == 0
    code, _, err = ecms("--db", f"sqlite:///{tmp_path / 'x.sqlite'}", "show", "42")
    assert code == 1 and "no certificate 42" in err
    code, _, err = ecms("list", "--as-of", "2026-02-30")
    assert code == 2 and "YYYY-MM-DD" in err


def test_import_accept_findings_needs_a_reason_and_is_reported(url: str, tmp_path: Path) -> None:
    csv_path = tmp_path / "certs.csv"
    csv_path.write_text(HEADER + "C-1,Blue LLC,,TX,SST-F0003,S-1,resale,32098765432,blanket,,2026-03-15,,,,\n",
                        encoding="utf-8")
    ecms("--db", url, "company", "add", "Acme")
    code, _, err = ecms("--db", url, "import", "certificates", str(csv_path), "--accept-findings")
    assert code == 2 and "--accept-findings needs --reason" in err
    code, _, err = ecms("--db", url, "import", "certificates", str(csv_path), "--reason", "why")
    assert code == 2 and "--reason goes with --accept-findings" in err
    code, out, err = ecms("--db", url, "import", "certificates", str(csv_path), "--as-of", "2026-11-22",
                          "--accept-findings", "--reason", "approved in the old system")
    assert code == 0, err
    assert "Validation: 1 with errors" in out
    assert "1 certificate approved with its findings accepted (reason recorded: 'approved in the old system')" in out
    code, out, _ = ecms("--db", url, "list", "--format", "json", "--as-of", "2026-11-22")
    assert [r["review_state"] for r in json.loads(out)] == ["approved"]
