"""The ``ecms`` command-line tool: the headless twin of the GUI, on the same services.

Usage: ``ecms [--db URL] COMMAND ...``; every time-dependent command takes ``--as-of YYYY-MM-DD``.
Exit status: 0 success, 1 an error the message explains, 2 a usage error.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ecms_desktop import __version__
from ecms_desktop.cli.common import CliContext, Command, fail
from ecms_desktop.services.core.errors import EcmsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecms",
        description="ECMS Desktop from the command line: sales-tax exemption certificates, audit-ready.",
    )
    parser.add_argument("--version", action="version", version=f"ecms {__version__}")
    parser.add_argument("--db", metavar="URL", help="database URL or SQLite file path "
                        "(default: $ECMS_DATABASE_URL, else the local database in the user data folder)")
    parser.add_argument("--user", metavar="NAME", help="act as this local profile (SQLite; default: $ECMS_USER, else "
                        "the profile chosen last, else your system user name); on PostgreSQL your login decides")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to standard error")
    parser.set_defaults(func=None)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    # The command groups are imported here, not at the top, so that ``ecms --document-worker`` (a frozen
    # build's document worker) starts without them.
    from ecms_desktop.cli import (
        audit_commands,
        audit_pack,
        certificates,
        core,
        customers,
        database_commands,
        demo,
        inbox,
        people,
        renewals,
        review,
        rules,
        transactions,
        validation,
    )

    for group in (core, certificates, review, customers, audit_commands, demo, validation, renewals, inbox,
                  transactions, audit_pack, database_commands, people, rules):
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--document-worker"]:  # a frozen build serves as its own document worker
        from ecms_desktop.services.documents.worker.main import main as worker_main

        return worker_main(args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    command: Command | None = args.func
    if command is None:
        parser.print_help()
        return 2
    ctx = CliContext(args.db, user=args.user)
    try:
        return command(ctx, args)
    except EcmsError as exc:
        return fail(str(exc))
    except KeyboardInterrupt:
        return fail("interrupted")
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: the details go to the log file, the user gets a plain message
        return fail(unexpected(exc))
    finally:
        ctx.close()


def unexpected(exc: BaseException) -> str:
    """Log an unexpected error with its traceback in the log file and say so plainly."""
    from ecms_desktop import logfile

    path = logfile.log_unexpected(exc, logging.getLogger("ecms_desktop.cli"))
    where = str(path) if path is not None else "standard error"
    return f"unexpected error ({type(exc).__name__}: {exc}); the details were written to {where}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
