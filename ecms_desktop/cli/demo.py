"""``ecms demo``: fill an empty database with realistic, reproducible demo data."""

from __future__ import annotations

import argparse
import sys

from ecms_desktop.cli.common import CliContext, Subparsers, add_as_of, as_of, print_table


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "demo", help="fill an empty database with demo companies, customers, certificates and documents",
        description="Make realistic demo data: three companies, their customers across many states and "
                    "certificates on real state forms in every status as of --as-of, with drawn and scanned "
                    "certificate documents. The same --seed and --as-of give the same data. Refused when "
                    "the database already holds data, unless --add.")
    p.add_argument("--certificates", type=int, default=1000, metavar="N",
                   help="how many certificates (default 1000; 100000 works)")
    p.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default 1)")
    p.add_argument("--company", default="", metavar="NAME",
                   help="name of the default (first) demo company (default: Northwind Industrial Supply)")
    p.add_argument("--add", action="store_true",
                   help="add demo data to a database that already holds data (new customer numbers are "
                        "chosen so as not to clash; companies with the demo's names are reused)")
    add_as_of(p)
    p.set_defaults(func=cmd_demo)


def cmd_demo(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.demo.plans import DemoOptions
    from ecms_desktop.services.demo.service import DemoService

    db = ctx.db()
    show = sys.stderr.isatty()
    last = [-1]

    def progress(done: int, total: int, text: str) -> None:
        pct = int(100 * done / total) if total else 100
        if show and pct != last[0]:
            last[0] = pct
            print(f"\r{pct:3d}%  {text[:70]:<70}", end="", file=sys.stderr, flush=True)

    options = DemoOptions(certificates=args.certificates, seed=args.seed, as_of=as_of(args),
                          company=args.company, add=args.add)
    result = DemoService(db).generate(options, progress=progress)
    if show:
        print(file=sys.stderr)
    out = ctx.out
    print(f"Demo data written to {db.display_url} in {result.seconds:.1f} s "
          f"(seed {result.seed}, statuses as of {result.as_of.isoformat()}).", file=out)
    print(f"Companies: {', '.join(result.companies)} (default: {result.default_company}).", file=out)
    print_table(["what", "count"], [
        ("companies", len(result.companies)),
        ("customers", result.customers),
        ("certificates", result.certificates),
        ("coverage lines", result.coverage_lines),
        ("document files (distinct)", result.document_files),
        ("documents attached", result.document_arrivals),
        ("audit events", result.audit_events),
    ], out)
    out.write("\n")
    print_table(["status", "certificates"], [(s.value, n) for s, n in result.status_counts.items()], out)
    if result.slips:
        out.write("\nDeliberate slips for validation to catch (the document says something else than the record):\n")
        for cert_id, slip in sorted(result.slips.items()):
            print(f"  certificate {cert_id}: {slip}", file=out)
    return 0
