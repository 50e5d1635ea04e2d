"""Every place a message sends the user to exists: "File > Back up…" is a menu entry of the main window,
"Settings > E-mail" a tab of the settings dialog, "`ecms renewals outbox --status`" a command (and
option) of the ``ecms`` tool. The hints are collected from every string in the program's source."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMenu

from ecms_desktop.cli import build_parser
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.views.main_window import MainWindow
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.settings_dialog import SettingsDialog

SOURCE = Path(__file__).resolve().parents[2] / "ecms_desktop"
_PLACE = re.compile(r"\b(File|Edit|View|Certificate|Renewals|Transactions|Help|Settings) > "
                    r"([A-Z][\w\- ]*(?:…|\.\.\.)?)")
_COMMAND = re.compile(r"`ecms ([a-z][^`]*)`")


def _strings() -> list[tuple[str, str]]:
    """(file, text) of every string constant of the program (messages, tooltips, docstrings)."""
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.append((str(path.relative_to(SOURCE)), node.value))
    return found


def _words(text: str) -> list[str]:
    return text.replace("&", "").replace("…", "").replace("...", "").lower().split()


def _leads_to(hint: str, entries: list[str]) -> bool:
    """The hint names an entry: the entry's words begin the hint ("Import documents and files dropped
    ...") or the hint's words begin the entry ("Attach" for "Attach documents to selected…")."""
    said = _words(hint)
    for entry in entries:
        words = _words(entry)
        n = min(len(said), len(words))
        if n and said[:n] == words[:n]:
            return True
    return False


def test_menu_and_settings_hints_lead_somewhere(qtbot, db, company_id, tmp_path):
    window = MainWindow(None, settings=QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    places: dict[str, list[str]] = {}
    for menu in window.menus:
        entries = [a.text() for a in menu.actions() if not a.isSeparator()]
        entries += [m.title() for m in menu.findChildren(QMenu)]
        places[menu.title().replace("&", "")] = entries
    dialog = SettingsDialog(db, TaskRunner(), window.settings, company_id=company_id,
                            companies=CompanyService(db).list(), expiring_soon_days=30)
    qtbot.addWidget(dialog)
    places["Settings"] = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    wrong = [f"{file}: {m.group(0)!r}" for file, text in _strings() for m in _PLACE.finditer(text)
             if not _leads_to(m.group(2), places[m.group(1)])]
    assert wrong == [], f"hints to places that do not exist (menus: {places})"
    window.shutdown()


def _follow(parser: argparse.ArgumentParser, command: str) -> str:
    """'' when ``ecms COMMAND`` names a command and options that exist, else what is wrong."""
    options = False  # after the first option come values and options, no more commands
    for token in command.split():
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if token.startswith("--"):
            options = True
            if token.split("=")[0] not in parser._option_string_actions:
                return f"no option {token}"
        elif subs and not options and re.fullmatch(r"[a-z][a-z\-]*", token):
            if token not in subs[0].choices:
                return f"no command {token!r}"
            parser = subs[0].choices[token]
    return ""


def test_command_hints_name_commands_that_exist():
    parser = build_parser()
    wrong = [f"{file}: `ecms {m.group(1)}`: {problem}" for file, text in _strings()
             for m in _COMMAND.finditer(text) if (problem := _follow(parser, m.group(1)))]
    assert wrong == []
