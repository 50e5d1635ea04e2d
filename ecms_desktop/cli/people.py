"""``ecms users add|list|set-role|disable|enable`` and ``ecms whoami``: the people who work in ECMS."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ecms_desktop.cli.common import CliContext, Subparsers, add_format, print_json, print_table
from ecms_desktop.vocabulary import Role

if TYPE_CHECKING:
    from ecms_desktop.services.core.people_service import PersonInfo

_ROLES = [r.value for r in Role]


def register(sub: Subparsers) -> None:
    p = sub.add_parser("whoami", help="who this program acts as on the database, with which role, and how that is "
                       "known (database login or local profile)")
    add_format(p)
    p.set_defaults(func=cmd_whoami)

    users = sub.add_parser("users", help="the people who work in ECMS: add, list, change role, disable, enable "
                           "(admins only; people are never deleted, the audit trail keeps naming them)")
    users_sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    p = users_sub.add_parser("add", help="register a person with a role (on PostgreSQL with their database login)")
    p.add_argument("name", help="the name recorded on everything they do, e.g. \"Pat Lee\"")
    p.add_argument("--role", required=True, choices=_ROLES,
                   help="reviewer: edit, request, acknowledge, prepare; approver: also approve, reject, archive, "
                   "reprocess; admin: also settings, policies, people, filing periods")
    p.add_argument("--login", metavar="DB_ROLE", help="their PostgreSQL login role (required on PostgreSQL; "
                   "the server's administrator creates it first, see the README's Team mode)")
    p.add_argument("--email", default="", help="their e-mail address")
    p.set_defaults(func=cmd_add)

    p = users_sub.add_parser("list", help="everyone registered, with role, login and whether active")
    add_format(p)
    p.set_defaults(func=cmd_list)

    p = users_sub.add_parser("set-role", help="give a person another role")
    p.add_argument("name", help="the person's name")
    p.add_argument("role", choices=_ROLES, help="the new role")
    p.set_defaults(func=cmd_set_role)

    p = users_sub.add_parser("disable", help="stop a person from changing anything (their name stays on the trail)")
    p.add_argument("name", help="the person's name")
    p.set_defaults(func=cmd_disable)

    p = users_sub.add_parser("enable", help="let a disabled person work again")
    p.add_argument("name", help="the person's name")
    p.set_defaults(func=cmd_enable)


def _row(p: PersonInfo) -> list[str]:
    return [p.name, p.role.value, p.login or "", p.email, "active" if p.active else "disabled"]


def _said(ctx: CliContext, what: str, p: PersonInfo) -> int:
    login = f", login {p.login}" if p.login else ""
    print(f"{what} {p.name}: {p.role.value}{login}{'' if p.active else ', disabled'}.", file=ctx.out)
    return 0


def cmd_whoami(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.core.people_service import PeopleService

    me = PeopleService(ctx.db()).whoami()
    if args.format == "json":
        print_json({"name": me.actor.name, "role": me.actor.role.value, "login": me.actor.login, "mode": me.mode,
                    "registered": me.actor.registered, "database": me.database}, ctx.out)
    else:
        print(me.describe(), file=ctx.out)
    return 0


def cmd_list(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.core.people_service import PeopleService

    found = PeopleService(ctx.db()).list()
    if args.format == "json":
        print_json([{"name": p.name, "role": p.role.value, "login": p.login, "email": p.email,
                     "active": p.active} for p in found], ctx.out)
    elif not found:
        print("No one is registered yet (single-desk mode): register yourself with "
              "`ecms users add NAME --role admin`.", file=ctx.out)
    else:
        print_table(["Name", "Role", "Login", "E-mail", "Status"], [_row(p) for p in found], ctx.out)
    return 0


def cmd_add(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.core.people_service import PeopleService

    return _said(ctx, "Added", PeopleService(ctx.db()).add(args.name, role=args.role, login=args.login,
                                                           email=args.email))


def cmd_set_role(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.core.people_service import PeopleService

    return _said(ctx, "Changed", PeopleService(ctx.db()).set_role(args.name, args.role))


def cmd_disable(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.core.people_service import PeopleService

    return _said(ctx, "Disabled", PeopleService(ctx.db()).disable(args.name))


def cmd_enable(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.core.people_service import PeopleService

    return _said(ctx, "Enabled", PeopleService(ctx.db()).enable(args.name))
