"""The ``ecms`` command-line tool: the headless twin of the GUI, on the same services.

Usage: ``ecms [--db URL] COMMAND ...``; every time-dependent command takes ``--as-of YYYY-MM-DD``.
Exit status: 0 success, 1 an error the message explains, 2 a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ecms_desktop import __version__
from ecms_desktop.cli.common import CliContext, fail
from ecms_desktop.errors import EcmsError

#: Command groups, each a module with ``register(subparsers)``.
COMMAND_MODULES = (
    "ecms_desktop.cli.core",
    "ecms_desktop.cli.certificates",
    "ecms_desktop.cli.audit_commands",
    "ecms_desktop.cli.demo",
    "ecms_desktop.cli.validation",
    "ecms_desktop.cli.renewals",
    "ecms_desktop.cli.transactions",
    "ecms_desktop.cli.audit_pack",
    "ecms_desktop.cli.database_commands",
)


def _available_modules() -> list[str]:
    found = []
    for name in COMMAND_MODULES:
        if importlib.util.find_spec(name) is not None:
            found.append(name)
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ecms",
        description="ECMS Desktop from the command line: sales-tax exemption certificates, audit-ready.",
    )
    parser.add_argument("--version", action="version", version=f"ecms {__version__}")
    parser.add_argument("--db", metavar="URL", help="database URL or SQLite file path "
                        "(default: $ECMS_DATABASE_URL, else the local database in the user data folder)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to standard error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _available_modules():
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["--document-worker"]:  # a frozen build serves as its own document worker
        from ecms_desktop.services import _document_worker

        return _document_worker.main(args_list[1:])
    parser = build_parser()
    args = parser.parse_args(args_list)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    ctx = CliContext(args.db)
    try:
        return int(args.func(ctx, args) or 0)
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
    """Log an unexpected error with its traceback in the log folder and say so plainly."""
    from ecms_desktop import paths

    where = "standard error"
    try:
        path = paths.log_dir() / "ecms.log"
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger("ecms_desktop.cli")
        logger.addHandler(handler)
        try:
            logger.error("unexpected error", exc_info=exc)
        finally:
            logger.removeHandler(handler)
            handler.close()
        where = str(path)
    except OSError:
        logging.getLogger("ecms_desktop.cli").error("unexpected error", exc_info=exc)
    return f"unexpected error ({type(exc).__name__}: {exc}); the details were written to {where}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
