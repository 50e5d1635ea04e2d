"""``verify_pack``: a changed, missing or extra file is named, in the folder and in the zip."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

from ecms_desktop.errors import ValidationError
from ecms_desktop.services.audit_pack_verify import verify_against_audit_trail, verify_pack
from tests.services.test_audit_pack import build_data, generate


@pytest.fixture
def made(db, company_id, tmp_path: Path):  # type: ignore[no-untyped-def]
    build_data(db, company_id)
    return generate(db, tmp_path / "pack")


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
