"""``ecms rules``: which state rules pack is in force, installing a newer one, going back, making one."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from ecms_desktop.cli.common import CliContext, Subparsers, add_format, as_of, parse_date, print_json

if TYPE_CHECKING:
    from ecms_desktop.services.core.rules_packs import RulesChange, RulesInForce


def register(sub: Subparsers) -> None:
    p = sub.add_parser("rules", help="the state rules pack: which one is in force, install a newer one, go back, "
                       "build an archive")
    rsub = p.add_subparsers(dest="rules_command", metavar="ACTION", required=True)

    s = rsub.add_parser("show", help="which rules pack is in force for the database (version, where it comes from, "
                        "who installed it) and what going back returns to")
    add_format(s)
    s.set_defaults(func=cmd_show)

    i = rsub.add_parser("install", help="install a newer rules pack archive in the database (admins only; the pack "
                        "in force is kept to go back to); then says how many certificates' results would change")
    i.add_argument("file", type=Path, help="the rules pack archive (.zip, made by `ecms rules build`)")
    i.add_argument("--note", default="", help="a note kept with the installed pack and in the audit trail")
    i.add_argument("--check-only", action="store_true",
                   help="check the archive completely and say what it holds, without installing it")
    i.add_argument("--as-of", type=parse_date, default=None, metavar="YYYY-MM-DD",
                   help="the date the count of certificates whose result would change is for (default: today)")
    i.set_defaults(func=cmd_install)

    r = rsub.add_parser("rollback", help="go back to the rules pack in force before the last install (admins only)")
    r.add_argument("--as-of", type=parse_date, default=None, metavar="YYYY-MM-DD",
                   help="the date the count of certificates whose result would change is for (default: today)")
    r.set_defaults(func=cmd_rollback)

    b = rsub.add_parser("build", help="make a rules pack archive (a .zip with a manifest of checksums) of a rules "
                        "folder, checked as the program loads it")
    b.add_argument("out", type=Path, help="the archive to write, e.g. ecms-rules-2026.12.2.zip")
    b.add_argument("--from", dest="source", type=Path, default=None, metavar="DIR",
                   help="the rules folder holding pack.json, states/, forms/, schema/ ... (default: the program's "
                        "own rules pack)")
    b.add_argument("--requires-program", default=None, metavar="VERSION",
                   help="the oldest ECMS Desktop version that can use the pack (written into the manifest)")
    b.set_defaults(func=cmd_build)


def _describe(info: RulesInForce) -> list[tuple[str, str]]:
    origin = "installed in the database" if info.source == "installed" else "the program's own"
    rows = [("In force", f"{info.version} ({origin})"), ("Title", info.title)]
    if info.sha256:
        rows.append(("Archive SHA-256", info.sha256))
    if info.installed_at is not None:
        rows.append(("Installed", f"{info.installed_at:%Y-%m-%d %H:%M} UTC by {info.installed_by}"))
    rows.append(("Program's own pack", info.packaged_version))
    if info.installed_version is not None and info.source != "installed":
        rows.append(("Installed pack (not in force)", info.installed_version))
    rows.append(("Going back returns to", {None: "nothing to go back from", "packaged": "the program's own pack"}
                 .get(info.previous, info.previous or "")))
    if info.note:
        rows.append(("Note", info.note))
    return rows


def cmd_show(ctx: CliContext, args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from ecms_desktop.services.core.rules_packs import RulesPackService

    info = RulesPackService(ctx.db()).show()
    if args.format == "json":
        print_json(asdict(info), ctx.out)
        return 0
    width = max(len(k) for k, _v in _describe(info))
    for key, value in _describe(info):
        ctx.out.write(f"{key + ':':<{width + 2}}{value}\n")
    return 0


def _after_change(ctx: CliContext, change: RulesChange, day: dt.date) -> None:
    from ecms_desktop.services.validation.service import ValidationService

    stale = ValidationService(ctx.db()).stale_certificates(day)
    changing = sum(1 for s in stale if s.result_changes and s.last_run_id is not None)
    never = sum(1 for s in stale if s.last_run_id is None)
    other = len(stale) - changing - never
    parts = [f"{changing} certificate(s) would get another validation result as of {day.isoformat()}"]
    if never:
        parts.append(f"{never} were never validated")
    if other:
        parts.append(f"{other} more were validated with another rules pack but keep their result")
    ctx.out.write("; ".join(parts) + f". Re-validate them with: ecms validate --stale --revalidate --as-of "
                  f"{day.isoformat()}\n")


def cmd_install(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.core.rules_packs import RulesPackService

    if args.check_only:
        info = RulesPackService.inspect(args.file)
        ctx.out.write(f"{info.name}: rules pack {info.version} ({info.title}), {info.files} files, "
                      f"{info.unpacked_bytes:,} bytes, SHA-256 {info.sha256}"
                      + (f", needs ECMS Desktop {info.requires_program} or newer" if info.requires_program else "")
                      + ": every file matches its manifest and the pack loads.\n")
        return 0
    change = RulesPackService(ctx.db()).install(args.file, note=args.note)
    ctx.out.write(f"Installed rules pack {change.after_version} from {args.file.name} (was {change.before_version}); "
                  "it is recorded in the audit trail.\n")
    if change.in_force.note:
        ctx.out.write(change.in_force.note + "\n")
    _after_change(ctx, change, as_of(args))
    return 0


def cmd_rollback(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.core.rules_packs import RulesPackService

    change = RulesPackService(ctx.db()).rollback()
    origin = "installed" if change.in_force.source == "installed" else "the program's own"
    ctx.out.write(f"Went back from rules pack {change.before_version} to {change.after_version} ({origin}); it is "
                  "recorded in the audit trail.\n")
    _after_change(ctx, change, as_of(args))
    return 0


def cmd_build(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.core.rules_packs import RulesPackService

    info = RulesPackService.build(args.out, source=args.source, requires_program=args.requires_program)
    ctx.out.write(f"Wrote {args.out}: rules pack {info.version}, {info.files} files, SHA-256 {info.sha256}.\n")
    return 0
