"""Saving the certificate in the form: once, with the version it was loaded with (a change someone
else saved meanwhile is refused and the user can reload); a save asked for while another runs is
queued; Save / Discard / Cancel before the form moves on; Archive / Unarchive with a reason."""

from __future__ import annotations

from collections.abc import Callable

import shiboken6
from PySide6.QtWidgets import QMessageBox

from ecms_desktop.models.enums import ReviewState
from ecms_desktop.services.certificates.form_spec import FieldFinding
from ecms_desktop.services.core.certificate_records import CertificateDetail, CertificateInput
from ecms_desktop.services.core.errors import Cancelled, ConflictError, DatabaseBusyError, ValidationError
from ecms_desktop.views.certificates.form.editing import FormEditing
from ecms_desktop.views.certificates.form.fields import SaveCallbacks, UnreadableInput, status_badge_style
from ecms_desktop.views.operations import Operation, certificates
from ecms_desktop.views.widgets.error_presenter import offer_retry, present_error
from ecms_desktop.views.widgets.reason_dialog import ReasonDialog


class FormSaving(FormEditing):
    """Storing the edits, archiving, and leaving the form."""

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

    def _on_save_action_triggered(self) -> None:
        self.save()

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

    def reload(self) -> None:
        """Load the stored certificate again (dropping edits); used after a conflict."""
        if self.detail is None:
            return
        certificates.reload_certificate(self._database(), self.rules, self.detail.id, self._as_of) \
            .success(self.load).failure(lambda error: present_error(self, error)).run(self.runner)

    def request_archive(self) -> None:
        """Archive (or unarchive) after asking the reason."""
        if self.detail is None:
            return
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

        def finish() -> SaveCallbacks | None:
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
