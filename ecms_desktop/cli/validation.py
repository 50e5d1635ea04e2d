"""``ecms validate`` and ``ecms permits`` (import a registry, verify, record a manual check, re-verify)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from ecms_desktop.cli.common import CliContext, Subparsers, add_as_of, add_format, as_of, print_json, print_table
from ecms_desktop.vocabulary import REGISTRY_FIELDS

if TYPE_CHECKING:
    from ecms_desktop.services.validation.permit_service import PermitCheckInfo
    from ecms_desktop.services.validation.runs import ValidationResult


def register(sub: Subparsers) -> None:
    p = sub.add_parser("validate", help="check certificates against their states' rules (runs are stored)")
    p.add_argument("id", type=int, nargs="?", help="certificate id")
    p.add_argument("--all", action="store_true", help="every certificate")
    p.add_argument("--stale", action="store_true",
                   help="list certificates whose stored result is outdated (older rules pack, or it would "
                        "change); with --revalidate, validate them again")
    p.add_argument("--revalidate", action="store_true", help="with --stale: validate the listed certificates")
    add_as_of(p)
    add_format(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("permits", help="verify purchasers' sales tax permits")
    psub = p.add_subparsers(dest="permits_command", required=True)
    i = psub.add_parser("import", help="import a state's list of permit holders (.csv or .xlsx)")
    i.add_argument("--state", required=True, help="two-letter state code")
    i.add_argument("file", type=Path, help="the registry file (.csv or .xlsx)")
    i.add_argument("--map", action="append", default=[], metavar="COLUMN=FIELD",
                   help=f"file column for a registry field ({', '.join(REGISTRY_FIELDS)}); repeatable. "
                        "Texas's published active permit holders file needs none.")
    add_as_of(i)
    i.set_defaults(func=cmd_permits_import)

    v = psub.add_parser("verify", help="check a certificate's permit numbers (latest registry snapshot)")
    v.add_argument("id", type=int, help="the certificate's id")
    v.add_argument("--state", action="append", default=[], help="only this state (repeatable)")
    add_as_of(v)
    add_format(v)
    v.set_defaults(func=cmd_permits_verify)

    c = psub.add_parser("check", help="record a manual lookup on a state's web site, with evidence")
    c.add_argument("id", type=int, help="the certificate's id")
    c.add_argument("--result", required=True, choices=["active", "inactive", "not_found"],
                   help="what the state's page said about the number")
    c.add_argument("--evidence", required=True, type=Path, help="screenshot (PNG/JPEG) or PDF of the result")
    c.add_argument("--source", required=True, metavar="URL", help="the page the number was looked up on")
    c.add_argument("--state", default=None, help="state checked (needed for a multi-state certificate)")
    c.add_argument("--number", default=None, help="number checked (default: the certificate's)")
    c.add_argument("--note", default="", help="a remark kept with the check")
    c.add_argument("--name", default="", metavar="HOLDER",
                   help="the holder's name the page shows (compared with the purchaser)")
    add_as_of(c)
    c.set_defaults(func=cmd_permits_check)

    r = psub.add_parser("reverify", help="check again every permit whose last check is too old")
    r.add_argument("--include-unchecked", action="store_true", help="also numbers never checked")
    add_as_of(r)
    add_format(r)
    r.set_defaults(func=cmd_permits_reverify)


def _print_results(ctx: CliContext, results: list[ValidationResult], fmt: str) -> None:
    if fmt == "json":
        print_json([r.to_json() for r in results], ctx.out)
        return
    rows = [(r.certificate_id, r.certificate_number, f.severity, f.state, f.rule, f.field, f.message)
            for r in results for f in r.findings]
    print_table(["id", "certificate", "severity", "state", "rule", "field", "message"], rows, ctx.out)
    errors = sum(len(r.errors) for r in results)
    warnings = sum(len(r.warnings) for r in results)
    ctx.out.write(f"{len(results)} certificate(s) validated: {errors} error(s), {warnings} warning(s).\n")


def cmd_validate(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.core.errors import ValidationError
    from ecms_desktop.services.validation.service import ValidationService

    service = ValidationService(ctx.db())
    day = as_of(args)
    if args.stale:
        stale = service.stale_certificates(day)
        if args.revalidate:
            done = service.validate_many([s.certificate_id for s in stale], as_of=day, trigger="revalidation")
            _print_results(ctx, done.results, args.format)
            return 0
        if args.format == "json":
            print_json([{"id": s.certificate_id, "certificate_number": s.certificate_number,
                         "last_rules_version": s.last_rules_version, "rules_changed": s.rules_changed,
                         "result_changes": s.result_changes, "reason": s.reason} for s in stale], ctx.out)
        else:
            print_table(["id", "certificate", "last rules", "result changes", "reason"],
                        [(s.certificate_id, s.certificate_number, s.last_rules_version or "-",
                          "yes" if s.result_changes else "no", s.reason) for s in stale], ctx.out)
        return 0
    if args.revalidate:
        raise ValidationError("--revalidate goes with --stale.")
    if (args.id is None) == (not args.all):
        raise ValidationError("Give a certificate id or --all.")
    results = (service.validate_many(None, as_of=day).results if args.all
               else [service.validate(args.id, as_of=day)])
    _print_results(ctx, results, args.format)
    return 0


def _parse_map(items: list[str]) -> dict[str, str] | None:
    from ecms_desktop.services.core.errors import ValidationError

    if not items:
        return None
    out: dict[str, str] = {}
    for item in items:
        column, sep, field = item.partition("=")
        if not sep or not column.strip() or not field.strip():
            raise ValidationError(f"--map {item!r}: write it as COLUMN=FIELD, e.g. 'Taxpayer Number=permit_number'.")
        out[column.strip()] = field.strip()
    return out


def cmd_permits_import(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.validation.permit_service import PermitService

    snap = PermitService(ctx.db()).import_registry(args.file, args.state, data_date=as_of(args),
                                                   column_map=_parse_map(args.map))
    ctx.out.write(f"Imported {snap.row_count} {snap.state} permit holders from {snap.source_name} as snapshot "
                  f"{snap.id} dated {snap.data_date.isoformat()} (layout: {snap.layout}).\n")
    return 0


def _print_checks(ctx: CliContext, checks: list[PermitCheckInfo], fmt: str) -> None:
    if fmt == "json":
        print_json([{"id": c.id, "certificate_id": c.certificate_id, "state": c.state, "number": c.number_checked,
                     "method": c.method, "result": c.result, "as_of": c.as_of, "source": c.source,
                     "name_on_record": c.name_on_record, "message": c.message, "checked_by": c.checked_by,
                     "checked_at": c.checked_at, "evidence_sha256": c.evidence_sha256 or None} for c in checks],
                   ctx.out)
        return
    print_table(["certificate", "state", "number", "result", "as of", "method", "message"],
                [(c.certificate_id, c.state, c.number_checked, c.result, c.as_of, c.method, c.message)
                 for c in checks], ctx.out)


def cmd_permits_verify(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.validation.permit_service import PermitService

    checks = PermitService(ctx.db()).verify(args.id, as_of=as_of(args), states=args.state or None)
    _print_checks(ctx, checks, args.format)
    return 0


def cmd_permits_check(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.validation.permit_service import PermitService

    check = PermitService(ctx.db()).record_manual_check(
        args.id, state=args.state, result=args.result, evidence=args.evidence, source_url=args.source,
        as_of=as_of(args), number=args.number, note=args.note, name_on_record=args.name)
    ctx.out.write(f"Recorded manual check {check.id}: {check.state} {check.number_checked} is "
                  f"{check.result.replace('_', ' ')} (evidence {check.evidence_sha256[:12]}...). {check.message}\n")
    return 0


def cmd_permits_reverify(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.validation.permit_service import PermitService

    checks = PermitService(ctx.db()).reverify_stale(as_of(args), include_unchecked=args.include_unchecked)
    _print_checks(ctx, checks, args.format)
    return 0
