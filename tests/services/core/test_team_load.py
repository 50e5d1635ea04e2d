"""The team load bench (bench/bench_team_load.py), briefly: four people, one process each, for a few
seconds on a PostgreSQL database of its own; every proof must hold (no lost update, every refusal a real
conflict, ecms check, the chain, every event naming the right person). The full run (8 processes, 60 s)
is the bench's, with its figures in bench/README.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_URL

REPO = Path(__file__).resolve().parents[3]


def test_four_people_at_once_lose_nothing() -> None:
    if not PG_URL:
        pytest.skip("PostgreSQL run: set ECMS_TEST_DATABASE_URL to run the team load test")
    run = subprocess.run([sys.executable, str(REPO / "bench" / "bench_team_load.py"), "--server", PG_URL,
                          "--seconds", "6", "--per-person", "1", "--certificates", "6"],
                         capture_output=True, text=True, timeout=600, cwd=REPO)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "refused as stale" in run.stdout and "RESULT: every proof holds" in run.stdout
