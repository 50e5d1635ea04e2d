"""``ecms intake FILE --format json``: per file its document, outcome, certificate and what was read from it
(stored with the document); a duplicate shows the stored reading; ``ecms show`` shows it once the document
is a certificate's."""

from __future__ import annotations

import json

import pytest

from ecms_desktop.cli import main
from ecms_desktop.models import Document
from tests.factories import paged_pdf, text_pdf
from tests.helpers.real_forms import PURCHASER, TX_FORM, filled_tx_form

needs_form = pytest.mark.skipif(
    not TX_FORM.is_file(), reason=f"needs the real blank form {TX_FORM} (../shared is not part of the project)")


def run(db, capsys, *argv: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    code = main(["--db", db.url, *argv])
    out, err = capsys.readouterr()
    return code, out, err


@needs_form
def test_intake_json_gives_the_outcome_and_the_stored_extraction(db, company_id, capsys, tmp_path) -> None:
    path = tmp_path / "tx.pdf"
    path.write_bytes(filled_tx_form()[0])
    blank = tmp_path / "blank.pdf"
    blank.write_bytes(b"%PDF-1.7\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[3 0 R]"
                      b"/Count 1>>endobj 3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]>>endobj\n"
                      b"trailer<</Root 1 0 R>>\n%%EOF\n")
    code, out, err = run(db, capsys, "intake", str(path), str(blank), "--format", "json")
    assert code == 0, err
    item, empty = json.loads(out)
    assert {"file", "document_id", "outcome", "certificate_id", "extraction"} <= set(item)
    assert (item["file"], item["outcome"], item["certificate_id"]) == ("tx.pdf", "inbox", None)
    extraction = item["extraction"]
    assert extraction["method"] == "text_layer"
    assert extraction["form_code"]["value"] == "TX-01-339" and extraction["state"]["value"] == "TX"
    assert 0 < extraction["form_code"]["confidence"] <= 1
    name = extraction["fields"]["purchaser_name"]
    assert name["value"] == PURCHASER and name["page"] == 1 and len(name["box"]) == 4 and 0 < name["confidence"] <= 1
    assert isinstance(extraction["seconds"], float)
    with db.reader() as s:
        stored = s.get(Document, item["document_id"]).extraction  # type: ignore[union-attr]
    assert stored == extraction

    # an unreadable (blank) document still arrives in the inbox, saying nothing could be read
    assert empty["outcome"] == "inbox" and empty["extraction"]["method"] == "none"
    assert empty["extraction"]["notes"][-1] == "nothing could be read" and empty["extraction"]["fields"] == {}
    code, out, _ = run(db, capsys, "inbox", "--format", "json")
    assert sorted(i["id"] for i in json.loads(out)) == sorted([item["document_id"], empty["document_id"]])

    # the same file again: a duplicate, with the reading stored the first time
    code, out, _ = run(db, capsys, "intake", str(path), "--format", "json")
    [again] = json.loads(out)
    assert code == 0 and again["outcome"] == "duplicate" and again["document_id"] == item["document_id"]
    assert again["extraction"] == extraction

    code, out, err = run(db, capsys, "inbox", "assign", str(item["document_id"]), "--customer", "C-7",
                         "--new-customer-name", "Harbor Lights", "--state", "TX", "--form", "TX-01-339",
                         "--reason", "resale", "--type", "blanket", "--format", "json")
    assert code == 0, err
    code, out, _ = run(db, capsys, "show", str(json.loads(out)["certificate_id"]), "--format", "json")
    [document] = json.loads(out)["documents"]
    assert document["id"] == item["document_id"] and document["extraction"] == extraction


def test_intake_says_what_it_read_and_what_to_do_with_a_locked_file(db, company_id, capsys, tmp_path) -> None:
    letter = tmp_path / "letter.pdf"
    letter.write_bytes(paged_pdf("Dear seller, we are exempt from sales tax as a church.", pages=1))
    locked = tmp_path / "locked.pdf"
    locked.write_bytes(text_pdf(password="secret"))
    code, out, _ = run(db, capsys, "intake", str(letter), str(locked), "--format", "json")
    assert code == 1, "a refused file makes the exit status 1"
    read, refused = json.loads(out)
    assert read["outcome"] == "inbox" and "read by its text: not a form we know" in read["message"]
    notes = read["extraction"]["notes"]
    assert len([n for n in notes if "not a form we know" in n]) == 1 and notes[0].count("not a form we know") == 1
    assert refused["outcome"] == "refused" and refused["document_id"] is None
    assert "protected by a password" in refused["message"] and "ask the sender for a copy without a password" \
        in refused["message"] and "Enter the password" not in refused["message"]
