"""Everyone sees it: the desk follows what other desks commit to its database.

A :class:`ChangeFeed` runs the services' :class:`~ecms_desktop.services.core.changes.ChangeWatcher` on a
thread of its own (it waits for the database most of its life, so it does not take one of the task
runner's threads) and hands each batch of changes to the GUI thread. The desk then, for a batch that
concerns its company: reads the grid again in place (the selected certificate, the scroll position
and the sort stay), the counts and the inbox; reads the certificate open in the form and shows it
(``Updated by Pat at 10:42``) or sets it beside the unsaved edits (see
:mod:`~ecms_desktop.views.certificates.form.changed_elsewhere`); and the review queue, when open, does
the same for its list and its certificate.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from ecms_desktop.services.core.changes import ChangeBatch, ChangeWatcher, run_watcher
from ecms_desktop.services.core.database import Database
from ecms_desktop.views.main_window.desk import DeskWindow
from ecms_desktop.views.operations import certificates
from ecms_desktop.views.operations.certificates import ShownCertificate
from ecms_desktop.views.renewal_center import RenewalCenterDialog

log = logging.getLogger(__name__)

#: Batches arriving within this many milliseconds are shown together (an import commits in bursts).
COALESCE_MS = 150


def merge_batches(batches: list[ChangeBatch]) -> ChangeBatch:
    """Several batches as one (in order)."""
    return ChangeBatch(tuple(c for b in batches for c in b.changes), batches[-1].last_seq,
                       all(b.complete for b in batches))


class ChangeFeed(QObject):
    """The changes committed to one database, delivered on the GUI thread (``changes_arrived``)."""

    #: A batch of changes was committed (a ChangeBatch).
    changes_arrived = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.watcher: ChangeWatcher | None = None
        self._thread: threading.Thread | None = None

    def start(self, db: Database, **options: Any) -> ChangeWatcher:
        """Watch ``db`` (instead of any database watched before); ``options`` go to the watcher."""
        self.stop()
        watcher = self.watcher = ChangeWatcher(db, **options)
        self._thread = threading.Thread(target=self._run, args=(watcher,), name="ecms-change-feed", daemon=True)
        self._thread.start()
        return watcher

    def _run(self, watcher: ChangeWatcher) -> None:  # on the feed's thread: never touches a widget
        try:
            run_watcher(watcher, self.changes_arrived.emit)
        except Exception:
            log.exception("the change feed stopped: other desks' changes show after Refresh (F5)")

    def stop(self) -> None:
        """Stop watching (waits briefly for the thread, which checks every poll interval)."""
        watcher, thread = self.watcher, self._thread
        self.watcher, self._thread = None, None
        if watcher is not None:
            watcher.stop()
        if thread is not None:
            thread.join(5.0)


class LiveMixin(DeskWindow):
    """The desk following other desks' changes (see the module's description)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.change_feed = ChangeFeed(self)
        self.change_feed.changes_arrived.connect(self._on_change_feed_changes_arrived)
        self._live_batches: list[ChangeBatch] = []
        self._live_timer = QTimer(self)
        self._live_timer.setSingleShot(True)
        self._live_timer.setInterval(COALESCE_MS)
        self._live_timer.timeout.connect(self._show_changes)
        #: Where the grid was (selected certificate, scroll positions) while it is read again in place.
        self._live_place: tuple[int | None, int, int, int] | None = None
        self.model.query_finished.connect(self._on_model_query_finished_in_place)
        self.form.rebased.connect(self._on_form_rebased)

    def set_database(self, db: Database | None) -> None:
        self.change_feed.stop()
        super().set_database(db)
        if db is not None:
            self.change_feed.start(db)

    def stop_following_changes(self) -> None:
        self._live_timer.stop()
        self.change_feed.stop()

    def _on_change_feed_changes_arrived(self, batch: ChangeBatch) -> None:
        self._live_batches.append(batch)
        if not self._live_timer.isActive():
            self._live_timer.start()

    def _show_changes(self) -> None:
        batches, self._live_batches = self._live_batches, []
        if not batches or self.db is None or self._closing:
            return
        batch = merge_batches(batches)
        if batch.touches(self.company_id):
            self.refresh_in_place()
            self.refresh_counts(self.model.query)
            self.refresh_inbox()
        shown = self.form.detail
        if shown is not None and (shown.id in batch.certificate_ids or not batch.complete):
            self._read_open_certificate(shown.id, *batch.changed_by(shown.id))
        if self.review_window is not None and self.review_window.isVisible():
            self.review_window.follow_changes(batch)
        renewals = self.tools.get("renewals")
        if isinstance(renewals, RenewalCenterDialog):
            try:
                if renewals.isVisible():
                    renewals.follow_changes(batch)
            except RuntimeError:  # closed and deleted by Qt
                pass
        self.changes_shown.emit(batch)

    # ------------------------------------------------------------------ the grid, in place

    def refresh_in_place(self) -> None:
        """Read the grid again keeping the selected certificate, the scroll position and the sort."""
        if self.model.busy and self._live_place is not None:
            self.model.refresh(in_place=True)  # the place noted before the running read still holds
            return
        self._live_place = (self.table.selected_certificate_id(), self.table.verticalScrollBar().value(),
                            self.table.horizontalScrollBar().value(), self.model.rowCount())
        self.model.refresh(in_place=True)

    def _on_model_query_finished_in_place(self, _total: int) -> None:
        place, self._live_place = self._live_place, None
        if place is None:
            return
        selected, top, left, loaded = place
        pos = self.model.position_of(selected) if selected is not None else None
        self._restoring_selection = True  # the form keeps what it shows (and its edits)
        try:
            if pos is not None:
                self.model.fetch_until(pos)
                index = self.model.index(pos, max(self.table.currentIndex().column(), 0))
                if self.table.currentIndex().row() != pos:
                    self.table.selectionModel().setCurrentIndex(
                        index, self.table.selectionModel().SelectionFlag.ClearAndSelect
                        | self.table.selectionModel().SelectionFlag.Rows)
            elif selected is not None:
                self.statusBar().showMessage(
                    f"Certificate {selected} no longer matches the filters (changed on another desk); "
                    "it stays in the form.", 8000)
            # As many rows as were loaded (they were read again with the ids), then the same scroll position.
            self.model.fetch_until(loaded - 1)
            self.table.doItemsLayout()
            self.table.verticalScrollBar().setValue(top)
            self.table.horizontalScrollBar().setValue(left)
        finally:
            self._restoring_selection = False
        self._update_actions()

    # ------------------------------------------------------------------ the open certificate

    def _read_open_certificate(self, cert_id: int, who: str, at: dt.datetime) -> None:
        db = self.db
        if db is None:
            return
        certificates.load_certificate(db, self.rules, cert_id, self.as_of) \
            .success(lambda shown: self._on_open_certificate_read(shown, who, at)) \
            .failure(lambda error: log.warning("reading certificate %s again: %s", cert_id, error)).run(self.runner)

    def _on_open_certificate_read(self, shown: ShownCertificate, who: str, at: dt.datetime) -> None:
        theirs = shown.detail
        form = self.form
        if form.detail is None or form.detail.id != theirs.id or self._closing:
            return
        before = self.current_detail
        form.changed_elsewhere(theirs, who, at)
        if form.detail is not None and form.detail.version == theirs.version and form.theirs is None:
            self.current_detail = theirs
        documents = [d.id for d in theirs.documents]
        if before is not None and before.id == theirs.id and [d.id for d in before.documents] != documents:
            stored = shown.document
            if stored is None or not theirs.documents:
                self._shown_document_id = None
                self.viewer.clear("No document is attached to this certificate.\nDrop a file here to attach it.")
            else:
                doc = theirs.documents[0]
                self._shown_document_id = doc.id
                self.viewer.show_document(stored.data, sha256=stored.sha256, name=doc.original_name,
                                          rotation=doc.view_rotation)
        self._update_actions()

    def _on_form_rebased(self, theirs: Any) -> None:
        if self.current_detail is None or self.current_detail.id == theirs.id:
            self.current_detail = theirs
        self._update_actions()


__all__ = ["COALESCE_MS", "ChangeFeed", "LiveMixin", "merge_batches"]
