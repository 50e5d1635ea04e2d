"""Documents in: File > Import documents and files dropped on the certificate list or the inbox (each waits
in the intake inbox, unless it is a returned renewal form that answers its request), File > Attach
documents and files dropped on the document or form side (attached to the selected certificate), and
File > Import certificates (CSV/XLSX)… from a spreadsheet."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QMessageBox, QWidget

from ecms_desktop.services.certificates.import_service import ImportResult
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.views.main_window.desk import DeskWindow
from ecms_desktop.views.operations import intake
from ecms_desktop.views.operations.intake import ReceivedFiles
from ecms_desktop.views.widgets.error_presenter import present_error
from ecms_desktop.views.widgets.file_dialogs import get_open_file_name, get_open_file_names


class IntakeMixin(DeskWindow):
    """Receiving documents and importing certificates."""

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.db is not None and _local_files(event.mimeData().urls()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self.db is not None and _local_files(event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = _local_files(event.mimeData().urls())
        if not paths or self.db is None:
            event.ignore()
            return
        event.acceptProposedAction()
        # Dropped on the document or form side: attach to the selected certificate; elsewhere to the inbox.
        target = self.childAt(event.position().toPoint())
        if self.current_detail is not None and target is not None and (
                self._is_inside(target, self.viewer) or self._is_inside(target, self.form)):
            self.receive_files(paths, attach_to=(self.current_detail.id, self.current_detail.version))
        else:
            self.receive_files(paths)

    @staticmethod
    def _is_inside(widget: QWidget, ancestor: QWidget) -> bool:
        w: QWidget | None = widget
        while w is not None:
            if w is ancestor:
                return True
            w = w.parentWidget()
        return False

    def import_documents_dialog(self) -> None:
        paths = get_open_file_names(self, "Import documents", str(self.settings.value("dirs/import", "")),
                                    "Certificates (*.pdf *.png *.jpg *.jpeg *.tif *.tiff);;All files (*)")
        if paths:
            self.settings.setValue("dirs/import", str(Path(paths[0]).parent))
            self.receive_files([Path(p) for p in paths])

    def attach_documents_dialog(self) -> None:
        if self.current_detail is None:
            return
        paths = get_open_file_names(self, f"Attach documents to certificate {self.current_detail.id}",
                                    str(self.settings.value("dirs/import", "")),
                                    "Certificates (*.pdf *.png *.jpg *.jpeg *.tif *.tiff);;All files (*)")
        if paths:
            self.receive_files([Path(p) for p in paths],
                               attach_to=(self.current_detail.id, self.current_detail.version))

    def receive_files(self, paths: Sequence[Path], *, attach_to: tuple[int, int] | None = None) -> None:
        """Read and store files off the GUI thread, with progress and Cancel: each waits in the intake inbox
        (or answers its renewal request), or with ``attach_to`` (a certificate's id and the version the user
        sees) is attached to that certificate."""
        db, company_id = self.db, self.company_id
        if db is None:
            return
        if company_id is None:
            present_error(self, ValidationError("There is no company yet: add one in Settings > Companies "
                                                "before receiving documents."))
            return
        intake.receive_files(db, self.rules, paths, company_id=company_id, as_of=self.as_of, attach_to=attach_to) \
            .success(lambda received: self._on_files_received(received, attach_to)) \
            .failure(self._on_background_error).run(self.runner, parent=self)

    def _on_files_received(self, received: ReceivedFiles, attach_to: tuple[int, int] | None) -> None:
        self.last_received = received
        summary = received.summary()
        self.statusBar().showMessage(f"Documents received: {summary}.", 8000)
        self.refresh()  # the grid, the counts and the inbox
        if attach_to is not None and self.selected_certificate_id() == attach_to[0]:
            self.load_detail(attach_to[0])
        elif received.arrived and any(i.outcome == "inbox" for i in received.arrived):
            self.grid_tabs.setCurrentWidget(self.inbox_pane)  # where they wait
        details = received.messages()
        if details:
            box = QMessageBox(QMessageBox.Icon.Information, "Documents received", f"Documents received: {summary}.",
                              QMessageBox.StandardButton.Ok, self)
            box.setObjectName("intakeReport")
            box.setDetailedText("\n".join(details))
            box.setInformativeText("\n".join(details)[:1500])
            if self.interactive:
                box.open()
        self.intake_finished.emit(received)
        if received.arrived is not None:
            self.last_returned_items = received.arrived
            self.returned_forms_received.emit(received.arrived)

    def import_certificates_dialog(self) -> None:
        if self.db is None or self.company_id is None:
            present_error(self, ValidationError("Choose or add a company before importing certificates."))
            return
        path = get_open_file_name(self, "Import certificates", str(self.settings.value("dirs/import", "")),
                                  "Spreadsheets (*.csv *.xlsx)")
        if path:
            self.import_certificates(Path(path))

    def import_certificates(self, path: Path) -> None:
        db, company_id, rules, as_of = self.db, self.company_id, self.rules, self.as_of
        if db is None or company_id is None:
            return

        intake.import_certificates(db, rules, path, company_id=company_id, as_of=as_of) \
            .success(lambda result: self._on_certificates_imported(path, result)) \
            .failure(self._on_background_error).run(self.runner, parent=self)

    def _on_certificates_imported(self, path: Path, result: ImportResult) -> None:
        self.refresh()
        held = (f"; {result.held_for_review} held for review because of their findings"
                if result.held_for_review else "")
        summary = (f"{path.name}: {result.imported} certificates imported ({result.with_errors} with errors, "
                   f"{result.with_warnings} with warnings){held}.")
        self.statusBar().showMessage(summary, 15000)
        # The status bar is cleared when the grid reloads: the summary stays in a report.
        box = QMessageBox(QMessageBox.Icon.Information, "Certificates imported", summary,
                          QMessageBox.StandardButton.Ok, self)
        box.setObjectName("importReport")
        if result.held_for_review:
            box.setInformativeText("Certificates held for review wait in the review queue: correct them and "
                                   "approve them there.")
        self.import_report = box
        if self.interactive:
            box.open()


def _local_files(urls: Sequence[QUrl]) -> list[Path]:
    return [Path(u.toLocalFile()) for u in urls if u.isLocalFile() and u.toLocalFile()]
