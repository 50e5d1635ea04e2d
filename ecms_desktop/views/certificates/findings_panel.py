"""The findings panel of the review desk, and the permit-check status widget.

:class:`FindingsPanel` lists a certificate's validation findings (severity icon AND text, state,
field, message); clicking one emits ``field_activated(field, state)`` so the form can focus the
field; "Acknowledge and approve…" emits ``acknowledge_requested`` (the desk then shows
:class:`AcknowledgeWarningsDialog` and approves with ``acknowledge_warnings=True``).

:class:`PermitCheckStatusWidget` shows each state's latest permit check with its date, source and
evidence, and the state's lookup link for a manual check. Both take plain DTOs from the services.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QStyle,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.validation.engine import Finding
from ecms_desktop.services.validation.permit_service import LookupLink, PermitCheckInfo
from ecms_desktop.views.widgets.file_dialogs import get_open_file_name

_Index = QModelIndex | QPersistentModelIndex

SEVERITY_TEXT = {"error": "Error", "warning": "Warning", "info": "Info"}
_SEVERITY_ICON = {
    "error": QStyle.StandardPixmap.SP_MessageBoxCritical,
    "warning": QStyle.StandardPixmap.SP_MessageBoxWarning,
    "info": QStyle.StandardPixmap.SP_MessageBoxInformation,
}
RESULT_TEXT = {"active": "Active", "inactive": "NOT active", "not_found": "Not found",
               "unavailable": "Not checked (no source)"}


def _severity_icon(widget: QWidget | None, severity: str) -> QIcon:
    from PySide6.QtWidgets import QApplication

    style = widget.style() if widget is not None else QApplication.style()
    return style.standardIcon(_SEVERITY_ICON.get(severity, QStyle.StandardPixmap.SP_MessageBoxInformation))


class FindingsTableModel(QAbstractTableModel):
    """Findings as rows: severity, state, field, message."""

    COLUMNS = ("Severity", "State", "Field", "Message")
    FindingRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent: QWidget | None = None, field_labels: Mapping[str, str] | None = None) -> None:
        super().__init__(parent)
        self._findings: list[Finding] = []
        self._labels = dict(field_labels or {})
        self._icons: dict[str, QIcon] = {}

    def set_findings(self, findings: Sequence[Finding]) -> None:
        self.beginResetModel()
        self._findings = list(findings)
        self.endResetModel()

    def finding(self, row: int) -> Finding:
        return self._findings[row]

    @property
    def labels(self) -> Mapping[str, str]:
        """The form's label of each field name (a finding's field is shown by its label)."""
        return self._labels

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._findings)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal \
                and 0 <= section < len(self.COLUMNS):
            return self.COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not (0 <= index.row() < len(self._findings)):
            return None
        f = self._findings[index.row()]
        col = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return SEVERITY_TEXT.get(f.severity, f.severity)
            if col == 1:
                return f.state or "All"
            if col == 2:
                return self._labels.get(f.field, f.field.replace("_", " ")) if f.field else ""
            return f.message
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            if f.severity not in self._icons:
                self._icons[f.severity] = _severity_icon(None, f.severity)
            return self._icons[f.severity]
        if role == Qt.ItemDataRole.ToolTipRole:
            parts = [f"{f.title} ({f.rule})", f.message]
            if f.source:
                parts.append(f"Source: {f.source}")
            if f.confidence:
                parts.append(f"Confidence: {f.confidence}")
            return "\n".join(parts)
        if role == self.FindingRole:
            return f
        return None


class FindingsPanel(QWidget):
    """Validation findings beside the certificate form."""

    field_activated = Signal(str, str)  # field, state
    acknowledge_requested = Signal()

    def __init__(self, parent: QWidget | None = None, field_labels: Mapping[str, str] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("findingsPanel")
        self.summary = QLabel(self)
        self.summary.setObjectName("findingsSummary")
        self.summary.setWordWrap(True)
        self.model = FindingsTableModel(self, field_labels)
        self.table = QTableView(self)
        self.table.setObjectName("findingsTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        # The field column stays narrow (full name in the tooltip): the message needs the room.
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(2, 120)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.acknowledge_button = QPushButton("Acknowledge and approve…", self)
        self.acknowledge_button.setObjectName("acknowledgeWarnings")
        self.acknowledge_button.setToolTip("Record that you read the warnings and accept the certificate anyway "
                                           "(your name and the time are kept in the audit trail)")
        self.acknowledged_label = QLabel(self)
        self.acknowledged_label.setObjectName("acknowledgedLabel")
        buttons = QHBoxLayout()
        buttons.addWidget(self.acknowledged_label, 1)
        buttons.addWidget(self.acknowledge_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self.table.clicked.connect(self._on_table_clicked)
        self.table.activated.connect(self._on_table_clicked)
        self.acknowledge_button.clicked.connect(self._on_acknowledge_clicked)
        #: Whether the certificate shown can be approved at all (pending or rejected): elsewhere
        #: "Acknowledge and approve…" is not offered (nor while errors remain or nothing waits).
        self.approvable = True
        self.set_findings([])

    # -- state

    @property
    def findings(self) -> list[Finding]:
        return [self.model.finding(r) for r in range(self.model.rowCount())]

    @property
    def has_errors(self) -> bool:
        """True while errors remain: the review desk keeps Approve disabled."""
        return any(f.severity == "error" for f in self.findings)

    @property
    def labels(self) -> Mapping[str, str]:
        """The form's label of each field name."""
        return self.model.labels

    def set_findings(self, findings: Sequence[Finding], *, checked_on: dt.date | None = None,
                     rules_version: str = "", acknowledged: tuple[str, dt.datetime] | None = None) -> None:
        """Show findings (from ``ValidationService.evaluate`` live, or a stored ``ValidationResult``)."""
        self.model.set_findings(findings)
        errors = sum(f.severity == "error" for f in findings)
        warnings = sum(f.severity == "warning" for f in findings)
        infos = len(findings) - errors - warnings
        when = f" as of {checked_on.isoformat()}" if checked_on else ""
        pack = f", rules pack {rules_version}" if rules_version else ""
        if not findings:
            text = f"No findings{when}{pack}: the certificate meets its states' rules."
        else:
            counts = ", ".join(f"{n} {word}{'s' if n != 1 else ''}" for n, word in
                               ((errors, "error"), (warnings, "warning"), (infos, "note")) if n)
            verdict = ("approval is blocked until the errors are corrected" if errors else
                       "warnings need your acknowledgement to approve" if warnings else "for information")
            text = f"{counts}{when}{pack} - {verdict}."
        self.summary.setText(text)
        offered = bool(warnings) and not errors and acknowledged is None
        self.acknowledge_button.setEnabled(offered)
        self.acknowledge_button.setVisible(offered and self.approvable)
        if acknowledged is not None:
            who, at = acknowledged
            self.acknowledged_label.setText(f"Warnings acknowledged by {who} on {at:%Y-%m-%d %H:%M} UTC")
        else:
            self.acknowledged_label.setText("")

    def set_approvable(self, approvable: bool) -> None:
        """Offer "Acknowledge and approve…" only where approval is possible: a pending or rejected
        certificate (not one approved or archived) whose warnings wait and no error remains."""
        self.approvable = approvable
        self.acknowledge_button.setVisible(approvable and self.acknowledge_button.isEnabled())

    def set_result(self, result: Any) -> None:
        """Show a stored ``ValidationResult``."""
        self.set_findings(result.findings, checked_on=result.as_of, rules_version=result.rules_version,
                          acknowledged=result.acknowledged)

    # -- slots

    def _on_table_clicked(self, index: QModelIndex) -> None:
        if index.isValid():
            f = self.model.finding(index.row())
            self.field_activated.emit(f.field, f.state)

    def _on_acknowledge_clicked(self) -> None:
        self.acknowledge_requested.emit()


