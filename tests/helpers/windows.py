"""Every window and dialog the desk opens, as (name, opener): the shortcut-clash test and the layout test
walk them all. A new window is one more line in ``WINDOWS``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import QWidget

from ecms_desktop.services.customers.service import CustomerService
from ecms_desktop.services.intake.inbox import InboxItem
from ecms_desktop.views.intake.assign_dialog import AssignDialog
from ecms_desktop.views.main_window import MainWindow

Opener = Callable[[Any, MainWindow], QWidget | None]


def _tool(key: str, open_it: Callable[[MainWindow], None]) -> Opener:
    def opener(qtbot: Any, w: MainWindow) -> QWidget | None:
        open_it(w)
        qtbot.waitUntil(lambda: key in w.tools, timeout=15000)
        return w.tools[key]
    return opener


def _inbox_item(w: MainWindow) -> InboxItem:
    assert w.company_id is not None
    return InboxItem(1, w.company_id, "scan.pdf", "application/pdf", 2, None, None, 2, 10, "0" * 64, "upload",
                     dt.datetime(2026, 5, 1, tzinfo=dt.UTC), "me", None, None, None)


def _inbox_dialog(open_it: Callable[[MainWindow, InboxItem], None]) -> Opener:
    def opener(_qtbot: Any, w: MainWindow) -> QWidget | None:
        open_it(w, _inbox_item(w))
        return w.inbox_dialog
    return opener


def _assign_dialog(_qtbot: Any, w: MainWindow) -> QWidget:
    assert w.db is not None and w.company_id is not None
    dialog = AssignDialog(_inbox_item(w), CustomerService(w.db).list(w.company_id), w)
    dialog.open()
    return dialog


def _help_window(_qtbot: Any, w: MainWindow) -> QWidget | None:
    w.act_user_guide.trigger()
    return w.user_guide_window


def _customer_matrix(qtbot: Any, w: MainWindow) -> QWidget | None:
    assert w.db is not None and w.company_id is not None
    w.open_customer(CustomerService(w.db).list(w.company_id)[0].id)
    qtbot.waitUntil(lambda: "customer" in w.tools, timeout=15000)
    return w.tools["customer"]


def _new_certificate(qtbot: Any, w: MainWindow) -> QWidget | None:
    w.open_new_certificate()
    qtbot.waitUntil(lambda: w.new_certificate_dialog is not None, timeout=15000)
    return w.new_certificate_dialog


def _about(_qtbot: Any, w: MainWindow) -> QWidget | None:
    w.act_about.trigger()
    return w.about_dialog


#: (name, opener) of every window the desk opens. Add a window here: one line.
WINDOWS: list[tuple[str, Opener]] = [
    ("main window", lambda _qtbot, w: w),
    ("main window with the inbox", lambda _qtbot, w: (w.show_inbox(), w)[1]),
    ("review queue", lambda _qtbot, w: (w.open_review_queue(), w.review_window)[1]),
    ("renewal center", _tool("renewals", MainWindow.open_renewal_center)),
    ("exposure report", _tool("exposure", MainWindow.open_exposure_report)),
    ("reprocess dialog", _tool("reprocess", MainWindow.open_reprocess_dialog)),
    ("audit pack dialog", _tool("audit_pack", MainWindow.open_audit_pack_dialog)),
    ("settings", lambda _qtbot, w: (w.open_settings(), w.settings_dialog)[1]),
    ("database dialog", lambda _qtbot, w: (w.open_database_dialog(), w._database_dialog)[1]),
    ("reject reason", lambda _qtbot, w: (w.reject_selected(), w.review_reason_dialog)[1]),
    ("inbox: assign", _assign_dialog),
    ("inbox: discard", _inbox_dialog(MainWindow.discard_inbox_document)),
    ("inbox: split", _inbox_dialog(MainWindow.split_inbox_document)),
    ("customers", _tool("customers", MainWindow.open_customers)),
    ("customer's exemption matrix", _customer_matrix),
    ("new certificate", _new_certificate),
    ("outbox", _tool("outbox", MainWindow.open_outbox)),
    ("about", _about),
    ("user guide", _help_window),
]
