"""Audit packs: selection, workbook, PDF book, certificate files, manifest, audit event, determinism."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import pymupdf
import pytest
from sqlalchemy import select

from ecms_desktop.models import AuditEvent, ReviewState
from ecms_desktop.services.audit_pack.content import AuditPackSelection
from ecms_desktop.services.audit_pack.gather import safe_name, unique_name
from ecms_desktop.services.audit_pack.period_status import in_force_ranges
from ecms_desktop.services.audit_pack.service import AuditPackService
from ecms_desktop.services.core.errors import Cancelled, ValidationError
from tests.factories import (
    AUDIT_PACK_EVIL_NAME,
    AUDIT_PACK_GENERATED_AT,
    AUDIT_PACK_PERIOD,
    make_audit_pack,
    make_audit_pack_data,
)

TODAY = dt.date.today()


@pytest.fixture
def pack(db, company_id, tmp_path: Path):  # type: ignore[no-untyped-def]
    data = make_audit_pack_data(db, company_id)
    result = make_audit_pack(db, tmp_path / "pack")
    return data, result


def test_selection_includes_what_was_in_force_and_nothing_else(db, pack) -> None:  # type: ignore[no-untyped-def]
    data, result = pack
    wb = openpyxl.load_workbook(result.folder / "audit-pack.xlsx")
    ws = wb["Certificates"]
    header = [c.value for c in ws[1]]
    ids = [row[header.index("Certificate ID")] for row in ws.iter_rows(min_row=2, values_only=True)]
    assert sorted(set(ids)) == sorted(data.included.values())
    # one row per certificate and state line: the multi-state certificate has two
    assert ids.count(data.included["multi"]) == 2
    assert len(ids) == len(data.included) + 1 == result.lines
    status = {row[header.index("Certificate ID")]: row[header.index("Status during the period")]
              for row in ws.iter_rows(min_row=2, values_only=True)}
    assert "archived" in status[data.included["archived"]]
    assert status[data.included["archived"]].startswith("In force ")
    assert status[data.included["evil"]].startswith("In force throughout")


def test_workbook_sheets_types_and_escaped_formulas(pack) -> None:  # type: ignore[no-untyped-def]
    data, result = pack
    path = result.folder / "audit-pack.xlsx"
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Summary", "Certificates", "Coverage", "Validation findings", "Permit checks",
                             "Renewal history", "Audit trail"]
    ws = wb["Certificates"]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref and ws.auto_filter.ref.startswith("A1:")
    header = [c.value for c in ws[1]]
    evil_rows = [r for r in ws.iter_rows(min_row=2) if r[header.index("Customer")].value == AUDIT_PACK_EVIL_NAME]
    assert evil_rows, "the customer's name is written as it is"
    cell = evil_rows[0][header.index("Customer")]
    assert cell.data_type == "s" and cell.quotePrefix
    number = evil_rows[0][header.index("Certificate number")]
    assert number.value == "-5+5" and number.data_type == "s"
    signed = evil_rows[0][header.index("Signed date")]
    assert isinstance(signed.value, dt.datetime) and signed.is_date
    assert isinstance(evil_rows[0][header.index("Certificate ID")].value, int)
    summary = wb["Summary"]
    labels = {r[0].value: r[1].value for r in summary.iter_rows() if r[0].value and len(r) > 1}
    assert labels["Period from"] == dt.datetime.combine(AUDIT_PACK_PERIOD[0], dt.time())
    assert labels["Generated at (UTC)"] == AUDIT_PACK_GENERATED_AT.replace(tzinfo=None)
    assert labels["Rules pack version"]
    audit_ws = wb["Audit trail"]
    assert audit_ws.max_row > len(data.included)
    assert isinstance(audit_ws.cell(2, 2).value, dt.datetime)
    with zipfile.ZipFile(path) as zf:
        xml = b"".join(zf.read(n) for n in zf.namelist() if n.startswith("xl/worksheets/"))
    assert b"<f>" not in xml and b"<f " not in xml, "no cell may be stored as a formula"
    assert b"HYPERLINK" in xml


def test_pdf_book_pages_bookmarks_and_certificate_pages(pack) -> None:  # type: ignore[no-untyped-def]
    data, result = pack
    doc = pymupdf.open(result.folder / "audit-pack.pdf")
    assert doc.page_count == result.pdf_pages
    toc = doc.get_toc()
    titles = [t[1] for t in toc]
    assert titles[:2] == ["Cover", "Contents"]
    assert titles[-2].startswith("Appendix A") and titles[-1].startswith("Appendix B")
    contents_text = "".join(doc[p].get_text() for p in range(1, toc[2][2] - 1))
    for level, title, page in toc[2:]:
        assert 1 <= page <= doc.page_count
        first_words = title.split(" - ")[0][:25]
        assert first_words in contents_text.replace("\n", " "), f"{title!r} is in the printed contents"
        if level == 3:
            cid = int(re.match(r"Certificate (\d+)", title).group(1))  # type: ignore[union-attr]
            text = doc[page - 1].get_text()
            if cid in data.texts:
                assert f"{data.texts[cid]} P1" in text
                assert f"{data.texts[cid]} P2" in doc[page].get_text()
            elif "could not be included" in title:
                assert "could not be included" in text and "broken.pdf" in text
            else:
                assert doc[page - 1].get_images(), "the image certificate is placed on its page"
    for i in range(doc.page_count):
        assert f"Page {i + 1} of {doc.page_count}" in doc[i].get_text()
    # the multi-state certificate appears under each of its states
    multi = [t for t in toc if t[0] == 3 and t[1].startswith(f"Certificate {data.included['multi']} ")]
    assert len(multi) == 2
    assert any("could not be opened" in p or "could not be copied" in p for p in result.problems)


def test_files_manifest_and_audit_event(db, pack) -> None:  # type: ignore[no-untyped-def]
    data, result = pack
    root = result.folder
    manifest = json.loads((root / "manifest.json").read_text())
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    on_disk = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert sorted([*listed, "manifest.json", "SHA256SUMS"]) == on_disk
    for rel, digest in listed.items():
        assert hashlib.sha256((root / rel).read_bytes()).hexdigest() == digest
    sums = dict(reversed(line.split("  ", 1)) for line in (root / "SHA256SUMS").read_text().splitlines())
    assert sums["manifest.json"] == hashlib.sha256((root / "manifest.json").read_bytes()).hexdigest()
    # originals byte for byte, in certificates/<customer>/<state>/
    cert_files = [p for p in listed if p.startswith("certificates/")]
    for cid, original in data.originals.items():
        assert any((root / p).read_bytes() == original for p in cert_files), cid
    for p in cert_files:
        parts = p.split("/")
        assert len(parts) == 4 and parts[2] in ("TX", "OK")
        assert all(part not in ("", ".", "..") and not part.startswith(".") for part in parts)
    assert manifest["program"]["version"] and manifest["rules_pack_version"]
    assert manifest["prepared_by"] == "tester"  # the person who prepared it (people.actor_name)
    assert manifest["selection"]["states"] == ["OK", "TX"]
    assert "password" not in manifest["database"]
    with db.reader() as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "audit_pack.generated")).scalar_one()
        assert event.after["manifest_sha256"] == result.manifest_sha256
        assert manifest["audit_chain"]["head_seq"] == event.seq - 1
        assert manifest["audit_chain"]["head_hash"] == event.prev_hash
    with zipfile.ZipFile(result.zip_path) as zf:
        names = sorted(n.split("/", 1)[1] for n in zf.namelist())
        assert names == on_disk
        assert all(i.date_time == (2030, 1, 2, 3, 4, 6) for i in zf.infolist())


def test_two_runs_give_the_same_files(db, company_id, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    make_audit_pack_data(db, company_id)
    a = make_audit_pack(db, tmp_path / "a")
    b = make_audit_pack(db, tmp_path / "b")
    files_a = {p.relative_to(a.folder).as_posix(): p.read_bytes() for p in a.folder.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b.folder).as_posix(): p.read_bytes() for p in b.folder.rglob("*") if p.is_file()}
    assert files_a.keys() == files_b.keys()
    differ = sorted(k for k in files_a if files_a[k] != files_b[k])
    # only the manifest (and SHA256SUMS, which holds its hash) differ: the audit-chain head moved by
    # the first run's own audit event
    assert differ == ["SHA256SUMS", "manifest.json"]
    ma, mb = (json.loads(files[n]) for files, n in ((files_a, "manifest.json"), (files_b, "manifest.json")))
    assert mb["audit_chain"]["head_seq"] == ma["audit_chain"]["head_seq"] + 1
    ma.pop("audit_chain"), mb.pop("audit_chain")
    assert ma == mb
    # a different generation time changes only the time-bearing parts
    c = make_audit_pack(db, tmp_path / "c", generated_at=AUDIT_PACK_GENERATED_AT + dt.timedelta(hours=5))
    files_c = {p.relative_to(c.folder).as_posix(): p.read_bytes() for p in c.folder.rglob("*") if p.is_file()}
    assert {k for k in files_c if files_c[k] != files_a[k]} <= {"SHA256SUMS", "manifest.json", "audit-pack.pdf",
                                                                  "audit-pack.xlsx"}
    wa, wc = (openpyxl.load_workbook(f.folder / "audit-pack.xlsx") for f in (a, c))
    for name in wa.sheetnames:
        rows_a = [r for r in wa[name].iter_rows(values_only=True) if r and r[0] != "Generated at (UTC)"]
        rows_c = [r for r in wc[name].iter_rows(values_only=True) if r and r[0] != "Generated at (UTC)"]
        assert rows_a == rows_c, name


def test_cancel_leaves_nothing_behind(db, company_id, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    make_audit_pack_data(db, company_id)
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 3

    where = tmp_path / "out"
    where.mkdir()
    with pytest.raises(Cancelled):
        make_audit_pack(db, where / "pack", cancel=cancel)
    assert sorted(p.name for p in where.iterdir()) == []
    with db.reader() as s:
        assert s.execute(select(AuditEvent).where(AuditEvent.action == "audit_pack.generated")).first() is None


def test_refuses_a_folder_with_files_and_a_bad_period(db, company_id, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("x")
    with pytest.raises(ValidationError, match="not an empty folder"):
        make_audit_pack(db, tmp_path / "busy")
    with pytest.raises(ValidationError, match="before it starts"):
        AuditPackService(db).generate(AuditPackSelection(TODAY, TODAY - dt.timedelta(days=1)), tmp_path / "n")
    with pytest.raises(ValidationError, match="review state"):
        AuditPackService(db).generate(AuditPackSelection(TODAY, TODAY, review_states=("maybe",)), tmp_path / "n")


def test_empty_selection_still_gives_a_complete_pack(db, company_id, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = make_audit_pack(db, tmp_path / "empty", states=("WY",))
    assert result.certificates == 0
    doc = pymupdf.open(result.folder / "audit-pack.pdf")
    assert [t[1] for t in doc.get_toc()][:2] == ["Cover", "Contents"]
    wb = openpyxl.load_workbook(result.folder / "audit-pack.xlsx")
    assert wb["Certificates"].max_row == 1


@pytest.mark.parametrize("raw", ["../../etc/passwd", "/abs/path", "CON", "con.txt", "LPT1.pdf", "..", "",
                                 "a" * 300 + ".pdf", "C:\\Windows\\x", "ümlaut ﬁle.pdf", ".hidden", "nul"])
def test_safe_names(raw: str) -> None:
    name = safe_name(raw)
    assert name and "/" not in name and "\\" not in name and ".." not in name
    assert not name.startswith(".") and ":" not in name
    assert len(name) <= 80
    assert name.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL", "LPT1", "COM1"}
    if raw.endswith(".pdf"):
        assert name.endswith(".pdf")


def test_unique_names_ignore_case() -> None:
    taken: set[str] = set()
    assert [unique_name(n, taken) for n in ("a.pdf", "A.pdf", "a.pdf")] == ["a.pdf", "A (2).pdf", "a (3).pdf"]


def test_in_force_ranges_follow_review_history_and_expiry() -> None:
    d = dt.date
    approved_then_archived = ((d(1, 1, 1), ReviewState.APPROVED.value), (d(2026, 3, 10), "archived"))
    assert in_force_ranges(approved_then_archived, d(2025, 1, 1), None, None, d(2026, 1, 1), d(2026, 6, 30)) == [
        (d(2026, 1, 1), d(2026, 3, 9))]
    assert in_force_ranges(((d(1, 1, 1), "approved"),), d(2026, 2, 1), d(2026, 4, 30), None,
                           d(2026, 1, 1), d(2026, 6, 30)) == [(d(2026, 2, 1), d(2026, 4, 30))]
    assert in_force_ranges(((d(1, 1, 1), "pending"),), None, None, None, d(2026, 1, 1), d(2026, 6, 30)) == []
    assert in_force_ranges(((d(1, 1, 1), "approved"),), None, None, d(2026, 2, 1), d(2026, 1, 1),
                           d(2026, 6, 30)) == [(d(2026, 1, 1), d(2026, 1, 31))]


def test_libreoffice_opens_the_workbook(pack, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    office = shutil.which("soffice") or shutil.which("libreoffice")
    if office is None:
        pytest.skip("LibreOffice (soffice/libreoffice) is not installed on this machine, so the workbook "
                    "could not be opened by a real spreadsheet application")
    _data, result = pack
    out = tmp_path / "lo"
    subprocess.run([office, "--headless", "--convert-to", "pdf", "--outdir", str(out),
                    str(result.folder / "audit-pack.xlsx")], check=True, timeout=180,
                   capture_output=True)
    converted = pymupdf.open(out / "audit-pack.pdf")
    assert converted.page_count >= 1
    assert "Exemption certificate audit pack" in converted[0].get_text()


def test_sections_from_validation_and_transactions(db, company_id, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from decimal import Decimal

    from ecms_desktop.models.transactions import Determination, TransactionLine

    data = make_audit_pack_data(db, company_id)
    cid = data.included["evil"]
    with db.transaction() as s:
        line = TransactionLine(company_id=company_id, invoice_number="=INV-1", line=1,
                               invoice_date=AUDIT_PACK_PERIOD[0], customer_number="C-1001", customer_key="c-1001",
                               ship_to_state="TX", amount=Decimal("100.00"), exempt_claimed=True)
        outside = TransactionLine(company_id=company_id, invoice_number="INV-0", line=1,
                                  invoice_date=AUDIT_PACK_PERIOD[0] - dt.timedelta(days=1), customer_number="C-1001",
                                  customer_key="c-1001", ship_to_state="TX", amount=Decimal("5"))
        s.add_all([line, outside])
        s.flush()
        s.add(Determination(transaction_line_id=line.id, company_id=company_id, exempt=True, certificate_id=cid,
                            certificate_number="-5+5", exempt_amount=Decimal("100.00"),
                            explanation={"summary": "exempt under certificate", "candidates": [
                                {"certificate_id": cid, "certificate_number": "-5+5", "outcome": "applied",
                                 "reasons": ["ship-to TX is covered"]}]}))
    result = make_audit_pack(db, tmp_path / "pack")
    wb = openpyxl.load_workbook(result.folder / "audit-pack.xlsx")
    cov = list(wb["Coverage"].iter_rows(min_row=2))
    assert len(cov) == 1
    assert cov[0][0].value == "=INV-1" and cov[0][0].data_type == "s"
    assert cov[0][5].value == 100 and cov[0][5].data_type == "n"
    assert "ship-to TX is covered" in cov[0][13].value
    findings = list(wb["Validation findings"].iter_rows(min_row=2, values_only=True))
    assert findings, "validation runs on create: its findings are in the pack"
    certs = wb["Certificates"]
    header = [c.value for c in certs[1]]
    assert all("not available" not in (r[header.index("Validation result")] or "")
               for r in certs.iter_rows(min_row=2, values_only=True))
    manifest = json.loads((result.folder / "manifest.json").read_text(encoding="utf-8"))
    assert [s["key"] for s in manifest["sections"]] == ["certificates", "coverage", "findings", "permit_checks",
                                                        "renewals", "audit_trail"]


def test_the_book_names_who_prepared_it(db, pack) -> None:  # type: ignore[no-untyped-def]
    import pymupdf

    _data, result = pack
    with pymupdf.open(result.folder / "audit-pack.pdf") as book:
        scope = " ".join(book[p].get_text() for p in range(min(3, book.page_count))).replace("\n", " ")
    assert "Prepared by" in scope and "tester" in scope
