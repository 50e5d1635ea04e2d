"""Editing a certificate in the form: loading one (a fresh copy), rebuilding the generated fields when
the states, form, reason or type change, the coverage lines and the expiry as typed, and whether
there are unsaved edits."""

from __future__ import annotations

import datetime as dt
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QTableWidgetItem

from ecms_desktop.models.enums import ReviewState
from ecms_desktop.rules import UnknownFormError
from ecms_desktop.services.certificates.form_spec import (
    ExpiryDecider,
    FormSpec,
    build_form_spec,
    form_choices,
    parse_date,
    parse_states,
)
from ecms_desktop.services.core.certificate_records import CertificateDetail, CertificateInput
from ecms_desktop.views.certificates.form.fields import DATE_ATTRS, date_text, status_badge_style
from ecms_desktop.views.certificates.form.findings import FormFindings
from ecms_desktop.views.certificates.form_builder import NOT_KNOWN, REQUIRED_MARK, SEVERITY_COLOURS
from ecms_desktop.views.operations import validation

#: The reason an expiry date is entered on a document whose state prints it there.
PRINTED_REASON = "As printed on the document."


class FormEditing(FormFindings):
    """Putting a certificate on screen and following the user's edits."""

    def set_as_of(self, date: dt.date) -> None:
        """The date statuses and expiries are shown as of."""
        self._as_of = date
        if self.detail is not None:
            self._refresh_expiry()

    #: Why the person at this desk may not approve, reject, archive or unarchive ("" when they may).
    decisions_refused = ""

    def set_decisions_refused(self, why: str) -> None:
        """Offer the review decisions (Archive…, "Acknowledge and approve…") only to someone who may make them;
        ``why`` is shown instead."""
        if why == self.decisions_refused:
            return
        self.decisions_refused = why
        detail = self.detail
        if detail is not None:
            self.findings_panel.set_approvable(
                detail.review_state in (ReviewState.PENDING, ReviewState.REJECTED) and not why)
            self.archive_button.setEnabled(not why)
            self.archive_button.setToolTip(why or ("Bring the certificate back into use (asks why)"
                                                   if detail.review_state == ReviewState.ARCHIVED
                                                   else "Take the certificate out of use (asks why)"))

    def load(self, detail: CertificateDetail | None) -> None:
        """Show a certificate (a fresh copy to edit), or an empty, disabled form for None. Loading is
        atomic with respect to edits: nothing of the record shown before reaches the new one."""
        with self._quiet():
            self._load(detail)

    def _load(self, detail: CertificateDetail | None) -> None:
        self.detail = detail
        self.banner.setVisible(False)
        self.claim_notice.setVisible(False)  # until the checks say whose it is
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
            # Nothing of the certificate shown before stays on screen, greyed or not.
            for edit in (self.states_edit, self.override_edit, self.override_reason_edit):
                edit.clear()
            self.states_edit.setPlaceholderText("Two-letter codes, e.g. TX or WA, NC, OH")
            for combo in (self.form_combo, self.reason_combo):
                combo.clear()
            self.coverage_table.setRowCount(0)
            for label in (self.form_note, self.expiry_value, self.expiry_basis, self.expiry_source,
                          self.expiry_printed):
                label.clear()
            self.history.load(None)
            self._checks_generation += 1
            self._live_timer.stop()
            self.engine_findings, self.findings_live, self.stored_result = [], False, None
            self.permit_checks = {}
            self.findings_panel.set_approvable(False)
            self.findings_panel.set_findings([])
            self.findings_panel.summary.setText("No certificate selected: nothing was checked.")
            self.findings_panel.setEnabled(False)
            self.checks_tabs.setTabText(0, "Findings")
            self.checks_tabs.setTabText(1, "Permit checks")
            self.permit_status.set_checks([], {}, as_of=self._as_of, max_age_days=365)
            self.findings_changed.emit([])
            return
        self.findings_panel.setEnabled(True)
        self.findings_panel.set_approvable(detail.review_state in (ReviewState.PENDING, ReviewState.REJECTED)
                                           and not self.decisions_refused)
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
        if self.decisions_refused:
            self.archive_button.setEnabled(False)
            self.archive_button.setToolTip(self.decisions_refused)
        self._raw = self._raw_from_input(d)
        self._states = tuple(line.state for line in d.lines)
        self._form_code, self._reason = d.form_code, d.exempt_reason
        self.override_edit.setText(date_text(d.expiry_override))
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

    # ------------------------------------------------------------------ the fields for the states, form and reason

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
        raw["signed_date"] = date_text(d.signed_date)
        raw["effective_date"] = date_text(d.effective_date)
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
        present += [field for field, s in self.suggestions.items() if s.offered]  # shown to be accepted
        assert self.detail is not None
        return build_form_spec(
            self.rules, form_code=self._form_code, states=self._states, exempt_reason=self._reason,
            certificate_type=str(raw.get("certificate_type") or "blanket"), effective_date=effective,
            signed_date=signed, expiry_override=override,
            expiry_override_reason=self.override_reason_edit.text(), state_tax_ids=self._state_ids(),
            present=present, review_state=self.detail.review_state, as_of=self._as_of,
            decide=self._decider,
        )

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
        self.states_edit.setPlaceholderText("Not known yet: two-letter codes, e.g. TX or WA, NC, OH" if not self._states
                                            else "Two-letter codes, e.g. TX or WA, NC, OH")
        self.form_combo.clear()
        if not self._form_code:  # not known yet (a certificate made from an arriving document): no default
            self.form_combo.addItem(NOT_KNOWN, "")
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
        if not self._reason:
            self.reason_combo.addItem(NOT_KNOWN, "")
        for code, label in spec.reasons:
            self.reason_combo.addItem(label, code)
        if self._reason and not spec.reason_allowed:
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
        lapses = {ln.state: ln.lapse for ln in self.detail.lines if ln.lapse} if self.detail is not None else {}
        for r, line in enumerate(spec.coverage):
            status = line.status.label if line.status else ""
            if line.state in lapses:  # SST recurring relationship ended as of the date shown
                status = f"{status}; {lapses[line.state]}" if status else lapses[line.state]
            values = [line.state, "yes" if line.accepted else "NO", line.state_tax_id,
                      date_text(line.expiry_date) or "no expiry", status, line.expiry_basis]
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

    def _fill_expiry(self, spec: FormSpec) -> None:
        e = spec.expiry
        if e.override is not None:
            value = f"{e.override.isoformat()} ({'as printed on the document' if e.printed_on_form else 'set by hand'})"
        elif e.date is not None:
            value = e.date.isoformat()
            if self.detail is not None:
                left = (e.date - self._as_of).days
                value += f"  ({left} days left as of {self._as_of.isoformat()})" if left >= 0 else \
                    f"  (expired {-left} days before {self._as_of.isoformat()})"
        else:
            value = "No expiry"
        if self.detail is not None:  # SST recurring relationship: no purchase for more than 12 months
            by_lapse: dict[str, list[str]] = {}
            for ln in self.detail.lines:
                if ln.lapse:  # the states a certificate lapsed in together, said once
                    by_lapse.setdefault(ln.lapse, []).append(ln.state)
            lapsed = [f"{', '.join(states)} {lapse}" for lapse, states in by_lapse.items()]
            if lapsed:
                value += f"; {'; '.join(lapsed)} as of {self.detail.as_of.isoformat()}"
        self.expiry_value.setText(value)
        self.expiry_basis.setText(e.basis + (f" · confidence: {e.confidence}" if e.confidence else ""))
        self.expiry_source.setText(e.source)
        self.expiry_printed.setText(
            "This document carries its expiration date, and the printed date is the one that counts: type it "
            "as the Override date below (the computed date is only a cross-check)." if e.printed_on_form else "")
        self.expiry_printed.setVisible(e.printed_on_form)
        self._on_override_edit_text_changed(self.override_edit.text())

    # ------------------------------------------------------------------ slots

    def _on_states_edit_editing_finished(self) -> None:
        if not self._loading:
            self.choose_states(parse_states(self.states_edit.text()))

    def choose_states(self, states: tuple[str, ...]) -> None:
        """The certificate covers ``states``: the form is rebuilt for them (values typed are kept)."""
        self.states_edit.setText(", ".join(states))
        if states != self._states:
            self._states = states
            self._rebuild()

    def choose_form(self, code: str) -> None:
        """The certificate is on form ``code``: the form is rebuilt for it (a form made for one reason
        only takes that reason)."""
        if code and code != self._form_code:
            self._form_code = code
            if self.spec is not None and self._known_form():
                form = self.rules.form(code)
                if self._reason not in form.exempt_reasons and len(form.exempt_reasons) == 1:
                    self._reason = form.exempt_reasons[0]
            self._rebuild()

    def choose_reason(self, code: str) -> None:
        """The certificate claims exempt reason ``code``: the form is rebuilt for it."""
        if code and code != self._reason:
            self._reason = code
            self._rebuild()

    def _on_form_combo_activated(self, index: int) -> None:
        if not self._loading:
            self.choose_form(self.form_combo.itemData(index))

    def _on_reason_combo_activated(self, index: int) -> None:
        if not self._loading:
            self.choose_reason(self.reason_combo.itemData(index))

    def _on_builder_changed(self, _attr: str) -> None:
        self._schedule_live()

    def _on_builder_edited(self, attr: str) -> None:
        if self._loading:
            return
        if attr == "certificate_type":
            self._rebuild()
        elif attr in DATE_ATTRS:
            self._refresh_expiry()

    def _on_override_edit_editing_finished(self) -> None:
        if not self._loading:
            if (self.spec is not None and self.spec.expiry.printed_on_form and self.override_edit.text().strip()
                    and not self.override_reason_edit.text().strip()):
                # The state prints the expiry on the document: that is the reason, unless the clerk says
                # otherwise.
                self.override_reason_edit.setText(PRINTED_REASON)
            self._refresh_expiry()

    def _on_override_edit_text_changed(self, text: str) -> None:
        on = bool(text.strip())
        self.override_reason_edit.setEnabled(on)
        self.override_reason_edit.setProperty("required", on)
        self.override_reason_label.setText("Override reason" + (REQUIRED_MARK if on else ""))

    def _on_revert_button_clicked(self) -> None:
        self.load(self.detail)

    def _on_tabs_current_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.history and self.detail is not None:
            self.history.load(self.detail.id)
