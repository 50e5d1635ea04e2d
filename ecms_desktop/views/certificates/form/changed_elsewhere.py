"""The certificate in the form was changed elsewhere (another desk, the ``ecms`` tool) while it is shown.

Without unsaved edits the form shows the new version at once and says, quietly, "Updated by Pat at
10:42". With unsaved edits, nothing in the form changes by itself: a panel says "Changed by Pat at
10:42" and lists each field they changed, their value beside the user's. The user then takes theirs
or keeps mine: either way the form goes on from their version (their changes to fields the user did
not edit are taken, the user's other edits stay) and the next save is made against it. Until
the user chose, the form still holds the version it was loaded with, so a save is refused as before
(a change nobody saw is never overwritten).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.core.certificate_records import CertificateDetail, CertificateInput
from ecms_desktop.views.certificates.findings_panel import field_labels
from ecms_desktop.views.certificates.form.suggesting import FormSuggesting

#: The fields of a certificate compared (the whole editable content; ``lines``: states and tax IDs).
_COMPARED = tuple(f.name for f in dataclasses.fields(CertificateInput))
_EXTRA_LABELS = {"lines": "States and state tax IDs", "customer_id": "Customer", "company_id": "Company",
                 "review_state": "Review"}


def local_time(at: dt.datetime) -> str:
    """A stored (UTC) time as the user's clock shows it: HH:MM, with the date when it is not today."""
    local = at.astimezone()
    today = dt.datetime.now().astimezone().date()
    return local.strftime("%H:%M") if local.date() == today else local.strftime("%Y-%m-%d %H:%M")


def _shown(value: Any) -> str:
    if value is None or value == "" or value == ():
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple) and value and hasattr(value[0], "state"):
        return ", ".join(f"{line.state} {line.state_tax_id}".strip() for line in value)
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


@dataclasses.dataclass(frozen=True)
class FieldChange:
    """One field the other desk changed: their value, the user's, and whether the user edited it."""

    field: str
    label: str
    theirs: str
    mine: str
    edited_here: bool


