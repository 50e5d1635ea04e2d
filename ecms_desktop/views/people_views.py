"""People in the desktop: Settings > People (admins add people, change roles, disable and enable them)
and, on an SQLite file with several profiles, the choice of who you are when the program starts."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.people import Actor, Permission, Role
from ecms_desktop.services.core.people_service import PersonInfo
from ecms_desktop.views.operations import people as ops
from ecms_desktop.views.operations.task_runner import TaskRunner

ROLE_HELP = {
    Role.REVIEWER: "edits certificates, sends requests, acknowledges warnings, prepares audit packs",
    Role.APPROVER: "also approves, rejects, archives and reprocesses",
    Role.ADMIN: "also changes settings, policies, people and filing periods",
}


def actor_text(actor: Actor | None) -> str:
    """The status bar's "who am I": "Pat Lee · reviewer"."""
    if actor is None:
        return "Not a person in this database"
    if not actor.registered:
        return f"{actor.name} · single desk"
    return f"{actor.name} · {actor.role.value}"


def refusal_tip(actor: Actor | None, permission: Permission, doing: str) -> str:
    """Why a disabled action is disabled ("" when the actor may do it)."""
    if actor is None:
        return f"Not available: this login or profile is not an active person here, so it cannot {doing}."
    if actor.may(permission):
        return ""
    return actor.refusal(permission, doing)


