"""The audit pack dialog: choices become a selection, the pack is built off the GUI thread, Cancel
stops it, "Open folder" opens the pack."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices

from ecms_desktop.services.audit_pack.service import AuditPackService
from ecms_desktop.views.audit_pack_dialog import AuditPackDialog
from ecms_desktop.views.operations.task_runner import TaskRunner
from ecms_desktop.views.widgets.dates import qdate
from tests.factories import AUDIT_PACK_PERIOD, make_audit_pack_data


@pytest.fixture
def dialog(qtbot, db, company_id, tmp_path: Path):  # type: ignore[no-untyped-def]
    make_audit_pack_data(db, company_id)
    runner = TaskRunner()
    dlg = AuditPackDialog(AuditPackService(db), runner, default_folder=tmp_path)
    qtbot.addWidget(dlg)
    dlg.date_from.setDate(qdate(AUDIT_PACK_PERIOD[0]))
    dlg.date_to.setDate(qdate(AUDIT_PACK_PERIOD[1]))
    yield dlg
    runner.cancel_all()
    runner.wait()


def test_generate_then_open_folder(qtbot, dialog, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    dialog.states.findItems("TX", Qt.MatchFlag.MatchExactly)[0].setSelected(True)
    dialog.folder.setText(str(tmp_path / "my-pack"))
    sel = dialog.selection()
    assert sel.states == ("TX",) and sel.customers == () and sel.review_states == ("approved",)
    dialog.show()
    dialog.grab().save("/tmp/audit_pack_dialog.png")
    with qtbot.waitSignal(dialog.pack_generated, timeout=120_000) as got:
        dialog.generate_button.click()
    result = got.args[0]
    assert result.folder == (tmp_path / "my-pack").resolve() and result.certificates == 5
    assert "5 certificates" in dialog.status.text()
    assert dialog.open_button.isEnabled()
    dialog.grab().save("/tmp/audit_pack_dialog_done.png")
    dialog.open_button.click()
    assert opened and Path(opened[0].toLocalFile()) == result.folder


def test_cancel_stops_and_keeps_nothing(qtbot, dialog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dialog.folder.setText(str(tmp_path / "cancelled"))
    dialog.generate_button.click()
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=120_000)
    if "Cancelled" in dialog.status.text():
        assert not (tmp_path / "cancelled").exists()
    else:  # the pack finished before the cancel could take effect
        assert dialog.pack_result is not None
    assert dialog.generate_button.isEnabled()


def test_customers_follow_the_company(dialog) -> None:  # type: ignore[no-untyped-def]
    numbers = [dialog.customers.item(i).data(256) for i in range(dialog.customers.count())]
    assert "C-1001" in numbers
    dialog.customers.item(numbers.index("C-1001")).setSelected(True)
    assert dialog.selection().customers == ("C-1001",)
