"""Who the desk acts as: settled when a database opens (on an SQLite file with several profiles, by asking
once and remembering the answer for this system user), shown in the status bar, switched with
File > Switch profile, and used to disable, with the reason, what the person may not do."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QLabel, QMessageBox

from ecms_desktop.services.core import people
from ecms_desktop.services.core.changes import ChangeBatch
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.people import Actor, Permission
from ecms_desktop.views.main_window.desk import DeskWindow
from ecms_desktop.views.operations import people as ops
from ecms_desktop.views.people_views import ProfileDialog, actor_text, refusal_tip


class PeopleMixin(DeskWindow):
    """The person acting at this desk (``self.actor``)."""

    actor: Actor | None = None
    #: Whether ``actor`` is settled for the open database (until then nothing is disabled for it).
    actor_settled: bool = False

    def _build_people_actions(self) -> QAction:
        self.actor_label = QLabel(self)
        self.actor_label.setObjectName("actorLabel")
        self.actor_label.setTextFormat(Qt.TextFormat.PlainText)
        self.statusBar().addPermanentWidget(self.actor_label)
        self.act_switch_profile = self._action("S&witch profile…", self.switch_profile, None,  # type: ignore[attr-defined]
                                               name="actSwitchProfile",
                                               tip="Choose who you are in this local database file")
        self.database_opened.connect(self._on_database_opened_for_people)
        self.changes_shown.connect(self._on_changes_shown_for_people)
        return self.act_switch_profile

    def _on_changes_shown_for_people(self, batch: ChangeBatch) -> None:
        """Someone changed the people (a role, a disabled profile): settle again who acts and what they may."""
        db = self.db
        if db is not None and (not batch.complete or any(c.entity_type == "person" for c in batch.changes)):
            ops.who_acts(db).success(lambda who: self._on_who(db, who, ask=False)) \
                .failure(self._on_background_error).run(self.runner, parent=self)

    def _on_database_opened_for_people(self, db: Database | None) -> None:
        self._set_actor(None, settled=False)
        if db is None:
            return
        ops.who_acts(db).success(lambda who: self._on_who(db, who, ask=True)) \
            .failure(self._on_background_error).run(self.runner, parent=self)

    def _on_who(self, db: Database, who: ops.WhoAtStart, *, ask: bool) -> None:
        if self.db is not db:
            return
        if who.actor is not None:
            self._set_actor(who.actor)
            return
        if db.dialect == "sqlite" and who.profiles and ask and self.interactive:
            self._ask_profile(db, who)
            return
        self._set_actor(None)
        self.statusBar().showMessage(who.problem)
        if self.interactive:
            QMessageBox.warning(self, "Who are you?", who.problem + "\n\nYou can look, but not change anything.")

    def _ask_profile(self, db: Database, who: ops.WhoAtStart) -> None:
        dialog = ProfileDialog(who.profiles, who.problem if ask_reason(who) else "", self)
        if dialog.exec() != QDialog.DialogCode.Accepted or dialog.chosen() is None:
            self._on_who(db, who, ask=False)
            return
        name = dialog.chosen() or ""
        ops.act_as(db, name).success(lambda actor: self._on_chosen(db, actor)) \
            .failure(self._on_background_error).run(self.runner, parent=self)

    def _on_chosen(self, db: Database, actor: Actor) -> None:
        if self.db is not db:
            return
        people.remember_profile(db.actor_box.database_key, actor.name)
        self._set_actor(actor)

    def switch_profile(self) -> None:
        """File > Switch profile (SQLite): choose another local profile."""
        db = self.db
        if db is None or db.dialect != "sqlite":
            return
        ops.who_acts(db).success(lambda who: self._ask_profile(db, who) if who.profiles else None) \
            .failure(self._on_background_error).run(self.runner, parent=self)

    def _set_actor(self, actor: Actor | None, *, settled: bool = True) -> None:
        self.actor, self.actor_settled = actor, settled
        self.actor_label.setText(actor_text(actor) if self.db is not None and settled else "")
        if actor is not None and actor.registered:
            how = ("database login " + (actor.login or "?") if self.db is not None and self.db.dialect == "postgresql"
                   else "local profile (File > Switch profile)")
            self.actor_label.setToolTip(f"You act as {actor.name}, {actor.role.label}: {how}.")
        else:
            self.actor_label.setToolTip("No one is registered in this database: one desk, every permission "
                                        "(Settings > People to register people)." if actor else "")
        self.act_switch_profile.setEnabled(self.db is not None and self.db.dialect == "sqlite")
        self._update_actions()

    def _apply_permissions(self) -> None:
        """Disable, with the reason in the tooltip, what the person acting may not do."""
        if self.db is None or not self.actor_settled:
            self.form.set_decisions_refused("")
            return
        actor = self.actor
        self.form.set_decisions_refused(refusal_tip(actor, Permission.APPROVE,
                                                    "approve, reject or archive certificates"))
        gated = [(self.act_approve, Permission.APPROVE, "approve certificates"),  # type: ignore[attr-defined]
                 (self.act_reject, Permission.APPROVE, "reject certificates"),  # type: ignore[attr-defined]
                 (self.act_archive, Permission.APPROVE, "archive certificates"),  # type: ignore[attr-defined]
                 (self.act_unarchive, Permission.APPROVE, "unarchive certificates"),  # type: ignore[attr-defined]
                 (self.act_reprocess, Permission.REPROCESS, "reprocess sales")]  # type: ignore[attr-defined]
        for action, permission, doing in gated:
            why = refusal_tip(actor, permission, doing)
            if why:
                action.setEnabled(False)
                action.setToolTip(why)
                action.setStatusTip(why)


def ask_reason(who: ops.WhoAtStart) -> bool:
    """Whether the profile dialog should say why it asks (a name was given that is not a profile)."""
    return "no profile" in who.problem or "disabled" in who.problem
