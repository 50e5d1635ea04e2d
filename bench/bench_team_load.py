"""Load test of team mode: several processes as four people editing, approving and importing on one
PostgreSQL database at once, then the proof that nothing went wrong.

Four people, each with their own database login (created here and dropped at the end): two reviewers,
an approver and an admin; each runs ``--per-person`` processes (8 in all by default) for ``--seconds``.
Each process, as its person, loops: pick one of the pending or decided certificates at random, read it,
and (reviewers) edit a field, (approver) approve / reject it or edit it, (admin) edit or change a
setting; every few rounds it imports a small sales file. Every attempt is logged with the version it
was made on.

Afterwards it proves, and prints:

- **no lost update**: no two accepted changes of one certificate were made on the same version, and
  each certificate holds the value of its last accepted edit;
- **every refused save was a real conflict**: for each refusal on version v, another accepted change
  of that certificate was made on version v (so the copy really was stale);
- ``ecms check`` passes (the chain and every record against the trail), the chain verifies;
- **every event names the right person**: each edit's event carries the name the process wrote in
  the value, and no event names anyone but the five people;
- the figures: attempts, accepted, refused, per second, and the latency of an accepted save.

    .venv/bin/python bench/bench_team_load.py                       # 4 people x 2 processes, 60 s
    .venv/bin/python bench/bench_team_load.py --seconds 10 --per-person 1
    .venv/bin/python bench/bench_team_load.py --server postgresql+psycopg://postgres@127.0.0.1:5432/test

Exit status 0 when every proof holds, 1 otherwise. Never run against a database holding real data: it
creates its own database (``ecms_load_<pid>``) on the server and drops it at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

AS_OF = dt.date(2026, 12, 6)
PEOPLE = (("Pat Lee", "reviewer"), ("Lee Chan", "reviewer"), ("Sam Ortiz", "approver"), ("Kim Park", "admin"))
ADMIN = "Morgan Admin"


def _login(name: str, tag: str) -> str:
    return f"ecms_load_{name.split()[0].lower()}_{tag}"


def _worker(url: str, person: str, role: str, index: int, seconds: float, cert_ids: list[int], company_id: int,
            out: str, folder: str) -> None:
    from ecms_desktop.services.certificates.service import CertificateService
    from ecms_desktop.services.companies.service import CompanyService
    from ecms_desktop.services.core.database import Database
    from ecms_desktop.services.core.errors import ConflictError, EcmsError
    from ecms_desktop.services.sales.transaction_import import TransactionImporter

    db = Database(url)
    service = CertificateService(db)
    rng = random.Random(hash((person, index)))
    log: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    n = 0
    try:
        while time.monotonic() < deadline:
            n += 1
            if n % 15 == 0:  # an import now and then, as the person
                path = Path(folder) / f"sales-{person.split()[0]}-{index}-{n}.csv"
                lines = [f"INV-{person.split()[0]}-{index}-{n},{k},2026-11-{1 + k % 28:02d},C-{k % 20},TX,"
                         f"{100 + k}.00,0.00,Y" for k in range(1, 41)]
                path.write_text("invoice_number,line,invoice_date,customer_number,ship_to_state,amount,"
                                "tax_collected,exempt_claimed\n" + "\n".join(lines) + "\n", encoding="utf-8")
                t0 = time.perf_counter()
                TransactionImporter(db).import_file(path, company_id=company_id)
                log.append({"kind": "import", "ok": True, "ms": (time.perf_counter() - t0) * 1000})
                continue
            if role == "admin" and n % 10 == 0:
                CompanyService(db).set_setting("expiring_soon_days", 30 + n % 30, company_id)
                log.append({"kind": "setting", "ok": True})
                continue
            cert_id = rng.choice(cert_ids)
            detail = service.get(cert_id, AS_OF)
            version = detail.version
            decide = role == "approver" and rng.random() < 0.5
            entry: dict[str, Any] = {"cert": cert_id, "version": version, "person": person}
            t0 = time.perf_counter()
            try:
                if decide and detail.review_state in ("pending", "rejected"):
                    entry["kind"] = "approve"
                    new = service.approve(cert_id, expected_version=version, as_of=AS_OF, acknowledge_warnings=True)
                elif decide:
                    entry["kind"] = "reject"
                    new = service.reject(cert_id, f"load test by {person}", expected_version=version, as_of=AS_OF)
                else:
                    entry["kind"] = "edit"
                    value = f"Exempt per {person} #{index}-{n}"
                    entry["value"] = value
                    new = service.save(cert_id, replace(detail.data, exemption_detail=value),
                                       expected_version=version, as_of=AS_OF)
                entry.update(ok=True, new_version=new.version)
            except ConflictError:
                entry.update(ok=False)
            except EcmsError as exc:  # anything else refused is a finding of this bench, never expected
                entry.update(ok=False, error=str(exc))
            entry["ms"] = (time.perf_counter() - t0) * 1000
            log.append(entry)
    finally:
        db.dispose()
        Path(out).write_text(json.dumps(log), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=os.environ.get("ECMS_TEST_DATABASE_URL",
                                                           "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
                        help="a PostgreSQL URL whose login may create databases and roles")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--per-person", type=int, default=2, help="processes per person (4 people)")
    parser.add_argument("--certificates", type=int, default=40,
                        help="certificates worked on (few, so that desks really collide)")
    parser.add_argument("--keep", action="store_true", help="keep the database and logins afterwards")
    args = parser.parse_args(argv)

    from ecms_desktop.services.core.database import Database
    from ecms_desktop.services.core.database_setup import initialize_database
    from ecms_desktop.services.core.people_service import PeopleService
    from tests.factories import make_certificate, make_company

    tag = str(os.getpid())
    server_url = make_url(args.server)
    name = f"ecms_load_{tag}"
    server = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        for person, _role in PEOPLE:
            conn.execute(text(f'DROP ROLE IF EXISTS "{_login(person, tag)}"'))
            conn.execute(text(f'CREATE ROLE "{_login(person, tag)}" LOGIN'))
    url = server_url.set(database=name)
    ok = False
    try:
        os.environ["ECMS_USER"] = ADMIN
        admin = Database(url.render_as_string(hide_password=False))
        initialize_database(admin, admin_name=ADMIN)
        for person, role in PEOPLE:
            PeopleService(admin).add(person, role=role, login=_login(person, tag))
        company_id = make_company(admin)
        cert_ids = [make_certificate(admin, company_id, customer=f"C-{i % 20}", name=f"Buyer {i % 20}",
                                     approve=i % 2 == 0).id for i in range(args.certificates)]
        admin.dispose()
        print(f"database {name}: {len(cert_ids)} certificates, people {', '.join(p for p, _ in PEOPLE)}; "
              f"{len(PEOPLE) * args.per_person} processes for {args.seconds:.0f} s; load {os.getloadavg()[0]:.2f}",
              flush=True)
        with tempfile.TemporaryDirectory() as work:
            ctx = mp.get_context("spawn")
            procs = []
            for person, role in PEOPLE:
                person_url = url.set(username=_login(person, tag)).render_as_string(hide_password=False)
                for i in range(args.per_person):
                    out = str(Path(work) / f"{_login(person, tag)}-{i}.json")
                    p = ctx.Process(target=_worker, args=(person_url, person, role, i, args.seconds, cert_ids,
                                                          company_id, out, work))
                    p.start()
                    procs.append((p, out))
            for p, _out in procs:
                p.join(args.seconds + 180)
            failed = [p.exitcode for p, _ in procs if p.exitcode != 0]
            logs = [e for _p, out in procs if Path(out).exists() for e in json.loads(Path(out).read_text())]
        ok = not failed and _prove(url.render_as_string(hide_password=False), logs, args.seconds, failed)
    finally:
        if not args.keep:
            with server.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                for person, _role in PEOPLE:
                    conn.execute(text(f'DROP ROLE IF EXISTS "{_login(person, tag)}"'))
        server.dispose()
    print("RESULT:", "every proof holds" if ok else "FAILED", flush=True)
    return 0 if ok else 1


def _prove(url: str, logs: list[dict[str, Any]], seconds: float, failed: list[int | None]) -> bool:
    from ecms_desktop.models import AuditEvent, Certificate
    from ecms_desktop.services.core import audit
    from ecms_desktop.services.core.database import Database
    from ecms_desktop.services.integrity.check import check_database

    changes = [e for e in logs if e.get("kind") in ("edit", "approve", "reject")]
    accepted = [e for e in changes if e["ok"]]
    refused = [e for e in changes if not e["ok"] and "error" not in e]
    errors = [e for e in changes if "error" in e]
    imports = [e for e in logs if e.get("kind") == "import"]
    problems: list[str] = [f"{len(failed)} worker processes failed"] if failed else []
    problems += [f"unexpected refusal: {e['error']}" for e in errors[:5]]

    # No lost update: one accepted change per (certificate, version it was made on).
    made_on: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for e in accepted:
        made_on[(e["cert"], e["version"])].append(e)
    twice = {k: v for k, v in made_on.items() if len(v) > 1}
    problems += [f"certificate {c}: {len(v)} changes accepted on version {ver} (a lost update)"
                 for (c, ver), v in list(twice.items())[:5]]
    # Every refusal was a real conflict: someone else's change was accepted on that very version.
    unreal = [e for e in refused if (e["cert"], e["version"]) not in made_on]
    problems += [f"certificate {e['cert']}: a save on version {e['version']} was refused with no change made on it"
                 for e in unreal[:5]]

    db = Database(url)
    try:
        with db.reader() as s:
            last_edit: dict[int, dict[str, Any]] = {}
            for e in sorted((e for e in accepted if e["kind"] == "edit"), key=lambda e: e["version"]):
                last_edit[e["cert"]] = e
            for cert_id, e in last_edit.items():
                held = s.execute(select(Certificate.exemption_detail).where(Certificate.id == cert_id)).scalar_one()
                if held != e["value"]:
                    problems.append(f"certificate {cert_id} holds {held!r}, not its last accepted edit {e['value']!r}")
            people = {p for p, _ in PEOPLE} | {ADMIN}
            strangers = s.execute(select(AuditEvent.actor).where(AuditEvent.actor.not_in(people)).distinct()).all()
            problems += [f"an event names {r[0]!r}" for r in strangers]
            wrong = 0
            for after, actor in s.execute(select(AuditEvent.after, AuditEvent.actor)
                                          .where(AuditEvent.action == "certificate.edited")):
                value = (after or {}).get("exemption_detail", "")
                if value.startswith("Exempt per ") and not value.startswith(f"Exempt per {actor} #"):
                    wrong += 1
            if wrong:
                problems.append(f"{wrong} edit events name someone other than the person who made the edit")
            chain = audit.verify_chain(s)
            events = audit.count_events(s)
        if not chain.ok:
            problems.append(f"the audit chain does not verify: {chain.problem}")
        report = check_database(db)
        if not report.ok:
            problems += [f"ecms check: {p}" for p in report.problems[:5]]
    finally:
        db.dispose()

    kinds = ", ".join(f"{k} {sum(1 for e in accepted if e['kind'] == k)}/{sum(1 for e in changes if e['kind'] == k)}"
                      for k in ("edit", "approve", "reject"))
    print(f"accepted/attempted by kind: {kinds}; by person: " + ", ".join(
        f"{p} {sum(1 for e in accepted if e['person'] == p)}" for p, _r in PEOPLE), flush=True)
    ms = sorted(e["ms"] for e in accepted)
    print(f"attempts {len(changes)} ({len(changes) / seconds:.1f}/s), accepted {len(accepted)}, refused as stale "
          f"{len(refused)} (all real conflicts: {not unreal}), other refusals {len(errors)}, imports {len(imports)} "
          f"x 40 lines; accepted save latency median {statistics.median(ms) if ms else 0:.0f} ms, "
          f"p95 {ms[int(len(ms) * 0.95)] if ms else 0:.0f} ms; events {events}; chain ok {chain.ok}; "
          f"ecms check ok {report.ok}; load {os.getloadavg()[0]:.2f}", flush=True)
    for problem in problems:
        print("PROBLEM:", problem, flush=True)
    return not problems


if __name__ == "__main__":
    sys.exit(main())
