"""Screenshot mode: `ecms-desktop --screenshot` in a real subprocess, offscreen, exits 0 cleanly."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import AS_OF, make_desk_certificate, seed_certificates

REPO = Path(__file__).resolve().parents[2]


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def run_app(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "ECMS_DATA_DIR": str(tmp_path / "data"),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path)}
    env.pop("ECMS_DATABASE_URL", None)
    code = "import sys; from ecms_desktop.app import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=180)


@pytest.mark.slow
def test_screenshot_of_the_grid_and_a_selected_certificate(db, db_url, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if not db_url.startswith("sqlite"):
        pytest.skip("one backend is enough for the subprocess run")
    ids = seed_certificates(db, company_id, 50)
    out = tmp_path / "shots" / "main.png"
    proc = run_app(["--db", db_url, "--screenshot", str(out), "--size", "1280x800", "--as-of", "2026-06-01",
                    "--select", str(ids[3])], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Fatal" not in proc.stderr
    assert png_size(out) == (1280, 800)
    assert out.stat().st_size > 10_000  # a painted window, not an empty picture


@pytest.mark.slow
def test_screenshot_without_a_database_exits_1_and_creates_none(tmp_path) -> None:
    """Only `ecms init` and File > New database create a database; the window on its first run may offer
    to create the default one, but a picture taken without anyone to ask never creates one."""
    out = tmp_path / "empty.png"
    proc = run_app(["--screenshot", str(out), "--size", "1024x640"], tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "does not exist" in proc.stderr and "Fatal" not in proc.stderr
    assert not (tmp_path / "data" / "ecms.sqlite").exists()


@pytest.mark.slow
def test_unknown_certificate_exits_1(db, db_url, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if not db_url.startswith("sqlite"):
        pytest.skip("one backend is enough for the subprocess run")
    seed_certificates(db, company_id, 3)
    proc = run_app(["--db", db_url, "--screenshot", str(tmp_path / "x.png"), "--select", "9999"], tmp_path)
    assert proc.returncode == 1
    assert "9999" in proc.stderr and "Fatal" not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("view, size", [("renewals", (1100, 680)), ("outbox", (1100, 520)), ("audit-pack", None),
                                        ("findings", None), ("customers", (1000, 600)), ("customer", (960, 520)),
                                        ("about", None), ("inbox", (1280, 800))])
def test_screenshot_of_the_other_windows(db, db_url, company_id, tmp_path, view, size) -> None:  # type: ignore[no-untyped-def]
    if not db_url.startswith("sqlite"):
        pytest.skip("one backend is enough for the subprocess run")
    ids = seed_certificates(db, company_id, 30)
    out = tmp_path / f"{view}.png"
    args = ["--db", db_url, "--screenshot", str(out), "--size", "1280x800", "--as-of", "2026-06-01", "--view", view]
    if view in ("findings", "customer"):  # the customer view: the matrix of the selected certificate's customer
        args += ["--select", str(ids[0])]
    proc = run_app(args, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Fatal" not in proc.stderr and "Traceback" not in proc.stderr
    width, height = png_size(out)
    if size is not None:
        assert (width, height) == size  # the renewal center itself, not the main window
    else:
        assert (width, height) != (1280, 800) and width > 300  # the dialog or the form pane
    assert out.stat().st_size > 5_000


@pytest.mark.slow
def test_screenshot_of_the_validation_errors_work_list(db, db_url, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    if not db_url.startswith("sqlite"):
        pytest.skip("one backend is enough for the subprocess run")
    seed_certificates(db, company_id, 5)
    broken = make_desk_certificate(db, company_id, as_of=AS_OF, customer="E-1", name="Broken Co",
                                   purchaser_name="Broken Co").id
    out = tmp_path / "worklist.png"
    proc = run_app(["--db", db_url, "--screenshot", str(out), "--size", "1280x800", "--as-of", AS_OF.isoformat(),
                    "--view", "worklist", "--select", str(broken)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Fatal" not in proc.stderr and "Traceback" not in proc.stderr
    assert png_size(out) == (1280, 800) and out.stat().st_size > 5_000
