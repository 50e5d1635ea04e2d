"""The certificate in the form changed elsewhere: shown at once without edits ("Updated by ..."), set
beside the user's edits otherwise; a save before choosing is refused, Keep mine and Take theirs go on
from their version."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.core.certificate_records import CertificateDetail
from ecms_desktop.services.core.database import Database
from ecms_desktop.views.certificates.form import CertificateForm
from ecms_desktop.views.certificates.form.changed_elsewhere import local_time
from tests.factories import make_desk_certificate

AS_OF = dt.date(2026, 6, 1)
AT = dt.datetime(2026, 6, 1, 10, 42, tzinfo=dt.UTC)


@pytest.fixture
def form(qtbot, db):  # type: ignore[no-untyped-def]
    f = CertificateForm(db, load_rules_pack())
    f.set_as_of(AS_OF)
    qtbot.addWidget(f)
    f.resize(760, 1100)
    f.show()
    yield f
    f.runner.wait(10000)


@pytest.fixture
def shown(db, company_id, form) -> CertificateDetail:  # type: ignore[no-untyped-def]
    detail = make_desk_certificate(db, company_id, as_of=AS_OF, purchaser_name="Lone Star Hardware LLC",
                                   signer_name="Ann Smith", signed_date=dt.date(2026, 3, 15))
    form.load(detail)
    return detail


def colleague_saves(db: Database, detail: CertificateDetail, **changes: object) -> CertificateDetail:
    other = Database(db.url)
    try:
        return CertificateService(other).save(detail.id, dataclasses.replace(detail.data, **changes),
                                              expected_version=detail.version, as_of=AS_OF)
    finally:
        other.dispose()


def type_into(qtbot, form: CertificateForm, field: str, text: str) -> None:  # type: ignore[no-untyped-def]
    editor = form.builder.editor(field)
    editor.clear()
    qtbot.keyClicks(editor, text)


def test_without_edits_the_new_version_is_shown_and_said_quietly(qtbot, db, form, shown) -> None:  # type: ignore[no-untyped-def]
    theirs = colleague_saves(db, shown, purchaser_name="Lone Star Hardware Inc")
    with qtbot.waitSignal(form.updated_elsewhere, timeout=5000):
        form.changed_elsewhere(theirs, "pat", AT)
    assert form.builder.editor("purchaser_name").text() == "Lone Star Hardware Inc"
    assert form.detail is not None and form.detail.version == theirs.version
    assert form.updated_note.isVisible()
    assert form.updated_note.text() == f"Updated by pat at {local_time(AT)}"
    assert not form.conflict_panel.isVisible()


def test_this_forms_own_save_is_not_a_change_elsewhere(qtbot, db, form, shown) -> None:  # type: ignore[no-untyped-def]
    type_into(qtbot, form, "signer_name", "Ann Smyth")
    with qtbot.waitSignal(form.saved, timeout=10000) as saved:
        form.save()
    form.changed_elsewhere(saved.args[0], "tester", AT)  # the desk read its own save back
    assert not form.updated_note.isVisible() and not form.conflict_panel.isVisible()


def test_with_edits_both_versions_are_shown_and_a_save_is_refused_until_the_user_chose(qtbot, db, form, shown) -> None:  # type: ignore[no-untyped-def]
    type_into(qtbot, form, "purchaser_name", "Mine LLC")
    type_into(qtbot, form, "signer_name", "Bob Jones")
    theirs = colleague_saves(db, shown, purchaser_name="Theirs LLC", notes="called the buyer")
    with qtbot.waitSignal(form.changed_underneath, timeout=5000) as shown_rows:
        form.changed_elsewhere(theirs, "pat", AT)
    rows = {r.field: r for r in shown_rows.args[0]}
    assert set(rows) == {"purchaser_name", "notes"}
    assert (rows["purchaser_name"].theirs, rows["purchaser_name"].mine) == ("Theirs LLC", "Mine LLC")
    assert rows["purchaser_name"].edited_here and not rows["notes"].edited_here
    assert form.conflict_panel.isVisible()
    assert form.conflict_title.text().startswith(f"Changed by pat at {local_time(AT)}")
    table = form.conflict_table
    assert [table.item(0, c).text() for c in (1, 2)] == ["Theirs LLC", "Mine LLC"]
    assert form.builder.editor("purchaser_name").text() == "Mine LLC"  # nothing changed by itself

    with qtbot.waitSignal(form.conflict_detected, timeout=10000):
        form.save()  # the user has not chosen: refused as before

    with qtbot.waitSignal(form.rebased, timeout=5000):
        form.keep_mine()
    assert not form.conflict_panel.isVisible()
    assert form.builder.editor("purchaser_name").text() == "Mine LLC"
    assert form.builder.editor("signer_name").text() == "Bob Jones"
    assert form.is_dirty()
    with qtbot.waitSignal(form.saved, timeout=10000):
        form.save()
    stored = CertificateService(db).get(shown.id, AS_OF)
    assert (stored.data.purchaser_name, stored.data.signer_name, stored.data.notes) == \
        ("Mine LLC", "Bob Jones", "called the buyer")


def test_take_theirs_keeps_the_users_other_edits(qtbot, db, form, shown) -> None:  # type: ignore[no-untyped-def]
    type_into(qtbot, form, "purchaser_name", "Mine LLC")
    type_into(qtbot, form, "signer_name", "Bob Jones")
    theirs = colleague_saves(db, shown, purchaser_name="Theirs LLC")
    form.changed_elsewhere(theirs, "pat", AT)
    with qtbot.waitSignal(form.rebased, timeout=5000):
        form.take_theirs()
    assert form.builder.editor("purchaser_name").text() == "Theirs LLC"
    assert form.builder.editor("signer_name").text() == "Bob Jones"
    with qtbot.waitSignal(form.saved, timeout=10000):
        form.save()
    stored = CertificateService(db).get(shown.id, AS_OF)
    assert (stored.data.purchaser_name, stored.data.signer_name) == ("Theirs LLC", "Bob Jones")


def test_a_second_change_before_choosing_is_compared_with_the_version_edited(qtbot, db, form, shown) -> None:  # type: ignore[no-untyped-def]
    type_into(qtbot, form, "signer_name", "Bob Jones")
    first = colleague_saves(db, shown, purchaser_name="First LLC")
    form.changed_elsewhere(first, "pat", AT)
    second = colleague_saves(db, first, notes="again")
    form.changed_elsewhere(second, "lee", AT)
    assert form.theirs is second
    assert {r.field for r in form.field_changes()} == {"purchaser_name", "notes"}
    assert "Changed by lee" in form.conflict_title.text()


def test_long_values_that_differ_only_at_their_end_are_shown_whole(qtbot, db, form, shown) -> None:  # type: ignore[no-untyped-def]
    """Seen in a real window: "Allen County Board of Commissioners Dept" beside "... Finance" were both cut
    to "Allen County Board of Commissioners ...", hiding the one difference."""
    from PySide6.QtCore import QRect, Qt

    base = "Allen County Board of Commissioners of the State of Indiana, Procurement Division"
    type_into(qtbot, form, "purchaser_name", base + " Dept")
    theirs = colleague_saves(db, shown, purchaser_name=base + " Finance")
    with qtbot.waitSignal(form.changed_underneath, timeout=5000):
        form.changed_elsewhere(theirs, "pat", AT)
    table = form.conflict_table
    qtbot.waitUntil(lambda: table.columnWidth(1) > 60, timeout=5000)
    for column in (1, 2):
        text = table.item(0, column).text()
        width = table.columnWidth(column) - 8
        needed = table.fontMetrics().boundingRect(QRect(0, 0, width, 10000), int(Qt.TextFlag.TextWordWrap),
                                                  text).height()
        assert table.rowHeight(0) >= needed, (column, table.rowHeight(0), needed)
    assert table.textElideMode() == Qt.TextElideMode.ElideNone
