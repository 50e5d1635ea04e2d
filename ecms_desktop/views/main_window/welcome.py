"""An empty desk greets the user with the first steps (over the grid): add the company, import the
certificates, or open a demo database; the panel goes once the company has certificates."""

from __future__ import annotations

from collections.abc import Callable

from ecms_desktop import paths
from ecms_desktop.models import Status
from ecms_desktop.services.companies.first_steps import FirstSteps
from ecms_desktop.services.core.database import Database
from ecms_desktop.views.database_dialog import choose_new_database_file
from ecms_desktop.views.main_window.help import HelpMixin
from ecms_desktop.views.operations import first_steps
from ecms_desktop.views.welcome_panel import AddCompanyDialog, WelcomePanel
from ecms_desktop.views.widgets.error_presenter import present_error


class WelcomeMixin(HelpMixin):
    """The welcome panel of an empty database and its first steps."""

    welcome: WelcomePanel
    add_company_dialog: AddCompanyDialog | None = None
    #: Counts every status update: a first-steps check still running when newer counts arrive answers for the
    #: older ones and is dropped (it would show the steps again over a grid that has certificates by then).
    _first_steps_asked = 0

    def _build_welcome(self, import_certificates: Callable[[], None]) -> None:
        """The panel over the grid; ``import_certificates``: File > Import certificates."""
        self.welcome = WelcomePanel(self.table)
        self.welcome.add_company_clicked.connect(self.add_company)
        self.welcome.import_clicked.connect(import_certificates)
        self.welcome.demo_clicked.connect(self.open_demo)
        self.welcome.guide_clicked.connect(self.open_user_guide)
        self.database_opened.connect(self._on_database_opened_check_first_steps)
        self.counts_updated.connect(self._on_counts_updated_check_first_steps)

    # -- is the desk empty?

    def _on_database_opened_check_first_steps(self, db: Database | None) -> None:
        # The check follows the status counts of the query every opened database runs.
        if db is None:
            self.welcome.hide()

    def _on_counts_updated_check_first_steps(self, counts: dict[Status, int]) -> None:
        self._first_steps_asked += 1
        if sum(counts.values()):
            if self.welcome.isVisible():
                self.welcome.hide()
                self.welcome.steps_checked.emit(False)
            return
        self._check_first_steps()

    def _check_first_steps(self) -> None:
        db, company_id, asked = self.db, self.company_id, self._first_steps_asked
        if db is None or self._closing:
            return
        first_steps.read_first_steps(db, company_id) \
            .success(lambda steps: self._on_first_steps_read(db, company_id, steps, asked)) \
            .failure(self._on_background_error).run(self.runner)

    def _on_first_steps_read(self, db: Database, company_id: int | None, steps: FirstSteps, asked: int) -> None:
        if self.db is not db or self.company_id != company_id or asked != self._first_steps_asked:
            return
        if steps.needed:
            self.welcome.show_steps(steps.company_name)
        else:
            self.welcome.hide()
        self.welcome.steps_checked.emit(steps.needed)

    # -- the steps

    def add_company(self) -> None:
        """Ask the company's name (and legal name, home state, reply-to address), then add it."""
        if self.db is None:
            return
        dialog = AddCompanyDialog(sorted(self.rules.states), self)
        self.add_company_dialog = dialog
        dialog.accepted.connect(lambda: self._on_add_company_dialog_accepted(dialog))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()

    def _on_add_company_dialog_accepted(self, dialog: AddCompanyDialog) -> None:
        self.add_company_dialog = None
        db = self.db
        if db is None:
            return
        values = dialog.values()
        first_steps.add_company(db, values["name"], legal_name=values["legal_name"], state=values["state"],
                                reply_to_email=values["reply_to_email"]) \
            .success(lambda company: self._on_company_added(db, company.id)) \
            .failure(lambda error: present_error(self, error)).run(self.runner, parent=self)

    def _on_company_added(self, db: Database, company_id: int) -> None:
        if self.db is not db:
            return
        self.settings.setValue("main/company", company_id)  # the desk opens on the new company
        self.set_database(db)  # reads the companies again

    def open_demo(self) -> None:
        """Ask where to put a new demo database, then make it (with progress) and open it."""
        start = paths.data_dir() / "ecms-demo.sqlite"
        url = choose_new_database_file(self, str(start))
        if url:
            self.make_demo(url)

    def make_demo(self, url: str, *, certificates: int = first_steps.DEMO_CERTIFICATES) -> None:
        """Make a demo database at ``url`` (a new file) and open it in the desk."""
        def make() -> None:
            first_steps.make_demo_database(url, as_of=self.as_of, certificates=certificates) \
                .success(self.set_database).failure(lambda error: present_error(self, error)) \
                .run(self.runner, parent=self)

        self.leave_form(make)
