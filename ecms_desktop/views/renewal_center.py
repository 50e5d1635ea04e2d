"""The Renewal center: what is due as of a date, a preview of each message, selection, sending with
progress and Cancel, refused addresses, and the e-mail template editor with a live preview.

Nothing destructive is preselected: e-mail steps (requests, reminders, escalations) start ticked,
suspensions never do and are confirmed separately with their count. Send carries out exactly the
ticked rows; messages queued by an earlier run are shown and wait for the Outbox's "Send queued…"."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QPushButton,
    QSplitter,
    QTableView,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ecms_desktop.services.core.changes import ChangeBatch
from ecms_desktop.services.core.errors import Cancelled, EcmsError
from ecms_desktop.services.renewals.service import Action, PlanItem, RenewalPlan, RenewalService, RunResult
from ecms_desktop.views.operations import outbox
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.outbox_dialog import OutboxDialog
from ecms_desktop.views.renewal_templates import TemplateEditorWidget
from ecms_desktop.views.widgets.confirm import ask
from ecms_desktop.views.widgets.dates import pydate, qdate
from ecms_desktop.views.widgets.error_presenter import present_error
from ecms_desktop.views.widgets.smtp_password import ask_smtp_password

_ACTION_COLOURS = {Action.REQUEST: "#1F4E79", Action.REMINDER: "#8A6D00", Action.ESCALATION: "#B35900",
                   Action.SUSPEND: "#A00000"}
_AnyIndex = QModelIndex | QPersistentModelIndex



#: How each step is counted in words ("1 request", "3 suspensions").
_STEP_WORDS = {"request": ("request", "requests"), "reminder": ("reminder", "reminders"),
               "escalation": ("escalation", "escalations"), "suspend": ("suspension", "suspensions")}


def plan_summary(counts: dict[str, int], as_of: object) -> str:
    """The plan in words: "138 requests, 0 reminders, 0 escalations, 100 suspensions due on 2026-12-06"."""
    words = [f"{n} {_STEP_WORDS.get(k, (k, k))[n != 1]}" for k, n in counts.items()]
    return ", ".join(words) + f" due on {as_of}"

class RenewalPlanTableModel(QAbstractTableModel):
    """The plan's steps, one per row, with a check box to choose what is carried out. E-mail steps
    start ticked; suspensions never do."""

    HEADERS = ("", "Step", "Customer", "State", "Certificate", "Expiry", "Days", "To", "Form", "Note")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.items: list[PlanItem] = []
        self.checked: set[str] = set()

    def set_plan(self, plan: RenewalPlan | None, *, keep_choices: bool = False) -> None:
        """Show a plan. ``keep_choices`` (the plan read again after another desk's change): the user's ticks
        stay on the steps still planned, and a step new to the plan is ticked as it would be."""
        before, ticked = {i.key for i in self.items}, self.checked
        self.beginResetModel()
        self.items = list(plan.items) if plan else []
        fresh = {i.key for i in self.items if _preselected(i)}
        if keep_choices:
            now = {i.key for i in self.items}
            self.checked = (ticked & now) | (fresh - before)
        else:
            self.checked = fresh
        self.endResetModel()

    def rowCount(self, parent: _AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.items)

    def columnCount(self, parent: _AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.HEADERS[section]
        return None

    def flags(self, index: _AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        base = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == 0 and not self.items[index.row()].problem:
            base |= Qt.ItemFlag.ItemIsUserCheckable
        return base

    def data(self, index: _AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.items):
            return None
        item, col = self.items[index.row()], index.column()
        if role == Qt.ItemDataRole.CheckStateRole and col == 0:
            return Qt.CheckState.Checked if item.key in self.checked else Qt.CheckState.Unchecked
        if role == Qt.ItemDataRole.DisplayRole:
            step = item.action.value.capitalize() + (f" {item.number}" if item.number else "")
            values = ("", step, f"{item.customer_name} ({item.customer_number})", item.state,
                      "first request" if item.certificate_id is None else item.certificate_id,
                      item.expiry_date.isoformat() if item.expiry_date else "", item.days_left, item.recipient,
                      item.form_code, item.problem)
            return values[col]
        if role == Qt.ItemDataRole.ForegroundRole and col == 1:
            return QColor(_ACTION_COLOURS[item.action])
        if role == Qt.ItemDataRole.ForegroundRole and col == 9 and item.problem:
            return QColor("#A00000")
        if role == Qt.ItemDataRole.ToolTipRole:
            return item.problem or item.lapse or (f"Request {item.token}" if item.token else None)
        return None

    def setData(self, index: _AnyIndex, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        if not index.isValid() or index.column() != 0 or role != Qt.ItemDataRole.CheckStateRole:
            return False
        item = self.items[index.row()]
        if item.problem:
            return False
        state = Qt.CheckState(value) if isinstance(value, int) else value
        if state == Qt.CheckState.Checked:
            self.checked.add(item.key)
        else:
            self.checked.discard(item.key)
        self.dataChanged.emit(index, index, [Qt.ItemDataRole.CheckStateRole])
        return True

    def set_all(self, checked: bool) -> None:
        """Tick every e-mail step (suspensions keep their tick) or untick everything."""
        suspensions = {i.key for i in self.items if i.action is Action.SUSPEND and i.key in self.checked}
        self.checked = ({i.key for i in self.items if _preselected(i)} | suspensions) if checked else set()
        self._checks_changed()

    def check_suspensions(self) -> None:
        """Tick every suspension (they are confirmed with their count before anything is done)."""
        self.checked |= {i.key for i in self.items if i.action is Action.SUSPEND}
        self._checks_changed()

    def _checks_changed(self) -> None:
        if self.items:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self.items) - 1, 0),
                                  [Qt.ItemDataRole.CheckStateRole])

    def selected_keys(self) -> list[str]:
        return [i.key for i in self.items if i.key in self.checked]

    def selected_items(self) -> list[PlanItem]:
        return [i for i in self.items if i.key in self.checked]


def _preselected(item: PlanItem) -> bool:
    """Requests, reminders and escalations that can be sent start ticked; a suspension never does."""
    return item.action is not Action.SUSPEND and not item.problem


class RenewalCenterDialog(QDialog):
    """Plan, preview and send the renewal ladder's steps for one company."""

    batch_sent = Signal(object)
    batch_failed = Signal(object)
    #: The plan was read (off the GUI thread) and is shown.
    plan_loaded = Signal(object)
    #: The selected step's message preview is shown.
    preview_shown = Signal()

    def __init__(self, service: RenewalService, company_id: int, as_of: dt.date, *,
                 runner: TaskRunner | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Renewal center")
        self.resize(1100, 680)
        self.service, self.company_id = service, company_id
        self.runner = runner or TaskRunner(self)
        #: Messages queued by earlier sends and not sent (shown; sent from the Outbox only).
        self.queued_earlier = 0
        # Each plan or preview read is numbered: a late answer to an older read is dropped.
        self._plan_generation = 0
        #: While the plan is read again after another desk's change: (the step looked at, the scroll position).
        self._keep: tuple[str | None, int] | None = None
        self._preview_generation = 0
        self.date = QDateEdit(qdate(as_of))
        self.date.setCalendarPopup(True)
        self.date.setDisplayFormat("yyyy-MM-dd")
        self.refresh_button = QPushButton("Refresh")
        self.summary = QLabel()
        top = QHBoxLayout()
        top.addWidget(QLabel("As of"))
        top.addWidget(self.date)
        top.addWidget(self.refresh_button)
        top.addWidget(self.summary, 1)

        self.model = RenewalPlanTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.preview_header = QLabel()
        self.preview_header.setWordWrap(True)
        self.preview_header.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.preview = QTextBrowser()
        self.preview.setOpenLinks(False)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.preview_header)
        rl.addWidget(self.preview, 1)
        split = QSplitter()
        split.addWidget(self.table)
        split.addWidget(right)
        split.setSizes([620, 480])
        self.select_all = QPushButton("Select all e-mails")
        self.select_all.setToolTip("Tick every request, reminder and escalation (suspensions are ticked one by one "
                                   "or with Select suspensions)")
        self.select_suspensions = QPushButton("Select suspensions")
        self.select_suspensions.setToolTip("Tick every suspension; you confirm them, with their count, on Send")
        self.select_none = QPushButton("Select none")
        self.send_button = QPushButton("Send selected")
        self.send_button.setDefault(True)
        self.queued_note = QLabel()
        self.queued_note.setObjectName("queuedNote")
        self.outbox_button = QPushButton("Outbox…")
        self.outbox_button.setToolTip("Queued, sent and failed messages; retry a failed one, send queued ones")
        self.outbox_dialog: OutboxDialog | None = None
        self.failures = QListWidget()
        self.failures.setMaximumHeight(90)
        actions = QHBoxLayout()
        actions.addWidget(self.select_all)
        actions.addWidget(self.select_suspensions)
        actions.addWidget(self.select_none)
        actions.addStretch(1)
        actions.addWidget(self.queued_note)
        actions.addWidget(self.outbox_button)
        actions.addWidget(self.send_button)
        plan_tab = QWidget()
        pl = QVBoxLayout(plan_tab)
        pl.addWidget(split, 1)
        pl.addLayout(actions)
        pl.addWidget(QLabel("Refused by the mail server (fix the customer's address):"))
        pl.addWidget(self.failures)

        self.templates = TemplateEditorWidget(service, company_id)
        self.tabs = QTabWidget()
        self.tabs.addTab(plan_tab, "Plan")
        self.tabs.addTab(self.templates, "Templates")
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(close)

        self.refresh_button.clicked.connect(self.refresh)
        self.date.dateChanged.connect(lambda _d: self.refresh())
        self.select_all.clicked.connect(lambda: self.model.set_all(True))
        self.select_none.clicked.connect(lambda: self.model.set_all(False))
        self.select_suspensions.clicked.connect(self.model.check_suspensions)
        self.outbox_button.clicked.connect(lambda: self.open_outbox("queued" if self.queued_earlier else None))
        self.send_button.clicked.connect(self._on_send_clicked)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_row_changed)
        self.templates.template_saved.connect(lambda _k: self._show_preview(self.table.currentIndex()))
        self.refresh()

    def as_of(self) -> dt.date:
        return pydate(self.date.date())

    def follow_changes(self, batch: ChangeBatch) -> None:
        """Another desk committed changes (requests sent or answered, certificates renewed, e-mails): read the
        plan again, keeping the user's ticks, the step they look at and the scroll position."""
        if batch.touches(self.company_id):
            self.refresh(keep_place=True)

    def refresh(self, *, keep_place: bool = False) -> None:
        """Read the plan and the refused addresses off the GUI thread, then show them (``keep_place``: as
        :meth:`follow_changes` does)."""
        service, company_id, as_of = self.service, self.company_id, self.as_of()
        self._plan_generation += 1
        generation = self._plan_generation
        current = self.table.currentIndex().row()
        self._keep = ((self.model.items[current].key if 0 <= current < len(self.model.items) else None,
                       self.table.verticalScrollBar().value()) if keep_place else None)
        if not keep_place:
            self.summary.setText("Reading the plan…")

        def work(_p: Any, _c: Any) -> tuple[Any, Any, int]:
            return (service.plan(company_id, as_of), service.email.failed_messages(company_id),
                    service.email.queued_count(company_id))

        def failed(error: BaseException) -> None:
            self.summary.setText("")
            present_error(self, error)

        self.runner.run(work, on_done=lambda r: self._on_plan_read(generation, *r), on_error=failed)

    def _on_plan_read(self, generation: int, plan: Any, failed: Any, queued: int) -> None:
        if generation != self._plan_generation:
            return
        self.queued_earlier = queued
        self.queued_note.setText(
            "" if not queued else
            f"<span style='color:#8A6D00'>{queued} message{' is' if queued == 1 else 's are'} queued from an "
            "earlier send, not sent</span>")
        self.queued_note.setToolTip("They are sent only when you say so: Outbox… > Send queued…" if queued else "")
        keep, self._keep = self._keep, None
        self.model.set_plan(plan, keep_choices=keep is not None)
        counts = plan.counts()
        self.summary.setText(plan_summary(counts, plan.as_of))
        self.failures.clear()
        for f in failed:
            self.failures.addItem(f"{f.customer_name} <{f.to_address}>: {f.error}")
        if plan.items:
            keys = [i.key for i in plan.items]
            row = keys.index(keep[0]) if keep is not None and keep[0] in keys else 0
            if self.table.currentIndex().row() == row:
                self._show_preview(self.model.index(row, 0))
            self.table.selectRow(row)
            if keep is not None:
                self.table.verticalScrollBar().setValue(keep[1])
        else:
            self.preview_header.setText("Nothing is due on this date.")
            self.preview.clear()
        self.plan_loaded.emit(plan)

    def _on_table_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._show_preview(current)

    def _show_preview(self, index: QModelIndex) -> None:
        if not index.isValid() or index.row() >= len(self.model.items):
            return
        item = self.model.items[index.row()]
        service, company_id, as_of = self.service, self.company_id, self.as_of()
        self._preview_generation += 1
        generation = self._preview_generation

        def failed(error: BaseException) -> None:
            if generation == self._preview_generation:
                self.preview_header.setText(html.escape(str(error)) if isinstance(error, EcmsError)
                                            else html.escape(f"The preview failed: {error}"))
                self.preview.clear()
                self.preview_shown.emit()

        self.runner.run(lambda _p, _c: service.preview(company_id, as_of, item.key),
                        on_done=lambda msg: self._on_preview_built(generation, msg), on_error=failed)

    def _on_preview_built(self, generation: int, msg: Any) -> None:
        if generation != self._preview_generation:
            return
        files = ", ".join(f"{name} ({size // 1024 + 1} KB)" for name, size in msg.attachments) or "none"
        self.preview_header.setText(f"<b>To:</b> {html.escape(msg.to)}<br><b>Subject:</b> "
                                    f"{html.escape(msg.subject)}<br><b>Attachments:</b> {html.escape(files)}")
        self.preview.setHtml(msg.html)
        self.preview_shown.emit()

    def _on_send_clicked(self) -> None:
        items = self.model.selected_items()
        if not items:
            self.summary.setText("Nothing is ticked: tick the steps to carry out.")
            return
        keys = [i.key for i in items]
        suspensions = [i for i in items if i.action is Action.SUSPEND]
        if not suspensions:
            self._send(keys)
            return
        customers = len({i.customer_id for i in suspensions})
        lines = len(suspensions)
        mails = len(items) - lines
        ask(self, "Suspend exemptions",
            f"Suspend {customers} customer{'s' if customers != 1 else ''}?",
            f"Suspend {customers}", lambda: self._send(keys), name="confirmSuspensions",
            informative=(f"{lines} expired certificate line{'s' if lines != 1 else ''} will lose "
                         f"{'their' if lines != 1 else 'its'} exempt status from the day after expiry; each "
                         "suspension is recorded in the audit trail."
                         + (f" The {mails} ticked e-mail step{'s are' if mails != 1 else ' is'} carried out "
                            "too." if mails else "")))

    def _send(self, keys: list[str]) -> None:
        try:
            password = ask_smtp_password(self, self.service.email, self.company_id)
        except Cancelled:
            return
        self.send_button.setEnabled(False)
        outbox.send_renewal_steps(self.service, self.company_id, self.as_of(), keys, password=password) \
            .success(self._on_batch_done).failure(self._on_batch_error).run(self.runner, parent=self)

    def open_outbox(self, status: str | None = None) -> OutboxDialog:
        """The outbox over this window (queued messages are sent from there, when the user says so)."""
        dialog = OutboxDialog(self.service.email, self.company_id, runner=self.runner, status=status, parent=self)
        dialog.messages_sent.connect(lambda _r: self.refresh())
        dialog.finished.connect(lambda _r: self.refresh())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.outbox_dialog = dialog
        dialog.open()
        return dialog

    def _on_batch_done(self, result: RunResult) -> None:
        self.send_button.setEnabled(True)
        self.refresh()
        self.summary.setText(result.summary())
        self.batch_sent.emit(result)

    def _on_batch_error(self, error: BaseException) -> None:
        self.send_button.setEnabled(True)
        self.refresh()
        if not isinstance(error, Cancelled):
            present_error(self, error)
        else:
            self.summary.setText(str(error))
        self.batch_failed.emit(error)
