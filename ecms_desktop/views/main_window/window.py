"""The review desk's main window: the desk (``desk.py``) with its parts — the File menu's database
entries, reviewing, documents in, the other windows — and the menus, the toolbar and closing.

The parts are mixins over :class:`~ecms_desktop.views.main_window.desk.DeskWindow`, each in its own
module (as calibre's main window is put together); their long work is in ``views/operations``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QToolBar, QWidget

from ecms_desktop.rules import RulesPack
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.documents.sandbox import DocumentSandbox
from ecms_desktop.views.certificates.findings_panel import blocked_message
from ecms_desktop.views.certificates.form import CertificateForm
from ecms_desktop.views.main_window.customers import CustomersMixin
from ecms_desktop.views.main_window.database_menu import DatabaseMenuMixin
from ecms_desktop.views.main_window.help import HelpMixin
from ecms_desktop.views.main_window.inbox import InboxMixin
from ecms_desktop.views.main_window.intake import IntakeMixin
from ecms_desktop.views.main_window.live import LiveMixin
from ecms_desktop.views.main_window.outbox import OutboxMixin
from ecms_desktop.views.main_window.people import PeopleMixin
from ecms_desktop.views.main_window.review import ReviewMixin
from ecms_desktop.views.main_window.sales import SalesMixin
from ecms_desktop.views.main_window.tools import ToolsMixin
from ecms_desktop.views.main_window.welcome import WelcomeMixin
from ecms_desktop.views.main_window.worklists import WorkListsMixin
from ecms_desktop.views.operations import database
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.widgets.help_overlay import HelpOverlay, shortcuts_of_menus

log = logging.getLogger(__name__)

#: A shortcut as QKeySequence takes it: a sequence, a platform's standard key, or text like "Ctrl+I".
KeyChoice = QKeySequence | QKeySequence.StandardKey | str


class MainWindow(DatabaseMenuMixin, ReviewMixin, IntakeMixin, InboxMixin, OutboxMixin, CustomersMixin, ToolsMixin,
                 WorkListsMixin, SalesMixin, WelcomeMixin, HelpMixin, LiveMixin, PeopleMixin):
    """The review desk: certificate grid (and the intake inbox beside it) | document viewer | certificate
    form, with the menus and the toolbar of every feature."""

    def __init__(self, db: Database | None = None, *, rules: RulesPack | None = None,
                 as_of: dt.date | None = None, runner: TaskRunner | None = None,
                 settings: QSettings | None = None, sandbox: DocumentSandbox | None = None,
                 interactive: bool = True) -> None:
        super().__init__(rules=rules, as_of=as_of, runner=runner, settings=settings, sandbox=sandbox,
                         interactive=interactive)
        self.form.approve_requested.connect(self.approve_selected)
        self._connect_inbox()
        self._build_worklist_actions()
        self.work_lists.inbox_requested.connect(self.show_inbox)
        self._build_actions()
        self._build_welcome(self.import_certificates_dialog)
        self._restore_ui_state()
        self._update_actions()
        if db is not None:
            self.set_database(db)

    # ------------------------------------------------------------------ actions, menus, toolbar

    def _action(self, text: str, slot: Callable[[], object], shortcut: KeyChoice | list[KeyChoice] | None = None,
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
        self.act_new_db = a("&New database…", self.new_database_dialog, None, name="actNewDatabase",
                            tip="Create an empty ECMS database file")
        self.act_import_docs = a("Import &documents…", self.import_documents_dialog, "Ctrl+I",
                                 name="actImportDocuments",
                                 tip="Read and store certificate files: they wait in the intake inbox")
        self.act_attach_docs = a("&Attach documents to selected…", self.attach_documents_dialog, "Ctrl+Shift+I",
                                 name="actAttachDocuments", tip="Add files to the selected certificate")
        self.act_import_certs = a("Import &certificates (CSV/XLSX)…", self.import_certificates_dialog,
                                  "Ctrl+Shift+M", name="actImportCertificates",
                                  tip="Import certificates from a spreadsheet")
        self.act_settings = a("&Settings…", self.open_settings, K.Preferences if not QKeySequence(
            K.Preferences).isEmpty() else "Ctrl+,", name="actSettings",
            tip="Database, expiring-soon window, companies, e-mail")
        self.act_quit = a("&Quit", self.close, K.Quit if not QKeySequence(K.Quit).isEmpty() else "Ctrl+Q",
                          name="actQuit")
        self.act_find = a("&Find…", self._focus_search, K.Find, name="actFind", tip="Search the certificates")
        self.act_clear_filters = a("&Clear filters", self.filter_bar.clear, "Ctrl+Shift+L", name="actClearFilters")
        self.act_copy_number = a("&Copy certificate number", self.table.copy_certificate_number, K.Copy,
                                 name="actCopyNumber")
        # F5 only: the platform's Refresh is also Ctrl+R (GNOME, the review queue here) or Ctrl+Shift+R
        # (macOS, Reject here), and one key means one thing.
        self.act_refresh = a("&Refresh", self.refresh, "F5", name="actRefresh", tip="Read the certificates again")
        self.act_focus_grid = a("Go to &grid", self._focus_grid, "Ctrl+1", name="actFocusGrid")
        self.act_focus_viewer = a("Go to &document", lambda: self.viewer.setFocus(), "Ctrl+2", name="actFocusViewer")
        self.act_focus_form = a("Go to f&orm", lambda: self.form.setFocus(), "Ctrl+3", name="actFocusForm")
        self.act_last_row = a("Go to &last row", self.table.go_to_last_row, "Ctrl+End", name="actLastRow")
        self.act_inbox = a("&Inbox", self.show_inbox, "Ctrl+4", name="actInbox",
                           tip="The documents that arrived without a certificate: assign, discard or split them")
        self.act_approve = a("&Approve", self.approve_selected, "Ctrl+Return", name="actApprove",
                             tip="Accept the selected certificate")
        self.act_reject = a("&Reject…", self.reject_selected, "Ctrl+Shift+R", name="actReject",
                            tip="Refuse the selected certificate, with a reason")
        self.act_archive = a("Arc&hive…", self.archive_selected, "Ctrl+Shift+A", name="actArchive",
                             tip="Take the selected certificate out of use, with a reason")
        self.act_unarchive = a("&Unarchive…", self.unarchive_selected, "Ctrl+Shift+U", name="actUnarchive")
        self.act_review = a("Review &queue", self.open_review_queue, "Ctrl+R", name="actReviewQueue",
                            tip="Walk the list shown in the grid one by one (no filter: the pending certificates)")
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
        self._build_sales_actions()
        self.act_check = a("Chec&k database…", self.check_database, None, name="actCheckDatabase",
                           tip="Check the database, its audit trail and every record against the trail")
        self._build_outbox_actions()
        self._build_customer_actions(a)

        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addActions([self.act_open_db, self.act_new_db])
        self.recent_menu = file_menu.addMenu("Open &recent")
        self.recent_menu.setObjectName("recentMenu")
        self.recent_menu.aboutToShow.connect(lambda: self.fill_recent_menu(self.recent_menu))
        file_menu.addSeparator()
        file_menu.addActions([self.act_import_docs, self.act_attach_docs, self.act_import_certs])
        file_menu.addSeparator()
        file_menu.addAction(self.act_audit_pack)
        file_menu.addSeparator()
        file_menu.addActions([self.act_backup, self.act_check])
        file_menu.addSeparator()
        file_menu.addAction(self.act_settings)
        file_menu.addAction(self._build_people_actions())
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        edit_menu = bar.addMenu("&Edit")
        edit_menu.addActions([self.act_find, self.act_clear_filters, self.act_copy_number])
        view_menu = bar.addMenu("&View")
        view_menu.addActions([self.act_refresh, self.act_focus_grid, self.act_focus_viewer, self.act_focus_form,
                              self.act_last_row, self.act_inbox])
        view_menu.addMenu(self.work_lists.menu)
        self.columns_menu = view_menu.addMenu("&Columns")
        self.columns_menu.aboutToShow.connect(lambda: self.table.fill_columns_menu(self.columns_menu))
        cert_menu = bar.addMenu("&Certificate")
        cert_menu.addAction(self.act_new_certificate)
        cert_menu.addSeparator()
        cert_menu.addActions([self.act_approve, self.act_reject, self.act_archive, self.act_unarchive])
        cert_menu.addSeparator()
        cert_menu.addActions([self.act_validate, self.act_validate_all, self.act_verify_permit])
        cert_menu.addSeparator()
        # The form's own action (Ctrl+Shift+Y in a field): listed here so the menu and F1 show it.
        cert_menu.addAction(self.form.accept_suggestion_action)
        cert_menu.addSeparator()
        cert_menu.addAction(self.act_review)
        customers_menu = bar.addMenu("C&ustomers")
        customers_menu.addActions([self.act_customers, self.act_customer_of_selected, self.act_uncovered_report])
        renewals_menu = bar.addMenu("Re&newals")
        renewals_menu.addActions([self.act_renewals, self.act_outbox])
        tx_menu = bar.addMenu("&Transactions")
        tx_menu.addActions([self.act_import_invoices, self.act_exposure, self.act_reprocess])
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.act_shortcuts)
        help_menu.addActions(self._build_help_actions())
        self.menus = [file_menu, edit_menu, view_menu, cert_menu, customers_menu, renewals_menu, tx_menu, help_menu]

        tb = QToolBar("Main", self)
        tb.setObjectName("mainToolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        tb.addActions([self.act_import_docs, self.act_inbox, self.act_review])
        tb.addSeparator()
        tb.addActions([self.act_approve, self.act_reject, self.act_archive])
        tb.addSeparator()
        tb.addAction(self.act_refresh)
        spacer = QWidget(tb)
        spacer.setSizePolicy(spacer.sizePolicy().horizontalPolicy().Expanding,
                             spacer.sizePolicy().verticalPolicy().Preferred)
        tb.addWidget(spacer)
        self._add_company_selector(tb)
        tb.addAction(self.act_settings)
        self.addToolBar(tb)
        self.toolbar = tb

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
        # Enabled while errors remain: Approve then says why in the status bar (not a silent grey button).
        self.act_approve.setEnabled(state in ("pending", "rejected"))
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
        for act in (self.act_validate_all, self.act_renewals, self.act_outbox, self.act_exposure, self.act_audit_pack,
                    self.act_inbox):
            act.setEnabled(has_company)
        self._update_customer_actions()
        self._update_sales_actions()
        self._apply_permissions()

    def _approval_findings_blocking(self) -> bool:
        """Errors in the validation of the certificate shown in the form block Approve."""
        detail = self.current_detail
        form_detail = self.form.detail
        return (detail is not None and form_detail is not None and form_detail.id == detail.id
                and self.form.has_errors)

    def _focus_grid(self) -> None:
        self.grid_tabs.setCurrentWidget(self.table)
        self.table.setFocus()

    def _focus_search(self) -> None:
        self.filter_bar.text_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_bar.text_edit.selectAll()

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
        self.stop_following_changes()
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


__all__ = ["KeyChoice", "MainWindow"]
