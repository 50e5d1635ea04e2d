"""``ecms demo`` then ``ecms list --format json`` through the command-line entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ecms_desktop.cli import main


def test_demo_then_list_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "demo", "--certificates", "50", "--seed", "1", "--as-of", "2026-11-22"]) == 0
    out = capsys.readouterr().out
    assert "certificates" in out and "50" in out

    assert main(["--db", url, "list", "--format", "json", "--as-of", "2026-11-22"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 50
    for row in rows:
        for key in ("id", "customer_number", "customer_name", "form", "certificate_number", "status",
                    "expiry_date", "lines"):
            assert key in row, key
        assert row["lines"], row
        for line in row["lines"]:
            assert set(line) >= {"state", "status", "expiry_date"}
            assert len(line["state"]) == 2
    statuses = {row["status"] for row in rows}
    assert statuses == {"active", "expiring_soon", "expired", "archived", "pending_review", "rejected"}
    assert any(len(row["lines"]) > 1 for row in rows if row["form"] == "SST-F0003")
    assert all(row["customer_number"].startswith("C-") for row in rows)


def test_demo_refuses_a_database_with_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'demo.sqlite'}"
    assert main(["--db", url, "init"]) == 0
    assert main(["--db", url, "company", "add", "Acme Supply Co"]) == 0
    capsys.readouterr()
    assert main(["--db", url, "demo", "--certificates", "10", "--as-of", "2026-11-22"]) == 1
    err = capsys.readouterr().err
    assert "already holds data" in err and "--add" in err
    assert main(["--db", url, "demo", "--certificates", "10", "--as-of", "2026-11-22", "--add"]) == 0
