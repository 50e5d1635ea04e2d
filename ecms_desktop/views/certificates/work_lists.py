"""Work lists: the quick filters that turn the checks into work ("Validation errors", "Warnings to
acknowledge", "Permit not checked", "Expiring in N days", "Pending review", "In the inbox") and the
accountant's own filters saved by name (per user, in the UI settings), in the filter bar's "Work lists"
menu (also under View)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from functools import partial

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QInputDialog, QMenu, QWidget

from ecms_desktop.models import Status
from ecms_desktop.services.certificates.query import CheckFilter, ClaimFilter
from ecms_desktop.views.certificates.filter_bar import FilterBar, Filters

#: Where the saved filters are kept in the UI settings (a JSON object: name -> filters).
SAVED_KEY = "worklists/saved"


def check_list(check: CheckFilter) -> tuple[str, Filters]:
    """The quick filter of a check: its name and filters."""
    return check.label, Filters(check=check)


def pending_list() -> tuple[str, Filters]:
    return Status.PENDING_REVIEW.label, Filters(status=Status.PENDING_REVIEW)


def expiring_list(days: int) -> tuple[str, Filters]:
    return f"Expiring in {days} days", Filters(expiring_within_days=days)


def _filters_to_json(filters: Filters) -> dict[str, object]:
    data = asdict(filters)
    data["status"] = filters.status.value if filters.status else None
    data["check"] = filters.check.value if filters.check else None
    data["claim"] = filters.claim.value if filters.claim else None
    return data


def _filters_from_json(data: object) -> Filters | None:
    """Filters read back from the settings; None for an entry this version cannot read."""
    if not isinstance(data, dict):
        return None
    try:
        days = data.get("expiring_within_days")
        return Filters(text=str(data.get("text") or ""), state=str(data.get("state") or ""),
                       status=Status(data["status"]) if data.get("status") else None,
                       expiring_within_days=int(days) if days else None,
                       form_code=str(data.get("form_code") or ""),
                       check=CheckFilter(data["check"]) if data.get("check") else None,
                       claim=ClaimFilter(data["claim"]) if data.get("claim") else None)
    except (ValueError, TypeError):
        return None


class SavedFilters:
    """The accountant's filters saved by name (per user, in QSettings), sorted by name."""

    def __init__(self, settings: QSettings) -> None:
        self.settings = settings

    def _all(self) -> dict[str, object]:
        raw = self.settings.value(SAVED_KEY, "")
        try:
            data = json.loads(str(raw)) if raw else {}
        except json.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, object]) -> None:
        self.settings.setValue(SAVED_KEY, json.dumps(data, sort_keys=True))
        self.settings.sync()

    def names(self) -> list[str]:
        return sorted((n for n, v in self._all().items() if _filters_from_json(v) is not None), key=str.casefold)

    def get(self, name: str) -> Filters | None:
        return _filters_from_json(self._all().get(name))

    def save(self, name: str, filters: Filters) -> None:
        """Keep ``filters`` under ``name`` (replacing a list of that name). Raises ValueError for an
        empty name or for no filter at all."""
        name = name.strip()
        if not name:
            raise ValueError("Give the list a name.")
        if filters == Filters():
            raise ValueError("No filter is set: choose what the list shows first.")
        data = self._all()
        data[name] = _filters_to_json(filters)
        self._write(data)

    def delete(self, name: str) -> None:
        data = self._all()
        data.pop(name, None)
        self._write(data)


