"""``ecms inbox`` (list, assign, discard, split): a file from ``ecms intake`` that matches no request waits
there, and each step from a script says what it did or what is wrong with the input."""

from __future__ import annotations

import json

from sqlalchemy import select

from ecms_desktop.cli import main
from ecms_desktop.models import AuditEvent
from ecms_desktop.services.integrity.check import check_database
from tests.factories import make_certificate, paged_pdf


def run(db, capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    code = main(["--db", db.url, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def arrive(db, capsys, tmp_path, name: str, pages: int = 1) -> int:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_bytes(paged_pdf(name, pages=pages))
    code, out, _ = run(db, capsys, "intake", str(path), "--format", "json")
    [item] = json.loads(out)
    assert code == 0 and item["outcome"] == "inbox", out
    return int(item["document_id"])


def test_intake_then_list_assign_discard_split(db, company_id, capsys, tmp_path) -> None:
    first = arrive(db, capsys, tmp_path, "one.pdf")
    second = arrive(db, capsys, tmp_path, "two.pdf")
    batch = arrive(db, capsys, tmp_path, "batch.pdf", pages=4)
    code, out, _ = run(db, capsys, "inbox")
    assert code == 0 and "one.pdf" in out and "batch.pdf" in out and "renewal_return" in out
    code, out, _ = run(db, capsys, "inbox", "--company", str(company_id), "--format", "json")
    items = json.loads(out)
    assert [i["id"] for i in items] == [first, second, batch] and items[2]["pages"] == 4

    code, out, _ = run(db, capsys, "inbox", "assign", str(first), "--customer", "C-9", "--new-customer-name",
                       "Nine Corp", "--state", "TX", "--form", "TX-01-339", "--reason", "resale", "--type", "blanket",
                       "--format", "json")
    done = json.loads(out)
    assert code == 0 and done["created_certificate"] and done["created_customer"] and done["customer_number"] == "C-9"
    code, out, _ = run(db, capsys, "show", str(done["certificate_id"]), "--format", "json")
    shown = json.loads(out)
    assert shown["review_state"] == "pending" and shown["purchaser_name"] == "" and shown["origin"] == "intake"
    assert [d["id"] for d in shown["documents"]] == [first]

    cert = make_certificate(db, company_id, customer="C-1", name="Buyer Inc")
    code, out, _ = run(db, capsys, "inbox", "assign", str(second), "--customer", "C-1", "--certificate", str(cert.id))
    assert code == 0 and f"attached to certificate {cert.id} of customer C-1" in out

    code, out, _ = run(db, capsys, "inbox", "split", str(batch), "--pages", "1-2", "--pages", "3-4")
    assert code == 0 and "batch (pages 1-2).pdf" in out and "batch (pages 3-4).pdf" in out
    code, out, _ = run(db, capsys, "inbox", "--format", "json")
    parts = [i["id"] for i in json.loads(out)]
    assert len(parts) == 2 and batch not in parts
    code, out, _ = run(db, capsys, "inbox", "discard", str(parts[0]), "--reason", "a blank cover page")
    assert code == 0 and f"Document {parts[0]}" in out and "discarded" in out
    code, out, _ = run(db, capsys, "inbox", "--format", "json")
    assert [i["id"] for i in json.loads(out)] == [parts[1]]
    with db.reader() as s:
        found = {e.action for e in s.execute(select(AuditEvent)).scalars()}
    assert {"document.assigned", "document.split", "document.discarded"} <= found
    assert check_database(db).ok


def test_bad_input_names_what_is_wrong(db, company_id, capsys, tmp_path) -> None:
    doc = arrive(db, capsys, tmp_path, "scan.pdf", pages=2)
    code, _, err = run(db, capsys, "inbox", "assign", "999", "--customer", "C-1")
    assert code == 1 and "There is no document 999" in err
    code, _, err = run(db, capsys, "inbox", "assign", str(doc), "--customer", "C-404", "--state", "TX", "--form",
                       "TX-01-339", "--reason", "resale", "--type", "blanket")
    assert code == 1 and "no customer with number or name 'C-404'" in err
    code, _, err = run(db, capsys, "inbox", "assign", str(doc), "--customer", "C-1", "--new-customer-name", "One",
                       "--form", "NO-SUCH-FORM")
    assert code == 1 and "NO-SUCH-FORM" in err
    code, _, err = run(db, capsys, "inbox", "split", str(doc), "--pages", "2-5")
    assert code == 1 and "pages 2-5 is outside the document (pages 1-2 of its file)" in err
    try:
        run(db, capsys, "inbox", "split", str(doc), "--pages", "two")
    except SystemExit as exc:
        assert exc.code == 2
    assert "'two' is not a page range" in capsys.readouterr().err
    code, _, err = run(db, capsys, "inbox", "discard", str(doc), "--reason", " ")
    assert code == 1 and f"Say why document {doc} is discarded" in err
    assert run(db, capsys, "inbox", "discard", str(doc), "--reason", "duplicate fax")[0] == 0
    code, _, err = run(db, capsys, "inbox", "assign", str(doc), "--customer", "C-1", "--new-customer-name", "One",
                       "--state", "TX", "--form", "TX-01-339", "--reason", "resale", "--type", "blanket")
    assert code == 1 and "was discarded by" in err and "duplicate fax" in err
    code, out, _ = run(db, capsys, "inbox")
    assert code == 0 and "The inbox is empty." in out


def test_assign_with_only_the_customer_makes_a_certificate_whose_unknown_fields_are_empty(db, company_id, capsys,
                                                                                          tmp_path) -> None:
    doc = arrive(db, capsys, tmp_path, "scan.pdf")
    code, out, err = run(db, capsys, "inbox", "assign", str(doc), "--customer", "C-1", "--new-customer-name",
                         "One Co", "--format", "json")
    assert code == 0, err
    done = json.loads(out)
    code, out, _ = run(db, capsys, "show", str(done["certificate_id"]), "--format", "json")
    shown = json.loads(out)
    assert (shown["form_code"], shown["lines"], shown["exempt_reason"], shown["certificate_type"]) == ("", [], "", "")
    assert shown["review_state"] == "pending"
    code, out, _ = run(db, capsys, "validate", str(done["certificate_id"]), "--format", "json")
    assert code == 0
    findings = json.loads(out)
    text = json.dumps(findings)
    for said in ("No state given: the document's state is not known yet", "No form given",
                 "No exempt reason given", "No certificate type given"):
        assert said in text
    assert check_database(db).ok
