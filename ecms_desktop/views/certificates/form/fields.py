"""The certificate form's sections — header and banner, the selectors (states, form, reason), the
generated fields, the states covered, the expiry, the History tab, the findings and permit checks, the
buttons — its state and signals, and reading what it holds (``collect``). The other layers of the form
build on it: ``findings``, ``editing``, ``saving``; ``form.py`` wires them together."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
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
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.models.enums import Status
from ecms_desktop.rules import RulesPack
from ecms_desktop.services.certificates.form_spec import ExpiryDecider, FieldFinding, FormSpec, parse_date
from ecms_desktop.services.core.certificate_records import CertificateDetail, CertificateInput, LineInput
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.intake.suggestions import Suggestion
from ecms_desktop.services.validation.engine import Finding, ValidationEngine
from ecms_desktop.services.validation.permit_service import LookupLink, PermitCheckInfo
from ecms_desktop.services.validation.runs import ValidationResult
from ecms_desktop.views.certificates.findings_panel import (
    FindingsPanel,
    PermitCheckStatusWidget,
    RecordCheckDialog,
    field_labels,
)
from ecms_desktop.views.certificates.form_builder import REQUIRED_MARK, FormBuilder, MessageLabel
from ecms_desktop.views.certificates.history_view import HistoryView
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.widgets.reason_dialog import ReasonDialog
from ecms_desktop.views.widgets.wheel_guard import install_wheel_guard

STATUS_COLOURS = {
    Status.ACTIVE: ("#1b5e20", "#dcefdc"),
    Status.EXPIRING_SOON: ("#7a4f00", "#fff0c8"),
    Status.EXPIRED: ("#8e1b1b", "#f8dada"),
    Status.PENDING_REVIEW: ("#1f4e8c", "#dde8f7"),
    Status.REJECTED: ("#5c2a7a", "#eadcf3"),
    Status.ARCHIVED: ("#444444", "#e4e4e4"),
}
#: The form's date fields (typed as text, read as dates).
DATE_ATTRS = ("signed_date", "effective_date")
#: What to call once a save ends: with the saved certificate, or after a failure (either may be None).
SaveCallbacks = tuple[Callable[[CertificateDetail], None] | None, Callable[[], None] | None]


def status_badge_style(status: Status) -> str:
    fg, bg = STATUS_COLOURS.get(status, ("#333333", "#eeeeee"))
    return (f"color: {fg}; background: {bg}; border: 1px solid {fg}; border-radius: 9px; "
            "padding: 1px 9px; font-weight: bold;")


def date_text(value: dt.date | None) -> str:
    return value.isoformat() if value else ""


class UnreadableInput(ValueError):
    """What the form holds cannot be read (a date that is not a date): one finding per field, each
    message whole (never joined into one string and split again)."""

    def __init__(self, findings: list[FieldFinding]) -> None:
        super().__init__("\n".join(f"{f.field}: {f.message}" for f in findings))
        self.findings = findings


class FormFields(QWidget):
    """The certificate form's widgets, state and signals (see :class:`CertificateForm`)."""

    saved = Signal(object)
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
    #: The focus went into a field with a value read from the certificate's document (the Suggestion),
    #: or left it (None): the viewer highlights where the value was read.
    suggestion_focused = Signal(object)

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
        #: What was read from the certificate's documents, by form field (offered or matching the record).
        self.suggestions: dict[str, Suggestion] = {}
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
        self._queued_save: SaveCallbacks | None = None
        #: Called with True/False when the running save (or archive) ends (leave() waits for it).
        self._after_save: list[Callable[[bool], None]] = []
        #: >0 while a record is being put on screen: edit signals then are not the user's edits.
        self._loading = 0
        self._unsaved_box: QMessageBox | None = None
        self._reason_dialog: ReasonDialog | None = None
        self._build()

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

    # ------------------------------------------------------------------ sections

    def _build(self) -> None:
        head = self._build_head()
        self._build_banner()
        selectors = self._build_selectors()
        self._build_coverage()
        self._build_expiry()
        self._build_body(selectors)
        buttons = self._build_buttons()
        checks = self._build_checks()
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
        self.addAction(self.save_action)
        #: Accept the value read from the scan for the field that has the focus (see the marker beside it).
        self.accept_suggestion_action = QAction("Accept the value read from the scan", self)
        self.accept_suggestion_action.setObjectName("acceptSuggestionAction")
        self.accept_suggestion_action.setShortcut(QKeySequence("Ctrl+Shift+Y"))
        self.accept_suggestion_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.accept_suggestion_action.setStatusTip("Put the value read from the document into the field you are in")
        self.addAction(self.accept_suggestion_action)

    def _build_head(self) -> QHBoxLayout:
        """The certificate's customer and number, and its status badge."""
        self.title = QLabel("")
        self.title.setObjectName("formTitle")
        self.title.setStyleSheet("font-size: 12pt; font-weight: bold;")
        self.title.setWordWrap(True)
        self.badge = QLabel("")
        self.badge.setObjectName("statusBadge")
        # Someone else claimed the certificate shown: said before anyone edits it (services/certificates/claims.py).
        self.claim_notice = QLabel("")
        self.claim_notice.setObjectName("claimNotice")
        self.claim_notice.setStyleSheet("color: #8a4b00; font-weight: bold;")
        self.claim_notice.setVisible(False)
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.claim_notice, 0, Qt.AlignmentFlag.AlignTop)
        head.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignTop)
        return head

    def _build_banner(self) -> None:
        """Shown when a save met a change someone else saved meanwhile."""
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
        bl.addWidget(self.banner_label, 1)
        bl.addWidget(self.reload_button)
        self.banner.setVisible(False)

    def _build_selectors(self) -> QGroupBox:
        """The states, the form and the reason: they decide the rest of the form."""
        sel = QGroupBox("Certificate")
        sel.setObjectName("group_selectors")
        sf = QFormLayout(sel)
        sf.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.states_edit = QLineEdit()
        self.states_edit.setObjectName("field_states")
        self.states_edit.setPlaceholderText("Two-letter codes, e.g. TX or WA, NC, OH")
        self.states_edit.setToolTip("The state(s) the certificate covers. A multi-state form lists several.")
        self.states_msg = MessageLabel("state")
        self.form_combo = QComboBox()
        self.form_combo.setObjectName("field_form")
        self.form_combo.setToolTip("The certificate form the customer used")
        self.form_msg = MessageLabel("form")
        for combo in (self.form_combo,):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(12)  # the full name in the list; the form pane stays narrow
        self.reason_combo = QComboBox()
        self.reason_combo.setObjectName("field_exempt_reason")
        self.reason_combo.setToolTip("The exempt reasons this form allows")
        self.reason_msg = MessageLabel("exempt_reason")
        for label, editor, msg in (("States", self.states_edit, self.states_msg),
                                   ("Form", self.form_combo, self.form_msg),
                                   ("Exempt reason", self.reason_combo, self.reason_msg)):
            lab = QLabel(label + REQUIRED_MARK)
            lab.setBuddy(editor)
            sf.addRow(lab, self._stack(editor, msg))
        self.form_note = QLabel("")
        self.form_note.setObjectName("formNote")
        self.form_note.setWordWrap(True)
        self.form_note.setStyleSheet("color: palette(mid);")
        sf.addRow(self.form_note)
        return sel

    def _build_coverage(self) -> None:
        """The states a multi-state form covers, one line each (with its state ID and expiry)."""
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
        cl.addWidget(self.coverage_table)
        cl.addWidget(self.coverage_msg)

    def _build_expiry(self) -> None:
        """The computed expiry, its basis and source, and an override with its reason."""
        self.expiry_box = QGroupBox("Expiry")
        self.expiry_box.setObjectName("group_expiry")
        ef = QFormLayout(self.expiry_box)
        ef.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.expiry_value = QLabel("")
        self.expiry_value.setObjectName("expiryComputed")
        self.expiry_value.setStyleSheet("font-weight: bold;")
        self.expiry_value.setWordWrap(True)  # a narrow form pane must not cut it off
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
        self.override_msg = MessageLabel("expiry_override")
        self.override_reason_edit = QLineEdit()
        self.override_reason_edit.setObjectName("field_expiry_override_reason")
        self.override_reason_edit.setPlaceholderText("Why the computed expiry does not apply")
        self.override_reason_msg = MessageLabel("expiry_override_reason")
        self.override_reason_label = QLabel("Override reason")
        self.override_reason_label.setTextFormat(Qt.TextFormat.RichText)
        ef.addRow("Computed expiry", self.expiry_value)
        ef.addRow("Basis", self.expiry_basis)
        ef.addRow("Source", self.expiry_source)
        ef.addRow(self.expiry_printed)
        ef.addRow("Override date", self._stack(self.override_edit, self.override_msg))
        ef.addRow(self.override_reason_label, self._stack(self.override_reason_edit, self.override_reason_msg))

    def _build_body(self, selectors: QGroupBox) -> None:
        """The scrolling form (selectors, generated fields, coverage, expiry) and the History tab."""
        self.builder = FormBuilder()  # the fields the rules pack asks for, rebuilt per state, form and reason
        self._live_timer = QTimer(self)  # the live findings wait for a pause in the typing
        self._live_timer.setSingleShot(True)
        self._live_timer.setInterval(200)
        self.general_msg = MessageLabel("general")

        self.suggestion_bar = QWidget()
        self.suggestion_bar.setObjectName("suggestionBar")
        self.suggestion_bar.setStyleSheet("#suggestionBar { background: #eef4fb; border: 1px solid #9bb8dc; }")
        sb = QHBoxLayout(self.suggestion_bar)
        sb.setContentsMargins(6, 3, 6, 3)
        self.suggestion_summary = QLabel("")
        self.suggestion_summary.setObjectName("suggestionSummary")
        self.suggestion_summary.setWordWrap(True)
        self.accept_all_button = QPushButton("Accept all ≥ 90 %")
        self.accept_all_button.setObjectName("acceptAllSuggestions")
        self.accept_all_button.setToolTip("Put every value read from the document with a confidence of at least "
                                          "90 % into its field (you still save)")
        sb.addWidget(self.suggestion_summary, 1)
        sb.addWidget(self.accept_all_button)
        self.suggestion_bar.setVisible(False)

        body = QWidget()
        bv = QVBoxLayout(body)
        bv.addWidget(self.suggestion_bar)
        bv.addWidget(selectors)
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

        self.history = HistoryView(self.db, self.rules, self.runner)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("formTabs")
        self.tabs.addTab(self.form_scroll, "Certificate")
        self.tabs.addTab(self.history, "History")

    def _build_buttons(self) -> QHBoxLayout:
        self.save_button = QPushButton("Save")
        self.save_button.setObjectName("saveButton")
        self.save_button.setToolTip("Save your changes (Ctrl+S)")
        self.revert_button = QPushButton("Revert")
        self.revert_button.setObjectName("revertButton")
        self.revert_button.setToolTip("Drop your changes and show the certificate as stored")
        self.archive_button = QPushButton("Archive…")
        self.archive_button.setObjectName("archiveButton")
        buttons = QHBoxLayout()
        buttons.addWidget(self.archive_button)
        buttons.addStretch(1)
        buttons.addWidget(self.revert_button)
        buttons.addWidget(self.save_button)
        return buttons

    def _build_checks(self) -> QTabWidget:
        """The findings and the permit checks, sharing the lower pane as tabs (each gets the whole height)."""
        labels = field_labels(self.engine.label)
        self.findings_panel = FindingsPanel(None, labels)
        self.permit_status = PermitCheckStatusWidget()
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
        return checks

    @staticmethod
    def _stack(editor: QWidget, msg: QLabel) -> QWidget:
        cell = QWidget()
        v = QVBoxLayout(cell)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(1)
        v.addWidget(editor)
        v.addWidget(msg)
        return cell

    # ------------------------------------------------------------------ reading the form

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

    def collect(self) -> CertificateInput:
        """The certificate as edited (a new CertificateInput); :class:`UnreadableInput` (a ValueError)
        names each field that cannot be read, such as a date that is not a date."""
        assert self.detail is not None
        raw = {**self._raw, **self.builder.raw_values()}
        changes: dict[str, Any] = {}
        errors: list[FieldFinding] = []
        for key, value in raw.items():
            if key in DATE_ATTRS:
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

    def _state_ids(self) -> dict[str, str]:
        ids = dict(self._raw.get("state_tax_ids") or {})
        for r in range(self.coverage_table.rowCount()):
            st, val = self.coverage_table.item(r, 0), self.coverage_table.item(r, 2)
            if st is not None and val is not None and self.coverage_box.isVisible():
                ids[st.text()] = val.text().strip()
        return ids
