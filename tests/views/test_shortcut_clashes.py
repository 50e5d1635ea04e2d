"""No key is bound twice in one window, in any window the desk can open.

Every window and dialog the desk opens is listed in ``WINDOWS`` (tests/helpers/windows.py): a name and a
function that opens it from the main window (with a database and a selected certificate) and returns it.
A new window is one more line there; the test then lists every action and shortcut key of it
(tests/helpers/shortcuts.py) and fails naming both owners of a key that is bound twice.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow

from ecms_desktop.views.main_window import MainWindow
from tests.factories import seed_certificates
from tests.helpers.shortcuts import ambiguous_shortcuts, key_owners
from tests.helpers.windows import WINDOWS

AS_OF = dt.date(2026, 6, 1)

@pytest.fixture
def desk(qtbot, db, company_id, tmp_path: Path):  # type: ignore[no-untyped-def]
    ids = seed_certificates(db, company_id, 6)
    window = MainWindow(None, as_of=AS_OF, settings=QSettings(str(tmp_path / "ui.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.resize(1400, 800)
    window.show()
    with qtbot.waitSignals([window.grid_ready, window.counts_updated], timeout=15000):
        window.set_database(db)
    qtbot.waitUntil(lambda: window.model.position_of(ids[0]) is not None, timeout=15000)
    with qtbot.waitSignal(window.form.checks_loaded, timeout=15000):
        assert window.select_certificate(ids[0])
    yield window
    window.shutdown()


@pytest.mark.parametrize("name", [name for name, _ in WINDOWS])
def test_no_key_is_bound_twice_in_a_window(qtbot, desk, name: str) -> None:  # type: ignore[no-untyped-def]
    opener = dict(WINDOWS)[name]
    opened = opener(qtbot, desk)
    assert opened is not None, f"the {name} did not open"
    clashes = ambiguous_shortcuts(opened)
    assert clashes == {}, f"keys bound twice in the {name}: " + "; ".join(
        f"{key}: {' and '.join(owners)}" for key, owners in clashes.items())


def test_the_clash_finder_names_both_owners(qtbot) -> None:  # type: ignore[no-untyped-def]
    window = QMainWindow()
    qtbot.addWidget(window)
    for name in ("actFirst", "actSecond"):
        action = QAction(name, window)
        action.setObjectName(name)
        action.setShortcut(QKeySequence("Ctrl+R"))
        action.setEnabled(name == "actFirst")  # a disabled action is enabled again later: it counts
        window.menuBar().addMenu("&Menu").addAction(action)
    clashes = ambiguous_shortcuts(window)
    assert list(clashes) == ["Ctrl+R"]
    assert "actFirst" in clashes["Ctrl+R"][0] and "actSecond" in clashes["Ctrl+R"][1]


def test_ctrl_r_means_one_thing(qtbot, desk) -> None:  # type: ignore[no-untyped-def]
    """Ctrl+R opened the review queue on the desk and rejected in the queue (and was the platform's
    Refresh on GNOME): now it opens the review queue, Reject is Ctrl+Shift+R in both windows and
    Refresh is F5."""
    desk.open_review_queue()
    meanings: dict[str, set[str]] = {}
    for window in (desk, desk.review_window):
        for owner in key_owners(window):
            meanings.setdefault(owner.key, set()).add(owner.owner.split("(")[-1].rstrip(")").rstrip("…").strip())
    assert meanings["Ctrl+R"] == {"Review queue"}
    assert meanings["Ctrl+Shift+R"] == {"Reject"}
    assert desk.act_refresh.shortcuts() == [QKeySequence("F5")]
