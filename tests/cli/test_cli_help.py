"""The command line explains itself: every command's ``--help`` gives every option a help line, and ``ecms
--help`` / ``--version`` start without loading the database layer, Qt or the document libraries."""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import subprocess
import sys

import pytest

from ecms_desktop.cli import build_parser
from ecms_desktop.cli.common import fit_cell, print_table


def _command_paths(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths += _command_paths(sub, (*path, name))
    return paths


COMMANDS = _command_paths(build_parser())


def _help_text(path: tuple[str, ...]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as stop:
        build_parser().parse_args([*path, "--help"])
    assert stop.value.code == 0
    return out.getvalue()


def _entries_without_help(text: str) -> list[str]:
    """The option and argument entries of a help text that have no help line.

    In argparse's layout an entry starts with two spaces in a section; its help follows on the same line after
    two or more spaces, or on the next line, indented further."""
    lines = text.splitlines()
    missing = []
    in_section = False
    for i, line in enumerate(lines):
        if re.match(r"^\S.*:$", line):  # a section heading: "options:", "positional arguments:", ...
            in_section = True
            continue
        if not in_section or not line.startswith("  ") or line.startswith("   "):
            continue  # not an entry: description text, usage, or a continued help line
        entry = line.strip()
        if entry.startswith("-h, --help"):
            continue
        same_line = re.search(r"\S\s{2,}\S", entry)
        next_line = lines[i + 1] if i + 1 < len(lines) else ""
        indented = len(next_line) - len(next_line.lstrip()) > 2 and next_line.strip()
        if not same_line and not indented:
            missing.append(entry)
    return missing


def test_there_are_many_commands_to_check():
    assert len(COMMANDS) > 60
    assert ("audit-pack", "verify") in COMMANDS and ("smtp", "set") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "ecms")
def test_every_option_of_every_command_has_a_help_line(path):
    text = _help_text(path)
    assert _entries_without_help(text) == [], f"`ecms {' '.join(path)} --help` lists options without help:\n{text}"


def test_the_check_finds_an_option_without_help():
    parser = argparse.ArgumentParser(prog="x")
    parser.add_argument("--with", help="explained")
    parser.add_argument("--without-any-help-text-at-all-here")
    parser.add_argument("file")
    assert _entries_without_help(parser.format_help()) == ["file", "--without-any-help-text-at-all-here "
                                                           "WITHOUT_ANY_HELP_TEXT_AT_ALL_HERE"]


def test_every_command_says_what_it_does():
    for path in COMMANDS[1:]:
        parent = build_parser()
        for name in path[:-1]:
            parent = next(a for a in parent._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
        action = next(a for a in parent._actions if isinstance(a, argparse._SubParsersAction))
        listed = {c.dest: c.help for c in action._choices_actions}
        assert listed.get(path[-1]) or action.help, f"`ecms {' '.join(path)}` has no help line in its parent's list"


def test_audit_pack_help_shows_verify_as_a_subcommand():
    text = _help_text(("audit-pack",))
    assert "positional arguments" not in text
    assert re.search(r"^subcommand:\n  verify DIR_OR_ZIP\s+check a pack", text, re.M), text
    assert "ecms audit-pack verify DIR_OR_ZIP" in text.split("\n\n")[0]  # in the usage
    verify = _help_text(("audit-pack", "verify"))
    assert "DIR_OR_ZIP" in verify and "the pack's folder, or its .zip" in verify


def test_init_help_says_what_it_does():
    text = " ".join(_help_text(("init",)).split())
    assert "Create the ECMS database" in text
    assert "Running it again changes nothing" in text


@pytest.mark.parametrize("argv", [["--version"], ["--help"]])
def test_version_and_help_load_no_database_layer_qt_or_document_library(argv):
    code = ("import sys\nfrom ecms_desktop.cli import main\n"
            "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "heavy = ('sqlalchemy', 'alembic', 'PySide6', 'pymupdf', 'openpyxl', 'reportlab', 'psycopg', 'jinja2', "
            "'jsonschema', 'keyring')\n"
            "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=60)
    assert done.stderr.strip().splitlines()[-1] == "[]", done.stderr
    assert ("ecms " in done.stdout) if argv == ["--version"] else ("COMMAND" in done.stdout)


def test_table_cells_cut_end_with_an_ellipsis():
    out = io.StringIO()
    long = "Northwind Traders Wholesale Distribution of Fine Goods and Sundries, Incorporated"
    print_table(["Customer", "State"], [(long, "TX"), ("short", "NY")], out)
    lines = out.getvalue().splitlines()
    assert lines[2].startswith(long[:59].rstrip() + "…") and long not in out.getvalue()
    assert lines[3].startswith("short ")
    assert len(lines[2].split("  ")[0]) <= 60
    assert fit_cell("two\nlines") == "two lines"
    assert fit_cell("x" * 60) == "x" * 60 and fit_cell("x" * 61) == "x" * 59 + "…"
