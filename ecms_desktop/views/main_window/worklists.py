"""Work lists at the desk: the filter bar's "Work lists" menu (quick filters from the checks, the
inbox, the accountant's saved filters), also under View > Work lists."""

from __future__ import annotations

from ecms_desktop.services.certificates.query import CheckFilter
from ecms_desktop.services.intake.inbox import InboxItem
from ecms_desktop.views.certificates.work_lists import SavedFilters, WorkListMenu, check_list
from ecms_desktop.views.main_window.desk import DeskWindow


class WorkListsMixin(DeskWindow):
    """Quick and saved filters of the grid."""

    def _build_worklist_actions(self) -> None:
        """The "Work lists" menu (its "In the inbox" entry is connected by the window, which shows the
        Inbox pane)."""
        self.work_lists = WorkListMenu(self.filter_bar, SavedFilters(self.settings), lambda: self.window_days, self)
        self.work_lists.message.connect(self._on_work_lists_message)
        self.inbox_updated.connect(self._on_worklists_inbox_updated)

    def show_work_list(self, check: CheckFilter) -> None:
        """Show the certificates a check left work on (e.g. "Validation errors") in the grid."""
        self.grid_tabs.setCurrentWidget(self.table)
        self.filter_bar.apply_list(*check_list(check))

    def _on_work_lists_message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def _on_worklists_inbox_updated(self, items: list[InboxItem]) -> None:
        self.work_lists.set_inbox_count(len(items))
