"""Benchmark: validate 100,000 certificates (evaluate + store runs, findings and audit events).

Certificates are built here by bulk insert (a realistic mix: own state forms, SST and MTC
multi-state forms, some with errors and warnings). Prints, measured in the same run:

* baseline: loading the same certificates in the same batches (lines, customer, company) without
  validating;
* evaluation only (the pure engine over the loaded certificates, nothing stored);
* ``ValidationService.validate_many`` (load + evaluate + store runs, findings, audit events);
* ``stale_certificates`` after a (simulated) rules-pack change.

    .venv/bin/python bench/bench_validation.py                     # 100,000 certificates, SQLite
    .venv/bin/python bench/bench_validation.py --certificates 10000
    .venv/bin/python bench/bench_validation.py --db postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, insert, select
from sqlalchemy.orm import selectinload

from ecms_desktop.models import Certificate, CoverageLine, Customer
from ecms_desktop.models.validation import Finding as FindingRow
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.validation.engine import subject_of
from ecms_desktop.services.validation.service import ValidationService

AS_OF = dt.date(2026, 11, 20)
BATCH = 500


def build(db: Database, n: int, seed: int = 7) -> list[int]:
    rng = random.Random(seed)
    rules = load_rules_pack()
    company = CompanyService(db).create("Bench Co", legal_name="Bench Company LLC", address_line1="1 Main St",
                                        city="Austin", state="TX", postal_code="78701").id
    own = [(s, f.code) for s, st in rules.states.items() for f in st.forms[:1] if "resale" in f.exempt_reasons]
    sample = {"TX": "32012345678", "IL": "12345678", "PA": "12345678", "AZ": "12345678", "MN": "1234567",
              "ID": "123456789"}
    n_customers = max(1, n // 10)
    with db.transaction() as s:
        s.execute(insert(Customer), [{"company_id": company, "number": f"C{i}", "number_key": f"c{i}",
                                      "legal_name": f"Customer {i} LLC"} for i in range(n_customers)])
        cust_ids = list(s.execute(select(Customer.id).order_by(Customer.id)).scalars())
    base_date = dt.date(2024, 1, 1)
    for start in range(0, n, 10_000):
        certs, kinds = [], []
        for i in range(start, min(n, start + 10_000)):
            kind = rng.random()
            cust = rng.randrange(n_customers)
            if kind < 0.6:
                state, form = own[i % len(own)]
                states = [state]
            elif kind < 0.8:
                form, states = "SST-F0003", rng.sample(["KS", "KY", "NC", "OH", "WA", "TX", "GA"], 3)
            else:
                form, states = "MTC-UNIFORM", rng.sample(["CA", "FL", "IL", "TX", "NY", "CO", "AZ"], 2)
            number = sample.get(states[0], "123456789") if rng.random() > 0.05 else "12"
            signed = base_date + dt.timedelta(days=rng.randrange(1000))
            certs.append({
                "company_id": company, "customer_id": cust_ids[cust], "form_code": form,
                "certificate_number": f"N{i}", "purchaser_name": f"Customer {cust} Inc" if rng.random() > 0.05
                else f"Other Name {i}", "purchaser_address": "1 Elm St", "purchaser_tax_id": number,
                "purchaser_ein": "", "business_type": "retailer", "business_description": "Retail store",
                "property_description": "Goods for resale", "exempt_reason": "resale", "exemption_detail": "",
                "certificate_type": "blanket", "po_number": "", "signed": rng.random() > 0.03,
                "signer_name": "Pat Doe", "signer_title": "Owner", "signed_date": signed, "effective_date": signed,
                "expiry_override_reason": "", "review_state": "pending", "review_reason": "", "reviewed_by": "",
                "product_codes": [], "commodity_codes": [], "currency": "USD", "notes": "", "owner_email": "",
                "origin": "demo", "version": 1, "expiry_override": None,
            })
            kinds.append(states)
        with db.transaction() as s:
            ids = list(s.execute(insert(Certificate).returning(Certificate.id), certs).scalars())
            s.execute(insert(CoverageLine), [{"certificate_id": cid, "state": st, "state_tax_id": "",
                                              "local_jurisdictions": [], "expiry_basis": "", "expiry_source": "",
                                              "expiry_origin": "rules"}
                                             for cid, states in zip(ids, kinds, strict=True) for st in states])
    with db.reader() as s:
        return list(s.execute(select(Certificate.id).order_by(Certificate.id)).scalars())


def load_only(db: Database, ids: list[int], evaluate: ValidationService | None = None) -> int:
    """The baseline: the same batched loading validate_many does (optionally evaluating, not storing)."""
    findings = 0
    for start in range(0, len(ids), BATCH):
        with db.reader() as s:
            certs = s.execute(select(Certificate).where(Certificate.id.in_(ids[start:start + BATCH]))
                              .options(selectinload(Certificate.lines), selectinload(Certificate.customer),
                                       selectinload(Certificate.company))).scalars().all()
            if evaluate is not None:
                for cert in certs:
                    findings += len(evaluate.engine.evaluate(subject_of(cert), AS_OF))
    return findings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--certificates", type=int, default=100_000)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    tmp = tempfile.TemporaryDirectory()
    db = Database(args.db or f"sqlite:///{Path(tmp.name) / 'bench.sqlite'}")
    db.upgrade()
    n = args.certificates

    t0 = time.perf_counter()
    ids = build(db, n)
    t_build = time.perf_counter() - t0
    print(f"built {len(ids):,} certificates by bulk insert in {t_build:.1f} s ({db.dialect})")

    service = ValidationService(db)
    t0, c0 = time.perf_counter(), time.process_time()
    load_only(db, ids)
    t_load, c_load = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    n_findings = load_only(db, ids, evaluate=service)
    t_eval, c_eval = time.perf_counter() - t0, time.process_time() - c0
    t0, c0 = time.perf_counter(), time.process_time()
    result = service.validate_many(ids, as_of=AS_OF, collect=False, batch_size=BATCH)
    t_full, c_full = time.perf_counter() - t0, time.process_time() - c0
    with db.reader() as s:
        stored = s.execute(select(func.count()).select_from(FindingRow)).scalar_one()

    rules = service.rules
    newer = dataclasses.replace(rules, version="2099.1.1")
    t0, c0 = time.perf_counter(), time.process_time()
    stale = ValidationService(db, newer).stale_certificates(AS_OF)
    t_stale, c_stale = time.perf_counter() - t0, time.process_time() - c0

    print(f"findings: {n_findings:,} evaluated, {stored:,} stored; certificates with errors "
          f"{result.with_errors:,}, with warnings {result.with_warnings:,}")
    print(f"{'':<48}{'wall':>9} {'cert/s':>10} {'ratio':>7} {'CPU':>9} {'ratio':>7}")
    for label, wall, cpu in (("baseline: load only", t_load, c_load),
                             ("load + evaluate (pure engine, nothing stored)", t_eval, c_eval),
                             ("validate_many (evaluate + store runs + audit)", t_full, c_full),
                             ("stale_certificates after a rules-pack change", t_stale, c_stale)):
        print(f"{label:<48}{wall:8.1f}s {n / wall:10,.0f} {wall / t_load:6.2f}x {cpu:8.1f}s {cpu / c_load:6.2f}x")
    print(f"stale_certificates listed {len(stale):,}")
    db.dispose()
    tmp.cleanup()


if __name__ == "__main__":
    main()
