"""File dialogs never open the files they list: showing one on the database's own folder must not
drop SQLite's POSIX locks (another program would then delete the write-ahead log this one uses)."""

from __future__ import annotations

import ast
import datetime as dt
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtWidgets import QApplication, QFileDialog, QFileSystemModel, QListView

from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core.database import Database
from ecms_desktop.views.main_window import MainWindow
from ecms_desktop.views.widgets import file_dialogs

AS_OF = dt.date(2026, 6, 1)
#: The whole GUI: every module of ``ecms_desktop/views`` (file_dialogs is in its ``widgets`` package).
VIEWS = Path(file_dialogs.__file__).parent.parent


def _other_process(code: str, path: Path) -> str:
    """Run Python in another process (its own SQLite locks) against the database file."""
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def _browse_and_cancel(qtbot, folder: Path, seen: dict) -> None:  # type: ignore[no-untyped-def]
    """Drive the modal dialog the way a user does: go to ``folder``, let it list (icons and types of
    every file, as painting asks for them), then Esc."""
    dialog = QApplication.activeModalWidget()
    assert isinstance(dialog, QFileDialog), dialog
    model = dialog.findChild(QFileSystemModel)
    listed: list[str] = []

    def loaded(directory: str) -> None:
        if Path(directory) != folder:
            return
        try:
            root = model.index(str(folder))
            for row in range(model.rowCount(root)):
                index = model.index(row, 0, root)
                model.data(index, Qt.ItemDataRole.DecorationRole)
                model.type(index)
                listed.append(model.fileName(index))
            dialog.grab()  # paint the listing as the screen would
            view = dialog.findChild(QListView, "listView")
            shown, top = view.model(), view.rootIndex()
            seen["shown"] = sorted(shown.index(r, 0, top).data() for r in range(shown.rowCount(top)))
            seen["listed"] = sorted(listed)
        finally:
            qtbot.keyClick(dialog, Qt.Key.Key_Escape)

    model.directoryLoaded.connect(loaded)
    dialog.selectNameFilter("All files (*)")
    dialog.setDirectory(str(folder))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX advisory locks")
def test_file_dialog_on_the_database_folder_keeps_every_commit_visible(qtbot, tmp_path, _sqlite_template):
    import shutil

    folder = tmp_path / "x"
    folder.mkdir()
    path = folder / "e.db"
    shutil.copy(_sqlite_template, path)
    (folder / "scan.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    db = Database(str(path))
    db.ensure_ready()
    CompanyService(db).create("Before Dialog Co", state="TX")  # the WAL and its index now exist
    window = MainWindow(None, as_of=AS_OF, settings=QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.grid_ready, timeout=15000):
        window.set_database(db)
    try:
        seen: dict = {}
        QTimer.singleShot(0, lambda: _browse_and_cancel(qtbot, folder, seen))
        window.act_import_docs.trigger()  # Ctrl+I: returns when the dialog is closed
        assert "scan.pdf" in seen["listed"], "the dialog did not list the folder"

        # Another program reads the database and exits (the last one out checkpoints and, when it
        # believes nobody else has the database open, deletes the WAL).
        listing = subprocess.run([sys.executable, "-m", "ecms_desktop.cli", "--db", str(path), "company", "list"],
                                 capture_output=True, text=True, timeout=120)
        assert listing.returncode == 0, listing.stderr
        assert "Before Dialog Co" in listing.stdout

        # This program goes on committing: every commit is seen by another program.
        for n in range(3):
            CompanyService(db).create(f"After Dialog {n}", state="TX")
        names = _other_process("import sqlite3, sys\ncon = sqlite3.connect(sys.argv[1])\n"
                               "print('|'.join(r[0] for r in con.execute('select name from company order by id')))",
                               path)
        assert names.split("|") == ["Before Dialog Co", "After Dialog 0", "After Dialog 1", "After Dialog 2"]
        if sys.platform.startswith("linux"):
            fds = Path("/proc/self/fd")
            targets = [os.readlink(fds / fd) for fd in os.listdir(fds) if (fds / fd).is_symlink()]
            assert not [t for t in targets if t.startswith(str(path)) and t.endswith("(deleted)")], targets
        # The database's own files are not offered; other files are.
        assert "scan.pdf" in seen["shown"] and not any(n.startswith("e.db") for n in seen["shown"]), seen
    finally:
        window.shutdown()
        db.dispose()
    with sqlite3.connect(path) as con:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("select count(*) from audit_event").fetchone()[0] >= 4


def test_every_file_dialog_of_the_program_is_made_in_one_place():
    """No view calls QFileDialog itself: the stock dialog and its icon provider open the files listed."""
    offenders = []
    for path in sorted(VIEWS.rglob("*.py")):
        if path.name == "file_dialogs.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in ("QFileDialog", "QFileSystemModel", "QFileIconProvider",
                                                          "QMimeDatabase"):
                offenders.append(f"{path.name}:{node.lineno} uses {node.id}")
    assert not offenders, offenders
