"""Work lists benchmark: the grid's quick filters from the checks at 100,000 certificates.

Measures, for each work list (validation errors, warnings to acknowledge, permit not checked) and for a
sort by the errors column, the matching ids in grid order, one batch of 200 rows with their latest
validation counts, and the status counts, against the plain grid query without a filter (ratio); and
prints SQLite's plan of the batch statement (it must search by primary key and index, never scan).

    .venv/bin/python bench/bench_worklists.py [--certificates 100000]

The database is built once in /tmp: `ecms demo --certificates 300`, `ecms validate --all`, then the 300
certificates with their lines and validation runs copied in SQL until there are about N (customers,
documents and permit checks are not copied: a synthetic spread, not a demo).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

AS_OF = dt.date(2026, 11, 22)
SEED = 300


def build(path: Path, n: int) -> None:
    print(f"building {path} with about {n:,} certificates…", flush=True)
    url = f"sqlite:///{path}"
    cli = [sys.executable, "-m", "ecms_desktop.cli", "--db", url]
    subprocess.run([*cli, "init"], check=True, cwd=REPO, stdout=subprocess.DEVNULL)
    subprocess.run([*cli, "demo", "--certificates", str(SEED), "--as-of", AS_OF.isoformat()], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL)
    subprocess.run([*cli, "validate", "--all", "--as-of", AS_OF.isoformat()], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL)
    con = sqlite3.connect(path)

    def columns(table: str) -> list[str]:
        return [r[1] for r in con.execute(f"pragma table_info({table})")]

    copies = {"certificate": ("id", None), "coverage_line": ("id", "certificate_id"),
              "validation_run": ("id", "certificate_id")}
    for k in range(1, n // SEED):
        for table, (key, ref) in copies.items():
            cols = columns(table)
            offset = k * 10_000
            sel = ", ".join(f"{c} + {offset}" if c in (key, ref) else
                            f"certificate_number || '-{k}'" if c == "certificate_number" else c for c in cols)
            where = "id" if table == "certificate" else "certificate_id"
            con.execute(f"insert into {table} ({', '.join(cols)}) select {sel} from {table} where {where} <= {SEED}")
    con.commit()
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--certificates", type=int, default=100_000)
    args = parser.parse_args()
    path = Path(f"/tmp/ecms-bench-worklists-{args.certificates}.sqlite")
    if not path.exists():
        build(path, args.certificates)

    from sqlalchemy import event

    from ecms_desktop.models import Status
    from ecms_desktop.services.certificates.query import (
        CertificateQuery,
        CheckFilter,
        count_by_status,
        load_rows,
        matching_ids,
    )
    from ecms_desktop.services.core.database import Database

    db = Database(f"sqlite:///{path}")
    with db.reader() as s:
        company = 1
        total = len(matching_ids(s, CertificateQuery(as_of=AS_OF)))
    print(f"{total:,} certificates; the grid shows company {company}'s")

    def measure(query: CertificateQuery) -> tuple[float, float, float, int]:
        ids_ms, batch_ms, counts_ms = [], [], []
        n = 0
        for _ in range(5):
            with db.reader() as s:
                t0 = time.perf_counter()
                ids = matching_ids(s, query)
                t1 = time.perf_counter()
                load_rows(s, ids[:200], AS_OF)
                t2 = time.perf_counter()
                count_by_status(s, query)
                t3 = time.perf_counter()
            n = len(ids)
            ids_ms.append((t1 - t0) * 1000)
            batch_ms.append((t2 - t1) * 1000)
            counts_ms.append((t3 - t2) * 1000)
        return statistics.median(ids_ms), statistics.median(batch_ms), statistics.median(counts_ms), n

    base = CertificateQuery(company_id=company, as_of=AS_OF)
    plain = measure(base)
    cases = [(check.label, replace(base, check=check)) for check in CheckFilter]
    cases += [("Pending review", replace(base, statuses=(Status.PENDING_REVIEW,))),
              ("sorted by errors (no filter)", replace(base, sort="errors", descending=True))]
    print(f"{'list':32s} {'rows':>8s} {'ids ms':>8s} {'ratio':>6s} {'batch ms':>9s} {'counts ms':>10s}")
    label = "(no filter, customer order)"
    print(f"{label:32s} {plain[3]:8,} {plain[0]:8.0f} {1:6.2f} {plain[1]:9.1f} {plain[2]:10.0f}")
    for label, query in cases:
        ids_ms, batch_ms, counts_ms, n = measure(query)
        print(f"{label:32s} {n:8,} {ids_ms:8.0f} {ids_ms / plain[0]:6.2f} {batch_ms:9.1f} {counts_ms:10.0f}")

    statements: list[tuple[str, object]] = []
    event.listen(db.engine, "before_cursor_execute", lambda _c, _cu, st, p, *_a: statements.append((st, p)))
    with db.reader() as s:
        load_rows(s, matching_ids(s, base)[:200], AS_OF)
    batch = next((st, p) for st, p in statements if "validation_run" in st)
    con = sqlite3.connect(path)
    print("plan of the batch statement:")
    for row in con.execute("EXPLAIN QUERY PLAN " + batch[0], batch[1]):  # type: ignore[arg-type]
        print("   ", row[3])


if __name__ == "__main__":
    main()
