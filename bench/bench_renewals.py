"""Benchmark: 1,000 renewal e-mails with ~100 KB request packets to a loopback SMTP server (aiosmtpd).

Measures, on a fresh SQLite database in a temporary folder:

1. preparing the batch: plan + request packets (cover letter PDF with the company logo, generated
   fill-in form) + one outbox row per message, all in one transaction;
2. delivering the outbox through ``EmailService`` (two committed state changes and an audit event per
   message, one SMTP connection, no rate limit);
3. the baseline in the same run: bare ``smtplib`` sending the same message bytes (already in memory)
   over one connection to the same server.

Prints seconds, messages per second, average message size, the process's resident memory (current and
peak) after each phase, and the ratio delivery / baseline.

    .venv/bin/python bench/bench_renewals.py --messages 1000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import smtplib
import sys
import tempfile
import time
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("ECMS_USER", "bench")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def noise_png(width: int, height: int, seed: int = 7) -> bytes:
    """An incompressible PNG (a scanned-looking logo) so that each cover letter is ~80 KB."""
    import random
    import struct

    rnd = random.Random(seed)
    rows = b"".join(b"\x00" + bytes(rnd.getrandbits(8) for _ in range(width * 3)) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    args = parser.parse_args()
    n = args.messages

    from sqlalchemy import select

    from ecms_desktop.models import Company, Customer
    from ecms_desktop.models.renewal import OutboxMessage
    from ecms_desktop.rules import load_rules_pack
    from ecms_desktop.services.certificates.service import create_certificate
    from ecms_desktop.services.companies.service import CompanyService
    from ecms_desktop.services.core.certificate_records import CertificateInput, LineInput
    from ecms_desktop.services.core.database import Database
    from ecms_desktop.services.renewals.email_service import EmailService
    from ecms_desktop.services.renewals.service import RenewalService
    from tests.helpers.smtp_server import SmtpTestServer

    rules = load_rules_pack()
    day0 = dt.date(2026, 1, 1)
    with tempfile.TemporaryDirectory() as tmp, SmtpTestServer(keep_data=False) as server:
        db = Database(f"sqlite:///{Path(tmp) / 'bench.sqlite'}")
        db.upgrade()
        company = CompanyService(db).create("Acme Supply", legal_name="Acme Supply Company LLC",
                                            address_line1="100 Main St", city="Austin", state="TX",
                                            postal_code="78701", reply_to_email="tax@acme.example",
                                            registrations={"TX": "32012345678"})
        CompanyService(db).set_setting("smtp_rate_per_minute", 0, company.id)
        EmailService(db).set_profile(company.id, host="127.0.0.1", port=server.port, security="none",
                                     from_address="Acme Tax <tax@acme.example>")
        with db.transaction() as s:
            row = s.get(Company, company.id)
            assert row is not None
            row.logo, row.logo_media_type = noise_png(160, 160), "image/png"
            for i in range(n):
                cust = Customer(company_id=company.id, number=f"C-{i:05d}", number_key=f"c-{i:05d}",
                                legal_name=f"Customer {i:05d} Inc", email=f"buyer{i}@example.net",
                                bill_to_line1=f"{i} Elm Rd", bill_to_city="Dallas", bill_to_state="TX",
                                bill_to_zip="75201")
                s.add(cust)
                s.flush()
                create_certificate(s, rules, CertificateInput(
                    company_id=company.id, customer_id=cust.id, form_code="TX-01-339", lines=(LineInput("TX"),),
                    purchaser_name=cust.legal_name, expiry_override=day0 + dt.timedelta(days=10 + i % 40),
                    expiry_override_reason="bench"), origin="demo", review_state="approved", record_audit=False)
        base_rss = rss_mb()
        service = RenewalService(db, rules)

        t0 = time.perf_counter()
        result = service.run(company.id, day0, send=False)
        prepare_s = time.perf_counter() - t0
        prep_rss, prep_peak = rss_mb(), peak_mb()
        assert result.messages_queued == n, result.summary()
        with db.reader() as s:
            sizes = list(s.execute(select(OutboxMessage.size)).scalars())

        t0 = time.perf_counter()
        report = service.email.send_queued(company.id)
        deliver_s = time.perf_counter() - t0
        del_rss, del_peak = rss_mb(), peak_mb()
        assert report.sent == n and len(server.messages) == n, report.summary()

        with db.reader() as s:
            raws = [(r.from_address, r.to_address, r.raw) for r in s.execute(select(OutboxMessage)).scalars()]
        server.messages.clear()
        t0 = time.perf_counter()
        conn = smtplib.SMTP("127.0.0.1", server.port)
        for _from, to, raw in raws:
            conn.sendmail("tax@acme.example", [to], raw)
        conn.quit()
        baseline_s = time.perf_counter() - t0
        assert len(server.messages) == n
        db.dispose()

    avg_kb = sum(sizes) / len(sizes) / 1024
    print(f"messages: {n}, average size {avg_kb:.0f} KB (MIME, base64 attachments), total {sum(sizes) / 2**20:.0f} MB")
    print(f"prepare (plan + packets + outbox, one transaction): {prepare_s:.1f} s, {n / prepare_s:.0f} msg/s")
    print(f"deliver (EmailService, outbox states + audit):      {deliver_s:.1f} s, {n / deliver_s:.0f} msg/s")
    print(f"baseline (bare smtplib, same bytes in memory):      {baseline_s:.1f} s, {n / baseline_s:.0f} msg/s")
    print(f"ratio deliver / baseline: {deliver_s / baseline_s:.2f}x; "
          f"end to end (prepare + deliver) / baseline: {(prepare_s + deliver_s) / baseline_s:.1f}x")
    print(f"RSS: before {base_rss:.0f} MB; after prepare {prep_rss:.0f} MB (peak {prep_peak:.0f} MB); "
          f"after deliver {del_rss:.0f} MB (peak {del_peak:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
