"""Benchmark: import 1,000,000 invoice lines and determine them against 100,000 certificates.

Prints the import time, determination lines per second, and the ratio against reading the same
lines with a plain SELECT (same columns, same primary-key batches, through the driver) and nothing
else. Inputs are generated here: customers and certificates by bulk insert, and a CSV of invoice
lines written by this script. Every phase prints wall time and the CPU time (user + sys) of this
process, and the load average is printed at the start and the end: on a shared machine the wall
time is noisy, the CPU time much less so (on SQLite the database work is in this process; on
PostgreSQL the server's CPU is not counted).

    .venv/bin/python bench/bench_determination.py               # 1,000,000 lines, 100,000 certificates
    .venv/bin/python bench/bench_determination.py --lines 100000 --certificates 10000
    .venv/bin/python bench/bench_determination.py --db postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert, select, text

from ecms_desktop.models import Certificate, CoverageLine, Customer
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.sales.determination_run import _LINE_SQL_COLUMNS
from ecms_desktop.services.sales.determination_service import DeterminationService
from ecms_desktop.services.sales.transaction_import import TransactionImporter

STATES = ["TX", "CA", "NY", "FL", "OH", "KY", "WA", "GA", "IL", "PA"]
PRODUCTS = [f"P{i}" for i in range(50)]


def seed_certificates(db: Database, company_id: int, n_certs: int, n_customers: int, rng: random.Random) -> None:
    with db.transaction() as s:
        s.execute(insert(Customer), [
            {"company_id": company_id, "number": f"C-{i:06d}", "number_key": f"c-{i:06d}",
             "legal_name": f"Customer {i}"} for i in range(n_customers)])
        cust_ids = s.execute(select(Customer.id).order_by(Customer.id)).scalars().all()
        certs = []
        for i in range(n_certs):
            kind = rng.random()
            certs.append({
                "company_id": company_id, "customer_id": cust_ids[i % n_customers], "form_code": "SST-F0003",
                "certificate_number": f"CERT-{i:07d}", "exempt_reason": "resale",
                "review_state": "approved" if kind < 0.85 else ("archived" if kind < 0.92 else "pending"),
                "certificate_type": "single_use" if kind > 0.98 else "blanket", "po_number": f"PO-{i}",
                "effective_date": dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(700)),
                "signed_date": dt.date(2024, 1, 1), "product_codes": rng.sample(PRODUCTS, 3) if kind < 0.1 else [],
                "exempt_percent": Decimal(50) if 0.1 <= kind < 0.15 else None, "origin": "demo",
            })
        for i in range(0, len(certs), 20_000):
            s.execute(insert(Certificate), certs[i:i + 20_000])
        cert_rows = s.execute(select(Certificate.id).order_by(Certificate.id)).scalars().all()
        lines = []
        for cid in cert_rows:
            states = rng.sample(STATES, 2 if rng.random() < 0.2 else 1)
            for st in states:
                expiry = dt.date(2025, 6, 1) + dt.timedelta(days=rng.randrange(900)) if rng.random() < 0.7 else None
                lines.append({"certificate_id": cid, "state": st, "expiry_date": expiry,
                              "local_jurisdictions": ["county:Travis"] if rng.random() < 0.03 else []})
        for i in range(0, len(lines), 20_000):
            s.execute(insert(CoverageLine), lines[i:i + 20_000])


def write_lines(path: Path, n_lines: int, n_customers: int, rng: random.Random) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["invoice_number", "line", "invoice_date", "customer_number", "ship_to_state", "ship_to_county",
                    "ship_to_city", "ship_to_zip", "product_code", "commodity_code", "amount", "currency",
                    "tax_collected", "exempt_claimed", "exempt_reason", "po_number"])
        start = dt.date(2025, 1, 1)
        for i in range(n_lines):
            claimed = rng.random() < 0.6
            w.writerow([f"INV-{i // 4:07d}", i % 4 + 1, (start + dt.timedelta(days=rng.randrange(730))).isoformat(),
                        f"C-{rng.randrange(n_customers):06d}", rng.choice(STATES), "Travis", "Austin", "78701",
                        rng.choice(PRODUCTS), "", f"{rng.randrange(100, 500000) / 100:.2f}", "USD",
                        "0" if claimed else "8.25", "yes" if claimed else "no", "", f"PO-{rng.randrange(10**6)}"])


class Clock:
    """Wall and CPU (user + sys) seconds of one phase."""

    def __enter__(self) -> Clock:
        self.t0, self.c0 = time.perf_counter(), os.times()
        return self

    def __exit__(self, *exc: object) -> None:
        c1 = os.times()
        self.wall = time.perf_counter() - self.t0
        self.cpu = (c1.user - self.c0.user) + (c1.system - self.c0.system)
        #: CPU of worker processes that ended in the phase (the determination's worker).
        self.child_cpu = (c1.children_user - self.c0.children_user) + (c1.children_system - self.c0.children_system)
        self.cpu += self.child_cpu

    def __str__(self) -> str:
        worker = f" of which {self.child_cpu:.1f} s in the worker" if self.child_cpu >= 0.05 else ""
        return f"{self.wall:.1f} s wall, {self.cpu:.1f} s CPU{worker}"


def read_baseline(db: Database, company_id: int, batch: int) -> int:
    """A plain SELECT of the columns the determination reads, in the same primary-key batches, through
    the driver; nothing else (no conversion, no engine, no writing)."""
    mark = "?" if db.engine.dialect.paramstyle == "qmark" else "%s"
    sql = (f"SELECT {', '.join(_LINE_SQL_COLUMNS)} FROM transaction_line WHERE company_id + 0 = {mark} "
           f"AND id > {mark} ORDER BY id LIMIT {mark}")
    last, n = 0, 0
    with db.engine.connect() as conn:
        while True:
            rows = conn.exec_driver_sql(sql, (company_id, last, batch)).fetchall()
            if not rows:
                break
            n += len(rows)
            last = rows[-1][0]
    return n


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--certificates", type=int, default=100_000)
    ap.add_argument("--customers", type=int, default=25_000)
    ap.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file in a temp folder)")
    ap.add_argument("--batch", type=int, default=50_000)
    args = ap.parse_args()
    start_load = load()
    rng = random.Random(20261122)
    tmp = Path(tempfile.mkdtemp(prefix="ecms-bench-"))
    url = args.db or f"sqlite:///{tmp / 'bench.sqlite'}"
    db = Database(url)
    if db.dialect == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.upgrade()
    company_id = CompanyService(db).create("Bench Co").id

    t0 = time.perf_counter()
    seed_certificates(db, company_id, args.certificates, args.customers, rng)
    t_seed = time.perf_counter() - t0
    csv_path = tmp / "lines.csv"
    t0 = time.perf_counter()
    write_lines(csv_path, args.lines, args.customers, rng)
    t_csv = time.perf_counter() - t0
    print(f"setup: {args.certificates:,} certificates in {t_seed:.1f} s; {args.lines:,}-line CSV "
          f"({csv_path.stat().st_size / 1e6:.0f} MB) written in {t_csv:.1f} s")

    with Clock() as t_import:
        result = TransactionImporter(db).import_file(csv_path, company_id=company_id)
    print(f"import: {result.inserted:,} lines in {t_import} ({result.inserted / t_import.wall:,.0f} lines/s)")

    with Clock() as t_read:
        n_read = read_baseline(db, company_id, args.batch)
    print(f"baseline plain SELECT of the same lines and columns, same batches: {n_read:,} lines in {t_read} "
          f"({n_read / t_read.wall:,.0f} lines/s)")

    with Clock() as t_det:
        summary = DeterminationService(db).run(company_id, batch=args.batch)
    print(f"determination: {summary.lines:,} lines in {t_det} ({summary.lines / t_det.wall:,.0f} lines/s wall, "
          f"{summary.lines / t_det.cpu:,.0f} lines per CPU second); exempt {summary.exempt:,}, "
          f"conflicts {summary.conflicts:,}, exposures {summary.exposures:,}")
    print(f"ratio determination / plain read: {t_det.wall / t_read.wall:.1f}x wall, {t_det.cpu / t_read.cpu:.1f}x CPU")
    print(f"import + determination: {t_import.wall + t_det.wall:.1f} s wall, {t_import.cpu + t_det.cpu:.1f} s CPU "
          f"(goal < 60 s)")
    print(f"load average (1/5/15 min) at the start {start_load}, at the end {load()}; {os.cpu_count()} CPUs")
    print(f"peak memory (max RSS): this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB, "
          f"largest worker process {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB")
    db.dispose()
    shutil.rmtree(tmp, ignore_errors=True)  # the database and the CSV: ~700 MB at 1M lines
    return 0


if __name__ == "__main__":
    sys.exit(main())
