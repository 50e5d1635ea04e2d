"""The review queue: walk a work list one by one, document left, form right, keyboard first.

The list is the desk's current one (the grid's query, in the grid's order: e.g. "Validation errors"),
or by default the certificates pending review, oldest first. The status bar says "Certificate n of N";
the List pane (Ctrl+G) lists them to pick from and goes to a position by number. Approve (Ctrl+Enter)
saves any edits first, then approves: while the validation shows errors it refuses and says why (the
first error, in the status bar), and with warnings it first lists them and asks for an acknowledgement
(Ctrl+Enter again acknowledges and approves). Reject (Ctrl+Shift+R, as on the main window) asks the
reason. After either, the list is read again (a certificate that left it is gone), the next certificate
opens and the cursor lands where the accountant types next (the first empty required field). Esc closes
the queue (asking first about unsaved edits). Every database read and write runs through the task runner.

Team work: the toolbar's "Show" choice walks all the list's certificates, only those the reviewer claimed
("Mine") or only the pending ones nobody claimed ("Unclaimed"); Claim (Ctrl+Shift+K) claims the certificate
shown, Release gives it back; the List pane and the status bar say who claimed each certificate, and the
form says so when it is someone else (services/certificates/claims.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDockWidget,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPlainTextEdit,
    QSpinBox,
    QSplitter,
    QStackedWidget,
    QTableView,
    QTableWidget,
    QTableWidgetItem,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.models.enums import ReviewState
from ecms_desktop.rules import RulesPack
from ecms_desktop.services.certificates.claims import ClaimInfo, ClaimService
from ecms_desktop.services.certificates.query import CertificateQuery, ClaimFilter
from ecms_desktop.services.certificates.review_queue_service import pending_query
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.core.certificate_records import CertificateDetail
from ecms_desktop.services.core.changes import ChangeBatch
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.documents.sandbox import DocumentSandbox
from ecms_desktop.services.documents.storage import DocumentService
from ecms_desktop.services.intake.suggestions import Suggestion
from ecms_desktop.views.certificates.findings_panel import AcknowledgeWarningsDialog, blocked_message, confirm_warnings
from ecms_desktop.views.certificates.form import CertificateForm
from ecms_desktop.views.certificates.form.suggesting import highlight_suggestion
from ecms_desktop.views.certificates.table_model import COLUMN_KEYS, CertificateTableModel
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.pdf_viewer import SHORTCUTS as VIEWER_SHORTCUTS
from ecms_desktop.views.pdf_viewer import DocumentViewer
from ecms_desktop.views.widgets.error_presenter import offer_retry, present_error
from ecms_desktop.views.widgets.reason_dialog import ReasonDialog
from ecms_desktop.views.widgets.screen_fit import first_size

log = logging.getLogger(__name__)

#: (keys, what they do): shown in the help overlay (also available to the main window's overlay).
SHORTCUTS: tuple[tuple[str, str], ...] = (
    ("Alt+Right or J", "Next certificate (J/K when not typing in a field)"),
    ("Alt+Left or K", "Previous certificate"),
    ("Ctrl+Enter", "Approve (saves your edits first) and go to the next"),
    ("Ctrl+Shift+R", "Reject with a reason and go to the next"),
    ("Ctrl+Shift+K", "Claim this certificate (others see that you work on it)"),
    ("Ctrl+S", "Save your edits"),
    ("Ctrl+G", "Go to a certificate of the list by its position (n of N), or pick it in the List pane"),
    ("Ctrl+Shift+Y", "Accept the value read from the scan for the field you are in"),
    ("Tab / Shift+Tab", "Next / previous field"),
    ("Ctrl+= / Ctrl+-", "Zoom the document in / out"),
    ("PgDown / PgUp", "Next / previous page of the document"),
    ("F1", "Show this help"),
    ("Esc", "Close this help / the review queue (asks first about unsaved edits)"),
)

#: The claim on a certificate (None: nobody's) and whether it is the reviewer's own.
_Claim = tuple[ClaimInfo | None, bool]

#: The columns the List pane shows of each certificate of the queue.
_LIST_COLUMNS = {"customer": 140, "status": 100, "errors": 46, "warnings": 64, "claimed_by": 90}


class ShortcutHelpDialog(QDialog):
    """A small overlay listing the keyboard shortcuts."""

    def __init__(self, shortcuts: tuple[tuple[str, str], ...], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("shortcutHelp")
        self.setWindowTitle("Keyboard shortcuts")
        table = QTableWidget(len(shortcuts), 2)
        table.setHorizontalHeaderLabels(["Keys", "Does"])
        table.verticalHeader().setVisible(False)
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, (keys, what) in enumerate(shortcuts):
            table.setItem(r, 0, QTableWidgetItem(keys))
            table.setItem(r, 1, QTableWidgetItem(what))
        table.resizeColumnsToContents()
        table.horizontalHeader().setStretchLastSection(True)
        layout = QVBoxLayout(self)
        layout.addWidget(table)
        self.resize(560, 40 + 30 * (len(shortcuts) + 1))


class ReviewQueueWindow(QMainWindow):
    """Walks a work list (``query``, named ``list_name``; by default the certificates pending review).
    ``reviewed(detail)`` fires after each approve/reject; ``certificate_shown(id)`` when a certificate
    and its document are on screen; ``queue_loaded(n)`` when the list is read; ``closed`` when the
    window closed (the desk then reads its grid and counts again)."""

    reviewed = Signal(object)
    certificate_shown = Signal(int)
    queue_loaded = Signal(int)
    #: The certificate shown was claimed or released (its id).
    claim_changed = Signal(int)
    closed = Signal()

    def __init__(self, db: Database, rules: RulesPack, runner: TaskRunner, as_of: dt.date,
                 parent: QWidget | None = None, *, company_id: int | None = None,
                 sandbox: DocumentSandbox | None = None, query: CertificateQuery | None = None,
                 list_name: str = "") -> None:
        super().__init__(parent)
        self.setObjectName("reviewQueueWindow")
        self.setWindowTitle("Review queue")
        self.db, self.rules, self.runner, self.as_of = db, rules, runner, as_of
        self.company_id = company_id
        self.service = CertificateService(db, rules)
        self.claims = ClaimService(db)
        #: The claim on the certificate shown (None: nobody's), and whether it is the reviewer's own.
        self.claim: ClaimInfo | None = None
        self.claim_mine = False
        self.documents = DocumentService(db)
        self.query = query or pending_query(as_of=as_of, company_id=company_id)
        self.list_name = list_name if query is not None else "Pending review"
        self.ids: list[int] = []
        self.index = -1
        #: After a review: the certificates that followed the one reviewed, to find the next one in
        #: the list read again.
        self._followers: list[int] | None = None
        #: The list is read again after a change elsewhere: the certificate shown stays (follow_changes).
        self._keep_current = False
        self.list_model = CertificateTableModel(db, runner, self)
        self.list_model.query_finished.connect(self._on_list_model_query_finished)
        self.list_model.query_failed.connect(self._on_list_model_query_failed)
        self.detail: CertificateDetail | None = None
        self._busy = False
        self._reason_dialog: ReasonDialog | None = None
        self._help: ShortcutHelpDialog | None = None
        self._ack_dialog: AcknowledgeWarningsDialog | None = None
        self._close_confirmed = False  # unsaved edits were saved or discarded: close without asking

        self.viewer = DocumentViewer(sandbox, runner=runner)
        self.viewer.set_shortcuts_enabled(False)  # the window's actions carry the same keys
        self.form = CertificateForm(db, rules, runner=runner)
        self.form.set_as_of(as_of)
        self.form.saved.connect(self._on_form_saved)
        self.form.findings_changed.connect(self._on_form_findings_changed)
        self.form.approve_requested.connect(self.approve)
        self.form.suggestion_focused.connect(self._on_form_suggestion_focused)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.viewer)
        self.splitter.addWidget(self.form)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.empty = QLabel("Loading the review queue…")
        self.empty.setObjectName("queueMessage")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setStyleSheet("font-size: 13pt; color: palette(mid);")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.splitter)
        self.stack.addWidget(self.empty)
        self.stack.setCurrentIndex(1)
        self.setCentralWidget(self.stack)
        self.position = QLabel("")
        self.position.setObjectName("queuePosition")
        self.statusBar().addPermanentWidget(self.position)
        self._build_list_pane()
        self._build_actions()
        # 1400 x 900 where the screen has room, never larger than the screen (1280 x 800 laptops).
        size = first_size(self, 1400, 900)
        width = size.width()
        self.resize(size)
        self.splitter.setSizes([width * 54 // 100, width * 46 // 100])
        self.refresh()

    # ------------------------------------------------------------------ actions and menus

    def _action(self, text: str, keys: list[str], tip: str, slot: Any, name: str) -> QAction:
        act = QAction(text, self)
        act.setObjectName(name)
        act.setShortcuts([QKeySequence(k) for k in keys])
        act.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        shown = " or ".join(QKeySequence(k).toString(QKeySequence.SequenceFormat.NativeText) for k in keys[:2])
        act.setToolTip(f"{tip} ({shown})")
        act.setStatusTip(tip)
        act.triggered.connect(slot)
        self.addAction(act)
        return act

    def _build_actions(self) -> None:
        self.approve_action = self._action("&Approve", ["Ctrl+Return", "Ctrl+Enter"],
                                           "Approve this certificate (saves your edits first)", self.approve,
                                           "approveAction")
        self.reject_action = self._action("&Reject…", ["Ctrl+Shift+R"], "Reject this certificate with a reason",
                                          self.reject, "rejectAction")
        self.next_action = self._action("&Next", ["Alt+Right"], "Next pending certificate (or J)",
                                        self.next, "nextAction")
        self.prev_action = self._action("&Previous", ["Alt+Left"], "Previous pending certificate (or K)",
                                        self.previous, "previousAction")
        # The form's own Save action, widened to the whole window (a second Ctrl+S would be ambiguous).
        self.save_action = self.form.save_action
        self.save_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.save_action.setToolTip("Save your edits (Ctrl+S)")
        self.save_action.setStatusTip("Save your edits")
        self.zoom_in_action = self._action("Zoom &in", ["Ctrl+=", "Ctrl++"], "Zoom the document in",
                                           self.viewer.zoom_in, "zoomInAction")
        self.zoom_out_action = self._action("Zoom &out", ["Ctrl+-"], "Zoom the document out",
                                            self.viewer.zoom_out, "zoomOutAction")
        self.next_page_action = self._action("Next &page", ["PgDown"], "Next page of the document",
                                             self.viewer.next_page, "nextPageAction")
        self.prev_page_action = self._action("Previous pa&ge", ["PgUp"], "Previous page of the document",
                                             self.viewer.previous_page, "previousPageAction")
        self.help_action = self._action("&Keyboard shortcuts", ["F1"], "Show the keyboard shortcuts",
                                        self.show_help, "helpAction")
        self.close_action = self._action("&Close queue", ["Esc", "Ctrl+W"], "Close the review queue",
                                         self.close, "closeAction")
        self.go_to_action = self._action("&Go to…", ["Ctrl+G"], "Go to a certificate of the list by its position",
                                         self.ask_position, "goToAction")
        self.claim_action = self._action("C&laim", ["Ctrl+Shift+K"],
                                         "Claim this certificate: others see that you work on it", self.claim_current,
                                         "claimAction")
        self.release_action = self._action("Re&lease", [], "Release your claim on this certificate",
                                           self.release_current, "releaseAction")
        self.claim_combo = QComboBox()
        self.claim_combo.setObjectName("queueClaimFilter")
        self.claim_combo.setToolTip("Walk all the certificates of the list, only those you claimed, or only the "
                                    "pending ones nobody claimed")
        self.claim_combo.addItem("All", None)
        for choice in ClaimFilter:
            self.claim_combo.addItem(choice.label, choice.value)
        self.claim_combo.setCurrentIndex(max(0, self.claim_combo.findData(
            self.query.claim.value if self.query.claim else None)))
        self.claim_combo.activated.connect(self._on_claim_combo_activated)
        self.list_action = self.list_dock.toggleViewAction()
        self.list_action.setObjectName("listAction")
        self.list_action.setText("&List")
        self.list_action.setToolTip("Show the certificates of the list, to pick one (Ctrl+G: go to a position)")
        menu = self.menuBar().addMenu("&Review")
        for act in (self.approve_action, self.reject_action, None, self.claim_action, self.release_action, None,
                    self.next_action, self.prev_action, self.go_to_action, None, self.save_action, None,
                    self.close_action):
            menu.addSeparator() if act is None else menu.addAction(act)
        view = self.menuBar().addMenu("&View")
        for act in (self.list_action, self.zoom_in_action, self.zoom_out_action, self.next_page_action,
                    self.prev_page_action):
            view.addAction(act)
        self.menuBar().addMenu("&Help").addAction(self.help_action)
        bar = QToolBar("Review")
        bar.setObjectName("reviewToolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for act in (self.prev_action, self.next_action, self.list_action, None, self.approve_action,
                    self.reject_action, None, self.claim_action, None, self.help_action):
            bar.addSeparator() if act is None else bar.addAction(act)
        bar.addSeparator()
        show = QLabel(" Show: ")
        show.setBuddy(self.claim_combo)
        bar.addWidget(show)
        bar.addWidget(self.claim_combo)
        self.addToolBar(bar)
        self._update_actions()

    def _build_list_pane(self) -> None:
        """The List pane: "Go to" a position, and the certificates of the list to pick from (loaded in
        batches as it scrolls, like the desk's grid)."""
        self.position_spin = QSpinBox()
        self.position_spin.setObjectName("goToPosition")
        self.position_spin.setRange(1, 1)
        self.position_spin.setToolTip("Position in the list; Enter goes there")
        self.position_spin.setKeyboardTracking(False)
        self.position_spin.editingFinished.connect(self._on_position_spin_editing_finished)
        self.position_total = QLabel("of 0")
        self.list_view = QTableView()
        self.list_view.setObjectName("queueList")
        self.list_view.setModel(self.list_model)
        self.list_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.list_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list_view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list_view.verticalHeader().setVisible(False)
        self.list_view.setWordWrap(False)
        self.list_view.horizontalHeader().setStretchLastSection(True)
        for i, key in enumerate(COLUMN_KEYS):
            self.list_view.setColumnHidden(i, key not in _LIST_COLUMNS)
            self.list_view.setColumnWidth(i, _LIST_COLUMNS.get(key, 80))
        self.list_view.setMinimumWidth(sum(_LIST_COLUMNS.values()) + 24)
        self.list_view.activated.connect(self._on_list_view_activated)
        self.list_view.clicked.connect(self._on_list_view_activated)
        go = QHBoxLayout()
        go.addWidget(QLabel("Go to"))
        go.addWidget(self.position_spin)
        go.addWidget(self.position_total, 1)
        pane = QWidget()
        layout = QVBoxLayout(pane)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(go)
        layout.addWidget(self.list_view, 1)
        self.list_dock = QDockWidget("List", self)
        self.list_dock.setObjectName("queueListDock")
        self.list_dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.list_dock.setWidget(pane)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.list_dock)
        self.list_dock.hide()
        self.list_dock.visibilityChanged.connect(lambda _visible: self._select_in_list())

    def _update_actions(self) -> None:
        detail = self.detail
        has = detail is not None and not self._busy
        blocked = has and self.form.has_errors
        state = detail.review_state if detail is not None else None
        # Enabled while errors remain: Approve then says why instead of staying silently grey.
        self.approve_action.setEnabled(has and state in (ReviewState.PENDING, ReviewState.REJECTED))
        tip = "Approve this certificate (saves your edits first) (Ctrl+Return)"
        if blocked and detail is not None:
            tip += " - not available now: " + blocked_message(detail.id, self.form.engine_findings)
        self.approve_action.setToolTip(tip)
        self.reject_action.setEnabled(has and state in (ReviewState.PENDING, ReviewState.APPROVED))
        self.save_action.setEnabled(has)
        self.next_action.setEnabled(not self._busy and self.index < len(self.ids) - 1)
        self.prev_action.setEnabled(not self._busy and self.index > 0)
        self.go_to_action.setEnabled(not self._busy and bool(self.ids))
        self.claim_action.setEnabled(has and state == ReviewState.PENDING and not self.claim_mine)
        self.release_action.setEnabled(has and self.claim is not None)

    # ------------------------------------------------------------------ public API

    @property
    def shortcuts(self) -> tuple[tuple[str, str], ...]:
        return SHORTCUTS

    @property
    def reason_dialog(self) -> ReasonDialog | None:
        return self._reason_dialog

    @property
    def acknowledge_dialog(self) -> AcknowledgeWarningsDialog | None:
        """The warnings dialog currently open (tests type into it)."""
        return self._ack_dialog

    def refresh(self) -> None:
        """Read the list again and show its first certificate."""
        self._followers = None
        self.list_model.set_query(self.query)

    def walk(self, query: CertificateQuery, list_name: str) -> None:
        """Walk another work list from its first certificate (unsaved edits are saved or discarded first:
        asked)."""
        def start() -> None:
            self.query, self.list_name = query, list_name
            self.refresh()

        self.form.leave(start)

    def follow_changes(self, batch: ChangeBatch) -> None:
        """Other desks' changes: the list is read again (the certificate shown stays) and the certificate
        shown, when it changed, is shown anew or set beside the unsaved edits (see the form)."""
        if self.detail is None:
            self.refresh()
            return
        self._keep_current = True
        self.list_model.refresh(in_place=True)
        cert_id, as_of = self.detail.id, self.as_of
        if cert_id not in batch.certificate_ids and batch.complete:
            return
        who, at = batch.changed_by(cert_id)

        def done(theirs: CertificateDetail) -> None:
            if self.detail is None or self.detail.id != theirs.id:
                return
            self.form.changed_elsewhere(theirs, who, at)
            if self.form.detail is not None and self.form.detail.version == theirs.version:
                self.detail = theirs
            self._update_actions()

        self.runner.run(lambda _p, _c: self.service.get(cert_id, as_of), on_done=done,
                        on_error=lambda error: log.warning("reading certificate %s again: %s", cert_id, error),
                        parent=self)

    def _on_list_model_query_finished(self, _total: int) -> None:
        self._busy = False
        ids = self.list_model.ids
        if self._keep_current and self.detail is not None:  # read again after a change elsewhere
            self._keep_current = False
            self.ids = ids
            self.position_spin.setRange(1, max(1, len(ids)))
            self.position_total.setText(f"of {len(ids):,}")
            self.queue_loaded.emit(len(ids))
            if self.detail.id in ids:
                self.index = ids.index(self.detail.id)
            else:
                self.index = min(self.index, len(ids) - 1)
                self.statusBar().showMessage(f"Certificate {self.detail.id} left this list (changed on another "
                                             "desk); it stays here until you move on.", 8000)
            self._update_position()
            self._update_actions()
            return
        self._keep_current = False
        followers, self._followers = self._followers, None
        self.ids = ids
        self.position_spin.setRange(1, max(1, len(ids)))
        self.position_total.setText(f"of {len(ids):,}")
        self.queue_loaded.emit(len(ids))
        self.index = -1
        if not ids:
            self._show_empty()
            return
        target = 0
        if followers is not None:  # after a review: the next certificate that is still in the list
            where = {cert_id: i for i, cert_id in enumerate(ids)}
            target = next((where[c] for c in followers if c in where), len(ids) - 1)
        self._go_to(target)

    def _on_list_model_query_failed(self, error: BaseException) -> None:
        self._followers = None
        self._busy = False
        self._update_actions()
        present_error(self, error)

    def ask_position(self) -> None:
        """Ctrl+G: show the List pane with the position field ready for a number."""
        if not self.ids:
            return
        self.list_dock.show()
        self.position_spin.setValue(self.index + 1 if self.index >= 0 else 1)
        self.position_spin.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.position_spin.selectAll()

    def _on_position_spin_editing_finished(self) -> None:
        position = self.position_spin.value()
        if self.ids and position - 1 != self.index:
            self.go_to(position - 1)

    def _on_list_view_activated(self, index: Any) -> None:
        if index.isValid() and index.row() != self.index:
            self.go_to(index.row())

    def go_to(self, index: int) -> None:
        """Show the certificate at ``index`` of the queue; unsaved edits of the one shown are saved or
        discarded first (asked: Save / Discard / Cancel, which stays here with the edits)."""
        if not self.ids or self._busy:
            return
        self.form.leave(lambda: self._go_to(index))

    def _go_to(self, index: int) -> None:
        if not self.ids or self._busy:
            return
        index = max(0, min(index, len(self.ids) - 1))
        self.index = index
        cert_id, as_of = self.ids[index], self.as_of
        self._busy = True
        self._update_actions()
        self._update_position()

        def work(progress: Any, cancel: Any) -> tuple[CertificateDetail, tuple[str, bytes] | None, _Claim]:
            detail = self.service.get(cert_id, as_of)
            doc = self.documents.file_bytes(detail.documents[-1].id) if detail.documents else None
            return detail, doc, self._read_claim(cert_id)

        def done(result: tuple[CertificateDetail, tuple[str, bytes] | None, _Claim]) -> None:
            self._busy = False
            detail, doc, claim = result
            if self.ids[self.index] != detail.id:
                return
            self.claim, self.claim_mine = claim
            self._show(detail, doc)

        def failed(error: BaseException) -> None:
            self._busy = False
            self._update_actions()
            present_error(self, error)

        self.runner.run(work, on_done=done, on_error=failed, parent=self)

    def next(self) -> None:
        if self.index < len(self.ids) - 1:
            self.go_to(self.index + 1)

    def previous(self) -> None:
        if self.index > 0:
            self.go_to(self.index - 1)

    def approve(self) -> None:
        """Approve the certificate shown (saving edits first) and go to the next. Refused while the
        validation shows errors; warnings are listed and need an acknowledgement first."""
        if self.detail is None or self._busy or self._ack_dialog is not None:
            return
        if self.detail.review_state not in (ReviewState.PENDING, ReviewState.REJECTED):
            self.statusBar().showMessage(f"Certificate {self.detail.id} is {self.detail.review_state}: only a "
                                         "pending or rejected certificate can be approved.", 8000)
            return
        try:
            data = self.form.collect() if self.form.is_dirty() else None
        except ValueError:
            self.form.save()  # shows the unreadable dates next to their fields
            return
        findings = self.form.evaluate_live() if data is not None else self.form.engine_findings
        if any(f.severity == "error" for f in findings):
            self.statusBar().showMessage(blocked_message(self.detail.id, findings), 8000)
            self._update_actions()
            return
        detail = self.detail
        service, as_of = self.service, self.as_of

        def confirmed(acknowledge: bool, note: str) -> None:
            self._ack_dialog = None
            if self.detail is not detail:
                return

            # Kept across a Retry (busy database): edits already saved are not saved twice.
            pending: dict[str, Any] = {"version": detail.version, "data": data}

            def work(progress: Any, cancel: Any) -> CertificateDetail:
                if pending["data"] is not None:
                    pending["version"] = service.save(detail.id, pending["data"], expected_version=pending["version"],
                                                      as_of=as_of).version
                    pending["data"] = None
                return service.approve(detail.id, expected_version=pending["version"], as_of=as_of,
                                       acknowledge_warnings=acknowledge, note=note)

            self._run_review(work)

        warnings = [f for f in findings if f.severity == "warning"]
        self._ack_dialog = confirm_warnings(self, warnings, f"Approve certificate {detail.id} with warnings",
                                            confirmed, self.form.findings_panel.labels)
        if self._ack_dialog is not None:
            self._ack_dialog.rejected.connect(lambda: setattr(self, "_ack_dialog", None))

    def reject(self) -> None:
        """Ask the reason, reject the certificate shown and go to the next (unsaved edits are saved
        or discarded first: asked)."""
        if self.detail is None or self._busy:
            return
        self.form.leave(self._ask_reject_reason)

    def _ask_reject_reason(self) -> None:
        if self.detail is None or self._busy:
            return
        dlg = ReasonDialog("Reject certificate", "Why is this certificate rejected? The reason is kept and can "
                           "be sent to the customer.", self, ok_text="Reject",
                           suggestions=("not signed", "wrong form for the state", "permit number missing"))
        self._reason_dialog = dlg
        detail, service, as_of = self.detail, self.service, self.as_of

        def accepted() -> None:
            reason = dlg.reason()
            self._reason_dialog = None
            self._run_review(lambda p, c: service.reject(detail.id, reason, expected_version=detail.version,
                                                         as_of=as_of))

        dlg.accepted.connect(accepted)
        dlg.rejected.connect(lambda: setattr(self, "_reason_dialog", None))
        dlg.finished.connect(dlg.deleteLater)
        dlg.open()

    def set_claim_filter(self, claim: ClaimFilter | None) -> None:
        """Walk all the list's certificates (None), only those the reviewer claimed, or only the unclaimed
        pending ones, from the first (unsaved edits are saved or discarded first: asked)."""
        self.claim_combo.setCurrentIndex(max(0, self.claim_combo.findData(claim.value if claim else None)))
        if claim != self.query.claim:
            self.walk(replace(self.query, claim=claim), self.list_name)

    def _on_claim_combo_activated(self, _index: int) -> None:
        value = self.claim_combo.currentData()
        self.set_claim_filter(ClaimFilter(value) if value else None)

    def claim_current(self) -> None:
        """Claim the certificate shown (Ctrl+Shift+K): the other reviewers see that you work on it."""
        self._change_claim(lambda cert_id: self.claims.claim([cert_id]), "claimed by you")

    def release_current(self) -> None:
        """Release the claim on the certificate shown (yours; an approver may release anyone's)."""
        self._change_claim(lambda cert_id: self.claims.release([cert_id]), "released")

    def _change_claim(self, change: Any, said: str) -> None:
        if self.detail is None or self._busy:
            return
        cert_id = self.detail.id

        def work(progress: Any, cancel: Any) -> _Claim:
            change(cert_id)
            return self._read_claim(cert_id)

        def done(claim: _Claim) -> None:
            if self.detail is None or self.detail.id != cert_id:
                return
            self.claim, self.claim_mine = claim
            self.statusBar().showMessage(f"Certificate {cert_id} {said}.", 5000)
            self.list_model.reload_rows([cert_id])
            self.form.load_checks()  # the form's claim notice
            self._update_position()
            self._update_actions()
            self.claim_changed.emit(cert_id)

        def failed(error: BaseException) -> None:
            present_error(self, error)

        self.runner.run(work, on_done=done, on_error=failed, parent=self)

    def _read_claim(self, cert_id: int) -> _Claim:
        """(On a worker) the claim on the certificate and whether it is the reviewer's own."""
        claim = self.claims.claims([cert_id]).get(cert_id)
        return claim, claim is not None and claim.claimed_by.casefold() == self.db.actor().name.casefold()

    def show_help(self) -> None:
        if self._help is None:
            self._help = ShortcutHelpDialog(SHORTCUTS + tuple(s for s in VIEWER_SHORTCUTS
                                                               if s[0] not in {k for k, _ in SHORTCUTS}), self)
        self._help.show()
        self._help.raise_()

    # ------------------------------------------------------------------ internals

    def _run_review(self, work: Any) -> None:
        self._busy = True
        self._update_actions()

        def done(new: CertificateDetail) -> None:
            self.reviewed.emit(new)
            self.statusBar().showMessage(f"Certificate {new.id} {new.review_state}.", 5000)
            # The list is read again (still busy until it arrives): a certificate that left it (e.g.
            # approved out of "Pending review") is gone; the next one still in it opens. This
            # certificate's edits went with the review.
            pos = self.ids.index(new.id) if new.id in self.ids else self.index
            self._followers = self.ids[pos + 1:] + list(reversed(self.ids[:pos + 1]))
            self.list_model.refresh()

        def failed(error: BaseException) -> None:
            self._busy = False
            self._update_actions()
            if offer_retry(self, error, lambda: self._run_review(work), what="Your edits are still in the form."):
                return
            present_error(self, error)
            if self.detail is not None:  # e.g. refused by the validation: show what it found
                self.form.load_checks()

        self.runner.run(work, on_done=done, on_error=failed, parent=self)

    def _show(self, detail: CertificateDetail, doc: tuple[str, bytes] | None) -> None:
        self.detail = detail
        self.stack.setCurrentIndex(0)
        self.form.load(detail)
        if doc is not None:
            sha, data = doc
            info = detail.documents[-1]
            self.viewer.show_document(data, sha256=sha, name=info.original_name, rotation=info.view_rotation)
        else:
            self.viewer.clear("No document is attached to this certificate.")
        self._update_position()
        self._update_actions()
        self.form.focus_first_field()
        self.certificate_shown.emit(detail.id)

    def _on_form_suggestion_focused(self, suggestion: Suggestion | None) -> None:
        shown = self.detail.documents[-1].id if self.detail is not None and self.detail.documents else None
        highlight_suggestion(self.viewer, shown, suggestion)

    def _show_empty(self) -> None:
        self.detail = None
        self.claim, self.claim_mine = None, False
        self.index = -1
        self.form.load(None)
        self.viewer.clear("")
        self.empty.setText("No certificates are waiting for review." if self.list_name == "Pending review"
                           else f"No certificates are left in the list \u201c{self.list_name}\u201d.")
        self.stack.setCurrentIndex(1)
        self._update_position()
        self._update_actions()

    def _update_position(self) -> None:
        name = f" — {self.list_name}" if self.list_name else ""
        if not self.ids or self.index < 0:
            self.position.setText("Queue empty")
            self.setWindowTitle(f"Review queue{name}")
            return
        who = f" — {self.detail.customer_name}" if self.detail is not None else ""
        claim = f" — {self.claim.text()}" if self.claim is not None else ""
        self.position.setText(f"Certificate {self.index + 1} of {len(self.ids):,}{who}{claim}")
        self.setWindowTitle(f"Review queue{name} ({self.index + 1}/{len(self.ids):,})")
        if self.position_spin.value() != self.index + 1 and not self.position_spin.hasFocus():
            self.position_spin.setValue(self.index + 1)
        self._select_in_list()

    def _select_in_list(self) -> None:
        """Select the certificate shown in the List pane, when the pane is open (rows load up to it)."""
        if self.list_dock.isVisible() and 0 <= self.index < len(self.ids):
            self.list_model.fetch_until(self.index)
            self.list_view.selectRow(self.index)

    def _on_form_saved(self, detail: CertificateDetail) -> None:
        if self.detail is not None and self.detail.id == detail.id:
            self.detail = detail

    def _on_form_findings_changed(self, _findings: Any) -> None:
        self._update_actions()

    def keyPressEvent(self, event: Any) -> None:
        """J / K move through the queue when the focus is not in a text field (they reach the
        window only when the focused widget did not use them)."""
        focus = self.focusWidget()
        typing = isinstance(focus, (QLineEdit, QPlainTextEdit))
        if not typing and event.modifiers() == Qt.KeyboardModifier.NoModifier:
            if event.key() == Qt.Key.Key_J:
                self.next()
                return
            if event.key() == Qt.Key.Key_K:
                self.previous()
                return
        super().keyPressEvent(event)

    def close_without_asking(self) -> None:
        """Close now (the unsaved edits were already saved or discarded)."""
        self._close_confirmed = True
        self.close()

    def closeEvent(self, event: Any) -> None:
        if not self._close_confirmed and (self.form.is_dirty() or self.form.saving):
            event.ignore()  # asked first: Save / Discard / Cancel
            self.form.leave(self.close_without_asking)
            return
        self.viewer.shutdown()
        super().closeEvent(event)
        self.closed.emit()
