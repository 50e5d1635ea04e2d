"""``ecms validate`` (JSON shape, table, --all, --stale) and ``ecms permits import|verify|check``."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest

from ecms_desktop.cli import main
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.core.certificate_records import CertificateInput, LineInput
from ecms_desktop.services.customers.service import upsert_customer
from tests.factories import write_text_pdf

AS_OF = dt.date(2026, 11, 20)


@pytest.fixture
def certs(db, company_id) -> list[int]:
    with db.transaction() as s:
        customer = upsert_customer(s, company_id, "C-1", legal_name="Lone Star Retail LLC")[0].id
    base = dict(company_id=company_id, customer_id=customer, purchaser_name="Lone Star Retail LLC",
                purchaser_address="1 Elm St", property_description="Hardware", business_description="Store",
                signed=True, signer_title="Owner", signed_date=dt.date(2026, 3, 1), exempt_reason="resale")
    service = CertificateService(db)
    good = service.create(CertificateInput(form_code="TX-01-339", lines=(LineInput("TX"),), certificate_number="G-1",
                                           purchaser_tax_id="32012345678", **base), as_of=AS_OF).id
    bad = service.create(CertificateInput(form_code="SST-F0003", lines=(LineInput("TX"), LineInput("KS")),
                                          certificate_number="B-2", purchaser_tax_id="32012345678",
                                          business_type="retailer", signer_name="Pat", **base), as_of=AS_OF).id
    return [good, bad]


def run(db, capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["--db", db.url, *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_validate_json_shape(db, certs, capsys):
    code, out, _ = run(db, capsys, "validate", "--all", "--as-of", "2026-11-20", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert [d["id"] for d in data] == certs
    assert all(set(d) == {"id", "certificate_number", "findings"} for d in data)
    assert data[0] == {"id": certs[0], "certificate_number": "G-1", "findings": []}
    findings = data[1]["findings"]
    assert all(set(f) == {"rule", "severity", "state", "field", "message"} for f in findings)
    assert {"rule": "sst.refused", "severity": "error", "state": "TX", "field": "",
            "message": findings[0]["message"]} in findings
    assert "3.285" in findings[0]["message"]


def test_validate_one_as_table_and_usage_errors(db, certs, capsys):
    code, out, _ = run(db, capsys, "validate", str(certs[1]), "--as-of", "2026-11-20")
    assert code == 0 and "sst.refused" in out and "1 certificate(s) validated: 1 error(s)" in out
    code, _, err = run(db, capsys, "validate")
    assert code == 1 and "Give a certificate id or --all" in err
    code, _, err = run(db, capsys, "validate", "999")
    assert code == 1 and "no certificate 999" in err


def test_validate_stale_lists_unvalidated_then_nothing(db, company_id, certs, capsys):
    from ecms_desktop.rules import load_rules_pack
    from ecms_desktop.services.certificates.service import create_certificate

    code, out, _ = run(db, capsys, "validate", "--stale", "--format", "json", "--as-of", "2026-11-20")
    assert code == 0 and json.loads(out) == []  # both were validated when created
    detail = CertificateService(db).get(certs[0], AS_OF)
    with db.transaction() as s:  # stored without validation, as bulk demo data is
        never = create_certificate(s, load_rules_pack(), dataclasses.replace(detail.data, certificate_number="N-3"),
                                   origin="demo").id
    code, out, _ = run(db, capsys, "validate", "--stale", "--format", "json", "--as-of", "2026-11-20")
    assert code == 0 and [d["id"] for d in json.loads(out)] == [never]
    run(db, capsys, "validate", "--stale", "--revalidate", "--as-of", "2026-11-20")
    code, out, _ = run(db, capsys, "validate", "--stale", "--format", "json", "--as-of", "2026-11-20")
    assert code == 0 and json.loads(out) == []


def test_permits_import_verify_and_manual_check(db, certs, capsys, tmp_path: Path):
    path = tmp_path / "tx.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["Taxpayer Number", "Taxpayer Name", "Outlet Name", "Outlet Permit Issue Date", "Outlet City"])
        w.writerow(["32012345678", "LONE STAR RETAIL LLC", "LONE STAR #1", "01/15/2019", "AUSTIN"])
    code, out, err = run(db, capsys, "permits", "import", "--state", "TX", str(path), "--as-of", "2026-11-01")
    assert code == 0, err
    assert "Imported 1 TX permit holders" in out and "2026-11-01" in out
    code, out, _ = run(db, capsys, "permits", "verify", str(certs[0]), "--format", "json")
    (check,) = json.loads(out)
    assert (check["result"], check["state"], check["as_of"]) == ("active", "TX", "2026-11-01")

    custom = tmp_path / "ks.csv"
    custom.write_text("Acct,Name\n00412345678F01,KS Co\n")
    code, _, err = run(db, capsys, "permits", "import", "--state", "KS", str(custom))
    assert code == 1 and "--map" in err
    code, _, err = run(db, capsys, "permits", "import", "--state", "KS", str(custom), "--map", "Acct")
    assert code == 1 and "COLUMN=FIELD" in err
    code, out, err = run(db, capsys, "permits", "import", "--state", "KS", str(custom), "--map",
                         "Acct=permit_number", "--map", "Name=legal_name")
    assert code == 0, err

    evidence = write_text_pdf(tmp_path / "lookup.pdf", "Taxpayer 32012345678: ACTIVE")
    code, out, err = run(db, capsys, "permits", "check", str(certs[0]), "--result", "active", "--evidence",
                         str(evidence), "--source", "https://mycpa.cpa.state.tx.us/staxpayersearch/")
    assert code == 0, err
    assert "TX 32012345678 is active" in out
    code, _, err = run(db, capsys, "permits", "check", str(certs[1]), "--result", "active", "--evidence",
                       str(evidence), "--source", "https://example.invalid")
    assert code == 1 and "say which state" in err


def test_list_the_work_a_check_left(db, certs, capsys):
    good, bad = certs
    code, out, _ = run(db, capsys, "list", "--check", "errors", "--as-of", "2026-11-20", "--format", "json")
    assert code == 0 and [d["id"] for d in json.loads(out)] == [bad]
    code, out, _ = run(db, capsys, "list", "--check", "permit_unchecked", "--as-of", "2026-11-20", "--format", "json")
    assert code == 0 and [d["id"] for d in json.loads(out)] == [good, bad]
