"""``ecms init``, companies, business settings and company expiry policies."""

from __future__ import annotations

import argparse
import json

from ecms_desktop.cli.common import CliContext, Subparsers, add_company, add_format, print_json, print_table


def register(sub: Subparsers) -> None:
    p = sub.add_parser("init", description="Create the ECMS database named by --db (default: $ECMS_DATABASE_URL, "
                       "else the local SQLite file in your user data folder), or upgrade an older one to this version "
                       "(a backup of a SQLite file is kept first). On PostgreSQL it also installs the group roles, "
                       "grants and triggers of team mode and registers you as the first admin. Running it again "
                       "changes nothing. It adds no company and no certificates: `ecms company add` or `ecms demo`.",
                       help="create the ECMS database, or upgrade an older one (on PostgreSQL also the "
                       "group roles, grants and triggers of team mode, and you as its first admin)")
    p.add_argument("--admin-name", metavar="NAME", help="on PostgreSQL, your name as the first admin when no one is "
                   "registered yet (default: $ECMS_USER, else your system user name)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("company", help="companies (the seller's legal entities)")
    csub = p.add_subparsers(dest="company_command", required=True)
    a = csub.add_parser("add", help="add a company")
    a.add_argument("name", help="the company's short name, as the app and --company show it")
    a.add_argument("--legal-name", default="", help="the legal name printed on forms and letters (default: NAME)")
    a.add_argument("--address", default="", help="street address (the seller's address on certificates)")
    a.add_argument("--city", default="", help="city")
    a.add_argument("--state", default="", metavar="XX", help="two-letter state code")
    a.add_argument("--zip", default="", help="ZIP code")
    a.add_argument("--reply-to", default="", metavar="EMAIL",
                   help="address customers' replies to renewal e-mails go to")
    a.add_argument("--registration", action="append", default=[], metavar="XX=NUMBER",
                   help="the company's own permit number in a state (repeatable)")
    a.set_defaults(func=cmd_company_add)
    lst = csub.add_parser("list", help="list companies")
    add_format(lst)
    lst.set_defaults(func=cmd_company_list)

    p = sub.add_parser("settings", help="business settings shared by everyone on the database")
    ssub = p.add_subparsers(dest="settings_command", required=True)
    g = ssub.add_parser("show", help="show the settings")
    g.add_argument("--company", default=None, metavar="NAME_OR_ID",
                   help="the values in force for this company (default: the ones shared by every company)")
    g.set_defaults(func=cmd_settings_show)
    s = ssub.add_parser("set", help="change a setting (value as JSON, e.g. 45 or [7, 14])")
    s.add_argument("key", metavar="KEY", help="the setting's name, as `ecms settings show` lists it")
    s.add_argument("value", help="the new value as JSON (45, [7, 14], true) or plain text")
    s.add_argument("--company", default=None, help="only for this company (default: all companies)")
    s.set_defaults(func=cmd_settings_set)

    p = sub.add_parser("policy", help="a company's own expiry policy for a state (audited)")
    psub = p.add_subparsers(dest="policy_command", required=True)
    ps = psub.add_parser("set", help="replace the rules pack's expiry policy for a state")
    add_company(ps)
    ps.add_argument("--state", required=True, metavar="XX", help="two-letter state code")
    ps.add_argument("--purpose", choices=["resale", "exemption"], required=True,
                    help="which certificates: resale certificates or other exemption certificates")
    ps.add_argument("--kind", choices=["none", "years", "end_of_year"], required=True,
                    help="none: no set expiry; years: --years years from the effective date; end_of_year: "
                         "through 31 December of the effective year (with --years N, of the (N-1)-th year after)")
    ps.add_argument("--years", type=int, default=None, help="the number of years, with --kind years or end_of_year")
    ps.add_argument("--reason", required=True, help="why the company departs from the rules pack (kept in the audit "
                    "trail)")
    ps.set_defaults(func=cmd_policy_set)


def cmd_init(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.core.database_setup import initialize_database
    from ecms_desktop.services.core.people_service import PeopleService

    db = ctx.raw_db()
    result = initialize_database(db, admin_name=args.admin_name)
    schema = ", ".join(result.after.database_revisions)
    if result.action == "current":
        print(f"{db.display_url} is up to date (schema {schema}).", file=ctx.out)
    else:
        print(f"{result.action.capitalize()} {db.display_url} (schema {schema}).", file=ctx.out)
    if db.dialect == "postgresql":
        me = PeopleService(db).whoami()
        print(f"Team mode: the database checks who acts and what each role may do; you are {me.describe()}. "
              "Add people with `ecms users add NAME --role reviewer --login DB_ROLE`.", file=ctx.out)
    if result.action == "current":
        return 0
    if result.baseline_records:
        print(f"Integrity baseline: {result.baseline_records} records digested into the audit trail; changes made "
              "outside ECMS Desktop from now on are found by `ecms check`.", file=ctx.out)
    return 0


def cmd_company_add(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.companies.service import CompanyService

    regs = {}
    for item in args.registration:
        state, _, number = item.partition("=")
        if not number:
            raise SystemExit(f"error: --registration takes XX=NUMBER, not {item!r}")
        regs[state.strip().upper()] = number.strip()
    info = CompanyService(ctx.db()).create(
        args.name, legal_name=args.legal_name, address_line1=args.address, city=args.city, state=args.state,
        postal_code=args.zip, reply_to_email=args.reply_to, registrations=regs)
    print(f"Added company {info.id}: {info.name}", file=ctx.out)
    return 0


def cmd_company_list(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.companies.service import CompanyService

    companies = CompanyService(ctx.db()).list()
    if args.format == "json":
        print_json([c.__dict__ for c in companies], ctx.out)
    else:
        print_table(["id", "name", "state", "reply-to", "registrations"],
                    [(c.id, c.name, c.state, c.reply_to_email,
                      ", ".join(f"{k}={v}" for k, v in c.registrations.items())) for c in companies], ctx.out)
    return 0


def _company_id(ctx: CliContext, name: str | None) -> int | None:
    """A named company, or None for a setting that applies to every company."""
    return None if name is None else ctx.company_id(name)


def cmd_settings_show(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.companies.service import CompanyService

    service = CompanyService(ctx.db())
    company_id = _company_id(ctx, args.company)
    settings = service.settings(company_id).as_json()
    print_table(["setting", "value"], [(k, json.dumps(settings[k])) for k in sorted(settings)], ctx.out)
    return 0


def cmd_settings_set(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.companies.service import CompanyService

    try:
        value = json.loads(args.value)
    except json.JSONDecodeError:
        value = args.value
    CompanyService(ctx.db()).set_setting(args.key, value, _company_id(ctx, args.company))
    print(f"{args.key} = {json.dumps(value)}", file=ctx.out)
    return 0


def cmd_policy_set(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.companies.service import CompanyService

    company_id = ctx.company_id(args.company)
    CompanyService(ctx.db()).set_expiry_policy(company_id, args.state, args.purpose, args.kind, args.years,
                                               args.reason)
    print(f"Expiry policy for {args.state.upper()} {args.purpose} set to {args.kind}"
          f"{f' {args.years} years' if args.years else ''}; affected certificates recomputed.", file=ctx.out)
    return 0
