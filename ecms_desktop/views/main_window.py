"""The review desk's main window: certificate grid | document viewer | certificate form.

Composition: the grid is :class:`CertificateTableModel` + :class:`StatusBadgeDelegate`, filtered by
the :class:`FilterBar` and the :class:`StatusStrip`; the right side holds the :class:`DocumentViewer`
and the :class:`CertificateForm`. Every database read or write goes through the task runner, except
the grid's primary-key batches (see certificate_table_model).
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QModelIndex, QPoint, QSettings, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDragMoveEvent, QDropEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QComboBox,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QTableView,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.errors import (
    Cancelled,
    DatabaseBusyError,
    DatabaseError,
    DatabaseMissingError,
    EcmsError,
    ValidationError,
)
from ecms_desktop.models import Status
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.services.audit_pack_service import AuditPackService, PackChoices
from ecms_desktop.services.backup import BackupResult
from ecms_desktop.services.certificate_query import CertificateQuery
from ecms_desktop.services.certificate_service import CertificateDetail
from ecms_desktop.services.company_service import CompanyInfo
from ecms_desktop.services.database import Database, display_url
from ecms_desktop.services.document_sandbox import DocumentSandbox
from ecms_desktop.services.exemption_feed import FeedProblem
from ecms_desktop.services.import_service import ImportResult
from ecms_desktop.services.intake_service import IntakeResult
from ecms_desktop.services.integrity_check import CheckReport
from ecms_desktop.services.permit_service import PermitCheckInfo
from ecms_desktop.services.renewal_service import RenewalService
from ecms_desktop.services.returned_forms import ReturnedItem
from ecms_desktop.services.validation_service import Finding, ManyResult, ValidationResult, ValidationService
from ecms_desktop.views.audit_pack_dialog import AuditPackDialog
from ecms_desktop.views.certificate_form import CertificateForm
from ecms_desktop.views.certificate_table_model import COLUMN_KEYS, COLUMNS, STATUS_COLUMN, CertificateTableModel
from ecms_desktop.views.database_dialog import (
    DatabaseDialog,
    choose_database_file,
    choose_new_database_file,
    recent_databases,
    remember_database,
    url_with_saved_password,
)
from ecms_desktop.views.error_presenter import offer_retry, present_error
from ecms_desktop.views.exposure_view import ExposureView
from ecms_desktop.views.file_dialogs import get_open_file_name, get_open_file_names
from ecms_desktop.views.filter_bar import FilterBar, Filters
from ecms_desktop.views.findings_panel import AcknowledgeWarningsDialog, blocked_message, confirm_warnings
from ecms_desktop.views.help_overlay import HelpOverlay, shortcuts_of_menus
from ecms_desktop.views.integrity_report import (
    BACKUP_DIR_KEY,
    IntegrityReportDialog,
    backup_headline,
    choose_backup_file,
    report_lines,
)
from ecms_desktop.views.operations import Operation, audit_pack, certificates, database, erp_feed, intake, validation
from ecms_desktop.views.operations.certificates import ShownCertificate
from ecms_desktop.views.operations.database import DeskCompanies
from ecms_desktop.views.operations.intake import ReceivedFiles
from ecms_desktop.views.pdf_viewer import DocumentViewer
from ecms_desktop.views.renewal_center import RenewalCenterDialog
from ecms_desktop.views.reprocess_dialog import ReprocessDialog
from ecms_desktop.views.review_queue import ReviewQueueWindow
from ecms_desktop.views.settings_dialog import SettingsDialog
from ecms_desktop.views.status_badge_delegate import StatusBadgeDelegate
from ecms_desktop.views.status_strip import StatusStrip
from ecms_desktop.views.task_runner import TaskRunner
from ecms_desktop.views.wheel_guard import install_wheel_guard

log = logging.getLogger(__name__)

#: A shortcut as QKeySequence takes it: a sequence, a platform's standard key, or text like "Ctrl+I".
KeyChoice = QKeySequence | QKeySequence.StandardKey | str
#: Makes the review operation for a certificate (as the user sees it) and the reason given.
ReviewOperation = Callable[[Database, CertificateDetail, str], Operation[CertificateDetail]]


def ui_settings() -> QSettings:
    """Per-user UI state (geometry, splitter sizes, columns, recent databases)."""
    return QSettings("ECMS", "ECMS Desktop")


class MainWindow(QMainWindow):
    """The review desk."""

    #: The database is open and the first query ran (or the database is None).
    database_opened = Signal(object)
    #: The grid has rows on screen (after a query finished and its first batch was loaded).
    grid_ready = Signal()
    #: The selected certificate's detail and first page are shown (or there is no document).
    selection_ready = Signal()
    #: A document intake finished (IntakeResult).
    intake_finished = Signal(object)
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

    def __init__(self, db: Database | None = None, *, rules: RulesPack | None = None,
                 as_of: dt.date | None = None, runner: TaskRunner | None = None,
                 settings: QSettings | None = None, sandbox: DocumentSandbox | None = None,
                 interactive: bool = True) -> None:
        super().__init__()
        install_wheel_guard()  # before any combo or spin box exists
        #: False in screenshot mode: problems are reported through signals, never by dialogs.
        self.interactive = interactive
        self.setObjectName("mainWindow")
        self.setWindowTitle("ECMS Desktop")
        self.setAcceptDrops(True)
        self.db: Database | None = None
        self.rules = rules or load_rules_pack()
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
        self.last_intake_result: IntakeResult | None = None
        #: The report of the last certificate import (opened when interactive).
        self.import_report: QMessageBox | None = None
        self.last_returned_items: list[ReturnedItem] | None = None
        self._detail_generation = 0
        self._waiting_for_page = False  # the selection is announced once the viewer painted the page
        self._grid_announced = False
        self._counts_pending = False  # status counts run after the rows of a new query are in
        self._pending_select: int | None = None
        self._closing = False
        self._close_confirmed = False  # unsaved edits were saved or discarded: close without asking again
        self._restoring_selection = False  # putting the grid back where the unsaved edits are
        self.review_window: ReviewQueueWindow | None = None
        self.tools: dict[str, QWidget] = {}
        self._ack_dialog: AcknowledgeWarningsDialog | None = None

        self._build_grid()
        self._build_right()
        self._build_layout()
        self._build_actions()
        self._restore_ui_state()
        self._update_actions()
        if db is not None:
            self.set_database(db)

    # ------------------------------------------------------------------ building

    def _build_grid(self) -> None:
        self.model = CertificateTableModel(None, self.runner, self)
        self.table = QTableView(self)
        self.table.setObjectName("certificateGrid")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setSortingEnabled(True)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setShowGrid(False)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 12)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.badge_delegate = StatusBadgeDelegate(self.table)
        self.table.setItemDelegateForColumn(STATUS_COLUMN, self.badge_delegate)
        header = self.table.horizontalHeader()
        header.setSectionsMovable(True)
        header.setHighlightSections(False)
        header.setStretchLastSection(False)
        header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._on_header_context_menu)
        widths = {"customer": 200, "customer_number": 84, "states": 64, "form": 104, "certificate_number": 124,
                  "exempt_reason": 104, "expiry": 88, "days_left": 70, "status": 120, "review_state": 80}
        for i, column in enumerate(COLUMNS):
            self.table.setColumnWidth(i, widths.get(column.key, 100))
        self.table.selectionModel().currentRowChanged.connect(self._on_grid_current_row_changed)
        self.model.query_finished.connect(self._on_model_query_finished)
        self.model.query_failed.connect(self._on_model_query_failed)
        self.model.rows_loaded.connect(self._on_model_rows_loaded)

    def _build_right(self) -> None:
        self.viewer = DocumentViewer(self.sandbox, self, runner=self.runner)
        self.viewer.rotation_changed.connect(self._on_viewer_rotation_changed)
        self.viewer.page_painted.connect(self._on_viewer_page_painted)
        self.form = CertificateForm(self.db, self.rules, self, runner=self.runner)
        self.form.set_as_of(self.as_of)
        self.form.saved.connect(self._on_form_saved)
        self.form.findings_changed.connect(self._on_form_findings_changed)
        self.form.approve_requested.connect(self.approve_selected)
        self.form.archive_requested.connect(self._on_form_archive_requested)

    def _build_layout(self) -> None:
        self.filter_bar = FilterBar(sorted(self.rules.states), sorted(self.rules.forms), self)
        self.filter_bar.filters_changed.connect(self._on_filter_bar_filters_changed)
        self.status_strip = StatusStrip(self)
        self.status_strip.status_clicked.connect(self._on_status_strip_status_clicked)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("mainSplitter")
        self.splitter.setChildrenCollapsible(False)
        self.splitter.addWidget(self.table)
        self.splitter.addWidget(self.viewer)
        self.splitter.addWidget(self.form)
        self.splitter.setStretchFactor(0, 5)
        self.splitter.setStretchFactor(1, 3)
        self.splitter.setStretchFactor(2, 3)
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
        self.feed_label = QLabel("", self)  # shown only when the ERP feed fails
        self.feed_label.setObjectName("feedProblems")
        self.feed_label.setVisible(False)
        self.statusBar().addPermanentWidget(self.feed_label)

    def _action(self, text: str, slot: Callable[[], Any], shortcut: KeyChoice | list[KeyChoice] | None = None,
                *, name: str, tip: str = "") -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        if shortcut is not None:
            if isinstance(shortcut, list):
                action.setShortcuts([QKeySequence(s) for s in shortcut])
            else:
                action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(f"{text.replace('&', '').rstrip('.')}"
                              + (f" ({action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
                                 if shortcut else ""))
        action.triggered.connect(lambda _checked=False: slot())
        self.addAction(action)
        return action

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey
        a = self._action
        self.act_open_db = a("&Open database…", self.open_database_dialog, K.Open, name="actOpenDatabase",
                             tip="Open another ECMS database (a file or a shared server)")
        self.act_new_db = a("&New database…", self.new_database_dialog, K.New, name="actNewDatabase",
                            tip="Create an empty ECMS database file")
        self.act_import_docs = a("Import &documents…", self.import_documents_dialog, "Ctrl+I",
                                 name="actImportDocuments", tip="Store certificate files as pending certificates")
        self.act_attach_docs = a("&Attach documents to selected…", self.attach_documents_dialog, "Ctrl+Shift+I",
                                 name="actAttachDocuments", tip="Add files to the selected certificate")
        self.act_import_certs = a("Import &certificates (CSV/XLSX)…", self.import_certificates_dialog,
                                  "Ctrl+Shift+M", name="actImportCertificates",
                                  tip="Import certificates from a spreadsheet")
        self.act_settings = a("&Settings…", self.open_settings, K.Preferences if not QKeySequence(
            K.Preferences).isEmpty() else "Ctrl+,", name="actSettings", tip="Database, expiring-soon window, companies")
        self.act_quit = a("&Quit", self.close, K.Quit if not QKeySequence(K.Quit).isEmpty() else "Ctrl+Q",
                          name="actQuit")
        self.act_find = a("&Find…", self._focus_search, K.Find, name="actFind", tip="Search the certificates")
        self.act_clear_filters = a("&Clear filters", self.filter_bar.clear, "Ctrl+Shift+L", name="actClearFilters")
        self.act_copy_number = a("&Copy certificate number", self._copy_certificate_number, K.Copy,
                                 name="actCopyNumber")
        self.act_refresh = a("&Refresh", self.refresh, K.Refresh if not QKeySequence(K.Refresh).isEmpty() else "F5",
                             name="actRefresh", tip="Read the certificates again")
        self.act_focus_grid = a("Go to &grid", lambda: self.table.setFocus(), "Ctrl+1", name="actFocusGrid")
        self.act_focus_viewer = a("Go to &document", lambda: self.viewer.setFocus(), "Ctrl+2", name="actFocusViewer")
        self.act_focus_form = a("Go to f&orm", lambda: self.form.setFocus(), "Ctrl+3", name="actFocusForm")
        self.act_last_row = a("Go to &last row", self.go_to_last_row, "Ctrl+End", name="actLastRow")
        self.act_approve = a("&Approve", self.approve_selected, "Ctrl+Return", name="actApprove",
                             tip="Accept the selected certificate")
        self.act_reject = a("&Reject…", self.reject_selected, "Ctrl+Shift+R", name="actReject",
                            tip="Refuse the selected certificate, with a reason")
        self.act_archive = a("Arc&hive…", self.archive_selected, "Ctrl+Shift+A", name="actArchive",
                             tip="Take the selected certificate out of use, with a reason")
        self.act_unarchive = a("&Unarchive…", self.unarchive_selected, "Ctrl+Shift+U", name="actUnarchive")
        self.act_review = a("Review &queue", self.open_review_queue, "Ctrl+R", name="actReviewQueue",
                            tip="Walk the pending certificates one by one")
        self.act_shortcuts = a("&Keyboard shortcuts", self.show_shortcuts, ["F1", "Ctrl+/"], name="actShortcuts")
        self.act_validate = a("&Validate now", self.validate_selected, "Ctrl+Shift+V", name="actValidate",
                              tip="Check the selected certificate against its states' rules and keep the result")
        self.act_validate_all = a("Validate a&ll…", self.validate_all, None, name="actValidateAll",
                                  tip="Check every certificate of the company (with progress and Cancel)")
        self.act_verify_permit = a("&Verify permit", self.verify_permit_selected, "Ctrl+Shift+P",
                                   name="actVerifyPermit",
                                   tip="Check the purchaser's permit numbers with the states' registries")
        self.act_renewals = a("&Renewal center…", self.open_renewal_center, "Ctrl+Shift+N", name="actRenewalCenter",
                              tip="Plan, preview and send renewal requests")
        self.act_exposure = a("&Exposure report…", self.open_exposure_report, "Ctrl+Shift+E", name="actExposure",
                              tip="Exempt sales without a covering certificate, by state, period and customer")
        self.act_reprocess = a("Re&process certificate…", self.open_reprocess_dialog, None, name="actReprocess",
                               tip="Apply the selected certificate to its customer's sales in a date range")
        self.act_audit_pack = a("&Audit pack…", self.open_audit_pack_dialog, "Ctrl+Shift+K", name="actAuditPack",
                                tip="Build the documentation an auditor asked for: workbook, PDF book, files")
        self.act_backup = a("&Back up…", self.backup_dialog, None, name="actBackup",
                            tip="Write a consistent, checked copy of the whole database (safe while others work)")
        self.act_check = a("Chec&k database…", self.check_database, None, name="actCheckDatabase",
                           tip="Check the database, its audit trail and every record against the trail")

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.act_open_db, self.act_new_db])
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.setObjectName("recentMenu")
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        file_menu.addActions([self.act_import_docs, self.act_attach_docs, self.act_import_certs])
        file_menu.addSeparator()
        file_menu.addAction(self.act_audit_pack)
        file_menu.addSeparator()
        file_menu.addActions([self.act_backup, self.act_check])
        file_menu.addSeparator()
        file_menu.addAction(self.act_settings)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        edit_menu = bar.addMenu("&Edit")
        edit_menu.addActions([self.act_find, self.act_clear_filters, self.act_copy_number])
        view_menu = bar.addMenu("&View")
        view_menu.addActions([self.act_refresh, self.act_focus_grid, self.act_focus_viewer, self.act_focus_form,
                              self.act_last_row])
        self.columns_menu = view_menu.addMenu("&Columns")
        self.columns_menu.aboutToShow.connect(lambda: self._fill_columns_menu(self.columns_menu))
        cert_menu = bar.addMenu("&Certificate")
        cert_menu.addActions([self.act_approve, self.act_reject, self.act_archive, self.act_unarchive])
        cert_menu.addSeparator()
        cert_menu.addActions([self.act_validate, self.act_validate_all, self.act_verify_permit])
        cert_menu.addSeparator()
        cert_menu.addAction(self.act_review)
        renewals_menu = bar.addMenu("Re&newals")
        renewals_menu.addAction(self.act_renewals)
        tx_menu = bar.addMenu("&Transactions")
        tx_menu.addActions([self.act_exposure, self.act_reprocess])
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.act_shortcuts)
        self.menus = [file_menu, edit_menu, view_menu, cert_menu, renewals_menu, tx_menu, help_menu]

        tb = QToolBar("Main", self)
        tb.setObjectName("mainToolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.addActions([self.act_import_docs, self.act_review])
        tb.addSeparator()
        tb.addActions([self.act_approve, self.act_reject, self.act_archive])
        tb.addSeparator()
        tb.addAction(self.act_refresh)
        self.company_label = QLabel("  Company: ", tb)
        self.company_combo = QComboBox(tb)
        self.company_combo.setObjectName("companySelector")
        self.company_combo.setMinimumWidth(180)
        self.company_combo.currentIndexChanged.connect(self._on_company_combo_index_changed)
        spacer = QWidget(tb)
        spacer.setSizePolicy(spacer.sizePolicy().horizontalPolicy().Expanding,
                             spacer.sizePolicy().verticalPolicy().Preferred)
        tb.addWidget(spacer)
        self.company_label_action = tb.addWidget(self.company_label)
        self.company_combo_action = tb.addWidget(self.company_combo)
        tb.addAction(self.act_settings)
        self.addToolBar(tb)
        self.toolbar = tb
        self._set_company_selector_visible(False)

    def _set_company_selector_visible(self, visible: bool) -> None:
        self.company_label_action.setVisible(visible)
        self.company_combo_action.setVisible(visible)

    # ------------------------------------------------------------------ UI state

    def _restore_ui_state(self) -> None:
        s = self.settings
        geometry = s.value("main/geometry")
        if isinstance(geometry, QByteArray | bytes):
            self.restoreGeometry(QByteArray(geometry))
        else:
            self.resize(1440, 860)
        sizes = s.value("main/splitter")
        self._splitter_restored = isinstance(sizes, QByteArray | bytes) and self.splitter.restoreState(
            QByteArray(sizes))
        header = s.value("grid/header")
        if not isinstance(header, QByteArray | bytes):
            # "Review" repeats what the status says for most rows: offered in the column menu, hidden at first.
            header_view = self.table.horizontalHeader()
            header_view.setSectionHidden(COLUMN_KEYS.index("review_state"), True)
            # The status badge is what the eye looks for first: shown right after the customer at first.
            header_view.moveSection(header_view.visualIndex(STATUS_COLUMN), 1)
        header = s.value("grid/header")
        if isinstance(header, QByteArray | bytes):
            self.table.horizontalHeader().restoreState(QByteArray(header))
        self.table.horizontalHeader().setSortIndicatorShown(True)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._splitter_restored:
            self._splitter_restored = True
            QTimer.singleShot(0, self._default_splitter_sizes)

    def _default_splitter_sizes(self) -> None:
        w = self.splitter.width()
        self.splitter.setSizes([int(w * 0.42), int(w * 0.25), w - int(w * 0.42) - int(w * 0.25)])

    def save_ui_state(self) -> None:
        s = self.settings
        s.setValue("main/geometry", self.saveGeometry())
        s.setValue("main/splitter", self.splitter.saveState())
        s.setValue("grid/header", self.table.horizontalHeader().saveState())
        if self.company_id is not None:
            s.setValue("main/company", self.company_id)
        s.sync()

    def _on_header_context_menu(self, pos: QPoint) -> None:
        menu = QMenu(self)
        self._fill_columns_menu(menu)
        menu.popup(self.table.horizontalHeader().mapToGlobal(pos))

    def _fill_columns_menu(self, menu: QMenu) -> None:
        menu.clear()
        header = self.table.horizontalHeader()
        visible = sum(1 for i in range(len(COLUMNS)) if not header.isSectionHidden(i))
        for i, column in enumerate(COLUMNS):
            act = menu.addAction(column.title)
            act.setCheckable(True)
            act.setChecked(not header.isSectionHidden(i))
            act.setEnabled(header.isSectionHidden(i) or visible > 1)
            act.toggled.connect(lambda on, i=i: self.set_column_visible(i, on))

    def set_column_visible(self, section: int, visible: bool) -> None:
        self.table.horizontalHeader().setSectionHidden(section, not visible)
        self.settings.setValue("grid/header", self.table.horizontalHeader().saveState())

    # ------------------------------------------------------------------ database

    def set_database(self, db: Database | None) -> None:
        """Use an opened database: read companies and settings off the GUI thread, then query."""
        old = self.db
        self.db = db
        self.model.set_database(db)
        self.form.db = db
        if old is not None and old is not db:
            old.dispose()
        self._clear_detail("")
        if db is None:
            self.setWindowTitle("ECMS Desktop")
            self._update_actions()
            self.database_opened.emit(None)
            return
        self.setWindowTitle(f"ECMS Desktop — {db.display_url}")
        remember_database(self.settings, db.url)
        database.read_companies(db).success(lambda companies: self._on_companies_read(db, companies)) \
            .failure(self._on_background_error).run(self.runner, parent=self)

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
        self.refresh_feed_status()
        database.check_on_start(db).success(lambda report: self._on_start_check_done(db, report)) \
            .failure(self._on_background_error).run(self.runner)

    def _on_start_check_done(self, db: Database, report: CheckReport) -> None:
        if self.db is not db:
            return
        self.integrity_checked.emit(report)
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

    def backup_dialog(self) -> None:
        """File > Back up…: choose the file, then back up through the task runner."""
        db = self.db
        if db is None:
            return
        target = choose_backup_file(self, db, str(self.settings.value(BACKUP_DIR_KEY, "") or ""), dt.date.today())
        if target is not None:
            self.settings.setValue(BACKUP_DIR_KEY, str(target.parent))
            self.backup_to(target)

    def backup_to(self, target: Path) -> None:
        db = self.db
        if db is None:
            return

        database.back_up(db, target).success(self._on_backed_up).failure(self._on_operation_error) \
            .run(self.runner, parent=self)

    def _on_backed_up(self, result: BackupResult) -> None:
        self.statusBar().showMessage(f"Backed up to {result.path}.", 8000)
        self.backup_finished.emit(result)
        if self.interactive:
            self._show_report("Backup", backup_headline(result), report_lines(result.check), ok=result.check.ok)

    def check_database(self) -> None:
        """File > Check database…: the whole ``ecms check`` through the task runner."""
        db = self.db
        if db is None:
            return

        database.check(db).success(self._on_checked).failure(self._on_operation_error).run(self.runner, parent=self)

    def _on_checked(self, report: CheckReport) -> None:
        self.integrity_checked.emit(report)
        if self.interactive:
            self._show_report("Database check", report.summary(), report_lines(report), ok=report.ok)

    def _on_operation_error(self, error: BaseException) -> None:
        if isinstance(error, Cancelled):
            self.statusBar().showMessage("Cancelled.", 5000)
        elif self.interactive:
            present_error(self, error)
        else:
            print(f"ecms-desktop: {type(error).__name__}: {error}", file=sys.stderr)

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

    def new_database_dialog(self) -> None:
        url = choose_new_database_file(self)
        if url:
            self.open_database(url, create=True)

    def _open_file_database(self) -> None:
        url = choose_database_file(self)
        if url:
            self.open_database(url)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = recent_databases(self.settings)
        for url in recent:
            act = self.recent_menu.addAction(display_url(url))
            act.triggered.connect(lambda _=False, u=url: self.open_database(url_with_saved_password(u)))
        if not recent:
            self.recent_menu.addAction("(none)").setEnabled(False)

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

    # ------------------------------------------------------------------ querying

    def current_query(self) -> CertificateQuery:
        f = self.filters
        q = self.model.query
        return CertificateQuery(
            text=f.text, states=(f.state,) if f.state else (), statuses=(f.status,) if f.status else (),
            form_code=f.form_code, expiring_within_days=f.expiring_within_days, company_id=self.company_id,
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
        if not self._grid_announced and not self.model.busy:
            self._grid_announced = True
            QTimer.singleShot(0, self.grid_ready.emit)

    def _on_model_query_failed(self, error: BaseException) -> None:
        self.statusBar().showMessage("The search failed.", 5000)
        if isinstance(error, DatabaseError) and self.db is not None:
            self.show_database_problem(self.db.url, str(error))
        else:
            present_error(self, error)

    def _on_background_error(self, error: BaseException) -> None:
        if isinstance(error, DatabaseError) and not isinstance(error, DatabaseBusyError) and self.db is not None:
            self.show_database_problem(self.db.url, str(error))
        elif self.interactive:
            present_error(self, error)
        else:
            print(f"ecms-desktop: {type(error).__name__}: {error}", file=sys.stderr)

    def go_to_last_row(self) -> None:
        """Load every remaining batch and select the last certificate."""
        if self.model.total == 0:
            return
        self.model.fetch_until(self.model.total - 1)
        self.table.selectRow(self.model.rowCount() - 1)
        self.table.scrollToBottom()

    def _focus_search(self) -> None:
        self.filter_bar.text_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_bar.text_edit.selectAll()

    def _copy_certificate_number(self) -> None:
        row = self.model.row_data(self.table.currentIndex().row()) if self.table.currentIndex().isValid() else None
        if row is not None:
            QApplication.clipboard().setText(row.certificate_number or str(row.id))

    # ------------------------------------------------------------------ selection

    def selected_certificate_id(self) -> int | None:
        index = self.table.currentIndex()
        return self.model.certificate_id(index.row()) if index.isValid() else None

    def select_certificate(self, cert_id: int) -> bool:
        """Select ``cert_id`` if it is in the current result (loading batches up to it)."""
        pos = self.model.position_of(cert_id)
        if pos is None:
            return False
        self.model.fetch_until(pos)
        self.table.selectRow(pos)
        self.table.scrollTo(self.model.index(pos, 0), QAbstractItemView.ScrollHint.PositionAtCenter)
        return True

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
        self.current_detail = None
        self.form.load(None)
        self.viewer.clear(message)
        self._update_actions()

    def _on_viewer_page_painted(self) -> None:
        if self._waiting_for_page:
            self._waiting_for_page = False
            self.selection_ready.emit()

    def _on_viewer_rotation_changed(self, rotation: int) -> None:
        detail, db = self.current_detail, self.db
        if detail is None or db is None or not detail.documents:
            return
        certificates.rotate_document(db, detail.documents[0].id, rotation).failure(self._on_background_error) \
            .run(self.runner)

    def _on_form_saved(self, detail: CertificateDetail) -> None:
        if self.current_detail is None or self.current_detail.id == detail.id:
            self.current_detail = detail
        self.model.reload_rows([detail.id])
        self.refresh_counts()
        self.statusBar().showMessage(f"Certificate {detail.id} saved.", 4000)

    def _on_form_archive_requested(self) -> None:
        self.archive_selected()

    # ------------------------------------------------------------------ review actions

    def _update_actions(self) -> None:
        has_db = self.db is not None
        detail = self.current_detail
        state = detail.review_state if detail is not None else None
        self.act_import_docs.setEnabled(has_db)
        self.act_import_certs.setEnabled(has_db)
        self.act_attach_docs.setEnabled(has_db and detail is not None)
        self.act_settings.setEnabled(has_db)
        self.act_review.setEnabled(has_db)
        self.act_backup.setEnabled(has_db)
        self.act_check.setEnabled(has_db)
        blocked = self._approval_findings_blocking()
        self.act_approve.setEnabled(state in ("pending", "rejected") and not blocked)
        tip = "Approve (Ctrl+Return)"
        if blocked and detail is not None:
            tip += " - not available now: " + blocked_message(detail.id, self.form.engine_findings)
        self.act_approve.setToolTip(tip)
        self.act_reject.setEnabled(state in ("pending", "approved"))
        self.act_archive.setEnabled(state in ("pending", "approved", "rejected"))
        self.act_unarchive.setEnabled(state == "archived")
        has_company = has_db and self.company_id is not None
        for act in (self.act_validate, self.act_verify_permit, self.act_reprocess):
            act.setEnabled(has_db and detail is not None)
        for act in (self.act_validate_all, self.act_renewals, self.act_exposure, self.act_audit_pack):
            act.setEnabled(has_company)

    def _approval_findings_blocking(self) -> bool:
        """Errors in the validation of the certificate shown in the form block Approve."""
        detail = self.current_detail
        form_detail = self.form.detail
        return (detail is not None and form_detail is not None and form_detail.id == detail.id
                and self.form.has_errors)

    def _on_form_findings_changed(self, _findings: list[Finding]) -> None:
        self._update_actions()

    def _review(self, verb: str, operation_for: ReviewOperation, *, needs_reason: bool) -> None:
        if self.form.is_dirty():
            self.leave_form(lambda: self._review(verb, operation_for, needs_reason=needs_reason))
            return
        detail, db = self.current_detail, self.db
        if detail is None or db is None:
            return
        reason = ""
        if needs_reason:
            reason, ok = QInputDialog.getText(self, f"{verb} certificate {detail.id}",
                                              f"Why is certificate {detail.id} ({detail.customer_name}) "
                                              f"{verb.lower()}d? The reason is kept in the audit trail.")
            if not ok:
                return
            if not reason.strip():
                present_error(self, ValidationError(f"Say why the certificate is {verb.lower()}d."))
                return
        operation = operation_for(db, detail, reason.strip())
        operation.success(self._on_reviewed).failure(lambda error: self._on_review_failed(operation, error))
        operation.run(self.runner)

    def _on_reviewed(self, new_detail: CertificateDetail) -> None:
        self.model.reload_rows([new_detail.id])
        self.refresh_counts()
        if self.current_detail is not None and self.current_detail.id == new_detail.id:
            self.current_detail = new_detail
            self.form.load(new_detail)
        self._update_actions()
        self.statusBar().showMessage(f"Certificate {new_detail.id}: {new_detail.status.label}.", 4000)

    def _on_review_failed(self, operation: Operation[CertificateDetail], error: BaseException) -> None:
        def retry() -> None:
            operation.run(self.runner)

        if offer_retry(self, error, retry):
            return
        self._on_background_error(error)
        if self.form.detail is not None:
            self.form.load_checks()  # e.g. refused by the validation: show what it found

    def approve_selected(self) -> None:
        """Approve the selected certificate: refused while its validation shows errors; with warnings,
        list them and approve only after the reviewer acknowledges them (with an optional note)."""
        detail = self.current_detail
        if detail is None or self.db is None or self._ack_dialog is not None:
            return
        form_detail = self.form.detail
        if form_detail is not None and form_detail.id == detail.id:
            if self.form.is_dirty():
                present_error(self, ValidationError(f"Certificate {detail.id} has edits that are not saved: save "
                                                    "or revert them before approving."))
                return
            findings = list(self.form.engine_findings)
        else:
            findings = ValidationService(self.db, self.rules).evaluate(detail, self.as_of)  # pure, fast
        if any(f.severity == "error" for f in findings):
            self.statusBar().showMessage(blocked_message(detail.id, findings), 8000)
            self._update_actions()
            return
        rules, as_of = self.rules, self.as_of

        def confirmed(acknowledge: bool, note: str) -> None:
            self._ack_dialog = None
            if self.current_detail is None or self.current_detail.id != detail.id:
                return
            self._review("Approve", lambda db, d, _reason: certificates.approve_certificate(
                db, rules, d.id, d.version, as_of=as_of, acknowledge_warnings=acknowledge, note=note),
                needs_reason=False)

        warnings = [f for f in findings if f.severity == "warning"]
        self._ack_dialog = confirm_warnings(self, warnings, f"Approve certificate {detail.id} with warnings",
                                            confirmed, self.form.findings_panel.labels)
        if self._ack_dialog is not None:
            self._ack_dialog.rejected.connect(self._on_ack_dialog_rejected)

    def _on_ack_dialog_rejected(self) -> None:
        self._ack_dialog = None

    @property
    def acknowledge_dialog(self) -> AcknowledgeWarningsDialog | None:
        """The warnings dialog currently open, if any."""
        return self._ack_dialog

    def reject_selected(self) -> None:
        rules, as_of = self.rules, self.as_of
        self._review("Reject", lambda db, d, reason: certificates.reject_certificate(
            db, rules, d.id, d.version, reason, as_of=as_of), needs_reason=True)

    def archive_selected(self) -> None:
        rules, as_of = self.rules, self.as_of
        self._review("Archive", lambda db, d, reason: certificates.archive_certificate(
            db, rules, d.id, d.version, reason, as_of=as_of), needs_reason=True)

    def unarchive_selected(self) -> None:
        rules, as_of = self.rules, self.as_of
        self._review("Unarchive", lambda db, d, reason: certificates.unarchive_certificate(
            db, rules, d.id, d.version, reason, as_of=as_of), needs_reason=True)

    def open_review_queue(self) -> None:
        if self.db is None:
            return
        if self.review_window is not None and self.review_window.isVisible():
            self.review_window.raise_()
            self.review_window.activateWindow()
            return
        self.review_window = ReviewQueueWindow(self.db, self.rules, self.runner, self.as_of, self,
                                               company_id=self.company_id, sandbox=self.sandbox)
        self.review_window.destroyed.connect(lambda *_: self.refresh())
        self.review_window.show()

    # ------------------------------------------------------------------ validation and permits

    def validate_selected(self) -> None:
        """Validate the selected certificate now and keep the run (with its audit event)."""
        detail, db = self.current_detail, self.db
        if detail is None or db is None:
            return
        validation.validate_certificate(db, self.rules, detail.id, as_of=self.as_of).success(self._on_validated) \
            .failure(self._on_background_error).run(self.runner, parent=self)

    def _on_validated(self, result: ValidationResult) -> None:
        self.form.set_stored_result(result)
        self.statusBar().showMessage(
            f"Certificate {result.certificate_id} validated: {len(result.errors)} errors, "
            f"{len(result.warnings)} warnings (rules pack {result.rules_version}).", 8000)
        self.validation_finished.emit(result)

    def validate_all(self) -> None:
        """Validate every certificate of the company, in batches, with progress and Cancel."""
        db, company_id = self.db, self.company_id
        if db is None or company_id is None:
            return
        validation.validate_all(db, self.rules, company_id=company_id, as_of=self.as_of) \
            .success(self._on_all_validated).failure(self._on_validate_all_failed).run(self.runner, parent=self)

    def _on_all_validated(self, result: ManyResult) -> None:
        self.statusBar().showMessage(
            f"{result.validated:,} certificates validated: {result.with_errors:,} with errors, "
            f"{result.with_warnings:,} with warnings.", 15000)
        if self.current_detail is not None:
            self.form.load_checks()
        self.validation_finished.emit(result)

    def _on_validate_all_failed(self, error: BaseException) -> None:
        if isinstance(error, Cancelled):
            self.statusBar().showMessage(str(error), 15000)
        else:
            self._on_background_error(error)

    def verify_permit_selected(self) -> None:
        """Check the selected certificate's permit numbers with each state's verifier (recorded)."""
        detail, db = self.current_detail, self.db
        if detail is None or db is None:
            return
        validation.verify_permits(db, self.rules, detail.id, as_of=self.as_of).success(self._on_permits_verified) \
            .failure(self._on_background_error).run(self.runner, parent=self)

    def _on_permits_verified(self, checks: list[PermitCheckInfo]) -> None:
        self.form.load_checks()
        text = "; ".join(f"{c.state} {c.number_checked}: {c.result.replace('_', ' ')} ({c.source})" for c in checks)
        self.statusBar().showMessage(f"Permit check recorded - {text}.", 15000)
        self.permit_verified.emit(checks)

    # ------------------------------------------------------------------ other windows

    def _show_tool(self, key: str, widget: QWidget) -> None:
        old = self.tools.get(key)
        if old is not None:
            try:
                old.close()
                old.deleteLater()
            except RuntimeError:  # already deleted by Qt
                pass
        self.tools[key] = widget
        widget.show()
        widget.raise_()
        self.tool_opened.emit(widget)

    def open_renewal_center(self) -> None:
        """Renewals > Renewal center: the plan as of the desk's date, previews, sending."""
        if self.db is None or self.company_id is None:
            return
        dialog = RenewalCenterDialog(RenewalService(self.db, self.rules), self.company_id, self.as_of,
                                     runner=self.runner, parent=self)
        dialog.setObjectName("renewalCenter")
        dialog.batch_sent.connect(lambda _r: self.refresh())
        self._show_tool("renewals", dialog)

    def open_exposure_report(self) -> None:
        """Transactions > Exposure report, for the year to the desk's date."""
        if self.db is None or self.company_id is None:
            return
        view = ExposureView(self.db, self.company_id, runner=self.runner,
                            date_from=self.as_of.replace(month=1, day=1), date_to=self.as_of, parent=self)
        view.setObjectName("exposureView")
        view.setWindowFlag(Qt.WindowType.Window, True)
        view.setWindowTitle("Exposure report")
        view.resize(1100, 720)
        self._show_tool("exposure", view)
        view.refresh()

    def open_reprocess_dialog(self) -> None:
        """Transactions > Reprocess certificate: the selected certificate over a date range."""
        detail = self.current_detail
        if self.db is None or detail is None:
            return
        dialog = ReprocessDialog(self.db, detail.id, as_of=self.as_of, runner=self.runner,
                                 date_from=self.as_of.replace(month=1, day=1), date_to=self.as_of, parent=self)
        dialog.setObjectName("reprocessDialog")
        dialog.reprocessed.connect(lambda _r: self.refresh())
        self._show_tool("reprocess", dialog)

    def open_audit_pack_dialog(self) -> None:
        """File > Audit pack: the choices are read off the GUI thread, then the dialog opens."""
        db, rules = self.db, self.rules
        if db is None:
            return
        service = AuditPackService(db, rules)
        audit_pack.read_pack_choices(service).success(lambda choices: self._open_audit_pack(service, choices)) \
            .failure(self._on_background_error).run(self.runner)

    def _open_audit_pack(self, service: AuditPackService, choices: PackChoices) -> None:
        folder = self.settings.value("dirs/audit_pack")
        dialog = AuditPackDialog(service, self.runner, today=self.as_of, parent=self, choices=choices,
                                 default_folder=Path(str(folder)) if folder else None)
        dialog.setObjectName("auditPackDialog")
        index = dialog.company.findData(self.company_id)
        if index >= 0:
            dialog.company.setCurrentIndex(index)
        self._show_tool("audit_pack", dialog)

    # ------------------------------------------------------------------ intake and import

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.db is not None and _local_files(event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self.db is not None and _local_files(event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = _local_files(event.mimeData().urls())
        if not paths or self.db is None:
            event.ignore()
            return
        event.acceptProposedAction()
        # Dropped on the document or form side: attach to the selected certificate; elsewhere new ones.
        target = self.childAt(event.position().toPoint())
        if self.current_detail is not None and target is not None and (
                self._is_inside(target, self.viewer) or self._is_inside(target, self.form)):
            self.receive_files(paths, attach_to=self.current_detail.id, expected_version=self.current_detail.version)
        else:
            self.receive_files(paths)

    @staticmethod
    def _is_inside(widget: QWidget, ancestor: QWidget) -> bool:
        w: QWidget | None = widget
        while w is not None:
            if w is ancestor:
                return True
            w = w.parentWidget()
        return False

    def import_documents_dialog(self) -> None:
        paths = get_open_file_names(self, "Import documents", str(self.settings.value("dirs/import", "")),
                                    "Certificates (*.pdf *.png *.jpg *.jpeg *.tif *.tiff);;All files (*)")
        if paths:
            self.settings.setValue("dirs/import", str(Path(paths[0]).parent))
            self.receive_files([Path(p) for p in paths])

    def attach_documents_dialog(self) -> None:
        if self.current_detail is None:
            return
        paths = get_open_file_names(self, f"Attach documents to certificate {self.current_detail.id}",
                                    str(self.settings.value("dirs/import", "")),
                                    "Certificates (*.pdf *.png *.jpg *.jpeg *.tif *.tiff);;All files (*)")
        if paths:
            self.receive_files([Path(p) for p in paths], attach_to=self.current_detail.id,
                               expected_version=self.current_detail.version)

    def receive_files(self, paths: Sequence[Path], *, attach_to: int | None = None,
                      expected_version: int | None = None) -> None:
        """Store files off the GUI thread, with progress and Cancel: returned renewal forms (a PDF
        carrying a request token, or an .eml) go to the returned-forms service, which matches them to
        their request; other files to the intake service (new pending certificates, or attached to
        ``attach_to``, as of the version the user sees: ``expected_version``)."""
        db, company_id = self.db, self.company_id
        if db is None:
            return
        if company_id is None:
            present_error(self, ValidationError("There is no company yet: add one in Settings > Companies "
                                                "before receiving documents."))
            return
        intake.receive_files(db, self.rules, paths, company_id=company_id, as_of=self.as_of, attach_to=attach_to,
                      expected_version=expected_version) \
            .success(lambda received: self._on_files_received(received, attach_to)) \
            .failure(self._on_background_error).run(self.runner, parent=self)

    def _on_files_received(self, received: ReceivedFiles, attach_to: int | None) -> None:
        result, returned = received.intake, received.returned
        messages = []
        if result is not None:
            self.last_intake_result = result
            messages.append(f"Documents: {result.summary()}")
        if returned is not None:
            self.last_returned_items = returned
            answered = sum(i.outcome in ("answered", "attached") for i in returned)
            messages.append(f"Returned forms: {answered} matched to their request, "
                            f"{len(returned) - answered} not matched")
        self.statusBar().showMessage(". ".join(messages) + ".", 8000)
        self.refresh()
        if attach_to is not None and self.selected_certificate_id() == attach_to:
            self.load_detail(attach_to)
        details = []
        if result is not None and (result.duplicates or result.refused):
            details += [item.message for item in result.items if item.outcome != "stored"]
        if returned:
            details += [item.message for item in returned]
        if details:
            box = QMessageBox(QMessageBox.Icon.Information, "Documents received", ". ".join(messages) + ".",
                              QMessageBox.StandardButton.Ok, self)
            box.setObjectName("intakeReport")
            box.setDetailedText("\n".join(details))
            box.setInformativeText("\n".join(details)[:1500])
            if self.interactive:
                box.open()
        if result is not None:
            self.intake_finished.emit(result)
        if returned is not None:
            self.returned_forms_received.emit(returned)

    def import_certificates_dialog(self) -> None:
        if self.db is None or self.company_id is None:
            present_error(self, ValidationError("Choose or add a company before importing certificates."))
            return
        path = get_open_file_name(self, "Import certificates", str(self.settings.value("dirs/import", "")),
                                  "Spreadsheets (*.csv *.xlsx)")
        if path:
            self.import_certificates(Path(path))

    def import_certificates(self, path: Path) -> None:
        db, company_id, rules, as_of = self.db, self.company_id, self.rules, self.as_of
        if db is None or company_id is None:
            return

        intake.import_certificates(db, rules, path, company_id=company_id, as_of=as_of) \
            .success(lambda result: self._on_certificates_imported(path, result)) \
            .failure(self._on_background_error).run(self.runner, parent=self)

    def _on_certificates_imported(self, path: Path, result: ImportResult) -> None:
        self.refresh()
        held = (f"; {result.held_for_review} held for review because of their findings"
                if result.held_for_review else "")
        summary = (f"{path.name}: {result.imported} certificates imported ({result.with_errors} with errors, "
                   f"{result.with_warnings} with warnings){held}.")
        self.statusBar().showMessage(summary, 15000)
        # The status bar is cleared when the grid reloads: the summary stays in a report.
        box = QMessageBox(QMessageBox.Icon.Information, "Certificates imported", summary,
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("importReport")
        if result.held_for_review:
            box.setInformativeText("Certificates held for review wait in the review queue: correct them and "
                                   "approve them there.")
        self.import_report = box
        if self.interactive:
            box.open()

    # ------------------------------------------------------------------ settings and help

    def open_settings(self) -> None:
        if self.db is None:
            return
        dialog = SettingsDialog(self.db, self.runner, self.settings, company_id=self.company_id,
                                companies=self.companies, expiring_soon_days=self.window_days, parent=self)
        dialog.saved.connect(lambda: self.leave_form(lambda: self.set_database(self.db)))
        dialog.open_database_requested.connect(lambda: QTimer.singleShot(0, self.open_database_dialog))
        self.settings_dialog = dialog
        dialog.open()

    def show_shortcuts(self) -> None:
        if self.help_overlay is None:
            self.help_overlay = HelpOverlay(self, shortcuts_of_menus(self.menus))
        self.help_overlay.open()

    # ------------------------------------------------------------------ closing

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._close_confirmed and not self._closing:
            forms = [self.form]
            if self.review_window is not None and self.review_window.isVisible():
                forms.insert(0, self.review_window.form)
            dirty = [f for f in forms if f.is_dirty() or f.saving]
            if dirty:
                event.ignore()  # each form with unsaved edits asks first: Save / Discard / Cancel

                def ask(remaining: list[CertificateForm]) -> None:
                    if remaining:
                        remaining[0].leave(lambda: ask(remaining[1:]))
                        return
                    if self.review_window is not None:
                        self.review_window.close_without_asking()
                    self._close_confirmed = True
                    self.close()

                ask(dirty)
                return
        self.save_ui_state()
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stop background work and release the database and the document worker."""
        if self._closing:
            return
        self._closing = True
        self.runner.cancel_all()
        try:
            self.viewer.shutdown()
        except Exception:  # closing must go on: the database is still to be anchored and released
            log.exception("viewer shutdown failed")
        if self.review_window is not None:
            self.review_window.close()
        self.model.runner = None  # no more prefetches
        # Deliver the finished work's queued results while the runner and this window still exist
        # (a result may start follow-up work, refused below once closing, hence the loop).
        for _ in range(50):
            self.runner.wait(10000)
            QApplication.sendPostedEvents()
            QApplication.processEvents()
            if not self.runner.busy:
                break
        if self.db is not None:
            database.anchor_on_exit(self.db)
            self.db.dispose()


def _local_files(urls: Sequence[QUrl]) -> list[Path]:
    return [Path(u.toLocalFile()) for u in urls if u.isLocalFile() and u.toLocalFile()]


__all__ = ["MainWindow", "ui_settings"]
