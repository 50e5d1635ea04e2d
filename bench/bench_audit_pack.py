"""Benchmark: an audit pack of 1,000 certificates with their PDFs and 100,000 coverage rows.

Usage: .venv/bin/python bench/bench_audit_pack.py [--certs 1000] [--sales 100000] [--keep DIR]

Setup (not timed) builds an SQLite database: certificates through ``create_certificate`` and
``store_checked`` (2-page reportlab PDFs, one per certificate), approved at creation; sales lines and
their determinations are written straight into the transactions tables (bench-only bulk insert, not
the import and determination services: this bench measures the pack, not the determination).

Then, each in a fresh child process so that peak memory is the work's own:
- baseline: read the same certificate files from the database, copy them into a folder and write
  their SHA-256 (what a minimal "just copy the files" pack would do);
- the audit pack (xlsx + PDF book + files + manifest + zip + audit event).
Prints seconds, peak RSS (process and its document-sandbox children) and the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("ECMS_USER", "bench")

PERIOD = (dt.date(2026, 1, 1), dt.date(2026, 12, 31))


def make_pdf(text: str) -> bytes:
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, invariant=1)
    for page in (1, 2):
        c.setFont("Helvetica-Bold", 16)
        c.drawString(72, 720, "Texas Sales and Use Tax Resale Certificate")
        c.setFont("Helvetica", 11)
        c.drawString(72, 690, f"{text} - page {page}")
        for i in range(20):
            c.drawString(72, 650 - 18 * i, f"Line {i + 1}: purchaser details, items purchased, signature block")
        c.showPage()
    c.save()
    return buf.getvalue()


def setup(path: Path, certs: int, sales: int) -> None:
    from sqlalchemy import insert

    from ecms_desktop.models.transactions import Determination, TransactionLine
    from ecms_desktop.rules import load_rules_pack
    from ecms_desktop.services.certificates.service import ExpiryContext, create_certificate
    from ecms_desktop.services.companies.service import CompanyService
    from ecms_desktop.services.core.certificate_records import CertificateInput, LineInput
    from ecms_desktop.services.core.database import Database
    from ecms_desktop.services.customers.service import upsert_customer
    from ecms_desktop.services.documents.storage import CheckedFile, sha256_of, store_checked

    db = Database(f"sqlite:///{path}")
    db.upgrade()
    company_id = CompanyService(db).create("Bench Supply", legal_name="Bench Supply Company LLC",
                                           address_line1="1 Bench Way", city="Austin", state="TX",
                                           postal_code="78701").id
    rules = load_rules_pack()
    cert_ids: list[tuple[int, str, str]] = []
    with db.transaction() as s:
        ctx = ExpiryContext.load(s, rules, company_id)
        for i in range(certs):
            customer, _ = upsert_customer(s, company_id, f"C-{i:05d}", legal_name=f"Customer {i:05d} Inc")
            state = ("TX", "OK", "FL", "GA")[i % 4]
            cert = create_certificate(s, rules, CertificateInput(
                company_id=company_id, customer_id=customer.id, form_code="MTC-UNIFORM" if state != "TX" else
                "TX-01-339", lines=(LineInput(state),), certificate_number=f"N-{i:05d}",
                purchaser_name=customer.legal_name, purchaser_tax_id=f"{10000000000 + i}", signed=True,
                signed_date=dt.date(2026, 1, 1)), origin="import", review_state="approved", ctx=ctx)
            data = make_pdf(f"Certificate N-{i:05d} for {customer.legal_name}")
            store_checked(s, CheckedFile(f"cert-{i:05d}.pdf", data, sha256_of(data), "application/pdf", 2),
                          received_via="import", certificate_id=cert.id, company_id=company_id)
            cert_ids.append((cert.id, customer.number, state))
    with db.transaction() as s:
        rows, dets = [], []
        for n in range(sales):
            cid, number, state = cert_ids[n % len(cert_ids)]
            day = PERIOD[0] + dt.timedelta(days=n % 365)
            rows.append({"id": n + 1, "company_id": company_id, "invoice_number": f"INV-{n // 3:07d}",
                         "line": n % 3 + 1, "invoice_date": day, "customer_number": number,
                         "customer_key": number.casefold(), "ship_to_state": state, "amount": Decimal("125.50"),
                         "currency": "USD", "tax_collected": Decimal(0), "exempt_claimed": True,
                         "exempt_reason": "resale", "po_number": ""})
            dets.append({"transaction_line_id": n + 1, "company_id": company_id, "exempt": True,
                         "certificate_id": cid, "certificate_number": f"N-{(n % len(cert_ids)):05d}",
                         "certificate_version": 1, "coverage_state": state, "certificate_status": "approved",
                         "rules_pack_version": rules.version, "exempt_amount": Decimal("125.50"),
                         "taxable_amount": Decimal(0), "also_eligible": [], "conflict": False,
                         "explanation": {"summary": "exempt: certificate applies", "candidates": [
                             {"certificate_id": cid, "certificate_number": "", "outcome": "applied",
                              "reasons": ["customer matches", f"ship-to {state} covered", "valid on invoice date"]}]},
                         "exposure_kind": "", "exposure_amount": Decimal(0), "origin": "determine"})
            if len(rows) == 20000:
                s.execute(insert(TransactionLine), rows)
                s.execute(insert(Determination), dets)
                rows, dets = [], []
        if rows:
            s.execute(insert(TransactionLine), rows)
            s.execute(insert(Determination), dets)
    db.dispose()


def run_child(mode: str, db_path: Path, out: Path) -> dict[str, float]:
    proc = subprocess.run([sys.executable, __file__, "--child", mode, str(db_path), str(out)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child(mode: str, db_path: Path, out: Path) -> None:
    from sqlalchemy import select

    from ecms_desktop.models import Document, DocumentFile
    from ecms_desktop.services.audit_pack.content import AuditPackSelection
    from ecms_desktop.services.audit_pack.service import AuditPackService
    from ecms_desktop.services.core.database import Database

    db = Database(f"sqlite:///{db_path}")
    start = time.perf_counter()
    info: dict[str, float] = {}
    if mode == "baseline":
        out.mkdir()
        lines = []
        with db.reader() as s:
            for name, _sha, data in s.execute(select(Document.original_name, Document.sha256, DocumentFile.data)
                                             .join(DocumentFile, DocumentFile.sha256 == Document.sha256)
                                             .order_by(Document.id)):
                (out / name).write_bytes(data)
                lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
        (out / "SHA256SUMS").write_text("".join(lines))
    else:
        result = AuditPackService(db).generate(AuditPackSelection(*PERIOD), out)
        info.update(certificates=result.certificates, pdf_pages=result.pdf_pages, files=result.files)
        info["zip_mb"] = (result.zip_path.stat().st_size / 1e6) if result.zip_path else 0
    info["seconds"] = time.perf_counter() - start
    info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    info["children_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(info))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--certs", type=int, default=1000)
    ap.add_argument("--sales", type=int, default=100_000)
    ap.add_argument("--keep", type=Path, default=None)
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-audit-pack-"))
    work.mkdir(parents=True, exist_ok=True)
    db_path = work / "bench.sqlite"
    t = time.perf_counter()
    if not db_path.exists():
        setup(db_path, args.certs, args.sales)
    print(f"setup: {args.certs} certificates with 2-page PDFs, {args.sales} sales lines with determinations "
          f"({time.perf_counter() - t:.1f} s, not timed below)")
    try:
        import _rl_accel  # noqa: F401

        accel = "reportlab C accelerator (rl-accel) installed"
    except ImportError:
        accel = "reportlab C accelerator (rl-accel) NOT installed"
    print(f"{accel}; load average before the runs: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores (other processes share them)")
    for name in ("baseline", "pack"):
        target = work / f"out-{name}-{int(time.time())}"
        r = run_child(name, db_path, target)
        print(f"{name}: " + ", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()))
        if name == "baseline":
            base = r["seconds"]
        else:
            total_mb = r["peak_rss_mb"] + r["children_peak_rss_mb"]
            print(f"ratio pack / baseline: {r['seconds'] / base:.1f}x; goal under 60 s and 600 MB "
                  f"(process + sandbox child {total_mb:.0f} MB): "
                  f"{'met' if r['seconds'] < 60 and total_mb < 600 else 'NOT met'}; load average after: "
                  f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