class ProfileDialog(QDialog):
    """Who are you? The active profiles of an SQLite file; the choice is remembered for this system user."""

    def __init__(self, profiles: list[PersonInfo], problem: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("profileDialog")
        self.setWindowTitle("Who are you?")
        layout = QVBoxLayout(self)
        intro = QLabel("Choose your profile in this database. Everything you do is recorded under its name. "
                       "(On a local file anyone who can open it can choose any profile; a shared PostgreSQL "
                       "database checks each person's own login.)", self)
        intro.setWordWrap(True)
        layout.addWidget(intro)
        if problem:
            # Its first sentence ("There is no profile 'root' in this database."); the rest is for the CLI.
            why = QLabel(problem.split(". ")[0].rstrip(".") + ".", self)
            why.setWordWrap(True)
            why.setEnabled(False)
            layout.addWidget(why)
        self.list = QListWidget(self)
        self.list.setObjectName("profileList")
        for p in profiles:
            self.list.addItem(f"{p.name} — {p.role.value}")
        self._names = [p.name for p in profiles]
        self.list.setCurrentRow(0)
        self.list.itemDoubleClicked.connect(self.accept)
        layout.addWidget(self.list)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    def chosen(self) -> str | None:
        row = self.list.currentRow()
        return self._names[row] if 0 <= row < len(self._names) else None


class AddPersonDialog(QDialog):
    def __init__(self, postgres: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("addPersonDialog")
        self.setWindowTitle("Add a person")
        form = QFormLayout(self)
        self.name = QLineEdit(self)
        self.name.setObjectName("personName")
        self.name.setMaxLength(100)
        form.addRow("Name:", self.name)
        self.role = QComboBox(self)
        self.role.setObjectName("personRole")
        for role in Role:
            self.role.addItem(f"{role.value} — {ROLE_HELP[role]}", role.value)
        form.addRow("Role:", self.role)
        self.login = QLineEdit(self)
        self.login.setObjectName("personLogin")
        self.login.setPlaceholderText("their PostgreSQL login role" if postgres else "(not used on a local file)")
        self.login.setEnabled(postgres)
        form.addRow("Database login:", self.login)
        self.email = QLineEdit(self)
        self.email.setObjectName("personEmail")
        form.addRow("E-mail:", self.email)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)


class PeopleTab(QWidget):
    """Settings > People: everyone registered; an admin adds people, changes roles, disables and enables."""

    changed = Signal()

    def __init__(self, db: Database, runner: TaskRunner, actor: Actor | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("peopleTab")
        self.db, self.runner, self.actor = db, runner, actor
        self.people: list[PersonInfo] = []
        layout = QVBoxLayout(self)
        self.note = QLabel(self)
        self.note.setObjectName("peopleNote")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.table = QTableWidget(0, 5, self)
        self.table.setObjectName("peopleTable")
        self.table.setHorizontalHeaderLabels(["Name", "Role", "Login", "E-mail", "Status"])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.table)
        row = QHBoxLayout()
        self.add_button = QPushButton("Add…", self)
        self.add_button.setObjectName("addPerson")
        self.add_button.clicked.connect(self._on_add_clicked)
        self.role_combo = QComboBox(self)
        self.role_combo.setObjectName("setRole")
        for role in Role:
            self.role_combo.addItem(role.value, role.value)
        self.role_button = QPushButton("Give this role", self)
        self.role_button.setObjectName("applyRole")
        self.role_button.clicked.connect(self._on_role_clicked)
        self.active_button = QPushButton("Disable", self)
        self.active_button.setObjectName("toggleActive")
        self.active_button.clicked.connect(self._on_active_clicked)
        for w in (self.add_button, self.role_combo, self.role_button, self.active_button):
            row.addWidget(w)
        row.addStretch(1)
        layout.addLayout(row)
        admin = actor is None or actor.may(Permission.ADMINISTER)
        why = refusal_tip(actor, Permission.ADMINISTER, "manage people")
        if not admin:
            self.note.setText(why)
        elif actor is not None and not actor.registered:
            self.note.setText("No one is registered yet: this desk works as one person with every permission. "
                              "Register yourself first, as an admin; from then on everything is recorded under "
                              "each person's name.")
        else:
            self.note.setText("People are never deleted: the audit trail keeps naming them. Disable someone who "
                              "leaves." + (" Each person logs in with their own database login, created first by "
                                           "the server's administrator." if db.dialect == "postgresql" else ""))
        self._admin = admin and actor is not None
        for w in (self.add_button, self.role_combo, self.role_button, self.active_button):
            w.setToolTip(why)
        self.reload()

    def reload(self) -> None:
        ops.list_people(self.db).success(self._show).failure(self._on_failed).run(self.runner, parent=self)

    def _show(self, found: list[PersonInfo]) -> None:
        self.people = found
        self.table.setRowCount(len(found))
        for r, p in enumerate(found):
            cells = [p.name, p.role.value, p.login or "", p.email, "active" if p.active else "disabled"]
            for c, value in enumerate(cells):
                item = QTableWidgetItem(value)
                if not p.active:
                    item.setForeground(Qt.GlobalColor.gray)
                self.table.setItem(r, c, item)
        self._update_buttons()

    def selected(self) -> PersonInfo | None:
        rows = self.table.selectionModel().selectedRows()
        return self.people[rows[0].row()] if rows else None

    def _update_buttons(self) -> None:
        person = self.selected()
        self.add_button.setEnabled(self._admin)
        for w in (self.role_combo, self.role_button, self.active_button):
            w.setEnabled(self._admin and person is not None)
        if person is not None:
            self.active_button.setText("Disable" if person.active else "Enable")
            self.role_combo.setCurrentIndex(self.role_combo.findData(person.role.value))

    def _on_add_clicked(self) -> None:
        dialog = AddPersonDialog(self.db.dialect == "postgresql", self)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        ops.add_person(self.db, dialog.name.text(), Role(dialog.role.currentData()), dialog.login.text() or None,
                       dialog.email.text()).success(self._on_done).failure(self._on_failed).run(self.runner, self)

    def _on_role_clicked(self) -> None:
        person = self.selected()
        if person is not None:
            ops.set_role(self.db, person.name, Role(self.role_combo.currentData())).success(self._on_done) \
                .failure(self._on_failed).run(self.runner, self)

    def _on_active_clicked(self) -> None:
        person = self.selected()
        if person is not None:
            ops.set_active(self.db, person.name, not person.active).success(self._on_done) \
                .failure(self._on_failed).run(self.runner, self)

    def _on_done(self, _person: PersonInfo) -> None:
        self.changed.emit()
        self.reload()

    def _on_failed(self, error: BaseException) -> None:
        QMessageBox.warning(self, "People", str(error))
