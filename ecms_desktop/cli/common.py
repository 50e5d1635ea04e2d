"""Shared pieces of the command-line tool: the database context, dates, output formats."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO, TypeAlias

from ecms_desktop.services.core.errors import EcmsError

# The services (and so SQLAlchemy) are imported where a command needs them, not here: `ecms --help` and
# `ecms --version` load none of them (tests/cli/test_cli_help.py checks it).
if TYPE_CHECKING:
    from ecms_desktop.services.core.database import Database

#: What each command module's ``register`` receives: the ``ecms`` parser's sub-commands.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
#: A command: runs on the context with the parsed arguments, returns the exit status.
Command: TypeAlias = "Callable[[CliContext, argparse.Namespace], int]"


class CliContext:
    """The database a command works on, opened on first use."""

    def __init__(self, url: str | None, out: TextIO | None = None, *, user: str | None = None) -> None:
        self.url = url
        #: ``--user``: the local profile to act as (SQLite).
        self.user = user
        self.out = out or sys.stdout
        self._db: Database | None = None
        self._opened = False

    def db(self, *, warn: bool = True) -> Database:
        """The database, opened and checked (never created: ``ecms init`` does that). The cheap part of
        ``ecms check`` runs on opening (a warning when it fails, unless ``warn`` is false) and the head is
        anchored on exit."""
        if self._db is None:
            from ecms_desktop.services.core.database import open_database
            from ecms_desktop.services.integrity.check import verify_and_anchor

            self._db = open_database(self.url)
            self._opened = True
            if self.user:
                self._act_as(self._db, self.user)
            report = verify_and_anchor(self._db, "start")
            if not report.ok and warn:
                print(f"warning: {self._db.display_url} does not match its audit trail's anchors ("
                      f"{report.problems[0] if report.problems else 'see ecms check'}); run `ecms check`.",
                      file=sys.stderr)
        return self._db

    def raw_db(self) -> Database:
        """The database without the schema check (``ecms init`` creates or upgrades it)."""
        if self._db is None:
            from ecms_desktop.services.core.database import Database

            self._db = Database(self.url)
        return self._db

    @staticmethod
    def _act_as(db: Database, user: str) -> None:
        from ecms_desktop.services.core.people import PermissionDeniedError

        if db.dialect == "sqlite":
            db.act_as(user)
            return
        me = db.actor()
        if me.name.casefold() != " ".join(user.split()).casefold():
            raise PermissionDeniedError(f"--user {user!r}: on PostgreSQL your database login decides who you are, "
                                        f"and it is {me.name}; log in as {user} to act as them.")

    def company_id(self, name: str | None) -> int:
        """The company named by ``--company`` (id or name), or the only one when none is named."""
        from ecms_desktop.services.companies.service import CompanyService

        return CompanyService(self.db()).find_id(name)

    def close(self) -> None:
        if self._db is not None:
            from ecms_desktop.services.integrity.check import verify_and_anchor

            try:
                if self._opened:
                    verify_and_anchor(self._db, "exit")
            except EcmsError:
                pass  # the command already reported what is wrong with the database
            finally:
                self._db.dispose()
                self._db = None
                self._opened = False


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def parse_date(text: str) -> dt.date:
    """argparse type for YYYY-MM-DD."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in the form YYYY-MM-DD") from exc


def add_as_of(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", type=parse_date, default=None, metavar="YYYY-MM-DD",
                        help="the date the answer is for (default: today)")


def add_company(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--company", default=None, metavar="NAME_OR_ID",
                        help="the company, by name or id (needed when the database holds several)")


def as_of(args: argparse.Namespace) -> dt.date:
    return args.as_of or dt.date.today()


def add_format(parser: argparse.ArgumentParser, choices: Sequence[str] = ("table", "json")) -> None:
    parser.add_argument("--format", choices=list(choices), default=choices[0], help="output format")


def _json_ready(value: Any) -> Any:
    """``value`` as :func:`jsonable` makes it, but with its (finite) floats kept as JSON numbers (a reading's
    confidences and seconds) rather than the text the audit trail hashes."""
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    from ecms_desktop.services.core.audit import jsonable

    return jsonable(value)


def print_json(value: Any, out: TextIO) -> None:
    json.dump(_json_ready(value), out, indent=2, ensure_ascii=False)
    out.write("\n")


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> None:
    """A plain aligned text table."""
    text_rows = [[fit_cell("" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in text_rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out.write(fmt.format(*headers).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in text_rows:
        out.write(fmt.format(*row).rstrip() + "\n")


#: The widest a table cell is printed; longer text is cut and ends with an ellipsis (--format csv or json
#: give it whole).
TABLE_CELL_WIDTH = 60


def fit_cell(text: str, width: int = TABLE_CELL_WIDTH) -> str:
    """``text`` on one line of at most ``width`` characters, ending in "…" when it was cut."""
    text = " ".join(text.splitlines())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def print_csv(headers: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO) -> None:
    """CSV with the header first; text a spreadsheet would run as a formula is escaped."""
    from ecms_desktop.services.exports.safe_export import CsvWriter  # openpyxl only when needed

    writer = CsvWriter(out)
    writer.writerow(headers)
    writer.writerows(rows)
