"""Renewals > Outbox…: the e-mail outbox window (queued, sent and failed messages; Retry, Send queued…)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction

from ecms_desktop.services.renewals.email_service import EmailService
from ecms_desktop.views.main_window.tools import ToolsMixin
from ecms_desktop.views.outbox_dialog import OutboxDialog


class OutboxMixin(ToolsMixin):
    """The Outbox action and window (one at a time, as the other tools)."""

    act_outbox: QAction

    def _build_outbox_actions(self) -> None:
        self.act_outbox = QAction("&Outbox…", self)
        self.act_outbox.setObjectName("actOutbox")
        self.act_outbox.setStatusTip("The e-mails queued, sent and refused, with the reason; retry a refused one, "
                                     "send queued ones")
        self.act_outbox.setToolTip("Outbox")
        self.act_outbox.triggered.connect(lambda _checked=False: self.open_outbox())
        self.addAction(self.act_outbox)

    def open_outbox(self, status: str | None = None) -> None:
        """Renewals > Outbox…: every message of the company, or only the ``queued``/``sent``/``failed``."""
        if self.db is None or self.company_id is None:
            return
        dialog = OutboxDialog(EmailService(self.db), self.company_id, runner=self.runner, status=status, parent=self)
        dialog.setWindowFlag(Qt.WindowType.Window, True)
        self._show_tool("outbox", dialog)
