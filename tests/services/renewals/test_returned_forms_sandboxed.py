"""Returned forms are untrusted: every parse (the e-mail, the probe, the form's fields and text) runs
in the bounded document worker, so a hostile or broken file is refused with its reason, never crashes
``ecms intake`` or its watched folder, and never keeps them busy past the worker's time limit."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ecms_desktop.cli import main
from ecms_desktop.models import Document
from ecms_desktop.models.renewal import IntakeRecord, RenewalRequest
from ecms_desktop.services.renewals.returned_forms import ReturnedFormsService
from ecms_desktop.services.renewals.service import RenewalService
from tests.factories import (
    DAY0,
    RULES,
    customer_fills,
    eml_bytes,
    make_expiring_certificate,
    sent_renewal_form,
    xobject_bomb,
)


def _bad_files(shared_dir: Path) -> list[Path]:
    return sorted(p for p in (shared_dir / "bad-pdfs").iterdir() if p.name != "SOURCES.md")


def _returned_form(db, company_id: int) -> tuple[str, bytes]:  # type: ignore[no-untyped-def]
    cert_id = make_expiring_certificate(db, company_id, "C-GOOD", DAY0 + dt.timedelta(days=20))
    RenewalService(db, RULES).run(company_id, DAY0, send=False)
    token, form, _to = sent_renewal_form(db, cert_id)
    return token, customer_fills(form, {"signer_name": "Dana Buyer", "signed_date": "2026-01-20"})


def test_every_bad_pdf_through_ecms_intake_is_refused_or_kept_never_a_crash(db, company_id, shared_dir, capsys):
    files = _bad_files(shared_dir)
    code = main(["--db", db.url, "intake", *map(str, files)])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    assert {line.split(": ", 1)[0] for line in out.splitlines()} == {"refused", "inbox"}
    by_name = {line.split(": ", 2)[1]: line for line in out.splitlines()}
    assert sorted(by_name) == sorted(p.name for p in files)  # one answer per file, none lost
    assert by_name["colour-components-overflow.pdf"].startswith("refused: ")
    assert "too many color components" in by_name["colour-components-overflow.pdf"]
    refused = {name for name, line in by_name.items() if line.startswith("refused: ")}
    with db.reader() as s:
        recorded = dict(s.execute(select(IntakeRecord.source_name, IntakeRecord.values)
                                  .where(IntakeRecord.outcome == "refused")).all())
        stored = s.execute(select(func.count(Document.id))).scalar_one()
    assert set(recorded) == refused  # each refusal is recorded with its reason
    assert all(recorded[name]["reason"].startswith(name) for name in refused)
    assert stored == len(files) - len(refused)


def test_watched_folder_survives_every_bad_pdf_and_reads_the_next_good_file(db, company_id, shared_dir, capsys,
                                                                            tmp_path):
    token, good = _returned_form(db, company_id)
    watched = tmp_path / "inbox"
    watched.mkdir()
    for path in _bad_files(shared_dir):
        shutil.copy(path, watched / path.name)
    (watched / "zz-returned.pdf").write_bytes(good)
    code = main(["--db", db.url, "intake", "--watch", str(watched), "--interval", "0", "--cycles", "1"])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in out + err
    assert "pending certificate" in out and token in out
    assert (watched / "done" / "zz-returned.pdf").exists()
    assert (watched / "refused" / "colour-components-overflow.pdf").exists()
    assert not [p for p in watched.iterdir() if p.is_file()]  # every file was handled and moved aside
    with db.reader() as s:
        assert s.execute(select(RenewalRequest.status).where(RenewalRequest.token == token)).scalar_one() == "answered"
        refused = s.execute(select(IntakeRecord.source_name).where(IntakeRecord.outcome == "refused")).scalars().all()
    assert "colour-components-overflow.pdf" in refused
    assert sorted(refused) == sorted(p.name for p in (watched / "refused").iterdir())
    # the next start has nothing left to trip on
    code = main(["--db", db.url, "intake", "--watch", str(watched), "--interval", "0", "--cycles", "1"])
    out, err = capsys.readouterr()
    assert code == 0 and out == ""


def test_watched_folder_does_not_read_a_refused_file_again_when_it_cannot_move_it(db, company_id, shared_dir,
                                                                                capsys, tmp_path, monkeypatch):
    watched = tmp_path / "inbox"
    watched.mkdir()
    bad = watched / "colour-components-overflow.pdf"
    shutil.copy(shared_dir / "bad-pdfs" / bad.name, bad)
    real_replace = Path.replace

    def no_move(self: Path, target):  # type: ignore[no-untyped-def]
        if self.name == bad.name:
            raise PermissionError(13, "Permission denied")
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", no_move)
    argv = ["--db", db.url, "intake", "--watch", str(watched), "--interval", "0", "--cycles", "2"]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert out.count("refused: ") == 1 and "too many color components" in out  # read once, not at every look
    assert "could not be moved to refused/" in err and "Traceback" not in err
    assert main(argv) == 0  # a new start: remembered in the database, not parsed again
    out, err = capsys.readouterr()
    assert out.count("refused: ") == 1 and "not read again, refused on" in out
    with db.reader() as s:
        assert s.execute(select(func.count(IntakeRecord.id)).where(IntakeRecord.outcome == "refused")).scalar_one() == 1


def test_crafted_slow_pdf_is_refused_within_the_time_limit(db, company_id, tmp_path):
    path = tmp_path / "returned.pdf"
    path.write_bytes(xobject_bomb(16))  # ~4**5 times the 8 s of level 11 in a plain process
    service = ReturnedFormsService(db, RULES, read_timeout=2)
    [item] = service.intake([path], company_id)
    assert item.outcome == "refused"
    assert item.message.startswith("returned.pdf: ")
    assert "longer than 2 s" in item.message or "more memory" in item.message
    with db.reader() as s:
        assert s.execute(select(func.count(Document.id))).scalar_one() == 0  # nothing of it is stored
        assert s.execute(select(IntakeRecord.outcome)).scalars().all() == ["refused"]


def test_eml_is_parsed_in_the_sandbox_and_a_bad_attachment_is_refused_alone(db, company_id, shared_dir, tmp_path):
    token, good = _returned_form(db, company_id)
    bad = (shared_dir / "bad-pdfs" / "colour-components-overflow.pdf").read_bytes()
    path = tmp_path / "reply.eml"
    path.write_bytes(eml_bytes("c-good@buyer.example", f"Re: [{token}]",
                               [("scan.pdf", bad, "application/pdf"), ("form.pdf", good, "application/pdf")],
                               dt.datetime(2026, 1, 21, 9, 0, tzinfo=dt.UTC), body="Attached."))
    items = ReturnedFormsService(db, RULES).intake([path], company_id)
    assert [(i.name, i.outcome) for i in items] == [("reply.eml: form.pdf", "answered"),
                                                   ("reply.eml: scan.pdf", "refused")]
    assert "too many color components" in items[1].message
    with db.reader() as s:
        record = s.execute(select(IntakeRecord).where(IntakeRecord.outcome == "answered")).scalar_one()
        assert record.sent_at == dt.datetime(2026, 1, 21, 9, 0, tzinfo=dt.UTC)
        assert record.sender == "c-good@buyer.example"


@pytest.mark.parametrize("raw", [b"", b"From: x\r\n\r\n" + b"(" * 200_000])
def test_eml_without_attachments_or_damaged_is_refused_with_its_name(db, company_id, tmp_path, raw):
    path = tmp_path / "odd.eml"
    path.write_bytes(raw)
    [item] = ReturnedFormsService(db, RULES).intake([path], company_id)
    assert item.outcome == "refused" and item.message.startswith("odd.eml: ")
