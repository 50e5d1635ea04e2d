"""The intake inbox at the desk: the Inbox pane beside the certificate list (View > Inbox, Ctrl+4), the
selected document in the viewer, and Assign…, Discard… and Split… through the inbox service."""

from __future__ import annotations

from ecms_desktop.services.certificates.query import CertificateRow
from ecms_desktop.services.customers.service import CustomerInfo
from ecms_desktop.services.intake.inbox import Assignment, InboxItem
from ecms_desktop.views.certificates.filter_bar import Filters
from ecms_desktop.views.intake.assign_dialog import AssignDialog
from ecms_desktop.views.intake.split_dialog import SplitDialog
from ecms_desktop.views.main_window.desk import DeskWindow
from ecms_desktop.views.operations import inbox
from ecms_desktop.views.operations.inbox import InboxDocument
from ecms_desktop.views.widgets.reason_dialog import ReasonDialog

_NOTHING_SELECTED = "Select a document of the inbox to see it here."


class InboxMixin(DeskWindow):
    """The Inbox pane's behaviour."""

    def _connect_inbox(self) -> None:
        pane = self.inbox_pane
        pane.item_selected.connect(self._on_inbox_pane_item_selected)
        pane.assign_requested.connect(self.assign_inbox_document)
        pane.discard_requested.connect(self.discard_inbox_document)
        pane.split_requested.connect(self.split_inbox_document)
        pane.refresh_requested.connect(self.refresh_inbox)
        self.grid_tabs.currentChanged.connect(self._on_grid_tabs_current_changed)
        self.inbox_dialog: AssignDialog | ReasonDialog | SplitDialog | None = None

    def show_inbox(self) -> None:
        """Bring the Inbox pane forward (and read it again)."""
        self.grid_tabs.setCurrentWidget(self.inbox_pane)
        self.inbox_pane.table.setFocus()
        self.refresh_inbox()

    def _inbox_is_shown(self) -> bool:
        return self.grid_tabs.currentWidget() is self.inbox_pane

    # -- the viewer follows the pane

    def _on_grid_tabs_current_changed(self, _index: int) -> None:
        if self._inbox_is_shown():
            item = self.inbox_pane.selected_item()
            self.leave_form(lambda: self._show_inbox_document(item),
                            lambda: self.grid_tabs.setCurrentWidget(self.table))
        elif self.current_detail is None:
            self._show_selected(self.selected_certificate_id())

    def _on_inbox_pane_item_selected(self, item: InboxItem | None) -> None:
        if self._inbox_is_shown():
            self.leave_form(lambda: self._show_inbox_document(item))

    def _show_inbox_document(self, item: InboxItem | None) -> None:
        """The document in the viewer; the form is empty meanwhile (the document has no certificate)."""
        self._clear_detail(_NOTHING_SELECTED)
        db = self.db
        if item is None or db is None:
            return
        inbox.open_inbox_document(db, item).success(self._on_inbox_document_opened) \
            .failure(self._on_background_error).run(self.runner)

    def _on_inbox_document_opened(self, opened: InboxDocument) -> None:
        selected = self.inbox_pane.selected_item()
        if not self._inbox_is_shown() or selected is None or selected.id != opened.item.id:
            return
        item = opened.item
        self.viewer.show_document(opened.data, sha256=opened.sha256, name=item.name)
        self.inbox_document_shown.emit(item)

    # -- Assign…

    def assign_inbox_document(self, item: InboxItem | None = None) -> None:
        """Ask whose the document is and what becomes of it (a new certificate, or attached to one)."""
        item = item or self.inbox_pane.selected_item()
        db, company_id = self.db, self.company_id
        if item is None or db is None or company_id is None:
            return
        inbox.list_customers(db, company_id).success(lambda customers: self._open_assign_dialog(item, customers)) \
            .failure(self._on_background_error).run(self.runner)

    def _open_assign_dialog(self, item: InboxItem, customers: list[CustomerInfo]) -> None:
        dialog = AssignDialog(item, customers, self)
        self.inbox_dialog = dialog
        dialog.customer_chosen.connect(lambda customer_id: self._load_certificates_of(dialog, customer_id))
        dialog.accepted.connect(lambda: self._on_assign_dialog_accepted(dialog, item))
        dialog.ask_for_certificates()  # of the customer found by the purchaser's name read from the document
        dialog.open()
        self.inbox_dialog_opened.emit(dialog)

    def _load_certificates_of(self, dialog: AssignDialog, customer_id: int) -> None:
        db, company_id = self.db, self.company_id
        if db is None or company_id is None:
            return

        def show(rows: list[CertificateRow]) -> None:
            dialog.set_certificates(customer_id, rows)

        inbox.list_certificates_of(db, company_id, customer_id, self.as_of).success(show) \
            .failure(self._on_background_error).run(self.runner)

    def _on_assign_dialog_accepted(self, dialog: AssignDialog, item: InboxItem) -> None:
        choice, db = dialog.choice(), self.db
        if choice is None or db is None:
            return
        inbox.assign_document(db, self.rules, item.id, customer=choice.customer,
                              new_customer_name=choice.new_customer_name, certificate_id=choice.certificate_id,
                              expected_version=choice.expected_version, as_of=self.as_of) \
            .success(self._on_inbox_document_assigned).failure(self._on_inbox_action_failed) \
            .run(self.runner, parent=self)

    def _on_inbox_document_assigned(self, assignment: Assignment) -> None:
        self.statusBar().showMessage(assignment.message, 10000)
        self.refresh_inbox()
        # The certificate, selected in the list for review (filters cleared so that it is shown).
        self.grid_tabs.setCurrentWidget(self.table)
        self._pending_select = assignment.certificate_id
        if self.filters != Filters():
            self.filter_bar.clear()  # runs the query; the certificate is selected when its rows are in
        else:
            self.run_query()
        self.inbox_document_assigned.emit(assignment)

    # -- Discard…

    def discard_inbox_document(self, item: InboxItem | None = None) -> None:
        """Take the document out of the inbox for good, after asking why."""
        item = item or self.inbox_pane.selected_item()
        if item is None or self.db is None:
            return
        dialog = ReasonDialog("Discard document", f"Why is document {item.id} ({item.name}) discarded? It leaves the "
                              "inbox for good; the file stays stored and the reason is kept in the audit trail.",
                              self, ok_text="Discard", suggestions=("not a certificate", "sent by mistake"))
        self.inbox_dialog = dialog
        dialog.accepted.connect(lambda: self._on_discard_dialog_accepted(item, dialog.reason()))
        dialog.open()
        self.inbox_dialog_opened.emit(dialog)

    def _on_discard_dialog_accepted(self, item: InboxItem, reason: str) -> None:
        db = self.db
        if db is None:
            return
        inbox.discard_document(db, item.id, reason).success(self._on_inbox_document_discarded) \
            .failure(self._on_inbox_action_failed).run(self.runner, parent=self)

    def _on_inbox_document_discarded(self, item: InboxItem) -> None:
        self.statusBar().showMessage(f"Document {item.id} ({item.name}) was discarded.", 8000)
        self.refresh_inbox()
        self.inbox_document_discarded.emit(item)

    # -- Split…

    def split_inbox_document(self, item: InboxItem | None = None) -> None:
        """Ask for the page ranges, one per certificate the document holds, and split it."""
        item = item or self.inbox_pane.selected_item()
        if item is None or self.db is None:
            return
        dialog = SplitDialog(item, self)
        self.inbox_dialog = dialog
        dialog.accepted.connect(lambda: self._on_split_dialog_accepted(item, dialog.ranges()))
        dialog.open()
        self.inbox_dialog_opened.emit(dialog)

    def _on_split_dialog_accepted(self, item: InboxItem, ranges: list[tuple[int, int]]) -> None:
        db = self.db
        if db is None:
            return
        inbox.split_document(db, item.id, ranges).success(self._on_inbox_document_split) \
            .failure(self._on_inbox_action_failed).run(self.runner, parent=self)

    def _on_inbox_document_split(self, parts: list[InboxItem]) -> None:
        self.statusBar().showMessage(f"Split into documents {', '.join(str(p.id) for p in parts)}.", 8000)
        self.refresh_inbox()
        self.inbox_document_split.emit(parts)

    def _on_inbox_action_failed(self, error: BaseException) -> None:
        self.refresh_inbox()  # someone else may have acted on the document meanwhile
        self._on_operation_error(error)


__all__ = ["InboxMixin"]
