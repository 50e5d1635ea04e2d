"""At the desk: a save from a form loaded before a colleague changed only a state line is refused,
the banner says who changed what, the user's edit stays in the form and the colleague's line is kept."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.core.database import Database
from ecms_desktop.views.certificates.form import CertificateForm
from tests.factories import make_desk_certificate

AS_OF = dt.date(2026, 6, 1)


@pytest.fixture
def form(qtbot, db):  # type: ignore[no-untyped-def]
    f = CertificateForm(db, load_rules_pack())
    f.set_as_of(AS_OF)
    qtbot.addWidget(f)
    f.resize(760, 1100)
    f.show()
    yield f
    f.runner.wait(10000)


def test_desk_save_after_a_colleague_changed_a_state_line_says_who_and_keeps_both(qtbot, db, company_id, form) -> None:  # type: ignore[no-untyped-def]
    detail = make_desk_certificate(db, company_id, as_of=AS_OF, customer="C-7", name="Multi State Supply",
                                   form="SST-F0003", states=("OH", "WA"), state_ids={"OH": "OH-OLD", "WA": "603123456"},
                                   purchaser_name="Multi State Supply", signed_date=dt.date(2026, 2, 1))
    form.load(detail)
    colleague = Database(db.url)
    try:
        lines = tuple(dataclasses.replace(line, state_tax_id="OH-NEW") if line.state == "OH" else line
                      for line in detail.data.lines)
        CertificateService(colleague).save(detail.id, dataclasses.replace(detail.data, lines=lines),
                                           expected_version=detail.version, as_of=AS_OF)
    finally:
        colleague.dispose()
    name = form.builder.editor("purchaser_name")
    name.clear()
    qtbot.keyClicks(name, "Multi State Supply LLC")
    with qtbot.waitSignal(form.conflict_detected, timeout=10000):
        form.save()
    text = form.banner_label.text()
    assert form.banner.isVisible() and "changed by someone else" in text
    assert "tester" in text and "lines" in text and "Nothing was overwritten" in text
    assert name.text() == "Multi State Supply LLC"  # the user's edit is still in the form
    stored = CertificateService(db).get(detail.id, AS_OF)
    assert {line.state: line.state_tax_id for line in stored.lines}["OH"] == "OH-NEW"
    assert stored.data.purchaser_name == "Multi State Supply"
