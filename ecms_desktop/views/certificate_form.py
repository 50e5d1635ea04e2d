"""The certificate edit form, built from the rules pack for the certificate's state(s), form and reason.

Edits are made on a copy; Save calls ``CertificateService.save`` once with the version the form was
loaded with, so a change someone else saved meanwhile is never overwritten (the user is told and can
reload). Archive / Unarchive ask for a reason. The History tab shows the audit trail.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QColor, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.errors import Cancelled, ConflictError, DatabaseBusyError, ValidationError
from ecms_desktop.models.enums import ReviewState, Status
from ecms_desktop.rules import RulesPack, UnknownFormError, UnknownStateError
from ecms_desktop.services.certificate_service import CertificateDetail, CertificateInput, LineInput
from ecms_desktop.services.database import Database
from ecms_desktop.services.form_spec import (
    ExpiryDecider,
    FieldFinding,
    FormSpec,
    build_form_spec,
    form_choices,
    local_findings,
    parse_date,
    parse_states,
)
from ecms_desktop.services.permit_service import LookupLink, PermitCheckInfo, lookup_link
from ecms_desktop.services.validation_service import (
    Finding,
    ValidationEngine,
    ValidationResult,
    subject_of,
)
from ecms_desktop.views.error_presenter import offer_retry, present_error
from ecms_desktop.views.findings_panel import (
    FindingsPanel,
    PermitCheckStatusWidget,
    RecordCheckDialog,
    field_labels,
)
from ecms_desktop.views.form_builder import REQUIRED_MARK, SEVERITY_COLOURS, FormBuilder, MessageLabel
from ecms_desktop.views.history_view import HistoryView
from ecms_desktop.views.operations import Operation, certificates, validation
from ecms_desktop.views.operations.validation import StoredChecks
from ecms_desktop.views.reason_dialog import ReasonDialog
from ecms_desktop.views.task_runner import TaskRunner
from ecms_desktop.views.wheel_guard import install_wheel_guard

STATUS_COLOURS = {
    Status.ACTIVE: ("#1b5e20", "#dcefdc"),
    Status.EXPIRING_SOON: ("#7a4f00", "#fff0c8"),
    Status.EXPIRED: ("#8e1b1b", "#f8dada"),
    Status.PENDING_REVIEW: ("#1f4e8c", "#dde8f7"),
    Status.REJECTED: ("#5c2a7a", "#eadcf3"),
    Status.ARCHIVED: ("#444444", "#e4e4e4"),
}
_DATE_ATTRS = ("signed_date", "effective_date")
#: Finding field names that are shown somewhere other than a generated field.
_ALIASES = {"signature": "signed", "form_code": "form", "states": "state", "expiry_date": "expiry_override",
            "expiry": "expiry_override", "lines": "state", "state_tax_id": "coverage"}


def _placed(f: Finding) -> Finding:
    """A finding about a whole state line (no field) goes beside the form or the states."""
    if f.field or not f.state:
        return f
    where = "form" if any(k in f.rule for k in ("refused", "not_accepted", "restriction")) else "state"
    return replace(f, field=where)


def status_badge_style(status: Status) -> str:
    fg, bg = STATUS_COLOURS.get(status, ("#333333", "#eeeeee"))
    return (f"color: {fg}; background: {bg}; border: 1px solid {fg}; border-radius: 9px; "
            "padding: 1px 9px; font-weight: bold;")


def _date_text(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


class UnreadableInput(ValueError):
    """What the form holds cannot be read (a date that is not a date): one finding per field, each
    message whole (never joined into one string and split again)."""

    def __init__(self, findings: list[FieldFinding]) -> None:
        super().__init__("\n".join(f"{f.field}: {f.message}" for f in findings))
        self.findings = findings


class CertificateForm(QWidget):
    """Edit one certificate. ``load(detail)`` shows it (None empties the form); ``saved(detail)`` fires
    after a save, archive or unarchive with the new :class:`CertificateDetail`; ``archive_requested()``
    fires when the user asks to archive or unarchive (the form then asks the reason and does it
    itself). ``show_findings(findings)`` shows validation messages next to their fields.

    Validation: the validation engine's findings are shown beside their fields and in the findings
    panel below the form - the stored latest run when a certificate is loaded, then live while
    editing (``ValidationService.evaluate`` is pure and takes well under a millisecond, so it runs
    on the GUI thread, debounced). Clicking a finding focuses its field. The permit-check status of
    each state shows below, with "Record check…" for a manual check with evidence."""

    saved = Signal(object)
    archive_requested = Signal()
    conflict_detected = Signal(str)
    loaded = Signal(object)
    #: The validation findings now shown (a list of Finding): live or the stored run.
    findings_changed = Signal(object)
    #: The stored validation run and permit checks of the loaded certificate arrived.
    checks_loaded = Signal()
    #: The user asked to approve from the findings panel ("Acknowledge and approve…").
    approve_requested = Signal()
    #: A manual permit check was recorded (PermitCheckInfo).
    permit_check_recorded = Signal(object)
    #: A save (or archive) was refused or failed (the error); the edits are still in the form.
    save_failed = Signal(object)

    def __init__(self, db: Database | None, rules: RulesPack, parent: QWidget | None = None, *,
                 runner: TaskRunner | None = None) -> None:
        super().__init__(parent)
        install_wheel_guard()  # before any combo box exists: the wheel scrolls the form, not values
        self.setObjectName("certificateForm")
        self._db = db
        self.rules = rules
        self.runner = runner or TaskRunner(self, max_threads=2)
        #: The rules engine, for the live findings (pure: it needs no database).
        self.engine = ValidationEngine(rules)
        #: The engine's findings now shown; ``findings_live`` says whether they come from the edits.
        self.engine_findings: list[Finding] = []
        self.findings_live = False
        self.stored_result: ValidationResult | None = None
        self.permit_checks: dict[str, PermitCheckInfo] = {}
        #: The lookup page of each state's permit registry, for the number on the form.
        self._links: dict[str, LookupLink] = {}
        self._checks_generation = 0
        self._record_dialog: RecordCheckDialog | None = None
        #: The service's reasons for refusing the last save (shown until the next load).
        self._save_findings: list[FieldFinding] = []
        self.detail: CertificateDetail | None = None
        self.spec: FormSpec | None = None
        self._as_of = dt.date.today()
        self._raw: dict[str, Any] = {}
        self._states: tuple[str, ...] = ()
        self._form_code = ""
        self._reason = ""
        self._decider: ExpiryDecider | None = None
        self._decider_company: int | None = None
        self._saving = False
        #: A save asked for while another runs: (on_saved, on_failed), run when that one ends.
        self._queued_save: tuple[Any, Any] | None = None
        #: Called with True/False when the running save (or archive) ends (leave() waits for it).
        self._after_save: list[Callable[[bool], None]] = []
        #: >0 while a record is being put on screen: edit signals then are not the user's edits.
        self._loading = 0
        self._unsaved_box: QMessageBox | None = None
        self._reason_dialog: ReasonDialog | None = None
        self._build()
        self.load(None)

    @property
    def db(self) -> Database | None:
        return self._db

    @db.setter
    def db(self, db: Database | None) -> None:
        """Use another database (the main window opens one after the form exists)."""
        self._db = db
        self.history.db = db

    def _database(self) -> Database:
        """The open database: the form holds a certificate only while one is open."""
        assert self._db is not None, "no database is open"
        return self._db

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        self.title = QLabel("")
        self.title.setObjectName("formTitle")
        self.title.setStyleSheet("font-size: 12pt; font-weight: bold;")
        self.title.setWordWrap(True)
        self.badge = QLabel("")
        self.badge.setObjectName("statusBadge")
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignTop)

        self.banner = QWidget()
        self.banner.setObjectName("formBanner")
        self.banner.setStyleSheet("#formBanner { background: #fdecea; border: 1px solid #c62828; }")
        bl = QHBoxLayout(self.banner)
        self.banner_label = QLabel("")
        self.banner_label.setObjectName("bannerText")
        self.banner_label.setWordWrap(True)
        self.reload_button = QPushButton("Reload")
        self.reload_button.setObjectName("reloadButton")
        self.reload_button.setToolTip("Load the certificate as it is now in the database (your edits are dropped)")
        self.reload_button.clicked.connect(self.reload)
        bl.addWidget(self.banner_label, 1)
        bl.addWidget(self.reload_button)
        self.banner.setVisible(False)

        # Selectors: the states, the form and the reason decide the rest of the form.
        sel = QGroupBox("Certificate")
        sel.setObjectName("group_selectors")
        sf = QFormLayout(sel)
        sf.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.states_edit = QLineEdit()
        self.states_edit.setObjectName("field_states")
        self.states_edit.setPlaceholderText("Two-letter codes, e.g. TX or WA, NC, OH")
        self.states_edit.setToolTip("The state(s) the certificate covers. A multi-state form lists several.")
        self.states_edit.editingFinished.connect(self._on_states_edit_editing_finished)
        self.states_msg = MessageLabel("state")
        self.form_combo = QComboBox()
        self.form_combo.setObjectName("field_form")
        self.form_combo.setToolTip("The certificate form the customer used")
        self.form_combo.activated.connect(self._on_form_combo_activated)
        self.form_msg = MessageLabel("form")
        for combo in (self.form_combo,):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(18)
        self.reason_combo = QComboBox()
        self.reason_combo.setObjectName("field_exempt_reason")
        self.reason_combo.setToolTip("The exempt reasons this form allows")
        self.reason_combo.activated.connect(self._on_reason_combo_activated)
        self.reason_msg = MessageLabel("exempt_reason")
        for label, editor, msg in (("States", self.states_edit, self.states_msg),
                                   ("Form", self.form_combo, self.form_msg),
                                   ("Exempt reason", self.reason_combo, self.reason_msg)):
            cell = QWidget()
            v = QVBoxLayout(cell)
            v.setContentsMargins(0, 0, 0, 0)
            v.setSpacing(1)
            v.addWidget(editor)
            v.addWidget(msg)
            lab = QLabel(label + REQUIRED_MARK)
            lab.setBuddy(editor)
            sf.addRow(lab, cell)
        self.form_note = QLabel("")
        self.form_note.setObjectName("formNote")
        self.form_note.setWordWrap(True)
        self.form_note.setStyleSheet("color: palette(mid);")
        sf.addRow(self.form_note)

        self.builder = FormBuilder()
        self.builder.edited.connect(self._on_builder_edited)
        self.builder.changed.connect(self._on_builder_changed)
        self._live_timer = QTimer(self)
        self._live_timer.setSingleShot(True)
        self._live_timer.setInterval(200)
        self._live_timer.timeout.connect(self.evaluate_live)

        # Coverage lines (multi-state forms) and the expiry.
        self.coverage_box = QGroupBox("States covered")
        self.coverage_box.setObjectName("group_coverage")
        cl = QVBoxLayout(self.coverage_box)
        self.coverage_table = QTableWidget(0, 6)
        self.coverage_table.setObjectName("coverageTable")
        self.coverage_table.setHorizontalHeaderLabels(["State", "Accepts form", "State ID", "Expiry", "Status",
                                                       "Basis"])
        self.coverage_table.verticalHeader().setVisible(False)
        self.coverage_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.coverage_table.setEditTriggers(QAbstractItemView.EditTrigger.AllEditTriggers)
        hh = self.coverage_table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.coverage_table.setMinimumHeight(120)
        self.coverage_msg = MessageLabel("coverage")
        self.coverage_table.itemChanged.connect(lambda _item: self._schedule_live())  # guarded while loading
        cl.addWidget(self.coverage_table)
        cl.addWidget(self.coverage_msg)

        self.expiry_box = QGroupBox("Expiry")
        self.expiry_box.setObjectName("group_expiry")
        ef = QFormLayout(self.expiry_box)
        ef.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.expiry_value = QLabel("")
        self.expiry_value.setObjectName("expiryComputed")
        self.expiry_value.setStyleSheet("font-weight: bold;")
        self.expiry_basis = QLabel("")
        self.expiry_basis.setObjectName("expiryBasis")
        self.expiry_basis.setWordWrap(True)
        self.expiry_source = QLabel("")
        self.expiry_source.setObjectName("expirySource")
        self.expiry_source.setWordWrap(True)
        self.expiry_source.setStyleSheet("color: palette(mid); font-size: 8pt;")
        self.expiry_printed = QLabel("")
        self.expiry_printed.setObjectName("expiryPrinted")
        self.expiry_printed.setWordWrap(True)
        self.override_edit = QLineEdit()
        self.override_edit.setObjectName("field_expiry_override")
        self.override_edit.setPlaceholderText("YYYY-MM-DD (leave empty to use the computed date)")
        self.override_edit.setToolTip("Set the expiry by hand (e.g. the date printed on the certificate); "
                                      "a reason is then required")
        self.override_edit.textChanged.connect(self._on_override_edit_text_changed)
        self.override_edit.textEdited.connect(lambda _t: self._schedule_live())
        self.override_edit.editingFinished.connect(self._on_override_edit_editing_finished)
        self.override_msg = MessageLabel("expiry_override")
        self.override_reason_edit = QLineEdit()
        self.override_reason_edit.setObjectName("field_expiry_override_reason")
        self.override_reason_edit.setPlaceholderText("Why the computed expiry does not apply")
        self.override_reason_msg = MessageLabel("expiry_override_reason")
        self.override_reason_edit.textEdited.connect(lambda _t: self._schedule_live())
        self.override_reason_label = QLabel("Override reason")
        self.override_reason_label.setTextFormat(Qt.TextFormat.RichText)
        ef.addRow("Computed expiry", self.expiry_value)
        ef.addRow("Basis", self.expiry_basis)
        ef.addRow("Source", self.expiry_source)
        ef.addRow(self.expiry_printed)
        ef.addRow("Override date", self._stack(self.override_edit, self.override_msg))
        ef.addRow(self.override_reason_label, self._stack(self.override_reason_edit, self.override_reason_msg))

        self.general_msg = MessageLabel("general")

        body = QWidget()
        bv = QVBoxLayout(body)
        bv.addWidget(sel)
        bv.addWidget(self.general_msg)
        bv.addWidget(self.builder)
        bv.addWidget(self.coverage_box)
        bv.addWidget(self.expiry_box)
        bv.addStretch(1)
        self.form_scroll = QScrollArea()
        self.form_scroll.setObjectName("formScroll")
        self.form_scroll.setWidgetResizable(True)
        self.form_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.form_scroll.setWidget(body)

        self.history = HistoryView(self.db, self.runner)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("formTabs")
        self.tabs.addTab(self.form_scroll, "Certificate")
        self.tabs.addTab(self.history, "History")
        self.tabs.currentChanged.connect(self._on_tabs_current_changed)

        self.save_button = QPushButton("Save")
        self.save_button.setObjectName("saveButton")
        self.save_button.setToolTip("Save your changes (Ctrl+S)")
        self.save_button.clicked.connect(self.save)
        self.revert_button = QPushButton("Revert")
        self.revert_button.setObjectName("revertButton")
        self.revert_button.setToolTip("Drop your changes and show the certificate as stored")
        self.revert_button.clicked.connect(self._on_revert_button_clicked)
        self.archive_button = QPushButton("Archive…")
        self.archive_button.setObjectName("archiveButton")
        self.archive_button.clicked.connect(self.request_archive)
        buttons = QHBoxLayout()
        buttons.addWidget(self.archive_button)
        buttons.addStretch(1)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.save_button)

        labels = field_labels(self.engine.label)
        self.findings_panel = FindingsPanel(None, labels)
        self.findings_panel.field_activated.connect(self._on_findings_panel_field_activated)
        self.findings_panel.acknowledge_requested.connect(self.approve_requested)
        self.permit_status = PermitCheckStatusWidget()
        self.permit_status.check_requested.connect(self.record_permit_check)
        self.permit_status.evidence_requested.connect(self.open_evidence)
        # Findings and permit checks share the lower pane as tabs: each gets the whole height.
        checks = QTabWidget()
        checks.setObjectName("checksTabs")
        checks.setDocumentMode(True)
        permit_scroll = QScrollArea()
        permit_scroll.setObjectName("permitScroll")
        permit_scroll.setWidgetResizable(True)
        permit_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        permit_page = QWidget()
        pv = QVBoxLayout(permit_page)
        pv.setContentsMargins(2, 2, 2, 2)
        pv.addWidget(self.permit_status)
        pv.addStretch(1)
        permit_scroll.setWidget(permit_page)
        checks.addTab(self.findings_panel, "Findings")
        checks.addTab(permit_scroll, "Permit checks")
        self.checks_tabs = checks
        self.checks_splitter = QSplitter(Qt.Orientation.Vertical)
        self.checks_splitter.setObjectName("checksSplitter")
        self.checks_splitter.setChildrenCollapsible(False)
        self.checks_splitter.addWidget(self.tabs)
        self.checks_splitter.addWidget(checks)
        self.checks_splitter.setStretchFactor(0, 3)
        self.checks_splitter.setStretchFactor(1, 1)
        self.checks_splitter.setSizes([480, 260])

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(head)
        layout.addWidget(self.banner)
        layout.addWidget(self.checks_splitter, 1)
        layout.addLayout(buttons)

        #: Ctrl+S while the focus is in the form. A window that hosts the form and wants Ctrl+S
        #: everywhere widens this action's context instead of adding a second Ctrl+S, which Qt would
        #: find ambiguous and ignore.
        self.save_action = QAction("&Save edits", self)
        self.save_action.setObjectName("saveAction")
        self.save_action.setShortcut(QKeySequence.StandardKey.Save)
        self.save_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.save_action.triggered.connect(self._on_save_action_triggered)
        self.addAction(self.save_action)

    @staticmethod
    def _stack(editor: QWidget, msg: QLabel) -> QWidget:
        cell = QWidget()
        v = QVBoxLayout(cell)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(1)
        v.addWidget(editor)
        v.addWidget(msg)
        return cell

    # ------------------------------------------------------------------ public API

    def set_as_of(self, date: dt.date) -> None:
        """The date statuses and expiries are shown as of."""
        self._as_of = date
        if self.detail is not None:
            self._refresh_expiry()

    @property
    def as_of(self) -> dt.date:
        return self._as_of

    @contextlib.contextmanager
    def _quiet(self) -> Iterator[None]:
        """Putting a record on screen: the edit handlers ignore what the widgets report meanwhile
        (they belong to the user's edits of the record shown, never to a record being loaded)."""
        self._loading += 1
        try:
            yield
        finally:
            self._loading -= 1

    def load(self, detail: CertificateDetail | None) -> None:
        """Show a certificate (a fresh copy to edit), or an empty, disabled form for None. Loading is
        atomic with respect to edits: nothing of the record shown before reaches the new one."""
        with self._quiet():
            self._load(detail)

    def _load(self, detail: CertificateDetail | None) -> None:
        self.detail = detail
        self.banner.setVisible(False)
        enabled = detail is not None
        for w in (self.tabs, self.save_button, self.revert_button, self.archive_button):
            w.setEnabled(enabled)
        if detail is None:
            self.title.setText("No certificate selected")
            self.badge.setVisible(False)
            self._raw, self._states, self._form_code, self._reason = {}, (), "", ""
            self.spec = None
            self.builder.clear()
            self.builder.setVisible(False)
            self.history.load(None)
            self._checks_generation += 1
            self._live_timer.stop()
            self.engine_findings, self.findings_live, self.stored_result = [], False, None
            self.permit_checks = {}
            self.findings_panel.set_findings([])
            self.findings_panel.setEnabled(False)
            self.permit_status.set_checks([], {}, as_of=self._as_of, max_age_days=365)
            self.findings_changed.emit([])
            return
        self.findings_panel.setEnabled(True)
        self.builder.setVisible(True)
        d = detail.data
        self.title.setText(f"{detail.customer_name} ({detail.customer_number}) — certificate {detail.id}")
        self.badge.setText(detail.status.label)
        self.badge.setStyleSheet(status_badge_style(detail.status))
        self.badge.setVisible(True)
        self.archive_button.setText("Unarchive…" if detail.review_state == ReviewState.ARCHIVED else "Archive…")
        self.archive_button.setToolTip("Bring the certificate back into use (asks why)"
                                       if detail.review_state == ReviewState.ARCHIVED
                                       else "Take the certificate out of use (asks why)")
        self._raw = self._raw_from_input(d)
        self._states = tuple(line.state for line in d.lines)
        self._form_code, self._reason = d.form_code, d.exempt_reason
        self.override_edit.setText(_date_text(d.expiry_override))
        self.override_reason_edit.setText(d.expiry_override_reason)
        if self._decider_company != d.company_id:
            self._decider, self._decider_company = None, d.company_id
            self._load_decider(d.company_id)
        self.stored_result = None
        self._save_findings = []
        self.engine_findings, self.findings_live = [], False
        self._rebuild(keep_typed=False)
        self._live_timer.stop()
        self.evaluate_live(live=False)  # at once (pure); replaced by the stored run when it arrives
        self.load_checks()
        if self.tabs.currentWidget() is self.history:
            self.history.load(detail.id)
        else:
            self.history.load(None)
        self.loaded.emit(detail)

    def reload(self) -> None:
        """Load the stored certificate again (dropping edits); used after a conflict."""
        if self.detail is None:
            return
        certificates.reload_certificate(self._database(), self.rules, self.detail.id, self._as_of) \
            .success(self.load).failure(lambda error: present_error(self, error)).run(self.runner)

    def show_findings(self, findings: Sequence[Finding | FieldFinding]) -> None:
        """Show validation findings (the engine's or the form's own) next to their fields. Findings
        for a state go to that state's coverage line; others whose field is not on the form go to the
        top of the form. Replaces the messages shown before."""
        for message_label in self._message_labels():
            message_label.set_items([])
        rows: dict[str, list[tuple[str, str]]] = {}
        for f in findings:
            severity = f.severity or "error"
            message = f.message
            state = f.state
            name = _ALIASES.get(f.field, f.field)
            if state and self.spec is not None and self.spec.multistate and name in ("coverage", "state", "form"):
                rows.setdefault(state, []).append((severity, message))
                self.coverage_msg.add(severity, message if message.startswith(f"{state}:") else f"{state}: {message}")
                continue
            label = self._label_for(name)
            if label is None:
                label = self.general_msg
                if name and name not in ("general", ""):
                    message = f"{name.replace('_', ' ').capitalize()}: {message}"
            label.add(severity, message)
        self._mark_coverage_rows(rows)

    def findings_shown(self) -> dict[str, list[tuple[str, str]]]:
        """The messages on screen by field (for tests and screenshots)."""
        return {lab.objectName()[4:]: list(lab.items) for lab in self._message_labels() if lab.items}

    def is_dirty(self) -> bool:
        """Whether the form holds edits not saved yet."""
        if self.detail is None:
            return False
        if parse_states(self.states_edit.text()) != self._states:
            return True  # states typed but not yet applied (the field still has the focus)
        try:
            return self.collect() != self.detail.data
        except ValueError:
            return True

    def collect(self) -> CertificateInput:
        """The certificate as edited (a new CertificateInput); :class:`UnreadableInput` (a ValueError)
        names each field that cannot be read, such as a date that is not a date."""
        assert self.detail is not None
        raw = {**self._raw, **self.builder.raw_values()}
        changes: dict[str, Any] = {}
        errors: list[FieldFinding] = []
        for key, value in raw.items():
            if key in _DATE_ATTRS:
                try:
                    changes[key] = parse_date(str(value or ""))
                except ValueError as exc:
                    errors.append(FieldFinding(key, "error", str(exc)))
            elif key in ("signed",):
                changes[key] = bool(value)
            elif key != "state_tax_ids":
                changes[key] = value if value is not None else ""
        try:
            changes["expiry_override"] = parse_date(self.override_edit.text())
        except ValueError as exc:
            errors.append(FieldFinding("expiry_override", "error", str(exc)))
        changes["expiry_override_reason"] = (self.override_reason_edit.text()
                                             if self.override_edit.text().strip() else "")
        if errors:
            raise UnreadableInput(errors)
        ids = self._state_ids()
        old_lines = {line.state: line for line in self.detail.data.lines}
        lines = tuple(LineInput(s, ids.get(s, old_lines[s].state_tax_id if s in old_lines else ""),
                                old_lines[s].local_jurisdictions if s in old_lines else ())
                      for s in self._states)
        changes.update(form_code=self._form_code, exempt_reason=self._reason, lines=lines)
        known = set(CertificateInput.__dataclass_fields__)
        return replace(self.detail.data, **{k: v for k, v in changes.items() if k in known})

    def focus_first_field(self) -> str:
        """Put the cursor where the accountant types next: the first empty required field, else the
        first field. Returns the field's storage name."""
        target = ""
        for key in self.builder.order:
            spec = self.builder.specs[key]
            if spec.required and spec.kind != "info" and self.builder.is_empty(key):
                target = key
                break
        if not target:
            target = next((k for k in self.builder.order if self.builder.specs[k].kind != "info"), "")
        editor = self.builder.editor(target) if target else None
        if editor is not None:
            self.tabs.setCurrentIndex(0)
            editor.setFocus(Qt.FocusReason.OtherFocusReason)
            self.form_scroll.ensureWidgetVisible(editor)
        return target

    @property
    def saving(self) -> bool:
        """Whether a save (or archive) is running."""
        return self._saving

    def save(self, on_saved: Callable[[CertificateDetail], None] | None = None,
             on_failed: Callable[[], None] | None = None) -> None:
        """Save the edited copy once, with the version it was loaded with. A save asked for while
        another runs is queued (the button says so) and runs when that one ends, never dropped.
        ``on_saved(detail)`` / ``on_failed()`` follow the outcome (the edits stay in the form on failure)."""
        if self.detail is None:
            if on_failed:
                on_failed()
            return
        if self._saving:
            self._queued_save = (on_saved, on_failed)
            self.save_button.setText("Save (queued)")
            return
        try:
            data = self.collect()
        except UnreadableInput as exc:
            self._save_findings = list(exc.findings)
            self._show_local_findings()
            self.save_failed.emit(exc)
            if on_failed:
                on_failed()
            return
        operation = certificates.save_certificate(self._database(), self.rules, self.detail.id, self.detail.version,
                                                  data, as_of=self._as_of)
        self._run_change(operation, retry=lambda: self.save(on_saved, on_failed), sent=data,
                         on_saved=on_saved, on_failed=on_failed)

    def leave(self, proceed: Callable[[], None], cancelled: Callable[[], None] | None = None) -> None:
        """Before the form is given another certificate (or closes): with unsaved edits ask Save /
        Discard / Cancel. ``proceed()`` runs at once when there is nothing to save, after Discard, or
        after the save succeeded; Cancel (or a failed save) keeps the edits and calls ``cancelled()``."""
        if self._saving:  # a save is running: decide once it has ended (its edits are then stored)
            self._after_save.append(lambda ok: self.leave(proceed, cancelled) if ok else
                                    (cancelled() if cancelled else None))
            return
        if not self.is_dirty():
            proceed()
            return
        if self._unsaved_box is not None:  # already asking
            if cancelled:
                cancelled()
            return
        detail = self.detail
        assert detail is not None
        buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                   | QMessageBox.StandardButton.Cancel)
        box = QMessageBox(QMessageBox.Icon.Question, "Unsaved edits",
                          f"Certificate {detail.id} ({detail.customer_name}) has edits that are not saved.",
                          buttons, self.window())
        box.setObjectName("unsavedEditsBox")
        box.setInformativeText("Save them, discard them, or cancel to go back to the form with your edits.")
        box.setDefaultButton(QMessageBox.StandardButton.Save)
        box.setEscapeButton(QMessageBox.StandardButton.Cancel)
        self._unsaved_box = box

        def answered(_result: int) -> None:
            self._unsaved_box = None
            clicked = box.standardButton(box.clickedButton()) if box.clickedButton() else None
            box.deleteLater()
            if clicked == QMessageBox.StandardButton.Save:
                self.save(lambda _d: proceed(), cancelled)
            elif clicked == QMessageBox.StandardButton.Discard:
                if self.detail is detail:
                    self.load(detail)  # back to the stored certificate: the edits are gone, as asked
                proceed()
            elif cancelled:
                cancelled()

        box.finished.connect(answered)
        box.open()

    @property
    def unsaved_dialog(self) -> QMessageBox | None:
        """The Save / Discard / Cancel question now open, if any."""
        return self._unsaved_box

    def request_archive(self) -> None:
        """Archive (or unarchive) after asking the reason."""
        if self.detail is None:
            return
        self.archive_requested.emit()
        archived = self.detail.review_state == ReviewState.ARCHIVED
        dlg = ReasonDialog("Unarchive certificate" if archived else "Archive certificate",
                           ("Why is this certificate brought back into use?" if archived else
                            "Why is this certificate taken out of use? It will no longer cover new sales."),
                           self, ok_text="Unarchive" if archived else "Archive",
                           suggestions=() if archived else ("replaced by a newer certificate",
                                                            "customer closed"))
        self._reason_dialog = dlg
        dlg.accepted.connect(lambda: self._archive(dlg.reason(), archived))
        dlg.finished.connect(dlg.deleteLater)
        dlg.open()

    @property
    def reason_dialog(self) -> ReasonDialog | None:
        """The reason dialog currently open (tests type into it)."""
        return self._reason_dialog

    # ------------------------------------------------------------------ internals

    def _archive(self, reason: str, archived: bool) -> None:
        self._reason_dialog = None
        if self.detail is None:
            return
        change = certificates.unarchive_certificate if archived else certificates.archive_certificate
        operation = change(self._database(), self.rules, self.detail.id, self.detail.version, reason,
                           as_of=self._as_of)
        self._run_change(operation, retry=lambda: self._archive(reason, archived))

    def _run_change(self, operation: Operation[CertificateDetail], *, retry: Callable[[], None],
                    sent: CertificateInput | None = None,
                    on_saved: Callable[[CertificateDetail], None] | None = None,
                    on_failed: Callable[[], None] | None = None) -> None:
        """Run a change off the GUI thread. ``sent`` is the data a save stores: edits typed while it
        runs stay in the form. A busy database is said plainly, with Retry."""
        self._saving = True
        self.save_button.setEnabled(False)
        self.save_button.setText("Saving…")

        def finish() -> tuple[Any, Any] | None:
            self._saving = False
            self.save_button.setEnabled(self.detail is not None)
            self.save_button.setText("Save")
            queued, self._queued_save = self._queued_save, None
            return queued

        def tell_waiting(ok: bool) -> None:
            waiting, self._after_save = self._after_save, []
            for callback in waiting:
                callback(ok)

        def done(detail: CertificateDetail) -> None:
            if not shiboken6.isValid(self):
                return
            queued = finish()
            shown = self.detail
            if shown is None or shown.id != detail.id:
                self.saved.emit(detail)  # the form moved on meanwhile: never show this one again
            else:
                try:
                    edited_meanwhile = sent is not None and self.collect() != sent
                except ValueError:
                    edited_meanwhile = True
                if queued is not None or edited_meanwhile:
                    self.detail = detail  # the new version; what was typed since stays in the form
                    self.badge.setText(detail.status.label)
                    self.badge.setStyleSheet(status_badge_style(detail.status))
                else:
                    self.load(detail)
                self.saved.emit(detail)
            if on_saved:
                on_saved(detail)
            if queued is not None:
                self.save(*queued)
            else:
                tell_waiting(True)

        def failed(error: BaseException) -> None:
            if not shiboken6.isValid(self):
                return
            queued = finish()
            self.save_failed.emit(error)
            if on_failed:
                on_failed()
            tell_waiting(False)  # whoever waited to move on stays with the edits
            if isinstance(error, Cancelled):
                return
            if isinstance(error, DatabaseBusyError):
                # Retry saves what the form holds then (a save queued meanwhile included).
                again = (lambda: self.save(*queued)) if queued is not None else retry
                offer_retry(self, error, again, what="Your edits are still in the form.")
                return
            if isinstance(error, ConflictError):
                self.banner_label.setText(f"{error}\n\nYour edits are still in the form; press Reload to see the "
                                          "current version (your edits will be dropped).")
                self.banner.setVisible(True)
                self.conflict_detected.emit(str(error))
                if queued is not None and queued[1]:
                    queued[1]()  # a save queued meanwhile would meet the same conflict
                return
            if isinstance(error, ValidationError):
                # Kept on screen (with the live findings) until the certificate is loaded again.
                self._save_findings = ([FieldFinding(p.column or "general", "error", p.message)
                                        for p in error.problems] if error.problems
                                       else [FieldFinding("general", "error", str(error))])
                self._show_local_findings()
            else:
                present_error(self, error)
            if queued is not None:
                self.save(*queued)  # asked for after more typing (e.g. the missing reason): runs now

        operation.success(done).failure(failed).run(self.runner)

    def _load_decider(self, company_id: int) -> None:
        validation.read_expiry_decider(self._database(), self.rules, company_id) \
            .success(lambda decider: self._on_decider_read(company_id, decider)) \
            .failure(lambda _error: None).run(self.runner)  # the rules pack's expiry is shown meanwhile

    def _on_decider_read(self, company_id: int, decider: ExpiryDecider) -> None:
        if self._decider_company == company_id:
            self._decider = decider
            if self.detail is not None:
                self._refresh_expiry()

    @staticmethod
    def _raw_from_input(d: CertificateInput) -> dict[str, Any]:
        raw: dict[str, Any] = {}
        for name in ("certificate_number", "purchaser_name", "purchaser_address", "purchaser_tax_id",
                     "purchaser_ein", "business_type", "business_description", "property_description",
                     "exemption_detail", "po_number", "signer_name", "signer_title", "notes",
                     "certificate_type"):
            raw[name] = getattr(d, name)
        raw["signed"] = d.signed
        raw["signed_date"] = _date_text(d.signed_date)
        raw["effective_date"] = _date_text(d.effective_date)
        raw["state_tax_ids"] = {line.state: line.state_tax_id for line in d.lines}
        return raw

    def _dates(self) -> tuple[dt.date | None, dt.date | None, dt.date | None]:
        def safe(text: str) -> dt.date | None:
            try:
                return parse_date(text)
            except ValueError:
                return None
        raw = self._raw
        return (safe(str(raw.get("effective_date") or "")), safe(str(raw.get("signed_date") or "")),
                safe(self.override_edit.text()))

    def _make_spec(self) -> FormSpec:
        effective, signed, override = self._dates()
        raw = self._raw
        present = [k for k, v in raw.items() if v not in (None, "", False) and not isinstance(v, dict)]
        assert self.detail is not None
        return build_form_spec(
            self.rules, form_code=self._form_code, states=self._states, exempt_reason=self._reason,
            certificate_type=str(raw.get("certificate_type") or "blanket"), effective_date=effective,
            signed_date=signed, expiry_override=override,
            expiry_override_reason=self.override_reason_edit.text(), state_tax_ids=self._state_ids(),
            present=present, review_state=self.detail.review_state, as_of=self._as_of,
            decide=self._decider,
        )

    def _state_ids(self) -> dict[str, str]:
        ids = dict(self._raw.get("state_tax_ids") or {})
        for r in range(self.coverage_table.rowCount()):
            st, val = self.coverage_table.item(r, 0), self.coverage_table.item(r, 2)
            if st is not None and val is not None and self.coverage_box.isVisible():
                ids[st.text()] = val.text().strip()
        return ids

    def _rebuild(self, *, keep_typed: bool = True) -> None:
        """Rebuild the generated fields for the current states, form and reason (values kept)."""
        if self.detail is None:
            return
        with self._quiet():
            self._rebuild_fields(keep_typed)
        if keep_typed:  # the user changed the states, form, reason or type: check again
            self._schedule_live()

    def _rebuild_fields(self, keep_typed: bool) -> None:
        assert self.detail is not None
        if not keep_typed:
            self.builder.clear()
            self.coverage_table.setRowCount(0)
        if self.builder.editors and keep_typed:
            self._raw.update(self.builder.raw_values())
        self._raw["state_tax_ids"] = self._state_ids()
        self.states_edit.setText(", ".join(self._states))
        self.form_combo.clear()
        for choice in form_choices(self.rules, self._states, self._form_code):
            label = choice.label if len(choice.label) < 70 else choice.label[:67] + "…"
            if choice.multistate and not choice.accepted:
                label += "  (not all states)"
            self.form_combo.addItem(label, choice.code)
        idx = self.form_combo.findData(self.rules.form(self._form_code).code if self._known_form() else
                                       self._form_code)
        self.form_combo.setCurrentIndex(max(idx, 0))
        self.spec = spec = self._make_spec()
        self.reason_combo.clear()
        for code, label in spec.reasons:
            self.reason_combo.addItem(label, code)
        if not spec.reason_allowed:
            self.reason_combo.addItem(f"{self._reason} (not on this form)", self._reason)
        self.reason_combo.setCurrentIndex(max(self.reason_combo.findData(self._reason), 0))
        note = spec.form_name
        if spec.single_use_allowed:
            note += " · may be used for a single purchase"
        self.form_note.setText(note)
        self.form_note.setToolTip(spec.form_note)
        self.builder.build(spec, self._raw, seller=self.detail.company_name)
        self._fill_coverage(spec)
        self._fill_expiry(spec)
        self._show_local_findings()

    def _known_form(self) -> bool:
        try:
            self.rules.form(self._form_code)
        except UnknownFormError:
            return False
        return True

    def _refresh_expiry(self) -> None:
        if self.detail is None or not self._states:
            return
        if self.builder.editors:
            self._raw.update(self.builder.raw_values())
        self._raw["state_tax_ids"] = self._state_ids()
        self.spec = spec = self._make_spec()
        self._fill_coverage(spec)
        self._fill_expiry(spec)

    def _fill_coverage(self, spec: FormSpec) -> None:
        t = self.coverage_table
        t.blockSignals(True)
        t.setRowCount(len(spec.coverage))
        for r, line in enumerate(spec.coverage):
            status = line.status.label if line.status else ""
            values = [line.state, "yes" if line.accepted else "NO", line.state_tax_id,
                      _date_text(line.expiry_date) or "no expiry", status, line.expiry_basis]
            for c, text in enumerate(values):
                item = QTableWidgetItem(text)
                if c != 2:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                else:
                    item.setToolTip(f"{line.permit_label}: {line.permit_hint}")
                if c == 1:
                    item.setToolTip(line.acceptance_message)
                    if not line.accepted:
                        item.setForeground(QColor(SEVERITY_COLOURS["error"]))
                if c == 5:
                    item.setToolTip(f"{line.expiry_basis}\nSource: {line.expiry_source}")
                t.setItem(r, c, item)
        t.blockSignals(False)
        self.coverage_box.setVisible(spec.multistate)
        t.setFixedHeight(t.horizontalHeader().height() + sum(t.rowHeight(r) for r in range(t.rowCount())) + 6)

    def _mark_coverage_rows(self, rows: dict[str, list[tuple[str, str]]]) -> None:
        t = self.coverage_table
        t.blockSignals(True)  # colouring is not an edit (no live re-check)
        try:
            self._colour_coverage_rows(rows)
        finally:
            t.blockSignals(False)

    def _colour_coverage_rows(self, rows: dict[str, list[tuple[str, str]]]) -> None:
        t = self.coverage_table
        for r in range(t.rowCount()):
            state_item = t.item(r, 0)
            if state_item is None:
                continue
            items = rows.get(state_item.text(), [])
            worst = "error" if any(s == "error" for s, _ in items) else ("warning" if items else "")
            for c in range(t.columnCount()):
                it = t.item(r, c)
                if it is None:
                    continue
                if worst:
                    it.setBackground(QColor("#fbe3e3" if worst == "error" else "#fff1cf"))
                else:
                    it.setData(Qt.ItemDataRole.BackgroundRole, None)
            if items:
                state_item.setToolTip("\n".join(m for _, m in items))

    def _fill_expiry(self, spec: FormSpec) -> None:
        e = spec.expiry
        if e.override is not None:
            value = f"{e.override.isoformat()} (set by hand)"
        elif e.date is not None:
            value = e.date.isoformat()
            if self.detail is not None:
                left = (e.date - self._as_of).days
                value += f"  ({left} days left as of {self._as_of.isoformat()})" if left >= 0 else \
                    f"  (expired {-left} days before {self._as_of.isoformat()})"
        else:
            value = "No expiry"
        self.expiry_value.setText(value)
        self.expiry_basis.setText(e.basis + (f" · confidence: {e.confidence}" if e.confidence else ""))
        self.expiry_source.setText(e.source)
        self.expiry_printed.setText(
            "This form prints an expiration date: compare it with the computed date. If they differ, "
            "type the printed date as the override with the reason." if e.printed_on_form else "")
        self.expiry_printed.setVisible(e.printed_on_form)
        self._on_override_edit_text_changed(self.override_edit.text())

    def _show_local_findings(self) -> None:
        if self.spec is None:
            return
        raw = {**self._raw, **self.builder.raw_values()}
        raw["expiry_override_reason"] = self.override_reason_edit.text()
        raw["state_tax_ids"] = self._state_ids()
        local = local_findings(self.spec, raw)
        # The engine's findings beside their fields; the form's own checks (unreadable dates, formats
        # as typed) where the engine has nothing to say about that field.
        engine: list[Finding] = []
        seen: set[tuple[str, str, str]] = set()
        for f in map(_placed, self.engine_findings):
            # A multi-state form repeats a missing field per state line: once beside the field is enough.
            key = (f.field, f.severity, f.message)
            if key not in seen:
                seen.add(key)
                engine.append(f)
        covered = {_ALIASES.get(f.field, f.field) for f in engine}
        shown: list[Finding | FieldFinding] = [*engine, *(f for f in local
                                                          if _ALIASES.get(f.field, f.field) not in covered)]
        texts = {(f.field, f.message) for f in shown}
        shown += [f for f in self._save_findings if (f.field, f.message) not in texts]
        self.show_findings(shown)

    # ------------------------------------------------------------------ validation and permit checks

    def _schedule_live(self) -> None:
        if self.detail is not None and not self._loading:
            self._live_timer.start()

    def evaluate_live(self, live: bool = True) -> list[Finding]:
        """Run the validation engine on the form as edited (nothing stored) and show its findings."""
        if self.detail is None:
            return []
        try:
            data = self.collect()
        except ValueError:
            return self.engine_findings  # an unreadable date: the form's own message says so
        findings = self.engine.evaluate(subject_of(data, customer_name=self.detail.customer_name), self._as_of)
        self._set_engine_findings(findings, live=live)
        return findings

    def _set_engine_findings(self, findings: list[Finding], *, live: bool,
                             stored: ValidationResult | None = None) -> None:
        self.engine_findings = list(findings)
        self.findings_live = live
        if stored is not None and not live:
            self.findings_panel.set_result(stored)
            self.findings_panel.summary.setText(
                self.findings_panel.summary.text().replace(" - ", f" (stored check, {stored.ran_by}) - ", 1)
                if stored.findings else self.findings_panel.summary.text())
        else:
            self.findings_panel.set_findings(self.engine_findings, checked_on=self._as_of,
                                             rules_version=self.rules.version)
        self._show_local_findings()
        errors = sum(f.severity == "error" for f in self.engine_findings)
        warnings = sum(f.severity == "warning" for f in self.engine_findings)
        counts = ", ".join(f"{n} {w}{'s' if n != 1 else ''}"
                           for n, w in ((errors, "error"), (warnings, "warning")) if n)
        self.checks_tabs.setTabText(0, f"Findings ({counts})" if counts else "Findings")
        self.findings_changed.emit(list(self.engine_findings))

    @property
    def has_errors(self) -> bool:
        """Whether errors remain (approval is blocked)."""
        return any(f.severity == "error" for f in self.engine_findings)

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.engine_findings if f.severity == "warning"]

    def load_checks(self) -> None:
        """Read the stored latest validation run and the permit checks off the GUI thread."""
        if self.detail is None:
            return
        self._checks_generation += 1
        generation = self._checks_generation
        validation.read_checks(self._database(), self.rules, self.detail.id, self.detail.data.company_id) \
            .success(lambda stored: self._on_checks_loaded(generation, stored)) \
            .failure(lambda _error: None).run(self.runner)  # the live findings stay on screen

    def _on_checks_loaded(self, generation: int, stored: StoredChecks) -> None:
        if not shiboken6.isValid(self) or generation != self._checks_generation or self.detail is None:
            return  # the form was closed (or moved on) while the checks were read
        latest, checks, max_age = stored.latest, stored.permit_checks, stored.max_age_days
        self.permit_checks = checks
        states = list(self._states)
        ids = self._state_ids()
        links = {}
        for st in states:
            number = ids.get(st) or str(self._raw.get("purchaser_tax_id") or "")
            try:
                links[st] = lookup_link(self.rules, st, number)
            except UnknownStateError:  # no such state in the rules pack: no link
                continue
        self._links = links
        self.permit_status.set_checks(states, checks, as_of=self._as_of, max_age_days=max_age, links=links)
        unchecked = sum(st not in checks for st in states)
        self.checks_tabs.setTabText(1, f"Permit checks ({unchecked} not checked)" if unchecked else "Permit checks")
        if latest is not None and not self.findings_live:
            self.stored_result = latest
            self._set_engine_findings(list(latest.findings), live=False, stored=latest)
        self.checks_loaded.emit()

    def set_stored_result(self, result: ValidationResult) -> None:
        """Show a validation run just stored (Validate now)."""
        if self.detail is None or result.certificate_id != self.detail.id:
            return
        self.stored_result = result
        self._set_engine_findings(list(result.findings), live=False, stored=result)

    def focus_field(self, field: str, state: str = "") -> bool:
        """Put the cursor in the field a finding is about (the state's coverage line on a multi-state
        form). Returns whether a field was found."""
        name = _ALIASES.get(field, field) if field else ("state" if state else "")
        self.tabs.setCurrentIndex(0)
        if state and self.spec is not None and self.spec.multistate and name in (
                "coverage", "state", "form", "purchaser_tax_id", ""):
            t = self.coverage_table
            for r in range(t.rowCount()):
                item = t.item(r, 0)
                if item is not None and item.text() == state:
                    t.setCurrentCell(r, 2)
                    t.setFocus(Qt.FocusReason.OtherFocusReason)
                    self.form_scroll.ensureWidgetVisible(t)
                    return True
        fixed: dict[str, QWidget] = {"state": self.states_edit, "form": self.form_combo,
                                     "exempt_reason": self.reason_combo, "expiry_override": self.override_edit,
                                     "expiry_override_reason": self.override_reason_edit,
                                     "coverage": self.coverage_table}
        editor = fixed.get(name) or (self.builder.editor(name) if name else None)
        if editor is None or not editor.isVisibleTo(self):
            return False
        editor.setFocus(Qt.FocusReason.OtherFocusReason)
        self.form_scroll.ensureWidgetVisible(editor)
        return True

    def record_permit_check(self, state: str) -> None:
        """Ask for a manual check's result, source and evidence, then record it off the GUI thread."""
        if self.detail is None:
            return
        number = self._state_ids().get(state) or str(self._raw.get("purchaser_tax_id") or "")
        dlg = RecordCheckDialog(state, number, self._links.get(state), self)
        self._record_dialog = dlg
        dlg.accepted.connect(lambda: self._record_check(state, number, dlg.values()))
        dlg.finished.connect(dlg.deleteLater)
        dlg.open()

    @property
    def record_dialog(self) -> RecordCheckDialog | None:
        return self._record_dialog

    def _record_check(self, state: str, number: str, values: dict[str, str]) -> None:
        self._record_dialog = None
        if self.detail is None:
            return
        if not values["evidence"]:
            present_error(self, ValidationError("Attach the evidence of the lookup (a PDF or a screenshot)."))
            return
        validation.record_permit_check(self._database(), self.rules, self.detail.id, state=state, number=number,
                                       values=values, as_of=self._as_of) \
            .success(self._on_permit_check_recorded).failure(lambda error: present_error(self, error)) \
            .run(self.runner, parent=self)

    def _on_permit_check_recorded(self, info: PermitCheckInfo) -> None:
        self.findings_live = False
        self.load_checks()
        self.permit_check_recorded.emit(info)

    def open_evidence(self, document_id: int) -> None:
        """Open a permit check's evidence file with the system viewer (a copy in a temporary folder)."""
        certificates.copy_evidence(self._database(), document_id) \
            .success(self._on_evidence_copied).failure(lambda error: present_error(self, error)).run(self.runner)

    def _on_evidence_copied(self, path: Path) -> None:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))

    def _message_labels(self) -> list[MessageLabel]:
        return [*self.builder.messages.values(), self.states_msg, self.form_msg, self.reason_msg,
                self.coverage_msg, self.override_msg, self.override_reason_msg, self.general_msg]

    def _label_for(self, name: str) -> MessageLabel | None:
        fixed = {"state": self.states_msg, "form": self.form_msg, "exempt_reason": self.reason_msg,
                 "coverage": self.coverage_msg, "expiry_override": self.override_msg,
                 "expiry_override_reason": self.override_reason_msg, "general": self.general_msg}
        if name in fixed:
            return fixed[name]
        return self.builder.message_label(name)

    # ------------------------------------------------------------------ slots

    def _on_states_edit_editing_finished(self) -> None:
        if self._loading:
            return
        states = parse_states(self.states_edit.text())
        if states != self._states:
            self._states = states
            self._rebuild()

    def _on_form_combo_activated(self, index: int) -> None:
        if self._loading:
            return
        code = self.form_combo.itemData(index)
        if code and code != self._form_code:
            self._form_code = code
            if self.spec is not None:
                form = self.rules.form(code)
                if self._reason not in form.exempt_reasons and len(form.exempt_reasons) == 1:
                    self._reason = form.exempt_reasons[0]
            self._rebuild()

    def _on_reason_combo_activated(self, index: int) -> None:
        if self._loading:
            return
        code = self.reason_combo.itemData(index)
        if code and code != self._reason:
            self._reason = code
            self._rebuild()

    def _on_builder_changed(self, _attr: str) -> None:
        self._schedule_live()

    def _on_findings_panel_field_activated(self, field: str, state: str) -> None:
        self.focus_field(field, state)

    def _on_builder_edited(self, attr: str) -> None:
        if self._loading:
            return
        if attr == "certificate_type":
            self._rebuild()
        elif attr in _DATE_ATTRS:
            self._refresh_expiry()

    def _on_override_edit_editing_finished(self) -> None:
        if not self._loading:
            self._refresh_expiry()

    def _on_override_edit_text_changed(self, text: str) -> None:
        on = bool(text.strip())
        self.override_reason_edit.setEnabled(on)
        self.override_reason_edit.setProperty("required", on)
        self.override_reason_label.setText("Override reason" + (REQUIRED_MARK if on else ""))

    def _on_save_action_triggered(self) -> None:
        self.save()

    def _on_revert_button_clicked(self) -> None:
        self.load(self.detail)

    def _on_tabs_current_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.history and self.detail is not None:
            self.history.load(self.detail.id)


__all__ = ["CertificateForm", "status_badge_style"]
