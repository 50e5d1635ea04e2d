"""Foundation benchmarks: ``ecms demo --certificates N`` and ``ecms list --format json`` over N certificates.

1. ``ecms demo --certificates N`` in a fresh SQLite file (a subprocess, as a user runs it): wall time,
   peak memory of the process and the resulting database size.
2. ``ecms list --format json --as-of D`` over all N certificates (a subprocess writing to a file),
   against a plain-SQL baseline in the same run: a second subprocess that selects the same rows with
   Python's ``sqlite3`` (certificates joined with customers, status computed in SQL, then the coverage
   lines) and writes the same JSON with ``json.dumps``. Both outputs are parsed and compared, so the
   baseline is known to do the same work. Printed: both times, the ratio, and the start-up time of
   ``ecms --version`` (paid by every command).
3. With ``--profile``: cProfile of ``ecms list --format json`` in process, top functions.

    .venv/bin/python bench/bench_foundation.py [--certificates 100000] [--seed 1] [--as-of 2026-11-22]
        [--db PATH (reuse an existing demo database, skip step 1)] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

BASELINE = r'''
import datetime as dt, json, sqlite3, sys
path, as_of, window, out_path = sys.argv[1], dt.date.fromisoformat(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
soon = (as_of + dt.timedelta(days=window)).isoformat()
day = as_of.isoformat()
con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
status_sql = """CASE WHEN c.review_state = 'pending' THEN 'pending_review'
  WHEN c.review_state = 'rejected' THEN 'rejected' WHEN c.review_state = 'archived' THEN 'archived'
  WHEN {e} IS NULL THEN 'active' WHEN {e} < :day THEN 'expired' WHEN {e} <= :soon THEN 'expiring_soon'
  ELSE 'active' END"""
certs = con.execute(
    "SELECT c.id, cu.number, cu.legal_name, c.form_code, c.certificate_number, c.exempt_reason, "
    "c.certificate_type, c.review_state, " + status_sql.format(e="c.expiry_date") + ", c.expiry_date, "
    "CAST(julianday(c.expiry_date) - julianday(:day) AS INTEGER) "
    "FROM certificate c JOIN customer cu ON cu.id = c.customer_id ORDER BY c.id", {"day": day, "soon": soon})
lines = con.execute(
    "SELECT l.certificate_id, l.state, " + status_sql.format(e="l.expiry_date") + ", l.expiry_date "
    "FROM coverage_line l JOIN certificate c ON c.id = l.certificate_id ORDER BY l.certificate_id, l.state",
    {"day": day, "soon": soon})
pending = lines.fetchone()
with open(out_path, "w", encoding="utf-8") as out:
    out.write("[")
    first = True
    for (cid, number, name, form, cert_no, reason, ctype, review, status, expiry, days) in certs:
        cert_lines = []
        while pending is not None and pending[0] == cid:
            cert_lines.append({"state": pending[1], "status": pending[2], "expiry_date": pending[3]})
            pending = lines.fetchone()
        item = {"id": cid, "customer_number": number, "customer_name": name, "form": form,
                "certificate_number": cert_no, "exempt_reason": reason, "certificate_type": ctype,
                "review_state": review, "status": status, "expiry_date": expiry, "days_left": days,
                "lines": cert_lines}
        out.write(("\n  " if first else ",\n  ") + json.dumps(item, ensure_ascii=False))
        first = False
    out.write("\n]\n" if not first else "]\n")
'''


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], **kwargs) -> tuple[float, float, subprocess.CompletedProcess[str]]:  # type: ignore[no-untyped-def]
    """Run a command; (wall seconds, CPU seconds of the child, result). CPU time is printed beside
    wall time because a shared machine under load stretches wall time but hardly CPU time."""
    cpu = _cpu()
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, **kwargs)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, file=sys.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, _cpu() - cpu, proc


def run(cmd: list[str], **kwargs) -> tuple[float, float, int, subprocess.CompletedProcess[str]]:  # type: ignore[no-untyped-def]
    """Run a command capturing its output; (wall s, CPU s, peak RSS of any child so far in MB, result)."""
    wall, cpu, proc = timed(cmd, text=True, capture_output=True, **kwargs)
    return wall, cpu, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, proc


def db_size(path: Path) -> int:
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--certificates", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--as-of", default="2026-11-22")
    parser.add_argument("--db", type=Path, default=None, help="existing demo database (skips the demo step)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each list measurement (best is shown)")
    parser.add_argument("--profile", action="store_true", help="cProfile `ecms list --format json` in process")
    args = parser.parse_args()

    env = {**os.environ, "ECMS_USER": "bench"}
    work = Path(tempfile.mkdtemp(prefix="ecms-bench-"))
    ecms = [PYTHON, "-m", "ecms_desktop.cli"]
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; work folder {work}")

    if args.db is None:
        path = work / "demo.sqlite"
        url = f"sqlite:///{path}"
        wall, cpu, peak, proc = run([*ecms, "--db", url, "demo", "--certificates", str(args.certificates),
                                     "--seed", str(args.seed), "--as-of", args.as_of], env=env)
        print(proc.stdout)
        print(f"ecms demo --certificates {args.certificates}: {wall:8.1f} s wall, {cpu:.1f} s CPU, "
              f"peak RSS {peak} MB, database {db_size(path) / 1e6:.0f} MB")
    else:
        path = args.db
        url = f"sqlite:///{path}"
        print(f"reusing {path} ({db_size(path) / 1e6:.0f} MB)")

    startup, startup_cpu, _, _ = run([*ecms, "--version"], env=env)
    print(f"ecms --version (interpreter + CLI start-up): {startup:6.2f} s wall, {startup_cpu:.2f} s CPU")

    list_out, base_out = work / "list.json", work / "baseline.json"
    ours: list[tuple[float, float]] = []
    base: list[tuple[float, float]] = []
    for _ in range(args.runs):
        with list_out.open("w") as fh:
            wall, cpu, _ = timed([*ecms, "--db", url, "list", "--format", "json", "--as-of", args.as_of],
                                 stdout=fh, env=env)
            ours.append((wall, cpu))
        wall, cpu, _ = timed([PYTHON, "-c", BASELINE, str(path), args.as_of, "30", str(base_out)])
        base.append((wall, cpu))
    best_ours, best_base = min(ours), min(base)
    listed = json.loads(list_out.read_text())
    baseline = json.loads(base_out.read_text())
    same = listed == baseline
    runs = lambda xs: ", ".join(f"{w:.1f}/{c:.1f}" for w, c in xs)  # noqa: E731
    print(f"ecms list --format json ({len(listed)} certificates, {list_out.stat().st_size / 1e6:.0f} MB): "
          f"{best_ours[0]:6.2f} s wall, {best_ours[1]:.2f} s CPU (runs wall/CPU: {runs(ours)})")
    print(f"plain SQL (sqlite3 + json.dumps, same rows):        {best_base[0]:6.2f} s wall, "
          f"{best_base[1]:.2f} s CPU (runs wall/CPU: {runs(base)})")
    print(f"ratio ecms list / plain SQL: {best_ours[0] / best_base[0]:.1f}x wall, "
          f"{min(c for _, c in ours) / min(c for _, c in base):.1f}x CPU   outputs identical: {same}")
    if not same:
        diff = next(((a, b) for a, b in zip(listed, baseline, strict=False) if a != b), None)
        print(f"first difference: {diff}")

    if args.profile:
        import cProfile
        import io
        import pstats

        sys.path.insert(0, str(REPO))
        from ecms_desktop.cli import main as ecms_main

        prof = cProfile.Profile()
        real_stdout = sys.stdout
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        try:
            prof.enable()
            ecms_main(["--db", url, "list", "--format", "json", "--as-of", args.as_of])
            prof.disable()
        finally:
            sys.stdout.close()
            sys.stdout = real_stdout
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(25)
        print(text.getvalue())


if __name__ == "__main__":
    main()
