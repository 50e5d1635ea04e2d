"""``ecms smtp sign-in|sign-out|show``: the OAuth sign-in of the company's mailbox (Microsoft 365,
Gmail) for sending renewal mail, and what the mail settings are.

Services are imported inside each command so that ``ecms --help`` stays quick.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ecms_desktop.cli.common import CliContext

if TYPE_CHECKING:
    from ecms_desktop.services.renewals.email_service import EmailService
    from ecms_desktop.services.renewals.mail_oauth import DeviceCode


def register(ssub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the sign-in commands to ``ecms smtp``."""
    si = ssub.add_parser("sign-in", help="sign the company's mailbox in at Microsoft 365 or Google (OAuth); the "
                                         "tokens go to the OS keyring and are refreshed automatically")
    si.add_argument("--company", default=None, help="the company (name or id; default: the only one)")
    how = si.add_mutually_exclusive_group()
    how.add_argument("--device-code", action="store_true",
                     help="show a web address and a code to enter there on any device (the default, except for "
                          "Google, whose device sign-in does not allow sending mail)")
    how.add_argument("--browser", action="store_true",
                     help="open the sign-in page in this computer's browser and wait for it (up to --timeout)")
    si.add_argument("--timeout", type=float, default=300.0, metavar="SECONDS",
                    help="how long the browser sign-in waits for you (default 300)")
    si.set_defaults(func=cmd_sign_in)
    so = ssub.add_parser("sign-out", help="forget the mailbox's sign-in on this computer (audited)")
    so.add_argument("--company", default=None, help="the company (name or id; default: the only one)")
    so.set_defaults(func=cmd_sign_out)
    sh = ssub.add_parser("show", help="the mail server settings, the login method and the sign-in state")
    sh.add_argument("--company", default=None, help="the company (name or id; default: the only one)")
    sh.set_defaults(func=cmd_show)


def cmd_sign_in(ctx: CliContext, args: argparse.Namespace) -> int:
    import webbrowser

    from ecms_desktop.services.renewals import mail_oauth
    from ecms_desktop.services.renewals.email_service import EmailService
    from ecms_desktop.services.renewals.mail_sign_in import MailSignIn

    company_id = ctx.company_id(args.company)
    sign_in = MailSignIn(EmailService(ctx.db()))
    settings = sign_in.oauth_settings(company_id)
    preset = mail_oauth.provider(settings.oauth_provider)
    use_browser = args.browser or (not args.device_code and bool(preset.no_device_code))
    if use_browser:
        def open_browser(url: str) -> None:
            print(f"Sign in as {settings.username} at {preset.name}: a browser window opens; if none does, open "
                  f"this address on this computer:\n  {url}\nWaiting for the sign-in (Ctrl+C stops)…",
                  file=ctx.out, flush=True)
            webbrowser.open(url)

        signed = sign_in.sign_in_with_browser(company_id, open_browser, timeout=args.timeout)
    else:
        def show(code: DeviceCode) -> None:
            print(f"Sign in as {settings.username} at {preset.name}: {code.instructions()}\n"
                  "Waiting for the sign-in (Ctrl+C stops)…", file=ctx.out, flush=True)

        signed = sign_in.sign_in_with_device_code(company_id, show)
    print(signed.describe(), file=ctx.out)
    if not signed.kept_in_keyring:
        print("note: this command's sign-in ends with it; `ecms renewals send` cannot use it.", file=sys.stderr)
    return 0


def cmd_sign_out(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.renewals.email_service import EmailService
    from ecms_desktop.services.renewals.mail_sign_in import MailSignIn

    company_id = ctx.company_id(args.company)
    sign_in = MailSignIn(EmailService(ctx.db()))
    sign_in.sign_out(company_id)
    print("Signed out on this computer: the tokens are forgotten. To revoke the app's access at the provider too, "
          "remove it in the account's security settings.", file=ctx.out)
    return 0


def cmd_show(ctx: CliContext, args: argparse.Namespace) -> int:
    from ecms_desktop.services.renewals.email_service import EmailService

    company_id = ctx.company_id(args.company)
    email = EmailService(ctx.db())
    settings = email.require_profile(company_id)
    print(f"Server: {settings.describe()}", file=ctx.out)
    print(f"Login: {login_line(email, settings.company_id)}", file=ctx.out)
    return 0


def login_line(email: EmailService, company_id: int) -> str:
    """How the program logs in to the mail server, and (OAuth) the sign-in state on this computer."""
    from ecms_desktop.services.renewals import smtp_passwords
    from ecms_desktop.services.renewals.mail_oauth import provider
    from ecms_desktop.services.renewals.mail_sign_in import MailSignIn

    settings = email.require_profile(company_id)
    if settings.auth_method == "oauth":
        tenant = f", tenant {settings.oauth_tenant}" if settings.oauth_tenant else ""
        idp = f", identity provider {settings.oauth_idp_url}" if settings.oauth_idp_url else ""
        return (f"OAuth at {provider(settings.oauth_provider).name} (app {settings.oauth_client_id}{tenant}{idp}). "
                + MailSignIn(email).state(company_id).describe())
    if not settings.username:
        return "none (the server is used without a login)"
    if email.stored_password(settings):
        return f"password of {settings.username}, kept in the operating system's keyring"
    return (f"password of {settings.username}, not stored ({smtp_passwords.keyring_status().description}); "
            "asked each time")
