"""``ecms audit-pack`` (build an offline audit pack) and ``ecms audit-pack verify`` (check one later).

The services of a command are imported inside it, so that ``ecms --help`` and every other command
start without loading them (about 0.6 s less per run, measured with ``time ecms --help``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ecms_desktop.cli.common import CliContext, Subparsers, add_company, add_format, parse_date, print_json
from ecms_desktop.vocabulary import ReviewState


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "audit-pack", help="build an audit pack (workbook, PDF book, certificate files, manifest) or verify one",
        usage="ecms audit-pack --out DIR --from YYYY-MM-DD --to YYYY-MM-DD [options]\n"
              "       ecms audit-pack verify DIR_OR_ZIP [--check-database] [--format {table,json}]",
        description="Build an audit pack for a period: `ecms audit-pack --out DIR --from D --to D [...]`. "
                    "Check a pack later: `ecms audit-pack verify DIR_OR_ZIP`.")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="new (or empty) folder for the pack; the zip is written beside it")
    add_company(p)
    p.add_argument("--customer", action="append", default=[], metavar="C",
                   help="customer number or name (repeatable; default all)")
    p.add_argument("--state", action="append", default=[], metavar="XX", help="state code (repeatable; default all)")
    p.add_argument("--from", dest="date_from", type=parse_date, metavar="YYYY-MM-DD", help="first day of the period")
    p.add_argument("--to", dest="date_to", type=parse_date, metavar="YYYY-MM-DD", help="last day of the period")
    p.add_argument("--review-state", action="append", default=[], choices=[r.value for r in ReviewState],
                   help="review state held during the period (repeatable; default approved)")
    p.add_argument("--zip", dest="make_zip", action=argparse.BooleanOptionalAction, default=True,
                   help="also write DIR.zip (default: yes)")
    p.add_argument("--quiet", action="store_true", help="no progress on standard error")
    p.set_defaults(func=cmd_build)
    # The sub-command's own help line would repeat this one (argparse lists both): it has a description only.
    psub = p.add_subparsers(title="subcommand", dest="pack_command", metavar="verify DIR_OR_ZIP",
                            help="check a pack folder or zip instead of building one: names any changed, missing "
                                 "or extra file (`ecms audit-pack verify -h`)")
    v = psub.add_parser("verify", description="Check an audit pack: every file against the manifest's hashes, and with "
                                    "--check-database the manifest against this database's audit trail.")
    v.add_argument("pack", type=Path, metavar="DIR_OR_ZIP", help="the pack's folder, or its .zip")
    v.add_argument("--check-database", action="store_true",
                   help="also confirm that the manifest is the one recorded in this database's audit trail")
    add_format(v)
    v.set_defaults(func=cmd_verify)


def cmd_build(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.audit_pack.content import AuditPackSelection
    from ecms_desktop.services.audit_pack.service import AuditPackService

    missing = [name for name, value in (("--out", args.out), ("--from", args.date_from), ("--to", args.date_to))
               if value is None]
    if missing:
        print(f"error: audit-pack needs {', '.join(missing)} (or use `ecms audit-pack verify DIR_OR_ZIP`)",
              file=sys.stderr)
        return 2
    selection = AuditPackSelection(
        date_from=args.date_from, date_to=args.date_to, company=args.company, customers=tuple(args.customer),
        states=tuple(args.state), review_states=tuple(args.review_state) or (ReviewState.APPROVED.value,))
    last = [-1]

    def progress(done: int, total: int, text: str) -> None:
        if args.quiet:
            return
        pct = int(100 * done / total) if total else 0
        if pct != last[0]:
            last[0] = pct
            print(f"\r{pct:3d}% {text[:70]:<70}", end="", file=sys.stderr, flush=True)

    result = AuditPackService(ctx.db()).generate(selection, args.out, make_zip=args.make_zip, progress=progress)
    if not args.quiet:
        print(file=sys.stderr)
    out = ctx.out
    print(f"Audit pack written to {result.folder}", file=out)
    if result.zip_path:
        print(f"Zip: {result.zip_path}", file=out)
    print(f"{result.certificates} certificates ({result.lines} state lines), {result.documents} documents, "
          f"{result.pdf_pages} PDF pages, {result.files} files.", file=out)
    print(f"Manifest SHA-256 {result.manifest_sha256} (audit event {result.audit_seq}).", file=out)
    for problem in result.problems:
        print(f"Warning: {problem}", file=sys.stderr)
    return 0


def cmd_verify(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.audit_pack.verify import verify_against_audit_trail, verify_pack

    report = verify_pack(args.pack)
    recorded = verify_against_audit_trail(report, ctx.db()) if args.check_database else ""
    if args.format == "json":
        data = report.to_json()
        data["audit_trail"] = recorded
        print_json(data, ctx.out)
        return 0 if report.ok else 1
    for line in report.lines():
        print(line, file=ctx.out)
    if report.ok:
        print(f"OK: {report.files_checked} files match the manifest of {report.location} "
              f"(generated {report.manifest.get('generated_at')}; manifest SHA-256 {report.manifest_sha256}).",
              file=ctx.out)
        if recorded:
            print(f"The manifest is {recorded}.", file=ctx.out)
        return 0
    print(f"FAILED: {len(report.changed)} changed, {len(report.missing)} missing, {len(report.extra)} extra "
          f"file(s), {len(report.problems)} other problem(s) in {report.location}.", file=ctx.out)
    return 1
