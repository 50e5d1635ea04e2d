"""``verify_pack``: a changed, missing or extra file is named, in the folder and in the zip."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from ecms_desktop.services.audit_pack.verify import verify_against_audit_trail, verify_pack
from ecms_desktop.services.core.errors import ValidationError
from tests.factories import make_audit_pack, make_audit_pack_data, make_certificate, paged_pdf


@pytest.fixture
def made(db, company_id, tmp_path: Path):  # type: ignore[no-untyped-def]
    make_audit_pack_data(db, company_id)
    return make_audit_pack(db, tmp_path / "pack")


def test_an_untouched_pack_verifies(db, made) -> None:  # type: ignore[no-untyped-def]
    for where in (made.folder, made.zip_path):
        report = verify_pack(where)
        assert report.ok, report.lines()
        assert report.files_checked == len(json.loads((made.folder / "manifest.json").read_text())["files"])
    assert "recorded in the audit trail" in verify_against_audit_trail(verify_pack(made.folder), db)


def test_changed_missing_and_extra_files_are_named(made, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "copy"
    shutil.copytree(made.folder, copy)
    cert = sorted((copy / "certificates").rglob("*.pdf"))[0]
    cert.write_bytes(cert.read_bytes() + b"\n% changed")
    (copy / "audit-pack.xlsx").unlink()
    (copy / "certificates" / "slipped-in.pdf").write_bytes(b"%PDF-1.4")
    report = verify_pack(copy)
    assert not report.ok
    assert report.changed == [cert.relative_to(copy).as_posix()]
    assert report.missing == ["audit-pack.xlsx"]
    assert report.extra == ["certificates/slipped-in.pdf"]


def test_the_zip_is_checked_entry_by_entry(made, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(made.zip_path) as src, zipfile.ZipFile(bad, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("audit-pack.pdf"):
                data += b"\n%tampered"
            if not item.filename.endswith("SHA256SUMS"):
                dst.writestr(item, data)
        dst.writestr("pack/notes.txt", "extra")
    report = verify_pack(bad)
    assert report.changed == ["audit-pack.pdf"]
    assert report.missing == ["SHA256SUMS"]
    assert report.extra == ["notes.txt"]


def test_a_rewritten_manifest_is_caught_by_the_sums_and_the_audit_trail(db, made, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / "copy"
    shutil.copytree(made.folder, copy)
    pdf = copy / "audit-pack.pdf"
    pdf.write_bytes(pdf.read_bytes() + b"\n")
    manifest = json.loads((copy / "manifest.json").read_text())
    import hashlib

    for f in manifest["files"]:
        if f["path"] == "audit-pack.pdf":
            f["sha256"] = hashlib.sha256(pdf.read_bytes()).hexdigest()
    (copy / "manifest.json").write_text(json.dumps(manifest))
    report = verify_pack(copy)
    assert "manifest.json" in report.changed and "SHA256SUMS" in report.changed
    verify_against_audit_trail(report, db)
    assert any("no record of a pack with this manifest" in p for p in report.problems)


def test_not_a_pack(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        verify_pack(tmp_path / "nothing")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(ValidationError, match="neither"):
        verify_pack(tmp_path / "x.txt")
    (tmp_path / "empty").mkdir()
    report = verify_pack(tmp_path / "empty")
    assert report.missing == ["manifest.json"] and not report.ok


def _structure_offsets(data: bytes) -> list[int]:
    """Every byte of the zip's headers, directory and end record (the data in between is sampled)."""
    import zipfile as zf_module

    with zf_module.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        start = zf.start_dir  # type: ignore[attr-defined]
    out: list[int] = []
    for info in infos:
        out += range(info.header_offset, info.header_offset + 30 + len(info.filename.encode()))
    return out + list(range(start, len(data)))


def test_a_zip_with_overwritten_bytes_is_reported_plainly_at_any_offset(db, company_id, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Overwrite bytes of a pack's zip at many offsets (every header and directory byte, and a sample
    of the data): ``ecms audit-pack verify`` exits 1 with a plain message every time, never a
    traceback and never "OK"."""
    import datetime as dt
    import random

    from ecms_desktop.cli import main
    from ecms_desktop.services.audit_pack.content import AuditPackSelection
    from ecms_desktop.services.audit_pack.service import AuditPackService
    from ecms_desktop.services.documents import storage as document_service

    cert = make_certificate(db, company_id)
    with db.transaction() as s:
        document_service.store_checked(s, document_service.check_bytes(paged_pdf("fuzz", pages=1), "c.pdf"),
                                       received_via="upload", certificate_id=cert.id, company_id=company_id)
    made = AuditPackService(db).generate(AuditPackSelection(dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
                                         tmp_path / "pack")
    assert verify_pack(made.zip_path).ok
    original = made.zip_path.read_bytes()
    rng = random.Random(11)
    offsets = sorted(set(_structure_offsets(original)) | set(range(0, len(original), max(len(original) // 400, 1))))
    damaged = tmp_path / "damaged.zip"
    seen: set[str] = set()
    for offset in offsets:
        data = bytearray(original)
        data[offset] = (data[offset] + rng.randrange(1, 256)) % 256  # always a different byte
        damaged.write_bytes(bytes(data))
        code = main(["audit-pack", "verify", str(damaged)])
        out, err = capsys.readouterr()
        text = out + err
        assert code == 1, f"offset {offset}: exit {code}\n{text}"
        assert "Traceback" not in text and ("FAILED" in text or "error: " in text), f"offset {offset}: {text}"
        seen.add(text.splitlines()[0].split(":")[0][:40])
    assert len(offsets) > 600
    assert any(s.startswith("CHANGED") for s in seen) and any(s.startswith("error") for s in seen), seen
