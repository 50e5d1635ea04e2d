"""The review desk's core: its state, its panes (certificate grid | document viewer | certificate form,
with the filter bar above and the status strip below), opening a database and choosing the company,
querying, and showing the selected certificate. The window's other parts (``database_menu``, ``review``,
``intake``, ``tools``) build on it; :class:`~ecms_desktop.views.main_window.window.MainWindow` puts them
together with the menus and the toolbar.

Every database read or write goes through the task runner (``views/operations``), except the grid's
primary-key batches (see certificate_table_model).
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Callable

from PySide6.QtCore import QByteArray, QModelIndex, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QComboBox,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.models import Status
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.services.certificates.query import CertificateQuery
from ecms_desktop.services.companies.service import CompanyInfo
from ecms_desktop.services.core.certificate_records import CertificateDetail
from ecms_desktop.services.core.database import Database, display_url
from ecms_desktop.services.core.errors import (
    Cancelled,
    DatabaseBusyError,
    DatabaseError,
    DatabaseMissingError,
    EcmsError,
)
from ecms_desktop.services.documents.sandbox import DocumentSandbox
from ecms_desktop.services.intake.inbox import InboxItem
from ecms_desktop.services.intake.suggestions import Suggestion
from ecms_desktop.services.integrity.check import CheckReport
from ecms_desktop.services.renewals.returned_forms import ReturnedItem
from ecms_desktop.services.sales.exemption_feed import FeedProblem
from ecms_desktop.services.validation.engine import Finding
from ecms_desktop.views.certificates.filter_bar import FilterBar, Filters
from ecms_desktop.views.certificates.findings_panel import AcknowledgeWarningsDialog
from ecms_desktop.views.certificates.form import CertificateForm
from ecms_desktop.views.certificates.form.suggesting import highlight_suggestion
from ecms_desktop.views.certificates.grid import CertificateGrid
from ecms_desktop.views.certificates.review_queue import ReviewQueueWindow
from ecms_desktop.views.certificates.table_model import CertificateTableModel
from ecms_desktop.views.database_dialog import DatabaseDialog, recent_databases, remember_database
from ecms_desktop.views.intake.inbox_pane import InboxPane
from ecms_desktop.views.integrity_report import IntegrityReportDialog, report_lines
from ecms_desktop.views.operations import certificates, database, erp_feed, inbox
from ecms_desktop.views.operations.certificates import ShownCertificate, StoredFile
from ecms_desktop.views.operations.database import DeskCompanies
from ecms_desktop.views.operations.intake import ReceivedFiles
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.pdf_viewer import DocumentViewer
from ecms_desktop.views.settings_dialog import SettingsDialog
from ecms_desktop.views.widgets.error_presenter import present_error
from ecms_desktop.views.widgets.help_overlay import HelpOverlay
from ecms_desktop.views.widgets.screen_fit import first_size
from ecms_desktop.views.widgets.status_strip import StatusStrip
from ecms_desktop.views.widgets.wheel_guard import install_wheel_guard

log = logging.getLogger(__name__)


def ui_settings() -> QSettings:
    """Per-user UI state (geometry, splitter sizes, columns, recent databases)."""
    return QSettings("ECMS", "ECMS Desktop")


class DeskWindow(QMainWindow):
    """The review desk's state and panes; the base of every part of the main window."""

    #: The database is open and the first query ran (or the database is None).
    database_opened = Signal(object)
    #: The grid has rows on screen (after a query finished and its first batch was loaded).
    grid_ready = Signal()
    #: The selected certificate's detail and first page are shown (or there is no document).
    selection_ready = Signal()
    #: Files dropped or imported were received (ReceivedFiles).
    intake_finished = Signal(object)
    #: The inbox pane was read again (the list of InboxItem).
    inbox_updated = Signal(object)
    #: The selected inbox document is shown in the viewer (the InboxItem).
    inbox_document_shown = Signal(object)
    #: Assign…, Discard… or Split… of the inbox opened its dialog (the dialog).
    inbox_dialog_opened = Signal(object)
    #: An inbox document was assigned (the service's Assignment), discarded (the InboxItem) or split (the
    #: list of new InboxItem).
    inbox_document_assigned = Signal(object)
    inbox_document_discarded = Signal(object)
    inbox_document_split = Signal(object)
    #: Returned renewal forms were read back (a list of ReturnedItem).
    returned_forms_received = Signal(object)
    #: A window or dialog of another feature was opened (the widget).
    tool_opened = Signal(object)
    #: Validate now / Validate all / Verify permit finished (the service's result).
    validation_finished = Signal(object)
    permit_verified = Signal(object)
    #: Counts per status arrived.
    counts_updated = Signal(object)
    feed_status_updated = Signal(object)  # list of exemption_feed.FeedProblem
    #: A certificate asked for with request_select cannot be shown (the message).
    selection_failed = Signal(str)
    #: A database could not be opened or failed (the message, password hidden).
    database_failed = Signal(str)
    #: File > Back up… finished (BackupResult); File > Check database… or the check on start
    #: finished (CheckReport).
    backup_finished = Signal(object)
    integrity_checked = Signal(object)
    #: Changes committed elsewhere were taken in (the ChangeBatch): the grid, the counts and the open
    #: certificate are being read again (see ``live.py``).
    changes_shown = Signal(object)

    def __init__(self, *, rules: RulesPack | None = None, as_of: dt.date | None = None,
                 runner: TaskRunner | None = None, settings: QSettings | None = None,
                 sandbox: DocumentSandbox | None = None, interactive: bool = True) -> None:
        super().__init__()
        install_wheel_guard()  # before any combo or spin box exists
        #: False in screenshot mode: problems are reported through signals, never by dialogs.
        self.interactive = interactive
        self.setObjectName("mainWindow")
        self.setWindowTitle("ECMS Desktop")
        self.setAcceptDrops(True)
        self.db: Database | None = None
        self.rules = rules or load_rules_pack()
        #: Rules given by the caller stay; otherwise the desk follows the rules pack the database puts in force.
        self._rules_given = rules is not None
        self.as_of = as_of or dt.date.today()
        self.runner = runner or TaskRunner(self)
        self.settings = settings or ui_settings()
        self.sandbox = sandbox
        self.companies: list[CompanyInfo] = []
        self.company_id: int | None = None
        self.window_days = 30
        #: The expiring-soon window of each company (None: all companies), read with the companies.
        self._window_days_by_company: dict[int | None, int] = {}
        self.filters = Filters()
        self.current_detail: CertificateDetail | None = None
        self.last_received: ReceivedFiles | None = None
        #: The report of the last certificate import (opened when interactive).
        self.import_report: QMessageBox | None = None
        self.last_returned_items: list[ReturnedItem] | None = None
        self._detail_generation = 0
        self._waiting_for_page = False  # the selection is announced once the viewer painted the page
        self._shown_document_id: int | None = None  # the document the viewer shows
        self._focused_suggestion: Suggestion | None = None  # the value read of the field with the focus
        self._grid_announced = False
        self._counts_pending = False  # status counts run after the rows of a new query are in
        self._pending_select: int | None = None
        self._closing = False
        self._close_confirmed = False  # unsaved edits were saved or discarded: close without asking again
        self._restoring_selection = False  # putting the grid back where the unsaved edits are
        self.review_window: ReviewQueueWindow | None = None
        self.tools: dict[str, QWidget] = {}
        self._ack_dialog: AcknowledgeWarningsDialog | None = None
        self._splitter_restored = False
        self._report_dialog: IntegrityReportDialog | None = None
        self._database_dialog: DatabaseDialog | None = None
        #: The settings dialog last opened (Settings), None before.
        self.settings_dialog: SettingsDialog | None = None
        self._build_panes()
        self._build_layout()

    # ------------------------------------------------------------------ building

    def _build_panes(self) -> None:
        self.model = CertificateTableModel(None, self.runner, self)
        self.table = CertificateGrid(self.model, self.settings, self)
        self.table.selectionModel().currentRowChanged.connect(self._on_grid_current_row_changed)
        self.model.query_finished.connect(self._on_model_query_finished)
        self.model.query_failed.connect(self._on_model_query_failed)
        self.model.rows_loaded.connect(self._on_model_rows_loaded)
        self.viewer = DocumentViewer(self.sandbox, self, runner=self.runner)
        self.viewer.rotation_changed.connect(self._on_viewer_rotation_changed)
        self.viewer.page_painted.connect(self._on_viewer_page_painted)
        self.form = CertificateForm(self.db, self.rules, self, runner=self.runner)
        self.form.set_as_of(self.as_of)
        self.form.saved.connect(self._on_form_saved)
        self.form.findings_changed.connect(self._on_form_findings_changed)
        self.form.suggestion_focused.connect(self._on_form_suggestion_focused)
        self.inbox_pane = InboxPane(self)

    def _build_layout(self) -> None:
        self.filter_bar = FilterBar(sorted(self.rules.states), sorted(self.rules.forms), self)
        self.filter_bar.filters_changed.connect(self._on_filter_bar_filters_changed)
        self.status_strip = StatusStrip(self)
        self.status_strip.status_clicked.connect(self._on_status_strip_status_clicked)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.grid_tabs = QTabWidget(self)
        self.grid_tabs.setObjectName("gridTabs")
        self.grid_tabs.setDocumentMode(True)
        self.grid_tabs.addTab(self.table, "Certificates")
        self.grid_tabs.addTab(self.inbox_pane, "Inbox")
        self.splitter.addWidget(self.grid_tabs)
        self.splitter.addWidget(self.viewer)
        self.splitter.addWidget(self.form)
        # Room given as the window grows, in the proportions of _default_splitter_sizes.
        self.splitter.setStretchFactor(0, 35)
        self.splitter.setStretchFactor(1, 32)
        self.splitter.setStretchFactor(2, 33)
        self.splitter.setSizes([700, 420, 420])

        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.filter_bar)
        layout.addWidget(self.splitter, 1)
        layout.addWidget(self.status_strip)
        self.setCentralWidget(central)
        self.help_overlay: HelpOverlay | None = None
        self.rows_label = QLabel("", self)
        self.rows_label.setObjectName("rowsLabel")
        self.statusBar().addPermanentWidget(self.rows_label)
        # Shown while the database opened does not match its audit trail (a status message is replaced by the
        # next one: a grid refresh, another desk's change; this stays until another database is opened).
        self.integrity_label = QLabel("Audit trail does not match: File > Check database", self)
        self.integrity_label.setObjectName("integrityProblem")
        self.integrity_label.setStyleSheet("color: #B00020; font-weight: bold;")
        self.integrity_label.setVisible(False)
        self.statusBar().addPermanentWidget(self.integrity_label)
        self.feed_label = QLabel("", self)  # shown only when the ERP feed fails
        self.feed_label.setObjectName("feedProblems")
        self.feed_label.setVisible(False)
        self.statusBar().addPermanentWidget(self.feed_label)

    def _add_company_selector(self, toolbar: QToolBar) -> None:
        """The company selector, at the end of the toolbar (shown when there are several companies)."""
        self.company_label = QLabel("  Company: ", toolbar)
        self.company_combo = QComboBox(toolbar)
        self.company_combo.setObjectName("companySelector")
        self.company_combo.setMinimumWidth(180)
        self.company_combo.currentIndexChanged.connect(self._on_company_combo_index_changed)
        self.company_label_action = toolbar.addWidget(self.company_label)
        self.company_combo_action = toolbar.addWidget(self.company_combo)
        self._set_company_selector_visible(False)

    # ------------------------------------------------------------------ UI state

    def _restore_ui_state(self) -> None:
        s = self.settings
        geometry = s.value("main/geometry")
        if isinstance(geometry, QByteArray | bytes):
            self.restoreGeometry(QByteArray(geometry))
        else:
            # 1440 x 860 where the screen has room, never larger than the screen (1280 x 800 laptops).
            self.resize(first_size(self, 1440, 860))
        sizes = s.value("main/splitter")
        self._splitter_restored = isinstance(sizes, QByteArray | bytes) and self.splitter.restoreState(
            QByteArray(sizes))
        self.table.restore_header()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._splitter_restored:
            self._splitter_restored = True
            QTimer.singleShot(0, self._default_splitter_sizes)

    def _default_splitter_sizes(self) -> None:
        # The document gets as much room as the grid: at fit width its page must be readable.
        w = self.splitter.width()
        self.splitter.setSizes([int(w * 0.35), int(w * 0.32), w - int(w * 0.35) - int(w * 0.32)])

    def save_ui_state(self) -> None:
        s = self.settings
        s.setValue("main/geometry", self.saveGeometry())
        s.setValue("main/splitter", self.splitter.saveState())
        self.table.save_header()
        if self.company_id is not None:
            s.setValue("main/company", self.company_id)
        s.sync()

    # ------------------------------------------------------------------ database and company

    def set_database(self, db: Database | None) -> None:
        """Use an opened database: read companies and settings off the GUI thread, then query."""
        old = self.db
        self.db = db
        self.model.set_database(db)
        self.form.db = db
        if old is not None and old is not db:
            old.dispose()
        self._clear_detail("")
        self.integrity_label.setVisible(False)
        if db is None:
            self.setWindowTitle("ECMS Desktop")
            self._update_actions()
            self.database_opened.emit(None)
            return
        self.setWindowTitle(f"ECMS Desktop — {db.display_url}")
        if not self._rules_given:
            self.use_rules_in_force()
        remember_database(self.settings, db.url)
        database.read_companies(db).success(lambda companies: self._on_companies_read(db, companies)) \
            .failure(self._on_background_error).run(self.runner, parent=self)

    def use_rules_in_force(self) -> None:
        """Use the rules pack in force (the database's, made so when it was opened or a pack was installed) for
        the form, the filters and every check from now on."""
        rules = load_rules_pack()
        if rules is self.rules:
            return
        self.rules = self.form.rules = self.form.history.rules = rules
        self.filter_bar.set_choices(sorted(rules.states), sorted(rules.forms))

    def _on_companies_read(self, db: Database, read: DeskCompanies) -> None:
        if self.db is not db:
            return
        self.companies, self._window_days_by_company = read.companies, read.expiring_soon_days
        ids = [c.id for c in self.companies]
        wanted = self.settings.value("main/company")
        try:
            wanted_id = int(wanted) if isinstance(wanted, int | str) else None
        except ValueError:
            wanted_id = None
        self.company_id = wanted_id if wanted_id in ids else (ids[0] if ids else None)
        self._fill_company_combo()
        self.window_days = self._window_days_by_company.get(self.company_id, 30)
        self._update_actions()
        self.database_opened.emit(db)
        self.run_query()
        self.refresh_inbox()
        self.refresh_feed_status()
        database.check_on_start(db).success(lambda report: self._on_start_check_done(db, report)) \
            .failure(self._on_background_error).run(self.runner)

    def _on_start_check_done(self, db: Database, report: CheckReport) -> None:
        if self.db is not db:
            return
        self.integrity_checked.emit(report)
        self.integrity_label.setVisible(not report.ok)
        if report.ok:
            return
        self.statusBar().showMessage("This database does not match its audit trail: see File > Check database.")
        if self.interactive:  # not modal: the desk stays usable while the user reads it
            self._show_report("Database check", "This database does not match its audit trail's anchors or is "
                              "damaged. Run File > Check database… for the full check; restore a backup if "
                              "records were changed outside ECMS Desktop.", report_lines(report), ok=False,
                              modal=False)

    def _show_report(self, title: str, headline: str, lines: list[str], *, ok: bool, modal: bool = True) -> None:
        dialog = IntegrityReportDialog(title, headline, lines, ok=ok, parent=self)
        self._report_dialog = dialog
        if modal:
            dialog.open()
        else:
            dialog.setModal(False)
            dialog.show()

    def open_database(self, url: str, *, create: bool = False, offer_create: bool = False) -> None:
        """Open (or with ``create``, create) a database through the task runner; an unreachable or
        unusable one brings up the database dialog with the reason. ``offer_create``: a database that does
        not exist yet (the default local one on the first run) may be created after asking. Unsaved edits
        are saved or discarded first (the accountant is asked)."""
        self.leave_form(lambda: self._open_database(url, create=create, offer_create=offer_create))

    def leave_form(self, proceed: Callable[[], None], cancelled: Callable[[], None] | None = None) -> None:
        """Run ``proceed`` once the form's unsaved edits are saved or discarded (asked: Save / Discard
        / Cancel); Cancel keeps the edits and calls ``cancelled``."""
        self.form.leave(proceed, cancelled)

    def _open_database(self, url: str, *, create: bool = False, offer_create: bool = False) -> None:
        self.statusBar().showMessage(f"Opening {display_url(url)}…")
        operation = database.create_database(url) if create else database.open_database(url)
        operation.success(self.set_database) \
            .failure(lambda error: self._on_open_failed(url, error, offer_create=offer_create)) \
            .run(self.runner, parent=self)

    def _on_open_failed(self, url: str, error: BaseException, *, offer_create: bool) -> None:
        if isinstance(error, DatabaseMissingError) and offer_create and self.interactive:
            answer = QMessageBox.question(
                self, "No database yet",
                f"There is no ECMS database at {display_url(url)} yet.\n\nCreate a new, empty one there?",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.Yes)
            if answer == QMessageBox.StandardButton.Yes:
                self.open_database(url, create=True)
                return
        if isinstance(error, EcmsError):
            self.show_database_problem(url, str(error))
        else:
            log.error("opening %s failed", display_url(url), exc_info=error)
            self.show_database_problem(url, f"Unexpected error: {type(error).__name__}: {error}")

    def show_database_problem(self, url: str, message: str) -> None:
        self.statusBar().showMessage("The database could not be opened.")
        self.database_failed.emit(message)
        if not self.interactive:
            return
        dialog = DatabaseDialog(url, recent_databases(self.settings), self, error=message)
        self._database_dialog = dialog
        dialog.accepted.connect(lambda: self._on_database_dialog_accepted(dialog))
        dialog.open()

    def _on_database_dialog_accepted(self, dialog: DatabaseDialog) -> None:
        if dialog.chosen_url:
            self.open_database(dialog.chosen_url, create=dialog.create_new)

    def open_database_dialog(self) -> None:
        dialog = DatabaseDialog(self.db.url if self.db else None, recent_databases(self.settings), self)
        self._database_dialog = dialog
        dialog.accepted.connect(lambda: self._on_database_dialog_accepted(dialog))
        dialog.open()

    def _on_background_error(self, error: BaseException) -> None:
        if isinstance(error, DatabaseError) and not isinstance(error, DatabaseBusyError) and self.db is not None:
            self.show_database_problem(self.db.url, str(error))
        elif self.interactive:
            present_error(self, error)
        else:
            print(f"ecms-desktop: {type(error).__name__}: {error}", file=sys.stderr)

    def _on_operation_error(self, error: BaseException) -> None:
        if isinstance(error, Cancelled):
            self.statusBar().showMessage("Cancelled.", 5000)
        elif self.interactive:
            present_error(self, error)
        else:
            print(f"ecms-desktop: {type(error).__name__}: {error}", file=sys.stderr)

    def _set_company_selector_visible(self, visible: bool) -> None:
        self.company_label_action.setVisible(visible)
        self.company_combo_action.setVisible(visible)

    def _fill_company_combo(self) -> None:
        self.company_combo.blockSignals(True)
        self.company_combo.clear()
        for c in self.companies:
            self.company_combo.addItem(c.name, c.id)
        index = self.company_combo.findData(self.company_id)
        self.company_combo.setCurrentIndex(max(index, 0))
        self.company_combo.blockSignals(False)
        self._set_company_selector_visible(len(self.companies) > 1)

    def _on_company_combo_index_changed(self, index: int) -> None:
        cid = self.company_combo.itemData(index)
        if cid is None or cid == self.company_id:
            return
        if self.form.is_dirty():
            self._fill_company_combo()  # shows the current company until the edits are dealt with
            self.leave_form(lambda: self._switch_company(int(cid)))
            return
        self._switch_company(int(cid))

    def _switch_company(self, cid: int) -> None:
        if cid != self.company_id:
            self.company_id = cid
            self._fill_company_combo()
        self.window_days = self._window_days_by_company.get(self.company_id, 30)
        self.settings.setValue("main/company", self.company_id)
        self._clear_detail("")
        self.run_query()
        self.refresh_feed_status()
        self.refresh_inbox()

    # ------------------------------------------------------------------ querying

    def current_query(self) -> CertificateQuery:
        f = self.filters
        q = self.model.query
        return CertificateQuery(
            text=f.text, states=(f.state,) if f.state else (), statuses=(f.status,) if f.status else (),
            form_code=f.form_code, expiring_within_days=f.expiring_within_days, check=f.check, claim=f.claim,
            company_id=self.company_id,
            sort=q.sort, descending=q.descending, as_of=self.as_of, window_days=self.window_days)

    def run_query(self) -> None:
        """Run the current filters: ids off the GUI thread, then counts per status."""
        if self.db is None or self._closing:
            return
        self._grid_announced = False
        query = self.current_query()
        self.statusBar().showMessage("Searching…")
        # The counts follow once the rows are in (_on_model_query_finished): the two queries would
        # otherwise compete for the same cores and delay the rows the accountant is waiting for.
        self._counts_pending = True
        self.model.set_query(query)

    def refresh(self) -> None:
        if self._closing:
            return
        self.model.refresh()
        self.refresh_counts(self.model.query)
        self.refresh_feed_status()
        self.refresh_inbox()

    def refresh_inbox(self) -> None:
        """Read the company's intake inbox again (off the GUI thread) into the Inbox pane."""
        db, company_id = self.db, self.company_id
        if db is None or company_id is None or self._closing:
            self._on_inbox_listed(db, company_id, [])
            return
        inbox.list_inbox(db, company_id).success(lambda items: self._on_inbox_listed(db, company_id, items)) \
            .failure(self._on_background_error).run(self.runner)

    def _on_inbox_listed(self, db: Database | None, company_id: int | None, items: list[InboxItem]) -> None:
        if self.db is not db or self.company_id != company_id:
            return
        self.inbox_pane.set_items(items)
        self.grid_tabs.setTabText(1, f"Inbox ({len(items)})" if items else "Inbox")
        self.inbox_updated.emit(items)

    def refresh_feed_status(self) -> None:
        """Say in the status bar when the ERP feed fails: a webhook stopped at an event the ERP refused
        for good (not retried until someone acts), or connectors failing for now; details as tooltip."""
        db, company_id = self.db, self.company_id
        if db is None or self._closing:
            return

        erp_feed.read_feed_problems(db, company_id) \
            .success(lambda problems: self._on_feed_problems_read(db, company_id, problems)) \
            .failure(lambda error: log.warning("ERP feed status: %s", error)).run(self.runner)

    def _on_feed_problems_read(self, db: Database, company_id: int | None, problems: list[FeedProblem]) -> None:
        if self.db is not db or self.company_id != company_id:
            return
        stopped = sum(p.permanent for p in problems)
        if stopped:
            text = f"ERP feed stopped ({stopped} connector{'s' if stopped != 1 else ''})"
        else:
            text = f"ERP feed failing ({len(problems)})" if problems else ""
        self.feed_label.setText(text)
        self.feed_label.setStyleSheet("color: #b71c1c; font-weight: bold;" if stopped else "color: #8a5a00;")
        self.feed_label.setToolTip("\n".join(f"{p.connector} {p.name}: {p.message}" for p in problems))
        self.feed_label.setVisible(bool(problems))
        self.feed_status_updated.emit(problems)

    def refresh_counts(self, query: CertificateQuery | None = None) -> None:
        db = self.db
        if db is None or self._closing:
            return
        q = query or self.model.query
        certificates.count_statuses(db, q).success(lambda counts: self._on_statuses_counted(db, q, counts)) \
            .failure(self._on_background_error).run(self.runner)

    def _on_statuses_counted(self, db: Database, query: CertificateQuery, counts: dict[Status, int]) -> None:
        if self.db is db and query == self.model.query:
            self.status_strip.set_counts(counts)
            self.counts_updated.emit(counts)

    def _on_filter_bar_filters_changed(self, filters: Filters) -> None:
        self.filters = filters
        self.status_strip.set_selected(filters.status)
        self.run_query()

    def _on_status_strip_status_clicked(self, status: Status | None) -> None:
        self.filter_bar.set_status(status)  # emits filters_changed

    def _on_model_query_finished(self, total: int) -> None:
        if self.model.canFetchMore():
            self.model.fetchMore()
        if self._counts_pending:
            self._counts_pending = False
            self.refresh_counts(self.model.query)
        pending, self._pending_select = self._pending_select, None
        if pending is not None and not self.select_certificate(pending):
            self.selection_failed.emit(f"Certificate {pending} is not in the list.")
        self.rows_label.setText(f"{total:,} certificate{'s' if total != 1 else ''}")
        self.statusBar().clearMessage()
        self._update_actions()
        self._announce_grid()

    def _on_model_rows_loaded(self, _loaded: int) -> None:
        self._announce_grid()

    def _announce_grid(self) -> None:
        # Only rows read from a database count: restoring a remembered sort runs a query before any
        # database is open, and its empty result is not the grid the command line waits for.
        if not self._grid_announced and not self.model.busy and self.model.db is not None:
            self._grid_announced = True
            QTimer.singleShot(0, self.grid_ready.emit)

    def _on_model_query_failed(self, error: BaseException) -> None:
        self.statusBar().showMessage("The search failed.", 5000)
        if isinstance(error, DatabaseError) and self.db is not None:
            self.show_database_problem(self.db.url, str(error))
        else:
            present_error(self, error)

    # ------------------------------------------------------------------ selection

    def selected_certificate_id(self) -> int | None:
        return self.table.selected_certificate_id()

    def select_certificate(self, cert_id: int) -> bool:
        """Select ``cert_id`` if it is in the current result (loading batches up to it)."""
        return self.table.select_certificate(cert_id)

    def request_select(self, cert_id: int) -> None:
        """Select ``cert_id``, switching company and clearing filters when needed (off the GUI thread
        lookup); ``database_failed``-style problems are reported through ``selection_failed``."""
        if self.select_certificate(cert_id):
            return
        db = self.db
        if db is None:
            self.selection_failed.emit(f"certificate {cert_id}: no database is open")
            return

        certificates.find_company(db, cert_id).success(lambda company_id: self._on_company_found(cert_id, company_id)) \
            .failure(self._on_background_error).run(self.runner)

    def _on_company_found(self, cert_id: int, company_id: int | None) -> None:
        if company_id is None:
            self.selection_failed.emit(f"There is no certificate {cert_id}.")
            return
        self._pending_select = cert_id
        if company_id != self.company_id:
            self.company_id = company_id
            self._fill_company_combo()
            self.window_days = self._window_days_by_company.get(company_id, 30)
        self.filter_bar.clear()  # runs the query; _on_model_query_finished selects

    def _on_grid_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._update_actions()
        if self._restoring_selection:
            return
        cert_id = self.model.certificate_id(current.row()) if current.isValid() else None
        shown = self.form.detail
        if shown is not None and shown.id != cert_id and self.form.is_dirty():
            # The form holds unsaved edits of another certificate: ask before it is replaced.
            self.leave_form(lambda: self._show_selected(cert_id), lambda: self._restore_selection(shown.id))
            return
        self._show_selected(cert_id)

    def _show_selected(self, cert_id: int | None) -> None:
        if cert_id is None:
            self._clear_detail("")
        else:
            self.load_detail(cert_id)

    def _restore_selection(self, cert_id: int) -> None:
        """Cancel: the grid goes back to the certificate whose edits are in the form."""
        self._restoring_selection = True
        try:
            self.select_certificate(cert_id)
        finally:
            self._restoring_selection = False
        self._update_actions()

    def load_detail(self, cert_id: int) -> None:
        """Read the certificate and its first document off the GUI thread, then show them."""
        db = self.db
        if db is None or self._closing:
            return
        self._detail_generation += 1
        generation = self._detail_generation
        self._waiting_for_page = False
        certificates.load_certificate(db, self.rules, cert_id, self.as_of) \
            .success(lambda shown: self._show_detail(generation, shown)) \
            .failure(self._on_background_error).run(self.runner)

    def _show_detail(self, generation: int, shown_certificate: ShownCertificate) -> None:
        if generation != self._detail_generation:
            return
        detail = shown_certificate.detail
        self.current_detail = detail
        self._update_actions()
        shown = self.form.detail
        if shown is not None and shown.id == detail.id and self.form.is_dirty():
            # Read again (e.g. a document was attached): the unsaved edits in the form are kept.
            self.statusBar().showMessage(f"Certificate {detail.id}: your unsaved edits are kept.", 6000)
        else:
            self.form.load(detail)
        stored = shown_certificate.document
        self._shown_document_id = detail.documents[0].id if stored is not None and detail.documents else None
        if stored is None:
            self.viewer.clear("No document is attached to this certificate.\n"
                              "Drop a file here to attach it.")
            self.selection_ready.emit()
        else:
            doc = detail.documents[0]
            self._waiting_for_page = True
            self.viewer.show_document(stored.data, sha256=stored.sha256, name=doc.original_name,
                                      rotation=doc.view_rotation)

    def _clear_detail(self, message: str) -> None:
        self._detail_generation += 1
        self._shown_document_id = None
        self.current_detail = None
        self.form.load(None)
        self.viewer.clear(message)
        self._update_actions()

    def _on_form_suggestion_focused(self, suggestion: Suggestion | None) -> None:
        """Highlight where the focused field's value was read, showing that document if another is shown."""
        self._focused_suggestion = suggestion
        detail, db = self.current_detail, self.db
        if (suggestion is not None and suggestion.box is not None and detail is not None and db is not None
                and suggestion.document_id != self._shown_document_id
                and any(d.id == suggestion.document_id for d in detail.documents)):
            certificates.load_document(db, suggestion.document_id) \
                .success(lambda stored: self._show_read_document(detail.id, suggestion.document_id, stored)) \
                .failure(self._on_background_error).run(self.runner)
            return
        highlight_suggestion(self.viewer, self._shown_document_id, suggestion)

    def _show_read_document(self, cert_id: int, document_id: int, stored: StoredFile) -> None:
        detail = self.current_detail
        if detail is None or detail.id != cert_id or self._shown_document_id == document_id:
            return
        info = next(d for d in detail.documents if d.id == document_id)
        self._shown_document_id = document_id
        self.viewer.show_document(stored.data, sha256=stored.sha256, name=info.original_name,
                                  rotation=info.view_rotation)
        highlight_suggestion(self.viewer, document_id, self._focused_suggestion)

    def _on_viewer_page_painted(self) -> None:
        if self._waiting_for_page:
            self._waiting_for_page = False
            self.selection_ready.emit()

    def _on_viewer_rotation_changed(self, rotation: int) -> None:
        detail, db = self.current_detail, self.db
        if detail is None or db is None or self._shown_document_id is None:
            return
        certificates.rotate_document(db, self._shown_document_id, rotation).failure(self._on_background_error) \
            .run(self.runner)

    def _on_form_saved(self, detail: CertificateDetail) -> None:
        if self.current_detail is None or self.current_detail.id == detail.id:
            self.current_detail = detail
        self.model.reload_rows([detail.id])
        self.refresh_counts()
        self.statusBar().showMessage(f"Certificate {detail.id} saved.", 4000)

    def _on_form_findings_changed(self, _findings: list[Finding]) -> None:
        self._update_actions()

    def _update_actions(self) -> None:
        """Enable the window's actions for the database, company and certificate now shown (the window
        creates the actions: it knows every part's slots)."""