class FormChangedElsewhere(FormSuggesting):
    """Following changes saved elsewhere to the certificate shown (see the module's description)."""

    #: The certificate shown was updated from a change saved elsewhere (no unsaved edits): the detail.
    updated_elsewhere = Signal(object)
    #: A change saved elsewhere met unsaved edits: the conflict panel is shown (list of FieldChange).
    changed_underneath = Signal(object)
    #: The user chose in the conflict panel: the form now goes on from their version (the detail).
    rebased = Signal(object)

    def _init_changed_elsewhere(self) -> None:
        """Called once the widgets exist (``CertificateForm.__init__``)."""
        #: Their version, who saved it and when, while the conflict panel waits for a choice.
        self.theirs: CertificateDetail | None = None
        self._theirs_by = ("", "")
        self.updated_note = QLabel("")
        self.updated_note.setObjectName("updatedElsewhereNote")
        self.updated_note.setStyleSheet("color: palette(mid); font-style: italic;")
        self.updated_note.setVisible(False)
        self.conflict_panel = QWidget()
        self.conflict_panel.setObjectName("conflictPanel")
        self.conflict_panel.setStyleSheet("#conflictPanel { background: #fff4e0; border: 1px solid #b26a00; }")
        box = QVBoxLayout(self.conflict_panel)
        self.conflict_title = QLabel("")
        self.conflict_title.setObjectName("conflictTitle")
        self.conflict_title.setStyleSheet("font-weight: bold;")
        self.conflict_title.setWordWrap(True)
        self.conflict_table = QTableWidget(0, 3)
        self.conflict_table.setObjectName("conflictTable")
        self.conflict_table.setHorizontalHeaderLabels(["Field", "Their value", "Your value"])
        self.conflict_table.verticalHeader().setVisible(False)
        self.conflict_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.conflict_table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.conflict_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.conflict_table.setWordWrap(True)
        self.conflict_table.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.conflict_table.horizontalHeader().sectionResized.connect(self._on_conflict_column_resized)
        self.take_theirs_button = QPushButton("Take theirs")
        self.take_theirs_button.setObjectName("takeTheirsButton")
        self.take_theirs_button.setToolTip("Their values for the fields listed; your edits to other fields are kept")
        self.keep_mine_button = QPushButton("Keep mine")
        self.keep_mine_button.setObjectName("keepMineButton")
        self.keep_mine_button.setToolTip("Your values for the fields you edited; their other changes are kept. "
                                         "Save then stores yours over theirs.")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.take_theirs_button)
        buttons.addWidget(self.keep_mine_button)
        box.addWidget(self.conflict_title)
        box.addWidget(self.conflict_table)
        box.addLayout(buttons)
        self.conflict_panel.setVisible(False)
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.insertWidget(1, self.updated_note)
        layout.insertWidget(3, self.conflict_panel)  # below the banner
        self.take_theirs_button.clicked.connect(self.take_theirs)
        self.keep_mine_button.clicked.connect(self.keep_mine)

    def _on_conflict_column_resized(self, _index: int, _old: int, _new: int) -> None:
        if self.conflict_panel.isVisible():
            self._fit_conflict_rows()

    def _load(self, detail: CertificateDetail | None) -> None:
        self.theirs = None
        self.conflict_panel.setVisible(False)
        self.updated_note.setVisible(False)
        super()._load(detail)

    # ------------------------------------------------------------------ a change saved elsewhere

    def changed_elsewhere(self, theirs: CertificateDetail, who: str, at: dt.datetime) -> None:
        """``theirs``: the certificate as stored now, saved by ``who`` at ``at`` (UTC). Ignored when it is
        not the certificate shown or not newer than the version the form holds (this form's own save)."""
        shown = self.detail
        if shown is None or theirs.id != shown.id or theirs.version <= shown.version:
            return
        if self.saving:  # this form's own save may be what was read: decide once it has ended
            self._after_save.append(lambda _ok: self.changed_elsewhere(theirs, who, at))
            return
        if not self.is_dirty():
            self.load(theirs)
            self.updated_note.setText(f"Updated by {who} at {local_time(at)}")
            self.updated_note.setVisible(True)
            self.updated_elsewhere.emit(theirs)
            return
        self.theirs, self._theirs_by = theirs, (who, local_time(at))
        rows = self.field_changes()
        self.conflict_title.setText(
            f"Changed by {who} at {local_time(at)} while you were editing. Their values are beside yours; "
            "choose before you save (nothing was overwritten).")
        t = self.conflict_table
        t.setRowCount(len(rows))
        for r, row in enumerate(rows):
            mine = row.mine if row.edited_here else f"{row.mine} (not edited: theirs is taken)"
            for c, value in enumerate((row.label, row.theirs, mine)):
                item = QTableWidgetItem(value)
                item.setToolTip(value)  # a long value is cut in the cell
                t.setItem(r, c, item)
        self.updated_note.setVisible(False)  # an earlier update's note: the panel says what is new
        self.conflict_panel.setVisible(True)
        self._fit_conflict_rows()
        self.changed_underneath.emit(rows)

    def _fit_conflict_rows(self) -> None:
        """Every value whole, wrapped at the columns' widths (two values often differ only at their end, so
        a value cut short would hide the very difference); again whenever the columns change width."""
        t = self.conflict_table
        t.resizeRowsToContents()
        t.setFixedHeight(t.horizontalHeader().height() + sum(t.rowHeight(r) for r in range(t.rowCount())) + 6)

    def _mine(self) -> CertificateInput | None:
        try:
            return self.collect()
        except ValueError:  # a field that cannot be read yet: the user's edits are compared as stored
            return None

    def field_changes(self) -> list[FieldChange]:
        """The fields the version in :attr:`theirs` changed, with their value and the user's."""
        base, theirs = self.detail, self.theirs
        if base is None or theirs is None:
            return []
        mine = self._mine() or base.data
        labels = {**field_labels(self.engine.label), **_EXTRA_LABELS}
        rows: list[FieldChange] = []
        for name in _COMPARED:
            old, new, own = (getattr(base.data, name), getattr(theirs.data, name), getattr(mine, name))
            if old != new:
                rows.append(FieldChange(name, labels.get(name, name.replace("_", " ").capitalize()), _shown(new),
                                        _shown(own), own != old))
        if base.review_state != theirs.review_state:
            rows.append(FieldChange("review_state", labels["review_state"], theirs.review_state.capitalize(),
                                    base.review_state.capitalize(), False))
        return rows

    def take_theirs(self) -> None:
        """Their values for every field they changed; the user's edits to other fields stay."""
        self._rebase(prefer_mine=False)

    def keep_mine(self) -> None:
        """The user's values for the fields the user edited; their changes to the other fields are taken.
        Saving then stores the result over their version (the user saw both)."""
        self._rebase(prefer_mine=True)

    def _rebase(self, *, prefer_mine: bool) -> None:
        base, theirs = self.detail, self.theirs
        if base is None or theirs is None:
            return
        mine = self._mine()
        if mine is None:  # nothing is dropped: the user corrects what cannot be read, then chooses
            self.conflict_title.setText(f"Changed by {self._theirs_by[0]} at {self._theirs_by[1]}. A field of "
                                        "yours cannot be read (see the messages in the form): correct it, then "
                                        "choose.")
            return
        values = {}
        for name in _COMPARED:
            old, new, own = getattr(base.data, name), getattr(theirs.data, name), getattr(mine, name)
            edited = own != old
            values[name] = own if edited and (prefer_mine or new == old) else new
        merged = dataclasses.replace(theirs.data, **values)
        self.load(dataclasses.replace(theirs, data=merged))
        self.detail = theirs  # saves go on from their version: the edits left are unsaved
        who, when = self._theirs_by
        self.updated_note.setText(f"Changed by {who} at {when}: " + ("your values kept" if prefer_mine
                                                                    else "their values taken"))
        self.updated_note.setVisible(True)
        self.rebased.emit(theirs)


__all__ = ["FieldChange", "FormChangedElsewhere", "local_time"]
