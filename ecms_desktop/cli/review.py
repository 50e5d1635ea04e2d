"""``ecms approve``, ``reject``, ``archive``, ``unarchive``, ``claim`` and ``release``: the desk's review
actions from a script.

Each calls the service method the desk calls (``CertificateService.approve_with_validation``, ``reject``,
``archive``, ``unarchive``; ``ClaimService.claim`` and ``release``), so the same gate, permission checks,
claim checks and audit events apply. A decision is made on the certificate as it is now: the command reads
its current version and decides on that version (a change by someone else between the two is refused as a
conflict, as at the desk). A refusal exits with status 1 and ``error: ...``; a refused approval lists the
validation's errors or warnings, as the desk does.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ecms_desktop.cli.common import CliContext, Subparsers, add_as_of, add_format, as_of, print_json


def register(sub: Subparsers) -> None:
    p = sub.add_parser("approve", help="approve a pending or rejected certificate (validated first, as at the desk)")
    p.add_argument("id", type=int, help="certificate id")
    p.add_argument("--acknowledge-warnings", action="store_true",
                   help="approve although the validation found warnings (recorded with who and when)")
    p.add_argument("--note", default="", metavar="TEXT", help="a note kept with the acknowledgement of warnings")
    add_as_of(p)
    add_format(p)
    p.set_defaults(func=cmd_approve)

    for verb, what in (("reject", "refuse a pending or approved certificate"),
                       ("archive", "take a certificate out of use (no longer applies to new sales)"),
                       ("unarchive", "bring an archived certificate back to the review state it had")):
        p = sub.add_parser(verb, help=f"{what}, with the reason (kept in the audit trail)")
        p.add_argument("id", type=int, help="certificate id")
        p.add_argument("--reason", required=True, metavar="TEXT", help="why (kept in the audit trail)")
        add_as_of(p)
        add_format(p)
        p.set_defaults(func=cmd_decide, verb=verb)

    p = sub.add_parser("claim", help="claim pending certificates to work on them (all or none)")
    p.add_argument("ids", type=int, nargs="+", metavar="ID", help="certificate ids")
    p.add_argument("--take-over", action="store_true",
                   help="take over the claims of someone else (approvers)")
    add_format(p)
    p.set_defaults(func=cmd_claim)

    p = sub.add_parser("release", help="release claims (your own; an approver may release anyone's)")
    p.add_argument("ids", type=int, nargs="+", metavar="ID", help="certificate ids")
    add_format(p)
    p.set_defaults(func=cmd_release)


def cmd_approve(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.certificates.service import CertificateService
    from ecms_desktop.services.core.errors import ValidationError

    service = CertificateService(ctx.db())
    day = as_of(args)
    version = service.get(args.id, day).version
    try:
        result = service.approve_with_validation(args.id, expected_version=version, as_of=day,
                                                 acknowledge_warnings=args.acknowledge_warnings, note=args.note)
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if exc.problems and not args.acknowledge_warnings:
            print("Errors must be corrected first; warnings alone are acknowledged with --acknowledge-warnings "
                  "(and --note TEXT).", file=sys.stderr)
        print("Nothing was approved; the validation run is kept on file as evidence of the check.", file=sys.stderr)
        return 1
    run = result.validation
    if args.format == "json":
        print_json({"certificate_id": args.id, "review_state": "approved", "version": result.new_version,
                    "validation_run_id": run.run_id, "rules_version": run.rules_version,
                    "warnings_acknowledged": len(run.warnings) if result.acknowledgement_id else 0,
                    "acknowledgement_id": result.acknowledgement_id}, ctx.out)
        return 0
    acknowledged = (f"; {len(run.warnings)} warning(s) acknowledged" if result.acknowledgement_id else "")
    print(f"Certificate {args.id} approved as of {day} (decided on version {version}; validation run "
          f"{run.run_id}, rules pack {run.rules_version}{acknowledged}).", file=ctx.out)
    return 0


def cmd_decide(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.certificates.service import CertificateService

    service = CertificateService(ctx.db())
    day = as_of(args)
    version = service.get(args.id, day).version
    method = {"reject": service.reject, "archive": service.archive, "unarchive": service.unarchive}[args.verb]
    detail = method(args.id, args.reason, expected_version=version, as_of=day)
    if args.format == "json":
        print_json({"certificate_id": detail.id, "review_state": detail.review_state,
                    "reason": detail.review_reason, "version": detail.version, "status": detail.status.value},
                   ctx.out)
        return 0
    done = {"reject": "rejected", "archive": "archived", "unarchive": f"brought back as {detail.review_state}"}
    print(f"Certificate {detail.id} {done[args.verb]} as of {day} (reason: {detail.review_reason}); its status is "
          f"now {detail.status.label}.", file=ctx.out)
    return 0


def cmd_claim(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.certificates.claims import ClaimService

    result = ClaimService(ctx.db()).claim(args.ids, take_over=args.take_over)
    taken = dict(result.taken_from)
    if args.format == "json":
        print_json(_result_json(result, "claimed"), ctx.out)
        return 0
    for cert_id in args.ids:
        if cert_id in taken:
            print(f"Certificate {cert_id} taken over from {taken[cert_id]}.", file=ctx.out)
        elif cert_id in result.done:
            print(f"Certificate {cert_id} claimed.", file=ctx.out)
        else:
            print(f"Certificate {cert_id} was already yours.", file=ctx.out)
    return 0


def cmd_release(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.certificates.claims import ClaimService

    result = ClaimService(ctx.db()).release(args.ids)
    taken = dict(result.taken_from)
    if args.format == "json":
        print_json(_result_json(result, "released"), ctx.out)
        return 0
    for cert_id in result.done:
        print(f"Certificate {cert_id} released" + (f" (it was claimed by {taken[cert_id]})." if cert_id in taken
                                                   else "."), file=ctx.out)
    return 0


def _result_json(result: Any, done: str) -> dict[str, Any]:
    return {done: list(result.done), "unchanged": list(result.unchanged),
            "from": {str(cert_id): name for cert_id, name in result.taken_from}}
