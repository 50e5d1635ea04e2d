"""``ecms check``, ``ecms backup FILE`` and ``ecms restore FILE``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ecms_desktop.cli.common import CliContext, Subparsers, add_format, print_json

if TYPE_CHECKING:
    from ecms_desktop.services.core.anchors import Anchor
    from ecms_desktop.services.integrity.check import CheckReport


def register(sub: Subparsers) -> None:
    p = sub.add_parser("check", help="check the database: its own integrity, the audit chain, its anchors, and "
                       "every record and stored file against the audit trail")
    p.add_argument("--anchor", action="append", default=[], type=Path, metavar="PATH",
                   help="also check the chain head recorded in a backup or an audit pack (folder, .zip or "
                   "manifest.json); repeatable")
    p.add_argument("--quick", action="store_true", help="only the cheap checks (anchors, SQLite's quick_check)")
    add_format(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("backup", help="write a consistent, checked backup of the database (safe while others write)")
    p.add_argument("file", type=Path, help="the backup file to write")
    p.add_argument("--overwrite", action="store_true", help="replace FILE if it exists")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="replace the database with a backup made by `ecms backup` (the database "
                       "replaced is kept beside it)")
    p.add_argument("file", type=Path, help="the backup file")
    p.add_argument("--yes", action="store_true", help="replace an existing database without asking")
    p.set_defaults(func=cmd_restore)


def print_report(report: CheckReport, ctx: CliContext) -> None:
    out = ctx.out
    print(f"Checked {report.database}{' (quick check)' if report.quick else ''}:", file=out)
    print(f"  audit trail: {report.events} events, head event {report.head_seq} {report.head_hash[:16]}…", file=out)
    if report.records:
        shown = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in report.records.items() if n)
        print(f"  records checked against the audit trail: {shown or 'none'}; stored files: {report.files}",
              file=out)
    if report.anchors:
        print(f"  anchors checked ({len(report.anchors)}):", file=out)
        for a in report.anchors:
            state = {True: "held", False: "NOT HELD", None: "not binding"}[a.held]
            where = f" [{a.anchor.where}]" if a.anchor.where else ""
            print(f"    event {a.anchor.seq} {a.anchor.hash[:16]}… {a.anchor.source} {a.anchor.at}{where}: {state}"
                  + (f" ({a.note})" if a.note else ""), file=out)
    for note in report.notes:
        print(f"  note: {note}", file=out)
    if report.ok:
        print("Result: intact.", file=out)
        return
    print(f"Result: {len(report.problems) + report.unlisted} PROBLEMS:", file=out)
    for problem in report.problems:
        print(f"  [{problem.area}] {problem}", file=out)
    if report.unlisted:
        print(f"  ... and {report.unlisted} more", file=out)


def _given_anchors(paths: list[Path]) -> list[Anchor]:
    from ecms_desktop.services.integrity.check import anchors_from_path

    found: list[Anchor] = []
    for path in paths:
        found.extend(anchors_from_path(path))
    return found


def cmd_check(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.core.database import damaged_message
    from ecms_desktop.services.integrity.check import check_database

    given = _given_anchors(args.anchor)
    report = check_database(ctx.db(warn=False), anchors=given, quick=args.quick)
    if args.format == "json":
        print_json(report.to_json(), ctx.out)
    else:
        print_report(report, ctx)
    if report.damaged:
        print(f"error: {damaged_message(report.database, 'its own integrity check failed')}", file=sys.stderr)
    return 0 if report.ok else 1


def cmd_backup(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.integrity.backup import backup_database

    db = ctx.db(warn=False)
    result = backup_database(db, args.file, overwrite=args.overwrite)
    print(f"Backed up {db.display_url} to {result.path} ({result.size:,} bytes, audit trail to event "
          f"{result.head_seq}, SHA-256 {result.sha256}).", file=ctx.out)
    if not result.check.ok:
        print_report(result.check, ctx)
        print("The backup was written, but the database it copies has the problems above.", file=ctx.out)
        return 1
    print(f"The backup passes `ecms check` ({result.check.events} events, "
          f"{sum(result.check.records.values())} records, {result.check.files} files).", file=ctx.out)
    return 0


def cmd_restore(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.core.database import Database
    from ecms_desktop.services.core.errors import ValidationError
    from ecms_desktop.services.integrity.backup import describe_restore, restore_database

    target = Database(ctx.url)
    try:
        info = describe_restore(target, args.file)
        exists = target.path is None or target.path.exists()
    finally:
        target.dispose()
    replace = args.yes
    if exists and not replace:
        if not sys.stdin.isatty():
            raise ValidationError(f"{target.display_url} exists: restoring replaces it (it is kept aside first). "
                                  "Confirm with `ecms restore FILE --yes`. Nothing was restored.")
        print(f"Restore {args.file} (taken {info.taken_at or 'at an unknown time'}, audit trail to event "
              f"{info.head_seq}) into {target.display_url}, replacing what is there now (it is kept aside)?",
              file=ctx.out)
        try:
            replace = input("Type yes to restore: ").strip().lower() == "yes"
        except EOFError:
            replace = False
        if not replace:
            print("Nothing was restored.", file=ctx.out)
            return 1
    ctx.close()
    result = restore_database(target.url, args.file, replace=replace)
    print(f"Restored {args.file} into {result.database}: audit trail to event {result.head_seq}.", file=ctx.out)
    if result.previous is not None:
        print(f"The database it replaced is kept as {result.previous}.", file=ctx.out)
    if not result.check.ok:
        print_report(result.check, ctx)
        return 1
    return 0
