"""The audit pack dialog: choices become a selection, the pack is built off the GUI thread, Cancel
stops it, "Open folder" opens the pack; customers are searched and counted, dates are taken as typed,
never-validated certificates are announced before the pack is made."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices

from ecms_desktop.services.audit_pack.service import AuditPackService
from ecms_desktop.views.audit_pack_dialog import AuditPackDialog
from ecms_desktop.views.operations.task_runner import TaskRunner
from tests.factories import AUDIT_PACK_PERIOD, make_audit_pack_data, seed_certificates


@pytest.fixture
def dialog(qtbot, db, company_id, tmp_path: Path):  # type: ignore[no-untyped-def]
    make_audit_pack_data(db, company_id)
    runner = TaskRunner()
    dlg = AuditPackDialog(AuditPackService(db), runner, default_folder=tmp_path)
    qtbot.addWidget(dlg)
    dlg.date_from.set_date(AUDIT_PACK_PERIOD[0])
    dlg.date_to.set_date(AUDIT_PACK_PERIOD[1])
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


def _shown(dialog: AuditPackDialog) -> list[str]:
    return [dialog.customers.item(r).text() for r in range(dialog.customers.count())
            if not dialog.customers.item(r).isHidden()]


def test_customer_search_filters_and_counts_the_selection(qtbot, dialog) -> None:  # type: ignore[no-untyped-def]
    assert len(_shown(dialog)) == 3 and dialog.customer_count.text() == "No customer selected: all customers"
    qtbot.keyClicks(dialog.customer_search, "plain")
    assert _shown(dialog) == ["C-3003 - Plain Buyer Inc"]
    assert dialog.customer_count.text() == "No customer selected: all customers; 1 of 3 shown"
    dialog.customers.findItems("C-3003 - Plain Buyer Inc", Qt.MatchFlag.MatchExactly)[0].setSelected(True)
    assert dialog.customer_count.text() == "1 customer selected; 1 of 3 shown"
    dialog.customer_search.clear()  # the others come back; the selection stays
    assert len(_shown(dialog)) == 3 and dialog.customer_count.text() == "1 customer selected"
    qtbot.keyClicks(dialog.customer_search, "c-1001")  # by number too
    assert _shown(dialog) == [t for t in _shown(dialog) if t.startswith("C-1001")] and len(_shown(dialog)) == 1
    dialog.customers.item(next(r for r in range(dialog.customers.count())
                                if not dialog.customers.item(r).isHidden())).setSelected(True)
    assert dialog.customer_count.text().startswith("2 customers selected")
    assert sorted(dialog.selection().customers) == ["C-1001", "C-3003"]


@pytest.fixture
def dated(qtbot, db, company_id, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The dialog of a desk dated 1 June 2026."""
    runner = TaskRunner()
    dlg = AuditPackDialog(AuditPackService(db), runner, today=dt.date(2026, 6, 1), default_folder=tmp_path)
    qtbot.addWidget(dlg)
    dlg.show()
    yield dlg
    runner.cancel_all()
    runner.wait()


def _type(qtbot, field, text: str) -> None:  # type: ignore[no-untyped-def]
    field.edit.clear()
    qtbot.keyClicks(field.edit, text)
    qtbot.keyClick(field.edit, Qt.Key.Key_Return)


@pytest.mark.parametrize(("typed", "expected"), [("2026-12-05", dt.date(2026, 12, 5)),
                                                 ("12/05/2026", dt.date(2026, 12, 5)),
                                                 ("1/7/2025", dt.date(2025, 1, 7))])
def test_full_dates_are_taken_as_typed(qtbot, dated, typed, expected) -> None:  # type: ignore[no-untyped-def]
    _type(qtbot, dated.date_to, typed)
    assert dated.date_to.date() == expected and dated.date_to.edit.text() == expected.isoformat()
    assert dated.date_to.note.text() == "" and dated.selection().date_to == expected


def test_a_date_without_year_says_which_year_it_took(qtbot, dated) -> None:  # type: ignore[no-untyped-def]
    _type(qtbot, dated.date_to, "12/5")
    assert dated.date_to.date() == dt.date(2026, 12, 5) and dated.date_to.edit.text() == "2026-12-05"
    assert dated.date_to.note.text() == "12/5 read as Sat 05 Dec 2026"
    assert dated.checking is None and dated.task is None, "Enter finishes the date; it does not start a pack"
    dated.grab().save("/tmp/audit_pack_typed_date.png")


@pytest.mark.parametrize(("typed", "words"), [("5.12.2026", "is not a date"), ("13/05/2026", "no month 13"),
                                              ("12/5/26", "write the year in full"),
                                              ("02/30/2026", "February has no day 30"), ("", "No date")])
def test_what_is_not_a_date_is_refused_and_nothing_is_generated(qtbot, dated, typed, words) -> None:  # type: ignore[no-untyped-def]
    _type(qtbot, dated.date_from, typed)
    assert dated.date_from.date() is None and words in dated.date_from.note.text()
    dated.generate_button.click()
    assert dated.checking is None and dated.task is None
    assert dated.status.text() == f"Please correct the dates. From: {dated.date_from.problem()}"
    with pytest.raises(ValueError, match=words):
        dated.selection()


def test_a_period_ending_before_it_starts_is_refused(qtbot, dated) -> None:  # type: ignore[no-untyped-def]
    _type(qtbot, dated.date_from, "2026-05-01")
    _type(qtbot, dated.date_to, "4/30/2026")
    dated.generate_button.click()
    assert dated.task is None and "ends (2026-04-30) before it starts (2026-05-01)" in dated.status.text()


def test_certificates_never_validated_are_announced_and_the_user_may_go_on(qtbot, db, company_id, dialog,  # type: ignore[no-untyped-def]
                                                                          tmp_path: Path) -> None:
    seed_certificates(db, company_id, 2, customers=1)  # stored without validation
    dialog.folder.setText(str(tmp_path / "pack"))
    dialog.show()
    dialog.generate_button.click()
    qtbot.waitUntil(lambda: dialog.unvalidated_box is not None, timeout=20000)
    box = dialog.unvalidated_box
    assert box.text().startswith("2 of the 9 certificates of this selection were never validated")
    assert "C-1000" in box.text() and dialog.task is None
    cancel = next(b for b in box.buttons() if b.text() == "Cancel")
    cancel.click()
    assert dialog.task is None and dialog.generate_button.isEnabled() and "Not generated" in dialog.status.text()
    dialog.generate_button.click()
    qtbot.waitUntil(lambda: dialog.unvalidated_box is not None, timeout=20000)
    assert dialog.go_on_button is not None
    with qtbot.waitSignal(dialog.pack_generated, timeout=120_000):
        dialog.go_on_button.click()
    assert (tmp_path / "pack").is_dir()
