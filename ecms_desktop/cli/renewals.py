"""``ecms renewals plan|send|outbox|send-queued|retry|failed``, ``ecms smtp set|test`` (and
``sign-in|sign-out|show`` from :mod:`.smtp_sign_in`), ``ecms forms add|list``,
``ecms intake FILE... [--watch DIR]`` and ``ecms templates show|set|reset``.

The services of a command are imported inside it, so that ``ecms --help`` and every other command
start without loading them (about 0.6 s less per run, measured with ``time ecms --help``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ecms_desktop.cli import smtp_sign_in
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
from ecms_desktop.vocabulary import AUTH_METHODS, OUTBOX_STATUSES, SECURITY_MODES

if TYPE_CHECKING:
    from ecms_desktop.services.renewals.email_service import DeliveryReport, EmailService, SmtpSettings
    from ecms_desktop.services.renewals.returned_forms import ReturnedFormsService, ReturnedItem
    from ecms_desktop.services.renewals.service import RenewalService

log = logging.getLogger(__name__)


def register(sub: Subparsers) -> None:
    p = sub.add_parser("renewals", help="renewal requests: plan, send, failures")
    rsub = p.add_subparsers(dest="renewals_command", required=True)
    pl = rsub.add_parser("plan", help="what is due as of a date: requests, reminders, escalations, suspensions")
    add_company(pl)
    add_as_of(pl)
    add_format(pl)
    pl.set_defaults(func=cmd_plan)
    se = rsub.add_parser("send", help="carry out the plan and send the e-mails (effectively once)")
    add_company(se)
    se.add_argument("--only", type=int, nargs="+", default=None, metavar="ID",
                    help="only these certificate ids")
    se.add_argument("--dry-run", type=Path, default=None, metavar="DIR",
                    help="write the messages as .eml files into DIR; nothing is sent or recorded")
    se.add_argument("--password-stdin", action="store_true", help="read the SMTP password from standard input")
    add_as_of(se)
    se.set_defaults(func=cmd_send)
    ob = rsub.add_parser("outbox", help="the e-mail outbox: queued, sent and failed messages with the reason")
    add_company(ob)
    ob.add_argument("--status", choices=tuple(OUTBOX_STATUSES), default=None, help="only messages in this state")
    add_format(ob)
    ob.set_defaults(func=cmd_outbox)
    sq = rsub.add_parser("send-queued", help="send the messages waiting in the outbox (queued earlier, not sent)")
    add_company(sq)
    sq.add_argument("ids", type=int, nargs="*", metavar="ID", help="only these outbox messages (default: all queued)")
    sq.add_argument("--password-stdin", action="store_true", help="read the SMTP password from standard input")
    sq.set_defaults(func=cmd_send_queued)
    rt = rsub.add_parser("retry", help="send a message the mail server refused again (after fixing the address)")
    rt.add_argument("id", type=int, metavar="ID", help="the outbox message (see `ecms renewals outbox`)")
    add_company(rt)
    rt.add_argument("--password-stdin", action="store_true", help="read the SMTP password from standard input")
    rt.set_defaults(func=cmd_retry)
    fa = rsub.add_parser("failed", help="messages the mail server refused for good (bad addresses)")
    add_company(fa)
    add_format(fa)
    fa.set_defaults(func=cmd_failed)

    p = sub.add_parser("smtp", help="the company's outgoing mail server")
    ssub = p.add_subparsers(dest="smtp_command", required=True)
    st = ssub.add_parser("set", help="set the SMTP server and how to log in (a password goes to the OS keyring; "
                                     "with --auth oauth, sign in afterwards with `ecms smtp sign-in`)")
    add_company(st)
    st.add_argument("--host", default=None,
                    help="the SMTP server (with --auth oauth, default: the provider's, e.g. smtp.office365.com)")
    st.add_argument("--port", type=int, default=None, help="the server's port (587 for starttls, 465 for ssl)")
    st.add_argument("--security", choices=SECURITY_MODES, default=None,
                    help="encryption: starttls, ssl or none (none only inside a trusted network)")
    st.add_argument("--username", default="", help="the login; with --auth oauth, the mailbox that signs in")
    st.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    st.add_argument("--from", dest="from_address", required=True, metavar="ADDRESS",
                    help="the sender address of renewal mail, e.g. 'Acme Tax <tax@acme.example>'")
    st.add_argument("--auth", choices=AUTH_METHODS, default="password",
                    help="password (user name and password) or oauth (sign in at Microsoft 365 or Google)")
    st.add_argument("--provider", default=None, metavar="microsoft|google",
                    help="with --auth oauth: microsoft (Microsoft 365) or google (Gmail, Google Workspace)")
    st.add_argument("--client-id", default="", metavar="ID",
                    help="with --auth oauth: the application (client) id of YOUR OWN app registration at the "
                         "provider (see the README: 'E-mail with Microsoft 365 and Gmail')")
    st.add_argument("--client-secret-stdin", action="store_true",
                    help="read the app's client secret from standard input (Google desktop apps have one; it is "
                         "kept in the OS keyring; Microsoft public clients need none)")
    st.add_argument("--tenant", default="", metavar="T",
                    help="Microsoft: the tenant id or domain (default: organizations, any work or school account)")
    st.add_argument("--idp-url", default="", metavar="URL",
                    help="replace the provider's sign-in host, e.g. https://login.microsoftonline.us for US "
                         "Government (default: the provider's own)")
    st.set_defaults(func=cmd_smtp_set)
    te = ssub.add_parser("test", help="connect and log in to the SMTP server")
    add_company(te)
    te.add_argument("--password-stdin", action="store_true",
                    help="read the password from standard input (default: the OS keyring, else a prompt)")
    te.set_defaults(func=cmd_smtp_test)
    smtp_sign_in.register(ssub)

    p = sub.add_parser("forms", help="the company's library of official fill-in forms")
    fsub = p.add_subparsers(dest="forms_command", required=True)
    fadd = fsub.add_parser("add", help="keep an official fill-in PDF for a form code")
    fadd.add_argument("form_code", help="the rules pack's code of the form (e.g. ST-120)")
    fadd.add_argument("file", type=Path, help="the official fill-in PDF")
    add_company(fadd)
    fadd.set_defaults(func=cmd_forms_add)
    fls = fsub.add_parser("list", help="list the forms library")
    add_company(fls)
    fls.set_defaults(func=cmd_forms_list)

    p = sub.add_parser("intake", help="read returned forms back (PDF, image or .eml)")
    p.add_argument("files", type=Path, nargs="*", help="returned forms to read (PDF, PNG, JPEG, TIFF or .eml)")
    add_company(p)
    p.add_argument("--watch", type=Path, default=None, metavar="DIR",
                   help="keep reading new files dropped into DIR (handled ones move to DIR/done)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between looks at the watched folder")
    p.add_argument("--cycles", type=int, default=None, metavar="N",
                   help="with --watch: stop after N looks at the folder (default: until interrupted)")
    add_as_of(p)
    add_format(p)
    p.set_defaults(func=cmd_intake)

    p = sub.add_parser("templates", help="the company's renewal e-mail templates (Jinja2)")
    tsub = p.add_subparsers(dest="templates_command", required=True)
    for name, helptext in (("show", "print a template"), ("set", "replace a template from files"),
                           ("reset", "go back to the built-in template")):
        t = tsub.add_parser(name, help=helptext)
        t.add_argument("kind", choices=("request", "reminder", "escalation"), help="which e-mail")
        add_company(t)
        if name == "set":
            t.add_argument("--subject", default=None, help="the subject template text")
            t.add_argument("--text-file", type=Path, default=None, metavar="FILE",
                           help="the plain-text body template (Jinja2, UTF-8)")
            t.add_argument("--html-file", type=Path, default=None, metavar="FILE",
                           help="the HTML body template (Jinja2, UTF-8; optional)")
        t.set_defaults(func={"show": cmd_templates_show, "set": cmd_templates_set,
                             "reset": cmd_templates_reset}[name])


def _renewals(ctx: CliContext) -> RenewalService:
    from ecms_desktop.services.renewals.service import RenewalService

    return RenewalService(ctx.db())


def _read_stdin_password() -> str:
    from ecms_desktop.services.core.errors import ValidationError

    line = sys.stdin.readline()
    if not line:
        raise ValidationError("--password-stdin was given but standard input is empty.")
    return line.rstrip("\r\n")


def _password(args: argparse.Namespace, email: EmailService, settings: SmtpSettings) -> str | None:
    """The SMTP password: --password-stdin, else the keyring, else ask (when there is a terminal)."""
    from ecms_desktop.services.core.errors import ValidationError
    from ecms_desktop.services.renewals import smtp_passwords as password_keyring

    if not settings.username or settings.auth_method == "oauth":
        return None
    if args.password_stdin:
        return _read_stdin_password()
    stored = email.stored_password(settings)
    if stored:
        return stored
    status = password_keyring.keyring_status()
    if not status.available:
        print(f"note: {status.description}; the SMTP password is not stored and is asked each time.",
              file=sys.stderr)
    if sys.stdin.isatty():
        return getpass.getpass(f"SMTP password for {settings.username}@{settings.host}: ")
    raise ValidationError(f"The SMTP password of {settings.username} is needed: pass it with --password-stdin.")


def cmd_plan(ctx: CliContext, args: argparse.Namespace) -> int:
    company_id = ctx.company_id(args.company)
    plan = _renewals(ctx).plan(company_id, as_of(args))
    if args.format == "json":
        print_json({"as_of": plan.as_of, "company_id": company_id,
                    "ladder": {"window_days": plan.ladder.window_days,
                               "reminder_days": list(plan.ladder.reminder_days),
                               "escalation_days": plan.ladder.escalation_days},
                    "counts": plan.counts(),
                    "items": [{"action": i.action.value, "certificate_id": i.certificate_id, "state": i.state,
                               "customer_number": i.customer_number, "customer": i.customer_name,
                               "recipient": i.recipient, "expiry_date": i.expiry_date, "days_left": i.days_left,
                               "form": i.form_code, "token": i.token, "requested_on": i.requested_on,
                               "number": i.number, "problem": i.problem, "lapse": i.lapse or None}
                              for i in plan.items]}, ctx.out)
        return 0
    print_table(["action", "cert", "state", "customer", "to", "expiry", "days", "form", "request", "note"],
                [(f"{i.action.value}{f' {i.number}' if i.number else ''}",
                  "first request" if i.certificate_id is None else i.certificate_id, i.state,
                  f"{i.customer_name} ({i.customer_number})", i.recipient, i.expiry_date, i.days_left, i.form_code,
                  i.token or "", i.problem or i.lapse) for i in plan.items], ctx.out)
    counts = plan.counts()
    ctx.out.write(f"\n{len(plan.items)} steps due on {plan.as_of}: " +
                  ", ".join(f"{v} {k}" for k, v in counts.items()) + "\n")
    return 0


def cmd_send(ctx: CliContext, args: argparse.Namespace) -> int:
    company_id = ctx.company_id(args.company)
    service = _renewals(ctx)
    password = None
    if args.dry_run is None:
        settings = service.email.require_profile(company_id)
        password = _password(args, service.email, settings)

    def progress(done: int, total: int, text: str) -> None:
        if sys.stderr.isatty():
            print(f"\r{text} ({done}/{total})", end="", file=sys.stderr, flush=True)

    result = service.run(company_id, as_of(args), certificate_ids=args.only, dry_run_dir=args.dry_run,
                         password=password, progress=progress)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(result.summary(), file=ctx.out)
    for path in result.eml_files:
        print(f"  wrote {path}", file=ctx.out)
    for note in result.skipped:
        print(f"  not sent: {note}", file=ctx.out)
    if result.queued_earlier:
        print("  send them with `ecms renewals send-queued` (list them with `ecms renewals outbox --status queued`)",
              file=ctx.out)
    return _print_delivery(ctx, result.delivery) if result.delivery is not None else 0


def _print_delivery(ctx: CliContext, report: DeliveryReport) -> int:
    """The delivery's details; 1 when a message was refused or deferred."""
    status = 0
    for mid in report.resent_after_interruption:
        print(f"  resent after an interrupted run (same Message-ID): {mid}", file=ctx.out)
    for f in report.failed:
        print(f"  REFUSED for {f.customer_name} <{f.to_address}>: {f.error}", file=ctx.out)
        status = 1
    if report.deferred:
        status = 1
    return status


