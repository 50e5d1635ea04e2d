"""Benchmark: import 100,000 certificates (checked, validated, audited) from a CSV file.

The file is generated here: a realistic mix of own-state resale forms, SST and MTC multi-state forms,
one customer in ten new, a few certificates with validation errors or warnings (they land pending
review), a few rows naming one of a handful of PDF documents. Prints, measured in the same run:

* baseline: reading the same file without storing it (``read_table``: decoding, CSV parsing, header
  and column checks), the floor of any import;
* the import (``CertificateImporter.import_file``: every row checked, every certificate validated and
  stored with its coverage lines, validation run, audit events and record digests, all or nothing),
  split into its checking/staging part and its write (the time the writer's lock is held);
* ``ecms check``-style chain verification afterwards, to show the trail holds.

    .venv/bin/python -u bench/bench_import.py                       # 100,000 certificates, SQLite
    .venv/bin/python -u bench/bench_import.py --certificates 20000
    .venv/bin/python -u bench/bench_import.py --db postgresql+psycopg://postgres@127.0.0.1:5432/ecms_bench
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from reportlab.pdfgen import canvas
from sqlalchemy import func, select, text

from ecms_desktop.models import AuditEvent, Certificate
from ecms_desktop.services.certificates.import_service import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, CertificateImporter
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core import audit
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.tabular import read_table

AS_OF = dt.date(2026, 11, 20)
COLUMNS = [*REQUIRED_COLUMNS, "purchaser_name", "purchaser_address", "business_type", "business_description",
           "property_description", "signer_name", "signer_title", "signed"]
_OWN = [("TX", "TX-01-339", "32012345678"), ("CA", "CA-CDTFA-230", "123456789"), ("FL", "FL-DR-13", "1234567890123"),
        ("NY", "NY-ST-120", "123456789"), ("IL", "IL-CRT-61", "12345678"), ("PA", "PA-REV-1220", "12345678")]


def write_file(folder: Path, n: int, seed: int = 11) -> Path:
    """The CSV of ``n`` certificates (and the few PDFs some rows name) in ``folder``."""
    rng = random.Random(seed)
    for k in range(5):
        c = canvas.Canvas(str(folder / f"scan{k}.pdf"))
        c.drawString(72, 720, f"Resale certificate scan {k}")
        c.save()
    path = folder / "certificates.csv"
    customers = max(1, n // 10)
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS)
        for i in range(n):
            cust = rng.randrange(customers)
            kind = rng.random()
            if kind < 0.6:
                state, form, number = _OWN[i % len(_OWN)]
            elif kind < 0.8:
                form, state, number = "SST-F0003", ";".join(rng.sample(["KS", "KY", "NC", "OH", "WA", "GA"], 3)), \
                    "123456789"
            else:
                form, state, number = "MTC-UNIFORM", ";".join(rng.sample(["CO", "AZ", "GA", "NE", "SD"], 2)), \
                    "123456789"
            if rng.random() < 0.03:
                number = "12"  # too short for the state's pattern: a validation error, held for review
            signed = dt.date(2024, 1, 1) + dt.timedelta(days=rng.randrange(900))
            row = {
                "customer_number": f"C{cust:06d}", "customer_name": f"Customer {cust} LLC",
                "customer_email": f"ap{cust}@example.com", "state": state, "form": form,
                "certificate_number": f"N{i:07d}", "exempt_reason": "resale", "purchaser_tax_id": number,
                "certificate_type": "blanket", "po_number": "", "signed_date": signed.isoformat(),
                "effective_date": signed.isoformat(), "expiry_date": "", "review_status": "approved",
                "document": f"scan{i % 5}.pdf" if rng.random() < 0.01 else "",
                "purchaser_name": f"Customer {cust} LLC", "purchaser_address": f"{i} Elm St, Austin, TX 78701",
                "business_type": "retailer", "business_description": "Retail store",
                "property_description": "Goods for resale", "signer_name": "Pat Doe", "signer_title": "Owner",
                "signed": "yes",
            }
            out.writerow([row[c] for c in COLUMNS])
    return path


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--certificates", type=int, default=100_000)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    n = args.certificates
    tmp = tempfile.TemporaryDirectory()
    folder = Path(tmp.name)
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    db = Database(args.db or f"sqlite:///{folder / 'bench.sqlite'}")
    if db.dialect == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    db.upgrade()
    company = CompanyService(db).create("Bench Co", legal_name="Bench Company LLC", address_line1="1 Main St",
                                        city="Austin", state="TX", postal_code="78701").id
    path = write_file(folder, n)
    print(f"{n:,} certificates: {path.stat().st_size / 1e6:.1f} MB CSV ({db.dialect})")

    t0, c0 = time.perf_counter(), time.process_time()
    table = read_table(path, required=REQUIRED_COLUMNS, optional=OPTIONAL_COLUMNS)
    rows = len(table.rows)
    t_read, c_read = time.perf_counter() - t0, time.process_time() - c0
    del table
    print(f"baseline  read the file, store nothing: {t_read:6.1f} s ({c_read:.1f} s CPU), {rows:,} rows, "
          f"{rows / t_read:,.0f} rows/s")

    phases: dict[str, float] = {}

    def progress(done: int, total: int, text: str) -> None:
        phase = text.split(" ")[0]
        now = time.perf_counter()
        phases.setdefault(phase + " start", now)
        phases[phase + " end"] = now

    importer = CertificateImporter(db)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    c_children = before.ru_utime + before.ru_stime
    t0, c0 = time.perf_counter(), time.process_time()
    result = importer.import_file(path, company_id=company, as_of=AS_OF, progress=progress)
    t_imp, c_imp = time.perf_counter() - t0, time.process_time() - c0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    c_workers = children.ru_utime + children.ru_stime - c_children
    print(f"import    check, validate, store, audit:  {t_imp:6.1f} s ({c_imp:.1f} s CPU in this process, "
          f"{c_workers:.1f} s in worker processes), "
          f"{result.imported:,} certificates, {result.imported / t_imp:,.0f} certificates/s, "
          f"×{t_imp / t_read:.1f} the baseline")
    print(f"          {result.customers_created:,} customers created, {result.documents_stored:,} documents, "
          f"{result.with_errors:,} with errors, {result.with_warnings:,} with warnings, "
          f"{result.held_for_review:,} held for review")
    for phase in ("Checking", "Validating", "Writing", "Importing"):
        if phase + " start" in phases:
            print(f"          {phase.lower():10s} {phases[phase + ' end'] - phases[phase + ' start']:6.1f} s "
                  f"(from its first progress report to its last)")
    print(f"          the write (the writer's lock and the audit trail held): {result.write_seconds:.1f} s")
    print(f"peak memory of this process: {peak_mb():.0f} MB")

    with db.reader() as s:
        events = s.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
        certs = s.execute(select(func.count()).select_from(Certificate)).scalar_one()
        t0 = time.perf_counter()
        report = audit.verify_chain(s)
        t_verify = time.perf_counter() - t0
    print(f"stored {certs:,} certificates, {events:,} audit events; chain "
          f"{'intact' if report.ok else 'BROKEN: ' + report.problem} ({t_verify:.1f} s to verify)")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not report.ok or result.imported != n:
        sys.exit(1)


if __name__ == "__main__":
    main()
