"""``ecms check`` on a large database, against plainly reading the same rows.

1. ``ecms init`` + ``ecms demo --certificates N`` in a fresh SQLite file (subprocesses, as a user runs
   them; skipped with ``--db``): wall time and size.
2. ``check_database`` (what ``ecms check`` runs) in a child process: wall time and the child's peak
   memory, and the cheap levels run on start (``quick``) and by every command (``anchors``).
3. The baseline, in another child: Python's ``sqlite3`` reading every row the check reads - the tracked
   tables, every audit event and record digest, every stored file's bytes - without digesting anything.
   Printed: both times, the ratio, both peaks (the check streams: its memory does not grow with N).

    .venv/bin/python bench/bench_check.py [--certificates 20000] [--seed 7] [--as-of 2026-11-22]
        [--validate (also store a validation run per certificate)] [--db PATH (reuse a database)]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

CHECK = r'''
import json, resource, sys, time
from ecms_desktop.services.core.database import open_database
from ecms_desktop.services.integrity.check import check_database
db = open_database(sys.argv[1])
out = {}
for level in ("anchors", "quick", "full"):
    t0 = time.perf_counter()
    report = check_database(db, level=level)
    out[level] = time.perf_counter() - t0
    if not report.ok:
        print(json.dumps({"problems": [str(p) for p in report.problems[:5]]}), file=sys.stderr)
        sys.exit(1)
out["records"] = report.records
out["files"] = report.files
out["events"] = report.events
out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
'''

BASELINE = r'''
import json, resource, sqlite3, sys, time
con = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
tables = ["certificate", "coverage_line", "customer", "company", "company_registration", "document",
          "validation_run", "validation_finding", "warning_acknowledgement", "setting", "expiry_policy_override",
          "permit_check", "transaction_line", "audit_event", "audit_digest", "document_file"]
t0 = time.perf_counter()
rows = nbytes = 0
for table in tables:
    cur = con.execute(f"SELECT * FROM {table}")
    while True:
        batch = cur.fetchmany(5000)
        if not batch:
            break
        rows += len(batch)
        if table == "document_file":
            nbytes += sum(len(r[-2] or b"") for r in batch)
elapsed = time.perf_counter() - t0
print(json.dumps({"seconds": elapsed, "rows": rows, "file_bytes": nbytes,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def run(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:4])} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--certificates", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", default="2026-11-22")
    parser.add_argument("--validate", action="store_true")
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-check-"))
    env = {**os.environ, "ECMS_DATA_DIR": str(folder / "data")}
    ecms = str(Path(PYTHON).with_name("ecms"))
    with open("/proc/loadavg") as fh:
        print(f"load average before: {fh.read().split()[:3]}")
    if args.db is None:
        db = folder / "bench.sqlite"
        run([ecms, "--db", str(db), "init"], env)
        seconds, _ = run([ecms, "--db", str(db), "demo", "--certificates", str(args.certificates), "--seed",
                          str(args.seed), "--as-of", args.as_of], env)
        print(f"ecms demo --certificates {args.certificates}: {seconds:.1f} s (with the record digests)")
        if args.validate:
            seconds, _ = run([ecms, "--db", str(db), "validate", "--all", "--as-of", args.as_of], env)
            print(f"ecms validate --all: {seconds:.1f} s")
    else:
        db = args.db
    print(f"database: {db} ({db.stat().st_size / 1e6:.1f} MB)")
    _, out = run([PYTHON, "-c", CHECK, str(db)], env)
    check = json.loads(out)
    _, out = run([PYTHON, "-c", BASELINE, str(db)], env)
    base = json.loads(out)
    print(f"records checked: {check['records']}; stored files: {check['files']}; events: {check['events']}")
    print(f"ecms check (full):      {check['full']:.2f} s, peak {check['peak_mb']:.0f} MB (process)")
    print(f"  quick level (start):  {check['quick'] * 1000:.0f} ms")
    print(f"  anchors level (every command): {check['anchors'] * 1000:.0f} ms")
    print(f"baseline, plain read:   {base['seconds']:.2f} s for {base['rows']:,} rows and "
          f"{base['file_bytes'] / 1e6:.0f} MB of files, peak {base['peak_mb']:.0f} MB")
    print(f"ratio check / plain read: {check['full'] / base['seconds']:.1f}x")
    with open("/proc/loadavg") as fh:
        print(f"load average after: {fh.read().split()[:3]}")


if __name__ == "__main__":
    main()
