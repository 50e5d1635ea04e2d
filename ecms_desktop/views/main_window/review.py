"""Certificate menu: approve, reject, archive and unarchive the selected certificate (with a reason
kept in the audit trail), validate it or all of them, verify permits, and the review queue."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QMessageBox

from ecms_desktop.services.certificates.query import CheckFilter
from ecms_desktop.services.core.certificate_records import CertificateDetail
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import Cancelled, ValidationError
from ecms_desktop.services.validation.permit_service import PermitCheckInfo
from ecms_desktop.services.validation.runs import ValidationResult
from ecms_desktop.services.validation.service import ManyResult, ValidationService
from ecms_desktop.views.certificates.filter_bar import Filters
from ecms_desktop.views.certificates.findings_panel import AcknowledgeWarningsDialog, blocked_message, confirm_warnings
from ecms_desktop.views.certificates.review_queue import ReviewQueueWindow
from ecms_desktop.views.certificates.work_lists import check_list
from ecms_desktop.views.main_window.desk import DeskWindow
from ecms_desktop.views.operations import Operation, certificates, validation
from ecms_desktop.views.widgets.error_presenter import offer_retry, present_error
from ecms_desktop.views.widgets.reason_dialog import ReasonDialog

#: Makes the review operation for a certificate (as the user sees it) and the reason given.
ReviewOperation = Callable[[Database, CertificateDetail, str], Operation[CertificateDetail]]

#: Examples shown in the empty reason field, per question.
_REASON_EXAMPLES: dict[str, tuple[str, ...]] = {
    "Reject": ("not signed", "wrong state's form"),
    "Archive": ("replaced by a newer certificate", "customer closed"),
}


class ReviewMixin(DeskWindow):
    """Reviewing and checking the selected certificate."""

    #: The result of the last "Validate all…", offering the list of certificates with errors.
    validate_all_report: QMessageBox | None = None
    _review_reason_dialog: ReasonDialog | None = None

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

    def _review(self, verb: str, operation_for: ReviewOperation, *, needs_reason: bool) -> None:
        if self.form.is_dirty():
            self.leave_form(lambda: self._review(verb, operation_for, needs_reason=needs_reason))
            return
        detail, db = self.current_detail, self.db
        if detail is None or db is None:
            return

        def run(reason: str) -> None:
            operation = operation_for(db, detail, reason)
            operation.success(self._on_reviewed).failure(lambda error: self._on_review_failed(operation, error))
            operation.run(self.runner)

        if not needs_reason:
            run("")
            return
        # The one question (the same dialog as the form's Archive… button): OK stays disabled until a
        # reason is typed, Cancel changes nothing.
        dlg = ReasonDialog(f"{verb} certificate {detail.id}",
                           f"Why is certificate {detail.id} ({detail.customer_name}) {verb.lower()}d? "
                           "The reason is kept in the audit trail.", self, ok_text=verb,
                           suggestions=_REASON_EXAMPLES.get(verb, ()))
        self._review_reason_dialog = dlg
        dlg.accepted.connect(lambda: run(dlg.reason()))
        dlg.finished.connect(self._on_review_reason_dialog_finished)
        dlg.finished.connect(dlg.deleteLater)
        dlg.open()

    def _on_review_reason_dialog_finished(self, _result: int) -> None:
        self._review_reason_dialog = None

    @property
    def review_reason_dialog(self) -> ReasonDialog | None:
        """The reason question of Reject / Archive / Unarchive now open, if any."""
        return self._review_reason_dialog

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

    def open_review_queue(self) -> None:
        """Walk the grid's list in the grid's order (with no filter set: the certificates pending review,
        oldest first). When the queue closes, the grid and the counts are read again."""
        if self.db is None:
            return
        query = self.model.query if self.filters != Filters() else None
        name = self.filter_bar.list_name()
        if self.review_window is not None and self.review_window.isVisible():
            if query is not None and query != self.review_window.query:
                self.review_window.walk(query, name)
            self.review_window.raise_()
            self.review_window.activateWindow()
            return
        self.review_window = ReviewQueueWindow(self.db, self.rules, self.runner, self.as_of, self,
                                               company_id=self.company_id, sandbox=self.sandbox, query=query,
                                               list_name=name)
        self.review_window.closed.connect(self._on_review_window_closed)
        self.review_window.show()

    def _on_review_window_closed(self) -> None:
        """The queue may have changed any certificate: the grid, the counts and the certificate shown in
        the desk's form are read again (unsaved edits in the form are kept)."""
        self.refresh()
        if self.current_detail is not None and not self._closing:
            self.load_detail(self.current_detail.id)

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
        self.refresh()  # the grid's error and warning counts changed
        if self.interactive:
            self._show_validate_all_report(result)
        self.validation_finished.emit(result)

    def _show_validate_all_report(self, result: ManyResult) -> None:
        """Say what "Validate all" found and offer the list of the certificates with errors."""
        box = QMessageBox(QMessageBox.Icon.Information, "Validate all",
                          f"{result.validated:,} certificates validated: {result.with_errors:,} with errors, "
                          f"{result.with_warnings:,} with warnings.", QMessageBox.StandardButton.Close, self)
        box.setObjectName("validateAllReport")
        if result.with_errors:
            box.setInformativeText("Certificates with errors cannot be approved until they are corrected.")
            show = box.addButton("Show certificates with errors", QMessageBox.ButtonRole.AcceptRole)
            show.setObjectName("showErrorsButton")
            box.setDefaultButton(show)
            show.clicked.connect(lambda: self.filter_bar.apply_list(*check_list(CheckFilter.ERRORS)))
        box.finished.connect(box.deleteLater)
        box.finished.connect(lambda _r: setattr(self, "validate_all_report", None))
        self.validate_all_report = box
        box.open()

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
