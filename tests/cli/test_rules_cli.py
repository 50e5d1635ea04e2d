"""``ecms rules build|install|show|rollback`` as separate processes, as a user runs them: a pack installed
by one process is the one the next process validates with."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ecms_desktop.services.core.database import Database
from ecms_desktop.services.validation.service import ValidationService
from tests.factories import AS_OF, make_certificate
from tests.helpers.rules_pack import newer_copy

REPO = Path(__file__).resolve().parents[2]


def ecms(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "ecms_desktop.cli", "--db", url, *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_install_in_one_process_is_in_force_in_the_next(db: Database, company_id: int, tmp_path: Path) -> None:
    cert = make_certificate(db, company_id)
    ValidationService(db).validate_many([cert.id], as_of=AS_OF)
    out = tmp_path / "ecms-rules-2026.12.2.zip"
    built = ecms(db.url, "rules", "build", str(out), "--from", str(newer_copy(tmp_path, "2026.12.2",
                                                                             stricter_texas=True)))
    assert built.returncode == 0, built.stderr
    assert "rules pack 2026.12.2" in built.stdout

    done = ecms(db.url, "rules", "install", str(out), "--as-of", AS_OF.isoformat())
    assert done.returncode == 0, done.stderr
    assert "Installed rules pack 2026.12.2 from ecms-rules-2026.12.2.zip (was 2026.12.1)" in done.stdout
    assert "1 certificate(s) would get another validation result as of 2026-11-22" in done.stdout
    assert f"ecms validate --stale --revalidate --as-of {AS_OF.isoformat()}" in done.stdout

    shown = ecms(db.url, "rules", "show")
    assert shown.returncode == 0, shown.stderr
    assert "In force:" in shown.stdout and "2026.12.2 (installed in the database)" in shown.stdout
    stale = ecms(db.url, "validate", "--stale", "--as-of", AS_OF.isoformat(), "--format", "json")
    assert stale.returncode == 0, stale.stderr
    assert f'"id": {cert.id}' in stale.stdout and '"result_changes": true' in stale.stdout

    again = ecms(db.url, "rules", "install", str(out))
    assert again.returncode == 1 and "is already the one in force" in again.stderr

    back = ecms(db.url, "rules", "rollback", "--as-of", AS_OF.isoformat())
    assert back.returncode == 0, back.stderr
    assert "Went back from rules pack 2026.12.2 to 2026.12.1 (the program's own)" in back.stdout
    assert "2026.12.1 (the program's own)" in ecms(db.url, "rules", "show").stdout


def test_check_only_says_what_the_archive_holds_and_a_broken_one_is_named(db: Database, tmp_path: Path) -> None:
    out = tmp_path / "pack.zip"
    assert ecms(db.url, "rules", "build", str(out)).returncode == 0
    checked = ecms(db.url, "rules", "install", "--check-only", str(out))
    assert checked.returncode == 0 and "pack.zip: rules pack 2026.12.1" in checked.stdout
    out.write_bytes(out.read_bytes()[:-200])
    broken = ecms(db.url, "rules", "install", str(out))
    assert broken.returncode == 1 and "pack.zip" in broken.stderr