class WorkListMenu(QObject):
    """The "Work lists" menu of the filter bar. ``inbox_requested`` asks the window to show the Inbox
    pane (documents waiting there have no certificate yet, so they cannot be a filter of the grid);
    ``message`` carries a line for the status bar."""

    inbox_requested = Signal()
    message = Signal(str)

    def __init__(self, filter_bar: FilterBar, saved: SavedFilters, window_days: Callable[[], int],
                 parent: QWidget) -> None:
        super().__init__(parent)
        self.filter_bar = filter_bar
        self.saved = saved
        self.window_days = window_days
        self.inbox_count = 0
        self._parent = parent
        self.menu = QMenu("Work &lists", parent)
        self.menu.setObjectName("workListsMenu")
        self.menu.aboutToShow.connect(self.rebuild)
        filter_bar.lists_button.setMenu(self.menu)
        #: The dialog asking the name of a list to save, while it is open.
        self.save_dialog: QInputDialog | None = None
        self.rebuild()

    def rebuild(self) -> None:
        """The menu as of now: quick filters (the expiring window and the inbox count current), then
        the saved filters."""
        m = self.menu
        m.clear()
        self._handlers: dict[QAction, Callable[[], None]] = {}

        def add(menu: QMenu, text: str, handler: Callable[[], None]) -> QAction:
            act = menu.addAction(text)
            self._handlers[act] = handler
            act.triggered.connect(self._on_action_triggered)
            return act

        lists = [check_list(c) for c in CheckFilter] + [expiring_list(self.window_days()), pending_list()]
        for name, filters in lists:
            add(m, name, partial(self.filter_bar.apply_list, name, filters))
        inbox = add(m, f"In the inbox ({self.inbox_count})", self.inbox_requested.emit)
        inbox.setToolTip("Documents that arrived without a certificate: shown in the Inbox pane")
        m.addSeparator()
        names = self.saved.names()
        for name in names:
            add(m, f"\u2605 {name}", partial(self.apply_saved, name))
        add(m, "&Save current filters as…", self.ask_save_name)
        delete = m.addMenu("&Delete saved filter")
        delete.setEnabled(bool(names))
        for name in names:
            add(delete, name, partial(self.delete_saved, name))

    def _on_action_triggered(self, _checked: bool = False) -> None:
        action = self.sender()
        handler = self._handlers.get(action) if isinstance(action, QAction) else None
        if handler is not None:
            handler()

    def action(self, text: str) -> QAction:
        """The menu entry whose text is ``text`` (without its & marks), for the keyboard and for tests."""
        for act in self._handlers:
            if act.text().replace("&", "") == text:
                return act
        raise KeyError(text)

    def trigger(self, text: str) -> None:
        """Do what the menu entry ``text`` does."""
        self.action(text).trigger()

    def set_inbox_count(self, n: int) -> None:
        self.inbox_count = n
        self.rebuild()

    def apply_saved(self, name: str) -> None:
        filters = self.saved.get(name)
        if filters is None:
            self.message.emit(f"There is no saved filter named {name!r}.")
            self.rebuild()
            return
        self.filter_bar.apply_list(name, filters)

    def save_current(self, name: str) -> bool:
        """Save the filters now shown under ``name``; says in the status bar what happened."""
        filters = self.filter_bar.filters()
        replaced = name.strip() in self.saved.names()
        try:
            self.saved.save(name, filters)
        except ValueError as exc:
            self.message.emit(str(exc))
            return False
        self.filter_bar.apply_list(name.strip(), filters)  # the grid's list now has this name
        self.message.emit(f"Filter {'replaced' if replaced else 'saved'} as {name.strip()!r}.")
        self.rebuild()
        return True

    def ask_save_name(self) -> None:
        """Ask a name for the current filters (a name already used replaces that list)."""
        dlg = QInputDialog(self._parent)
        dlg.setObjectName("saveFilterDialog")
        dlg.setWindowTitle("Save filters")
        dlg.setLabelText("Name of the work list (the same name replaces a saved one):")
        current = self.filter_bar.list_name()
        dlg.setTextValue("" if current in ("", "Filtered certificates") else current)
        dlg.textValueSelected.connect(self.save_current)
        dlg.finished.connect(lambda _r: setattr(self, "save_dialog", None))
        dlg.finished.connect(dlg.deleteLater)
        self.save_dialog = dlg
        dlg.open()

    def delete_saved(self, name: str) -> None:
        self.saved.delete(name)
        self.message.emit(f"Saved filter {name!r} deleted.")
        self.rebuild()