def cmd_outbox(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.renewals.email_service import EmailService

    company_id = ctx.company_id(args.company)
    entries = EmailService(ctx.db()).outbox(company_id, status=args.status)
    if args.format == "json":
        print_json([e.__dict__ for e in entries], ctx.out)
    else:
        print_table(["outbox", "status", "kind", "customer", "to", "subject", "created", "sent", "reason"],
                    [(e.outbox_id, e.status, e.kind, e.customer_name, e.to_address, e.subject,
                      e.created_at.strftime("%Y-%m-%d %H:%M"), e.sent_at.strftime("%Y-%m-%d %H:%M") if e.sent_at
                      else "", e.reason) for e in entries], ctx.out)
    return 0


def cmd_send_queued(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.renewals.email_service import EmailService

    company_id = ctx.company_id(args.company)
    email = EmailService(ctx.db())
    password = _password(args, email, email.require_profile(company_id))
    report = email.send_queued(company_id, args.ids or None, password=password)
    print(f"Queued messages: {report.summary()}.", file=ctx.out)
    return _print_delivery(ctx, report)


def cmd_retry(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.renewals.email_service import EmailService

    company_id = ctx.company_id(args.company)
    email = EmailService(ctx.db())
    password = _password(args, email, email.require_profile(company_id))
    report = email.retry(company_id, args.id, password=password)
    print(f"Outbox message {args.id}: {report.summary()}.", file=ctx.out)
    return _print_delivery(ctx, report)


def cmd_failed(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.renewals.email_service import EmailService

    company_id = ctx.company_id(args.company)
    failed = EmailService(ctx.db()).failed_messages(company_id)
    if args.format == "json":
        print_json([f.__dict__ for f in failed], ctx.out)
    else:
        print_table(["outbox", "customer", "to", "code", "error", "subject"],
                    [(f.outbox_id, f.customer_name, f.to_address, f.code, f.error, f.subject) for f in failed],
                    ctx.out)
    return 0


def cmd_smtp_set(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.core.errors import ValidationError
    from ecms_desktop.services.renewals import mail_oauth
    from ecms_desktop.services.renewals.email_service import EmailService

    company_id = ctx.company_id(args.company)
    oauth = args.auth == "oauth"
    if oauth and args.provider is None:
        raise ValidationError("--auth oauth needs --provider microsoft or --provider google (and --client-id).")
    preset = mail_oauth.provider(args.provider) if oauth else None
    host = preset.smtp_host if args.host is None and preset else args.host
    port = preset.smtp_port if args.port is None and preset else args.port
    security = preset.smtp_security if args.security is None and preset else args.security
    if host is None or port is None or security is None:
        raise ValidationError("Give the mail server with --host, --port and --security (or --auth oauth "
                              "--provider ... for the provider's own server).")
    password = _read_stdin_password() if args.password_stdin else None
    if password and not args.username:
        raise ValidationError("A password was given without --username.")
    secret = _read_stdin_password() if args.client_secret_stdin else None
    saved = EmailService(ctx.db()).set_profile(company_id, host=host, port=port, security=security,
                                               from_address=args.from_address, username=args.username,
                                               password=password, auth_method=args.auth,
                                               oauth_provider=args.provider or "", oauth_client_id=args.client_id,
                                               oauth_tenant=args.tenant, oauth_idp_url=args.idp_url,
                                               client_secret=secret)
    print(f"SMTP server saved: {saved.settings.describe()}.", file=ctx.out)
    if oauth:
        print("Now sign the mailbox in: `ecms smtp sign-in` (or Settings > E-mail > Sign in…).", file=ctx.out)
        return 0
    if args.username:
        if saved.password_stored:
            print(f"The password is kept in the operating system's keyring ({saved.keyring.description}).",
                  file=ctx.out)
        else:
            print(f"The password is NOT stored: {saved.keyring.description}. It is asked each time "
                  "(or give it with --password-stdin).", file=ctx.out)
    return 0


def cmd_smtp_test(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.renewals.email_service import EmailService

    company_id = ctx.company_id(args.company)
    email = EmailService(ctx.db(), timeout=15)
    settings = email.require_profile(company_id)
    print(f"Login: {smtp_sign_in.login_line(email, company_id)}", file=ctx.out)
    print(email.test_connection(company_id, _password(args, email, settings)), file=ctx.out)
    return 0


def cmd_forms_add(ctx: CliContext, args: argparse.Namespace) -> int:
    company_id = ctx.company_id(args.company)
    info = _renewals(ctx).add_form(company_id, args.form_code, args.file)
    print(f"{info['form_code']}: {args.file.name} stored ({info['sha256'][:16]}), {info['fields']} fill-in fields, "
          f"{len(info['mapped_fields'])} known to the rules pack.", file=ctx.out)
    if not info["mapped_fields"]:
        print("warning: none of its fields is in the rules pack's field map for this form; requests will use "
              "the generated fill-in form's values only where the names match.", file=ctx.out)
    return 0


def cmd_forms_list(ctx: CliContext, args: argparse.Namespace) -> int:
    company_id = ctx.company_id(args.company)
    print_table(["form", "file", "fields", "sha256", "added"],
                [(f["form_code"], f["original_name"], f["fields"], f["sha256"][:16], f["added_at"])
                 for f in _renewals(ctx).forms(company_id)], ctx.out)
    return 0


def cmd_intake(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.core.errors import ValidationError
    from ecms_desktop.services.renewals.returned_forms import ReturnedFormsService

    if not args.files and args.watch is None:
        raise ValidationError("Give the files to read, or --watch DIR.")
    company_id = ctx.company_id(args.company)
    service = ReturnedFormsService(ctx.db())
    day = as_of(args)
    items = service.intake(args.files, company_id, as_of=day) if args.files else []
    _print_intake(ctx, args, items)
    status = 1 if any(i.outcome == "refused" for i in items) else 0
    if args.watch is None:
        return status
    folder: Path = args.watch
    if not folder.is_dir():
        raise ValidationError(f"The watched folder {folder} does not exist.")
    done, refused = folder / "done", folder / "refused"
    done.mkdir(exist_ok=True)
    refused.mkdir(exist_ok=True)
    print(f"Watching {folder} (every {args.interval:g} s; Ctrl+C to stop).", file=sys.stderr)
    stuck: dict[Path, tuple[int, int]] = {}  # files that could not be moved aside: (size, mtime) when seen
    cycle = 0
    while args.cycles is None or cycle < args.cycles:
        cycle += 1
        for path in _settled_files(folder):
            _watch_one(ctx, args, service, company_id, day, path, done, refused, stuck)
        if args.cycles is not None and cycle >= args.cycles:
            break
        time.sleep(args.interval)
    return status


def _watch_one(ctx: CliContext, args: argparse.Namespace, service: ReturnedFormsService, company_id: int,
               day: dt.date, path: Path, done: Path, refused: Path, stuck: dict[Path, tuple[int, int]]) -> None:
    """Read one file of the watched folder and move it to ``done/`` or ``refused/``. Nothing a file
    does stops the watcher: a file the sandbox refuses is recorded as refused with its reason; a file
    refused before that could not be moved aside is not read again; a database that is busy leaves
    the file for the next look."""
    from ecms_desktop.services.core.errors import EcmsError
    from ecms_desktop.services.renewals.returned_forms import ReturnedItem

    try:
        stat = path.stat()
    except OSError:
        return  # gone meanwhile
    if stuck.get(path) == (stat.st_size, stat.st_mtime_ns):
        return
    stuck.pop(path, None)
    try:
        before = service.refused_before(company_id, path.read_bytes())
        found = ([ReturnedItem(path.name, "refused", f"{path.name}: not read again, {before}")] if before
                 else service.intake([path], company_id, as_of=day))
    except OSError as exc:
        print(f"error: {path.name}: cannot be read ({exc.strerror}); it is tried again at the next look.",
              file=sys.stderr)
        return
    except EcmsError as exc:  # the database is busy or gone: the file waits for the next look
        print(f"error: {path.name}: {exc} The file is tried again at the next look.", file=sys.stderr)
        return
    except Exception as exc:  # a fault of this program: keep watching, set the file aside
        log.exception("intake of %s failed", path)
        found = [ReturnedItem(path.name, "refused", f"{path.name}: could not be read because of an error in "
                              f"this program ({type(exc).__name__}); it was set aside in refused/.")]
    _print_intake(ctx, args, found)
    target = refused if any(i.outcome == "refused" for i in found) else done
    try:
        path.replace(_free_name(target / path.name))
    except OSError as exc:
        stuck[path] = (stat.st_size, stat.st_mtime_ns)
        print(f"warning: {path.name} could not be moved to {target.name}/ ({exc.strerror}); it is not read "
              "again while it stays unchanged.", file=sys.stderr)


def _settled_files(folder: Path) -> list[Path]:
    """Files in the folder whose size did not change over a short look (a copy still in progress is
    left for the next round)."""
    first: dict[Path, int] = {}
    for p in sorted(folder.iterdir()):
        try:
            if p.is_file() and not p.name.startswith("."):
                first[p] = p.stat().st_size
        except OSError:
            continue
    time.sleep(0.2)
    settled = []
    for p, size in first.items():
        try:
            if p.stat().st_size == size:
                settled.append(p)
        except OSError:
            continue
    return settled


def _free_name(path: Path) -> Path:
    n, candidate = 1, path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


def _print_intake(ctx: CliContext, args: argparse.Namespace, items: Sequence[ReturnedItem]) -> None:
    if args.format == "json":
        print_json([i.to_json() for i in items], ctx.out)
        return
    for i in items:
        extra = f" [{i.validation}]" if i.validation else ""
        print(f"{i.outcome}: {i.message}{extra}", file=ctx.out)


def cmd_templates_show(ctx: CliContext, args: argparse.Namespace) -> int:
    src = _renewals(ctx).template(ctx.company_id(args.company), args.kind)
    origin = "company's own" if src.custom else "built-in"
    ctx.out.write(f"# {args.kind} ({origin})\n## subject\n{src.subject}\n## text\n{src.text}\n## html\n{src.html}\n")
    return 0


def cmd_templates_set(ctx: CliContext, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from ecms_desktop.services.core.errors import ValidationError

    service = _renewals(ctx)
    company_id = ctx.company_id(args.company)
    src = service.template(company_id, args.kind)
    changes = {}
    if args.subject is not None:
        changes["subject"] = args.subject
    if args.text_file is not None:
        changes["text"] = args.text_file.read_text("utf-8")
    if args.html_file is not None:
        changes["html"] = args.html_file.read_text("utf-8")
    if not changes:
        raise ValidationError("Give --subject, --text-file and/or --html-file.")
    service.save_template(company_id, replace(src, custom=True, **changes))
    print(f"The {args.kind} template of the company was saved.", file=ctx.out)
    return 0


def cmd_templates_reset(ctx: CliContext, args: argparse.Namespace) -> int:
    _renewals(ctx).reset_template(ctx.company_id(args.company), args.kind)
    print(f"The {args.kind} e-mail uses the built-in template again.", file=ctx.out)
    return 0
