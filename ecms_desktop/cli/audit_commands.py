"""``ecms audit verify`` and ``ecms audit log``."""

from __future__ import annotations

import argparse

from ecms_desktop.cli.common import CliContext, Subparsers, add_format, print_json, print_table


def register(sub: Subparsers) -> None:
    p = sub.add_parser("audit", help="the tamper-evident audit trail")
    asub = p.add_subparsers(dest="audit_command", required=True)
    v = asub.add_parser("verify", help="check the hash chain; names the first event that does not fit")
    add_format(v)
    v.set_defaults(func=cmd_verify)
    lg = asub.add_parser("log", help="show events (all, or one certificate's)")
    lg.add_argument("certificate_id", nargs="?", type=int, help="only this certificate's events (default: all)")
    lg.add_argument("--limit", type=int, default=None, help="only the last N events")
    add_format(lg)
    lg.set_defaults(func=cmd_log)


def cmd_verify(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.integrity.check import check_database, verify_chain

    db = ctx.db(warn=False)
    report = verify_chain(db)
    # The chain alone cannot see a rewrite by someone who can write the database: its anchors can,
    # and an empty trail is never intact (the database's creation is its first event).
    anchored = check_database(db, level="anchors")
    problems = [str(p) for p in anchored.problems]
    held = sum(1 for a in anchored.anchors if a.held)
    if args.format == "json":
        print_json({**report.__dict__, "ok": report.ok and not problems, "chain_ok": report.ok,
                    "anchor_problems": problems, "anchors_held": held}, ctx.out)
    elif not report.ok:
        print(f"Audit trail BROKEN at event {report.first_bad_seq}: {report.problem}", file=ctx.out)
    elif problems:
        print(f"Audit trail NOT INTACT ({report.events} events): " + "; ".join(problems), file=ctx.out)
    else:
        print(f"Audit trail intact: {report.events} events, head {report.head_hash}, {held} anchors held (the "
              "hash chain and its anchors: `ecms check` also checks the database file and every record)",
              file=ctx.out)
    return 0 if report.ok and not problems else 1


def cmd_log(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.rules import load_rules_pack
    from ecms_desktop.services.certificates.history_service import audit_log, audit_log_in_words

    if args.format == "json":
        events = audit_log(ctx.db(), certificate_id=args.certificate_id, limit=args.limit)
        print_json([e.__dict__ for e in events], ctx.out)
        return 0
    # In words, as the desk's History tab tells it ("Purchaser name changed from … to … by … on …").
    entries = audit_log_in_words(ctx.db(), load_rules_pack(), certificate_id=args.certificate_id, limit=args.limit)
    print_table(["seq", "what happened"], [(e.seq, e.text) for e in entries], ctx.out)
    return 0
