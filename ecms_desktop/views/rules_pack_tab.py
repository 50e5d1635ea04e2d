"""Settings > Rules pack: which state rules pack is in force, installing a newer one from an archive, going
back to the previous one, then the certificates whose validation result the change touches, listed off the
GUI thread and re-validated on request."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.people import Permission
from ecms_desktop.services.core.rules_packs import RulesChange, RulesInForce
from ecms_desktop.services.validation.service import ManyResult, StaleCertificate
from ecms_desktop.views.operations import rules_packs as ops
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.people_views import refusal_tip
from ecms_desktop.views.widgets.error_presenter import present_error
from ecms_desktop.views.widgets.file_dialogs import get_open_file_name


class RulesPackTab(QWidget):
    """The rules pack in force and its changes (admins only change it; everyone sees it)."""

    #: A rules pack was installed or gone back from (the RulesChange): the desk uses the new rules.
    rules_changed = Signal(object)
    #: The certificates whose result would change were listed (the list of StaleCertificate).
    stale_listed = Signal(object)
    #: The listed certificates were validated again (the ManyResult).
    revalidated = Signal(object)

    def __init__(self, db: Database, runner: TaskRunner, *, as_of: dt.date, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("rulesPackTab")
        self.db, self.runner, self.as_of = db, runner, as_of
        self.stale: list[StaleCertificate] = []
        form = QFormLayout()
        self.in_force = QLabel("…", self)
        self.in_force.setObjectName("rulesInForce")
        self.in_force.setWordWrap(True)
        self.packaged = QLabel("", self)
        self.previous = QLabel("", self)
        self.previous.setObjectName("rulesPrevious")
        self.note = QLabel("", self)
        self.note.setObjectName("rulesNote")
        self.note.setWordWrap(True)
        form.addRow("In force:", self.in_force)
        form.addRow("Program's own pack:", self.packaged)
        form.addRow("Going back returns to:", self.previous)
        form.addRow("", self.note)

        self.install_button = QPushButton("Install rules pack…", self)
        self.install_button.setObjectName("installRulesPack")
        self.install_button.clicked.connect(self._on_install_clicked)
        self.rollback_button = QPushButton("Go back to previous", self)
        self.rollback_button.setObjectName("rollBackRulesPack")
        self.rollback_button.clicked.connect(self._on_rollback_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(self.install_button)
        buttons.addWidget(self.rollback_button)
        buttons.addStretch(1)

        self.stale_summary = QLabel("", self)
        self.stale_summary.setObjectName("staleSummary")
        self.stale_summary.setWordWrap(True)
        self.stale_list = QListWidget(self)
        self.stale_list.setObjectName("staleList")
        self.revalidate_button = QPushButton("Re-validate", self)
        self.revalidate_button.setObjectName("revalidateStale")
        self.revalidate_button.clicked.connect(self._on_revalidate_clicked)
        for widget in (self.stale_summary, self.stale_list, self.revalidate_button):
            widget.setVisible(False)

        hint = QLabel("A rules pack archive (ecms-rules-<version>.zip) brings newer state rules without "
                      "reinstalling the program. It is kept in the database, so everyone using it validates with "
                      "the same rules; the change is recorded in the audit trail.", self)
        hint.setWordWrap(True)
        hint.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(hint)
        layout.addWidget(self.stale_summary)
        layout.addWidget(self.stale_list, 1)
        layout.addWidget(self.revalidate_button)

        why = refusal_tip(db.actor_box.known, Permission.ADMINISTER, "install a rules pack or go back")
        self._may_change = not why
        if why:
            for button in (self.install_button, self.rollback_button):
                button.setEnabled(False)
                button.setToolTip(why)
        self.refresh()

    # -- reading

    def refresh(self) -> None:
        ops.read_rules_in_force(self.db).success(self._on_read).failure(self._on_failed).run(self.runner, parent=self)

    def _on_read(self, info: RulesInForce) -> None:
        origin = "installed in the database" if info.source == "installed" else "the program's own"
        text = f"{info.version} ({origin}) — {info.title}"
        if info.installed_at is not None:
            text += f"\nInstalled {info.installed_at:%Y-%m-%d %H:%M} UTC by {info.installed_by}"
        self.in_force.setText(text)
        self.packaged.setText(info.packaged_version)
        self.previous.setText({None: "nothing to go back from", "packaged": "the program's own pack"}
                              .get(info.previous, info.previous or ""))
        self.note.setText(info.note)
        self.note.setVisible(bool(info.note))
        self.rollback_button.setEnabled(self._may_change and info.previous is not None)

    # -- changing

    def _on_install_clicked(self) -> None:
        chosen = get_open_file_name(self, "Install rules pack", "", "Rules pack archives (*.zip)")
        if chosen:
            self.install_from(Path(chosen))

    def install_from(self, file: Path) -> None:
        """Install the archive ``file`` (off the GUI thread), then list what the change touches."""
        ops.install_rules_pack(self.db, file).success(self._on_changed).failure(self._on_failed) \
            .run(self.runner, parent=self)

    def _on_rollback_clicked(self) -> None:
        ops.roll_back_rules_pack(self.db).success(self._on_changed).failure(self._on_failed) \
            .run(self.runner, parent=self)

    def _on_changed(self, change: RulesChange) -> None:
        self._on_read(change.in_force)
        self.rules_changed.emit(change)
        self.stale_summary.setText(f"Rules pack {change.after_version} is in force (was {change.before_version}). "
                                   "Finding the certificates whose validation result would change…")
        self.stale_summary.setVisible(True)
        ops.list_stale_certificates(self.db, as_of=self.as_of).success(self._on_stale_listed) \
            .failure(self._on_failed).run(self.runner, parent=self)

    def _on_stale_listed(self, stale: list[StaleCertificate]) -> None:
        self.stale = [s for s in stale if s.result_changes]
        self.stale_list.clear()
        for s in self.stale:
            item = QListWidgetItem(f"{s.certificate_number or f'#{s.certificate_id}'} — {s.reason}", self.stale_list)
            item.setData(Qt.ItemDataRole.UserRole, s.certificate_id)
        count = len(self.stale)
        day = self.as_of.isoformat()
        self.stale_summary.setText(
            f"{count} certificate(s) would get another validation result as of {day} with the rules in force."
            if count else f"No certificate's validation result changes as of {day}.")
        self.stale_list.setVisible(bool(count))
        self.revalidate_button.setText(f"Re-validate {count} certificate{'s' if count != 1 else ''}")
        self.revalidate_button.setVisible(bool(count))
        self.revalidate_button.setEnabled(bool(count))
        self.stale_listed.emit(stale)

    def _on_revalidate_clicked(self) -> None:
        ids = [s.certificate_id for s in self.stale]
        self.revalidate_button.setEnabled(False)
        ops.revalidate_certificates(self.db, ids, as_of=self.as_of).success(self._on_revalidated) \
            .failure(self._on_failed).run(self.runner, parent=self)

    def _on_revalidated(self, result: ManyResult) -> None:
        self.stale = []
        self.stale_list.clear()
        self.stale_list.setVisible(False)
        self.revalidate_button.setVisible(False)
        self.stale_summary.setText(f"{result.validated} certificate(s) validated again: {result.with_errors} with "
                                   f"errors, {result.with_warnings} with warnings.")
        self.revalidated.emit(result)

    def _on_failed(self, error: BaseException) -> None:
        self.revalidate_button.setEnabled(bool(self.stale))
        present_error(self, error)
