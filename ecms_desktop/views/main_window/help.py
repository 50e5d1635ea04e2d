"""Help menu: About (version, rules pack, database, licence, source) and the user guide shipped with the
program."""

from __future__ import annotations

from PySide6.QtGui import QAction

from ecms_desktop import paths
from ecms_desktop.services.core.about import program_facts
from ecms_desktop.views.help_windows import AboutDialog, UserGuideWindow
from ecms_desktop.views.main_window.desk import DeskWindow


class HelpMixin(DeskWindow):
    """Help > About ECMS Desktop and Help > User guide."""

    about_dialog: AboutDialog | None = None
    user_guide_window: UserGuideWindow | None = None

    def _build_help_actions(self) -> list[QAction]:
        """The Help menu's entries after Keyboard shortcuts (no keys: F1 is the shortcuts)."""
        self.act_user_guide = QAction("&User guide", self)
        self.act_user_guide.setObjectName("actUserGuide")
        self.act_user_guide.setStatusTip("A short guide to the accountant's day, with pictures")
        self.act_user_guide.triggered.connect(lambda _checked=False: self.open_user_guide())
        self.act_about = QAction("&About ECMS Desktop", self)
        self.act_about.setObjectName("actAbout")
        self.act_about.setMenuRole(QAction.MenuRole.AboutRole)
        self.act_about.setStatusTip("Version, rules pack, database, licence and where the source is")
        self.act_about.triggered.connect(lambda _checked=False: self.open_about())
        for action in (self.act_user_guide, self.act_about):
            self.addAction(action)
        return [self.act_user_guide, self.act_about]

    def open_about(self) -> None:
        """Help > About ECMS Desktop: the facts to send with a problem report, the licence and the source."""
        if self.about_dialog is not None:
            self.about_dialog.close()
            self.about_dialog.deleteLater()
        facts = program_facts(self.rules, self.db.url if self.db is not None else None)
        self.about_dialog = AboutDialog(facts, self)
        self.about_dialog.open()
        self.tool_opened.emit(self.about_dialog)

    def open_user_guide(self) -> None:
        """Help > User guide: the guide shipped with the program, in a window of its own."""
        if self.user_guide_window is None:
            self.user_guide_window = UserGuideWindow(paths.user_guide(), self)
        self.user_guide_window.show()
        self.user_guide_window.raise_()
        self.user_guide_window.activateWindow()
