"""``./scripts/run``, the Quick start's first command, opens a database that holds a company but no certificates
as it is (it used to run the demo on it, which refuses a database holding data, and stop there)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ECMS = Path(sys.executable).with_name("ecms")


def _ecms(db: Path, *args: str) -> str:
    done = subprocess.run([str(ECMS), "--db", str(db), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_run_opens_a_database_with_a_company_and_no_certificates(tmp_path: Path) -> None:
    if not (REPO / ".venv" / "bin" / "ecms").exists() or Path(sys.executable).parent != REPO / ".venv" / "bin":
        pytest.skip("./scripts/run starts the program of the repository's .venv, and these tests run elsewhere")
    db = tmp_path / "own.db"
    _ecms(db, "init")
    _ecms(db, "company", "add", "Acme Supply")
    picture = tmp_path / "desk.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run([str(REPO / "scripts" / "run"), "--db", str(db), "--as-of", "2026-12-01",
                           "--screenshot", str(picture), "--size", "1280x800"],
                          capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Creating demo data" not in done.stdout
    assert picture.stat().st_size > 10_000
    assert _ecms(db, "list", "--format", "csv").count("\n") == 1  # the header only: no demo certificates
    assert "Acme Supply" in _ecms(db, "company", "list")


@pytest.mark.slow
def test_run_stops_on_a_database_it_cannot_open(tmp_path: Path) -> None:
    """A --db that cannot be opened stops the script with ecms's message, before any demo data is made."""
    if shutil.which("bash") is None or Path(sys.executable).parent != REPO / ".venv" / "bin":
        pytest.skip("./scripts/run starts the program of the repository's .venv, and these tests run elsewhere")
    missing = tmp_path / "no-such-folder" / "x.db"
    done = subprocess.run([str(REPO / "scripts" / "run"), "--db", str(missing)], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}, cwd=tmp_path)
    assert done.returncode != 0
    assert "no-such-folder" in done.stderr
    assert "Creating demo data" not in done.stdout
