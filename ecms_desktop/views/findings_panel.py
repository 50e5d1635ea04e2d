"""The findings panel of the review desk, and the permit-check status widget.

:class:`FindingsPanel` lists a certificate's validation findings (severity icon AND text, state,
field, message); clicking one emits ``field_activated(field, state)`` so the form can focus the
field; "Acknowledge warnings" emits ``acknowledge_requested`` (the desk then approves through
``ValidationService.approve_with_validation(..., acknowledge_warnings=True)``).

:class:`PermitCheckStatusWidget` shows each state's latest permit check with its date, source and
evidence, and the state's lookup link for a manual check. Both take plain DTOs from the services.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QStyle,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.permit_service import LookupLink, PermitCheckInfo
from ecms_desktop.services.validation_service import Finding

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
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.acknowledge_button = QPushButton("Acknowledge warnings", self)
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
        self._acknowledged: tuple[str, dt.datetime] | None = None
        self.set_findings([])

    # -- state

    @property
    def findings(self) -> list[Finding]:
        return [self.model.finding(r) for r in range(self.model.rowCount())]

    @property
    def has_errors(self) -> bool:
        """True while errors remain: the review desk keeps Approve disabled."""
        return any(f.severity == "error" for f in self.findings)

    def set_findings(self, findings: Sequence[Finding], *, checked_on: dt.date | None = None,
                     rules_version: str = "", acknowledged: tuple[str, dt.datetime] | None = None) -> None:
        """Show findings (from ``ValidationService.evaluate`` live, or a stored ``ValidationResult``)."""
        self.model.set_findings(findings)
        self._acknowledged = acknowledged
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
        self.acknowledge_button.setEnabled(bool(warnings) and not errors and acknowledged is None)
        if acknowledged is not None:
            who, at = acknowledged
            self.acknowledged_label.setText(f"Warnings acknowledged by {who} on {at:%Y-%m-%d %H:%M} UTC")
        else:
            self.acknowledged_label.setText("")

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
