"""``ecms customers``: list and search the customers, ``show`` one, ``add`` and ``edit`` them, ``merge`` two that
are the same business, a customer's exemption ``matrix`` and its one-click ``request`` for a state (a first
request for a state no certificate covers, the renewal request, or the reminder due), the ``report`` of
customers buying exempt without a valid certificate (Excel or CSV). The same services as the desk's Customers window.

The services of a command are imported inside it, so that ``ecms --help`` and the other commands start
without loading them.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from ecms_desktop.cli.common import (
    CliContext,
    Subparsers,
    add_as_of,
    add_company,
    add_format,
    as_of,
    print_json,
    print_table,
)

if TYPE_CHECKING:
    from ecms_desktop.services.customers.editing import CustomerRecord

#: The editable fields as options: --legal-name, --email, --bill-to-city ...
_FIELD_OPTIONS = ("legal_name", "email", "bill_to_line1", "bill_to_city", "bill_to_state", "bill_to_zip",
                  "ship_to_line1", "ship_to_city", "ship_to_state", "ship_to_zip", "owner_email", "notes")


#: Each field option's help line.
_FIELD_HELP = {
    "legal_name": "the customer's legal name (the purchaser on its certificates)",
    "email": "where renewal requests are sent",
    "bill_to_line1": "billing address: street", "bill_to_city": "billing address: city",
    "bill_to_state": "billing address: two-letter state code", "bill_to_zip": "billing address: ZIP code",
    "ship_to_line1": "shipping address: street", "ship_to_city": "shipping address: city",
    "ship_to_state": "shipping address: two-letter state code (where the sale is sourced)",
    "ship_to_zip": "shipping address: ZIP code",
    "owner_email": "the company's own contact for this customer (copied on escalations)",
    "notes": "free notes",
}


def _add_fields(p: argparse.ArgumentParser) -> None:
    for field in _FIELD_OPTIONS:
        p.add_argument(f"--{field.replace('_', '-')}", dest=field, default=None, metavar="TEXT",
                       help=_FIELD_HELP[field])
    p.add_argument("--parent", default=None, metavar="C", help="the parent customer's number or name ('' for none)")


def register(sub: Subparsers) -> None:
    p = sub.add_parser("customers", help="customers: list, show, add, edit, merge, exemption matrix, report")
    add_company(p)
    p.add_argument("--search", default="", metavar="TEXT", help="only customers whose number, name, e-mail or "
                   "ship-to city contains TEXT")
    add_format(p)
    p.set_defaults(func=cmd_list)
    csub = p.add_subparsers(dest="customers_command", metavar="ACTION")

    s = csub.add_parser("show", help="one customer's details")
    s.add_argument("customer", metavar="C", help="customer number or exact name")
    add_format(s)
    s.set_defaults(func=cmd_show)

    a = csub.add_parser("add", help="add a customer")
    a.add_argument("number", metavar="NUMBER", help="the customer number (as in the ERP's sales lines)")
    _add_fields(a)
    add_format(a)
    a.set_defaults(func=cmd_add)

    e = csub.add_parser("edit", help="change a customer's details (only the options given)")
    e.add_argument("customer", metavar="C", help="customer number or exact name")
    e.add_argument("--number", default=None, metavar="NUMBER", help="a new customer number (its sales follow)")
    _add_fields(e)
    add_format(e)
    e.set_defaults(func=cmd_edit)

    m = csub.add_parser("merge", help="merge a customer into another that is the same business",
                        description="Certificates, renewal requests, sales lines and child customers of MERGED move "
                        "to KEEP; MERGED's number keeps meaning KEEP. Without --yes only what would move is shown.")
    m.add_argument("merged", metavar="MERGED", help="the customer entered twice (number or exact name)")
    m.add_argument("keep", metavar="KEEP", help="the customer that stays")
    m.add_argument("--yes", action="store_true", help="merge (default: show what would move)")
    add_format(m)
    m.set_defaults(func=cmd_merge)

    x = csub.add_parser("matrix", help="each state where the customer buys, what covers it, the next action")
    x.add_argument("customer", metavar="C", help="customer number or exact name")
    add_as_of(x)
    add_format(x)
    x.set_defaults(func=cmd_matrix)

    q = csub.add_parser("request", help="e-mail the customer the request for a state (the matrix's Request/Remind)",
                        description="For a state the customer buys in with no certificate (missing): a first request "
                        "with the state's form. For an expiring or expired state: the renewal request. When a request "
                        "is open: the reminder the ladder has due. Tracked like any renewal request (ecms renewals).")
    q.add_argument("customer", metavar="C", help="customer number or exact name")
    q.add_argument("--state", required=True, metavar="XX", help="the state (two letters)")
    q.add_argument("--password-stdin", action="store_true", help="read the SMTP password from standard input")
    add_as_of(q)
    q.set_defaults(func=cmd_request)

    r = csub.add_parser("report", help="customers without a valid certificate where they buy exempt")
    r.add_argument("--output", "-o", type=Path, default=None, metavar="FILE",
                   help="write the report to FILE (.xlsx or .csv) instead of printing it")
    add_as_of(r)
    add_format(r)
    r.set_defaults(func=cmd_report)


def _customer_id(ctx: CliContext, args: argparse.Namespace, text: str) -> int:
    from ecms_desktop.services.customers.service import CustomerService

    return CustomerService(ctx.db()).find(ctx.company_id(args.company), text).id


def _print_record(ctx: CliContext, args: argparse.Namespace, record: CustomerRecord) -> None:
    if args.format == "json":
        print_json(dataclasses.asdict(record), ctx.out)
        return
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if field.name not in ("company_id", "parent_id") and value not in ("", None):
            print(f"{field.name.replace('_', ' ')}: {value}", file=ctx.out)


def _edits(ctx: CliContext, args: argparse.Namespace, record: CustomerRecord) -> CustomerRecord:
    values = {f: getattr(args, f) for f in _FIELD_OPTIONS if getattr(args, f) is not None}
    if getattr(args, "number", None) is not None:
        values["number"] = args.number
    record = dataclasses.replace(record, **values)
    if args.parent is not None:
        record = dataclasses.replace(record, parent_id=_customer_id(ctx, args, args.parent) if args.parent.strip()
                                     else None)
    return record


def cmd_list(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.customers.editing import CustomerEditService

    rows = CustomerEditService(ctx.db()).search(ctx.company_id(args.company), args.search)
    if args.format == "json":
        print_json([dataclasses.asdict(r) for r in rows], ctx.out)
        return 0
    print_table(["id", "number", "legal name", "e-mail", "ship-to", "parent", "certificates"],
                [(r.id, r.number, r.legal_name, r.email, f"{r.ship_to_city} {r.ship_to_state}".strip(), r.parent_label,
                  r.certificates) for r in rows], ctx.out)
    return 0


def cmd_show(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.customers.editing import CustomerEditService

    _print_record(ctx, args, CustomerEditService(ctx.db()).get(_customer_id(ctx, args, args.customer)))
    return 0


def cmd_add(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.customers.editing import CustomerEditService, CustomerRecord

    blank = CustomerRecord(company_id=ctx.company_id(args.company), number=args.number)
    saved = CustomerEditService(ctx.db()).save(_edits(ctx, args, blank))
    _print_record(ctx, args, saved)
    return 0


def cmd_edit(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.customers.editing import CustomerEditService

    service = CustomerEditService(ctx.db())
    original = service.get(_customer_id(ctx, args, args.customer))
    _print_record(ctx, args, service.save(_edits(ctx, args, original), original=original))
    return 0


def cmd_merge(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.customers.merge import CustomerMergeService

    merged, keep = _customer_id(ctx, args, args.merged), _customer_id(ctx, args, args.keep)
    service = CustomerMergeService(ctx.db())
    plan = service.merge(merged, keep) if args.yes else service.plan(merged, keep)
    if args.format == "json":
        print_json({**dataclasses.asdict(plan), "merged": args.yes}, ctx.out)
    else:
        print(plan.summary() if args.yes else "Would merge: " + plan.summary() + " Run again with --yes to merge.",
              file=ctx.out)
    return 0


def cmd_matrix(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.customers.matrix import ExemptionMatrixService

    matrix = ExemptionMatrixService(ctx.db()).matrix(_customer_id(ctx, args, args.customer), as_of=as_of(args))
    if args.format == "json":
        print_json({"customer": matrix.customer.number, "as_of": matrix.as_of,
                    "rows": [dataclasses.asdict(r) for r in matrix.rows]}, ctx.out)
        return 0
    print(f"{matrix.customer.number} {matrix.customer.legal_name}, as of {matrix.as_of}:", file=ctx.out)
    print_table(["state", "from", "coverage", "certificate", "expires", "exempt sales", "open request", "next action"],
                [(r.state, ", ".join(r.sources), r.coverage.label, r.certificate_id, r.expiry_date,
                  f"{r.exempt_sales} ({r.exempt_amount:,.2f})" if r.exempt_sales else "",
                  r.requested_on, r.next_action.label) for r in matrix.rows], ctx.out)
    return 0


def cmd_request(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.cli.renewals import _password, _print_delivery
    from ecms_desktop.services.renewals.customer_steps import take_renewal_step
    from ecms_desktop.services.renewals.service import RenewalService

    company_id = ctx.company_id(args.company)
    customer_id = _customer_id(ctx, args, args.customer)
    renewals = RenewalService(ctx.db())
    password = _password(args, renewals.email, renewals.email.require_profile(company_id))
    result = take_renewal_step(renewals, customer_id, args.state, as_of=as_of(args), password=password)
    print(result.summary(), file=ctx.out)
    return _print_delivery(ctx, result.delivery) if result.delivery is not None else 0


def cmd_report(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.customers.report import COLUMNS, UncoveredSalesReport

    report, company_id = UncoveredSalesReport(ctx.db()), ctx.company_id(args.company)
    if args.output is not None:
        n = report.export(company_id, args.output, as_of=as_of(args))
        print(f"{n} customer/state rows written to {args.output}", file=ctx.out)
        return 0
    rows = report.rows(company_id, as_of=as_of(args))
    if args.format == "json":
        print_json([dataclasses.asdict(r) for r in rows], ctx.out)
    else:
        print_table(COLUMNS, [r.values() for r in rows], ctx.out)
    return 0
