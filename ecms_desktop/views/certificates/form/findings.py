"""The certificate form's findings and checks: the validation engine's findings beside their fields and
in the findings panel (live while editing, or the stored run), the permit checks of each state, a
manual permit check with its evidence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import shiboken6
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QColor, QDesktopServices
from PySide6.QtWidgets import QWidget

from ecms_desktop.rules import UnknownStateError
from ecms_desktop.services.certificates.form_spec import FieldFinding, local_findings
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.validation.engine import Finding, subject_of
from ecms_desktop.services.validation.permit_service import PermitCheckInfo, lookup_link
from ecms_desktop.services.validation.runs import ValidationResult
from ecms_desktop.views.certificates.findings_panel import RecordCheckDialog
from ecms_desktop.views.certificates.form.fields import FormFields
from ecms_desktop.views.certificates.form_builder import MessageLabel
from ecms_desktop.views.operations import certificates, validation
from ecms_desktop.views.operations.validation import StoredChecks
from ecms_desktop.views.widgets.error_presenter import present_error

#: Finding field names that are shown somewhere other than a generated field.
FIELD_ALIASES = {"signature": "signed", "form_code": "form", "states": "state", "expiry_date": "expiry_override",
                 "expiry": "expiry_override", "lines": "state", "state_tax_id": "coverage"}


def _placed(f: Finding) -> Finding:
    """A finding about a whole state line (no field) goes beside the form or the states."""
    if f.field or not f.state:
        return f
    where = "form" if any(k in f.rule for k in ("refused", "not_accepted", "restriction")) else "state"
    return replace(f, field=where)


class FormFindings(FormFields):
    """What the validation and the permit checks say about the certificate in the form."""

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
            name = FIELD_ALIASES.get(f.field, f.field)
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
        covered = {FIELD_ALIASES.get(f.field, f.field) for f in engine}
        shown: list[Finding | FieldFinding] = [*engine, *(f for f in local
                                                          if FIELD_ALIASES.get(f.field, f.field) not in covered)]
        texts = {(f.field, f.message) for f in shown}
        shown += [f for f in self._save_findings if (f.field, f.message) not in texts]
        self.show_findings(shown)

    # ------------------------------------------------------------------ validation

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
        findings = self.engine.evaluate(subject_of(data, customer_name=self.detail.customer_name,
                                                   documents=self.detail.documents), self._as_of)
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
        claim = stored.claim_by_other
        self.claim_notice.setText(claim.text() if claim is not None else "")
        self.claim_notice.setToolTip(f"{claim.claimed_by} is working on this certificate: ask them to release it, "
                                     "or an approver to take it over, before you edit it." if claim else "")
        self.claim_notice.setVisible(claim is not None)
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
        name = FIELD_ALIASES.get(field, field) if field else ("state" if state else "")
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

    def _on_findings_panel_field_activated(self, field: str, state: str) -> None:
        self.focus_field(field, state)

    # ------------------------------------------------------------------ permit checks

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
