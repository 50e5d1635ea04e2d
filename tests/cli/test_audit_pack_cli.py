"""``ecms audit-pack`` and ``ecms audit-pack verify`` end to end."""

from __future__ import annotations

from pathlib import Path

from ecms_desktop.cli import main
from tests.factories import AUDIT_PACK_PERIOD, make_audit_pack_data


def test_build_then_verify(db, db_url: str, company_id: int, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    data = make_audit_pack_data(db, company_id)
    out = tmp_path / "pack"
    rc = main(["--db", db_url, "audit-pack", "--out", str(out), "--from", AUDIT_PACK_PERIOD[0].isoformat(),
               "--to", AUDIT_PACK_PERIOD[1].isoformat(), "--state", "tx", "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert f"{len(data.included)} certificates" in printed
    assert (out / "audit-pack.pdf").is_file() and (tmp_path / "pack.zip").is_file()
    assert main(["--db", db_url, "audit-pack", "verify", str(tmp_path / "pack.zip"), "--check-database"]) == 0
    assert "recorded in the audit trail" in capsys.readouterr().out
    (out / "SHA256SUMS").write_text("")
    (out / "audit-pack.xlsx").write_bytes(b"changed")
    assert main(["audit-pack", "verify", str(out)]) == 1
    text = capsys.readouterr().out
    assert "CHANGED  audit-pack.xlsx" in text and "FAILED" in text


def test_usage_errors(db_url: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--db", db_url, "audit-pack", "--out", str(tmp_path / "p")]) == 2
    assert "--from, --to" in capsys.readouterr().err
    assert main(["--db", db_url, "audit-pack", "--out", str(tmp_path / "p"), "--from", "2026-02-01",
                 "--to", "2026-01-01"]) == 1
    assert "before it starts" in capsys.readouterr().err

