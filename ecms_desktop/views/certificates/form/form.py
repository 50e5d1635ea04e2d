"""The certificate edit form, built from the rules pack for the certificate's state(s), form and reason.

Edits are made on a copy; Save calls ``CertificateService.save`` once with the version the form was
loaded with, so a change someone else saved meanwhile is never overwritten (the user is told and can
reload). Archive / Unarchive ask for a reason. The History tab shows the audit trail.

The form is built in layers, each in its own module: ``fields`` (the sections, state and signals),
``findings`` (validation findings and permit checks), ``editing`` (loading and following the edits),
``saving`` (save, leave, archive), ``suggesting`` (the values read from the document, offered beside
their fields), ``changed_elsewhere`` (a change saved by another desk meanwhile: shown, or set beside the
user's edits); this module wires the widgets to them.
"""

from __future__ import annotations

from PySide6.QtWidgets import QWidget

from ecms_desktop.rules import RulesPack
from ecms_desktop.services.core.database import Database
from ecms_desktop.views.certificates.form.changed_elsewhere import FormChangedElsewhere
from ecms_desktop.views.operations.task_runner import TaskRunner


class CertificateForm(FormChangedElsewhere):
    """Edit one certificate. ``load(detail)`` shows it (None empties the form); ``saved(detail)`` fires
    after a save, archive or unarchive with the new :class:`CertificateDetail` (Archive… / Unarchive…
    ask the reason once and the form does the change itself). ``show_findings(findings)`` shows
    validation messages next to their fields.

    Validation: the validation engine's findings are shown beside their fields and in the findings
    panel below the form - the stored latest run when a certificate is loaded, then live while
    editing (the rules engine's evaluation is pure and takes well under a millisecond, so it runs on
    the GUI thread, debounced). Clicking a finding focuses its field. The permit-check status of
    each state shows below, with "Record check…" for a manual check with evidence.

    Values read from the certificate's documents are suggested beside their fields, never applied
    until accepted; ``suggestion_focused(Suggestion | None)`` says which one the focused field has."""

    def __init__(self, db: Database | None, rules: RulesPack, parent: QWidget | None = None, *,
                 runner: TaskRunner | None = None) -> None:
        super().__init__(db, rules, parent, runner=runner)
        self._init_suggesting()
        self._init_changed_elsewhere()
        self._connect()
        self.load(None)

    def _connect(self) -> None:
        """Each widget's signal to the layer that handles it."""
        self.reload_button.clicked.connect(self.reload)
        self.states_edit.editingFinished.connect(self._on_states_edit_editing_finished)
        self.form_combo.activated.connect(self._on_form_combo_activated)
        self.reason_combo.activated.connect(self._on_reason_combo_activated)
        self.builder.edited.connect(self._on_builder_edited)
        self.builder.changed.connect(self._on_builder_changed)
        self._live_timer.timeout.connect(self.evaluate_live)
        self.coverage_table.itemChanged.connect(lambda _item: self._schedule_live())  # guarded while loading
        self.override_edit.textChanged.connect(self._on_override_edit_text_changed)
        self.override_edit.textEdited.connect(lambda _t: self._schedule_live())
        self.override_edit.editingFinished.connect(self._on_override_edit_editing_finished)
        self.override_reason_edit.textEdited.connect(lambda _t: self._schedule_live())
        self.tabs.currentChanged.connect(self._on_tabs_current_changed)
        self.save_button.clicked.connect(self.save)
        self.revert_button.clicked.connect(self._on_revert_button_clicked)
        self.archive_button.clicked.connect(self.request_archive)
        self.findings_panel.field_activated.connect(self._on_findings_panel_field_activated)
        self.findings_panel.acknowledge_requested.connect(self.approve_requested)
        self.permit_status.check_requested.connect(self.record_permit_check)
        self.permit_status.evidence_requested.connect(self.open_evidence)
        self.save_action.triggered.connect(self._on_save_action_triggered)


__all__ = ["CertificateForm"]