#: The field names of the rules pack's vocabulary, for labels in the findings table.
FIELD_NAMES: tuple[str, ...] = (
    "purchaser_name", "purchaser_address", "purchaser_tax_id", "purchaser_ein", "seller_name", "seller_address",
    "business_type", "business_description", "property_description", "exempt_reason", "exemption_detail",
    "signature", "signer_name", "signer_title", "signed_date", "po_number", "effective_date", "expiry_date",
    "home_state")


#: The labels of the form's own fields at its top (a finding on the form read "form code").
FORM_FIELD_LABELS = {"states": "States", "form_code": "Form", "exempt_reason": "Exempt reason",
                     "certificate_type": "Certificate type"}


def field_labels(label_of: Any) -> dict[str, str]:
    """Labels for :data:`FIELD_NAMES` from a ``label(name) -> str`` callable (the validation engine's), and
    for the form's own fields as the form names them."""
    return {**{name: label_of(name) for name in FIELD_NAMES}, **FORM_FIELD_LABELS}


class AcknowledgeWarningsDialog(QDialog):
    """Before approving a certificate with warnings: list them, take an optional note, and approve
    only on "Acknowledge and approve" (Ctrl+Enter). The acknowledgement is recorded with who and when."""

    def __init__(self, warnings: Sequence[Finding], title: str, parent: QWidget | None = None,
                 field_labels: Mapping[str, str] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("acknowledgeWarningsDialog")
        self.setWindowTitle(title)
        self.setMinimumWidth(560)
        layout = QVBoxLayout(self)
        intro = QLabel(f"The validation found {len(warnings)} warning{'s' if len(warnings) != 1 else ''}. "
                       "Approve only if you have checked them; your name, the time and your note are kept "
                       "in the audit trail.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        self.model = FindingsTableModel(self, field_labels)
        self.model.set_findings(warnings)
        table = QTableView(self)
        table.setObjectName("acknowledgeTable")
        table.setModel(self.model)
        table.verticalHeader().hide()
        table.setWordWrap(True)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        header = table.horizontalHeader()
        for col in range(3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        table.setMinimumHeight(min(60 + 44 * len(warnings), 260))
        layout.addWidget(table, 1)
        layout.addWidget(QLabel("Note (optional):"))
        self.note_edit = QPlainTextEdit(self)
        self.note_edit.setObjectName("acknowledgeNote")
        self.note_edit.setTabChangesFocus(True)
        self.note_edit.setPlaceholderText("e.g. permit confirmed by phone with the customer")
        self.note_edit.setFixedHeight(self.fontMetrics().lineSpacing() * 3 + 12)
        layout.addWidget(self.note_edit)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Acknowledge and approve")
        self.ok_button.setObjectName("acknowledgeOk")
        self.ok_button.setDefault(True)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        hint = QLabel("Ctrl+Enter to acknowledge and approve; Esc to go back.")
        hint.setStyleSheet("color: palette(mid);")
        layout.addWidget(hint)
        layout.addWidget(self.buttons)
        self.note_edit.setFocus()

    def note(self) -> str:
        return self.note_edit.toPlainText().strip()

    def keyPressEvent(self, event: Any) -> None:
        if (event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and event.modifiers() & Qt.KeyboardModifier.ControlModifier):
            self.accept()
            return
        super().keyPressEvent(event)


def confirm_warnings(parent: QWidget | None, warnings: Sequence[Finding], title: str,
                     on_confirmed: Callable[[bool, str], None],
                     field_labels: Mapping[str, str] | None = None) -> AcknowledgeWarningsDialog | None:
    """Approval step shared by the main window and the review queue: without warnings call
    ``on_confirmed(False, "")`` at once; with warnings open :class:`AcknowledgeWarningsDialog` and
    call ``on_confirmed(True, note)`` only when the reviewer acknowledges. Returns the dialog."""
    if not warnings:
        on_confirmed(False, "")
        return None
    dlg = AcknowledgeWarningsDialog(warnings, title, parent, field_labels)
    dlg.accepted.connect(lambda: on_confirmed(True, dlg.note()))
    dlg.finished.connect(dlg.deleteLater)
    dlg.open()
    return dlg


def blocked_message(cert_id: int, findings: Sequence[Finding]) -> str:
    """Why Approve is disabled, for the status bar and the action's tooltip."""
    errors = [f for f in findings if f.severity == "error"]
    first = errors[0].message if errors else ""
    return (f"Certificate {cert_id} cannot be approved: {len(errors)} error{'s' if len(errors) != 1 else ''} "
            f"remain{'s' if len(errors) == 1 else ''} (first: {first}). Correct them in the form first.")


class RecordCheckDialog(QDialog):
    """A reviewer's manual permit check: the result seen on the state's lookup page, where (the
    prefilled link), and the evidence file (a PDF or a screenshot)."""

    def __init__(self, state: str, number: str, link: LookupLink | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recordCheckDialog")
        self.setWindowTitle(f"Record permit check - {state} {number}")
        self.setMinimumWidth(520)
        layout = QVBoxLayout(self)
        if link is not None and link.url:
            open_link = QLabel(f'Look the number up on <a href="{html.escape(link.url)}">'
                               f"{html.escape(link.name or link.url)}</a>, save the result page as a PDF or a "
                               "screenshot, and record what it said.")
        else:
            open_link = QLabel("The rules pack names no lookup page for this state: record where you checked.")
        open_link.setObjectName("lookupLink")
        open_link.setWordWrap(True)
        open_link.setOpenExternalLinks(True)
        open_link.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(open_link)
        form = QFormLayout()
        self.result_combo = QComboBox(self)
        self.result_combo.setObjectName("checkResult")
        for label, value in (("Active", "active"), ("NOT active", "inactive"), ("Not found", "not_found")):
            self.result_combo.addItem(label, value)
        self.source_edit = QLineEdit(link.url if link is not None and link.url else "", self)
        self.source_edit.setObjectName("checkSource")
        self.source_edit.setPlaceholderText("Where the number was looked up (URL)")
        self.evidence_edit = QLineEdit(self)
        self.evidence_edit.setObjectName("checkEvidence")
        self.evidence_edit.setPlaceholderText("PDF or PNG/JPEG of the result page")
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._on_browse_clicked)
        evidence_row = QHBoxLayout()
        evidence_row.addWidget(self.evidence_edit, 1)
        evidence_row.addWidget(browse)
        self.note_edit = QLineEdit(self)
        self.note_edit.setObjectName("checkNote")
        form.addRow("Number checked:", QLabel(html.escape(number)))
        form.addRow("Result:", self.result_combo)
        form.addRow("Source:", self.source_edit)
        form.addRow("Evidence:", evidence_row)
        form.addRow("Note:", self.note_edit)
        layout.addLayout(form)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Record check")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.state, self.number = state, number

    def values(self) -> dict[str, str]:
        return {"result": str(self.result_combo.currentData()), "source_url": self.source_edit.text().strip(),
                "evidence": self.evidence_edit.text().strip(), "note": self.note_edit.text().strip()}

    def _on_browse_clicked(self) -> None:
        path = get_open_file_name(self, "Evidence of the lookup", "", "Evidence (*.pdf *.png *.jpg *.jpeg)")
        if path:
            self.evidence_edit.setText(path)


class PermitCheckStatusWidget(QWidget):
    """Each state's latest permit check: result, date, how and by whom, and its evidence."""

    evidence_requested = Signal(int)  # document id
    check_requested = Signal(str)  # state

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("permitCheckStatus")
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.rows: dict[str, QLabel] = {}
        self._dynamic: list[QWidget] = []

    def set_checks(self, states: Sequence[str], checks: Mapping[str, PermitCheckInfo], *, as_of: dt.date,
                   max_age_days: int, links: Mapping[str, LookupLink] | None = None) -> None:
        """Show one row per state: the latest check (or that there is none) and what to do next."""
        for w in self._dynamic:
            self._layout.removeWidget(w)
            w.deleteLater()
        self._dynamic = []
        self.rows = {}
        for state in states:
            check = checks.get(state)
            link = (links or {}).get(state)
            row = QWidget(self)
            box = QHBoxLayout(row)
            box.setContentsMargins(0, 0, 0, 0)
            icon = QLabel(row)
            label = QLabel(row)
            label.setObjectName(f"permitStatus{state}")
            label.setWordWrap(True)
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setOpenExternalLinks(True)
            severity, text = self._describe(state, check, as_of, max_age_days, link)
            icon.setPixmap(_severity_icon(self, severity).pixmap(16, 16))
            icon.setAccessibleName(SEVERITY_TEXT.get(severity, severity))
            label.setText(text)
            box.addWidget(icon)
            box.addWidget(label, 1)
            if check is not None and check.evidence_document_id is not None:
                evidence = QPushButton("Open evidence", row)
                evidence.setObjectName(f"permitEvidence{state}")
                evidence.setToolTip(f"SHA-256 {check.evidence_sha256}")
                doc_id = check.evidence_document_id
                evidence.clicked.connect(lambda _=False, d=doc_id: self.evidence_requested.emit(d))
                box.addWidget(evidence)
            again = QPushButton("Record check...", row)
            again.setObjectName(f"permitCheck{state}")
            again.clicked.connect(lambda _=False, s=state: self.check_requested.emit(s))
            box.addWidget(again)
            self._layout.addWidget(row)
            self._dynamic.append(row)
            self.rows[state] = label

    @staticmethod
    def _describe(state: str, check: PermitCheckInfo | None, as_of: dt.date, max_age: int,
                  link: LookupLink | None) -> tuple[str, str]:
        look = ""
        if link is not None and link.url:
            look = (f' <a href="{html.escape(link.url)}">Look up {html.escape(link.number)} on the state site</a>')
        if check is None:
            return "warning", f"<b>{state}</b>: permit not checked yet.{look}"
        result = RESULT_TEXT.get(check.result, check.result)
        age = (as_of - check.as_of).days
        stale = f" <b>Older than {max_age} days: check again.</b>" if age > max_age else ""
        evidence = " Evidence attached." if check.evidence_document_id is not None else ""
        severity = ("error" if check.result == "inactive" else
                    "warning" if check.result in ("not_found", "unavailable") or stale else "info")
        text = (f"<b>{state}</b> {html.escape(check.number_checked)}: <b>{result}</b> as of "
                f"{check.as_of.isoformat()} ({check.method}: {html.escape(check.source)}; checked by "
                f"{html.escape(check.checked_by)} on {check.checked_at:%Y-%m-%d}).{evidence}{stale}")
        if check.result != "active":
            text += look
        return severity, text
