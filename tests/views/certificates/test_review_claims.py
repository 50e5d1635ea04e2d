"""Team work at the desk and in the review queue: who claimed each certificate, Mine / Unclaimed, Claim and
Release, and the form's "Claimed by ... since ..." when someone else works on the certificate (both backends)."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificates.claims import ClaimService
from ecms_desktop.services.certificates.query import ClaimFilter
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.views.certificates.filter_bar import FilterBar, Filters
from ecms_desktop.views.certificates.form import CertificateForm
from ecms_desktop.views.certificates.review_queue import SHORTCUTS, ReviewQueueWindow
from ecms_desktop.views.certificates.table_model import COLUMN_KEYS
from ecms_desktop.views.certificates.work_lists import _filters_from_json, _filters_to_json
from ecms_desktop.views.operations.task_runner import TaskRunner
from tests.factories import AS_OF, make_certificate
from tests.helpers.team import team_on

RILEY, ALEX = "Riley Reviewer", "Alex Approver"


@pytest.fixture
def claimed_by_riley(db, db_url, company_id):  # type: ignore[no-untyped-def]
    """Three pending certificates, Riley Reviewer claimed the first; the team (Alex Approver works here)."""
    ids = [make_certificate(db, company_id, customer=f"C-{i}", approve=False).id for i in range(3)]
    with team_on(db, db_url) as team:
        ClaimService(team.dbs[RILEY]).claim([ids[0]])
        yield team, ids


def test_the_queue_shows_claims_walks_mine_or_unclaimed_and_claims(qtbot, db, claimed_by_riley) -> None:  # type: ignore[no-untyped-def]
    team, (a, b, c) = claimed_by_riley
    runner = TaskRunner()
    win = ReviewQueueWindow(team.dbs[ALEX], load_rules_pack(), runner, AS_OF)
    qtbot.addWidget(win)
    with qtbot.waitSignal(win.certificate_shown, timeout=20000) as shown:
        win.show()
    assert shown.args == [a]
    qtbot.waitUntil(lambda: win.form.claim_notice.isVisible(), timeout=10000)
    assert win.form.claim_notice.text().startswith("Claimed by Riley Reviewer since ")
    assert "Claimed by Riley Reviewer since" in win.position.text()
    assert not win.list_view.isColumnHidden(COLUMN_KEYS.index("claimed_by"))
    assert ("Ctrl+Shift+K", "Claim this certificate (others see that you work on it)") in SHORTCUTS

    with qtbot.waitSignals([win.queue_loaded, win.certificate_shown], timeout=20000):
        win.set_claim_filter(ClaimFilter.UNCLAIMED)
    assert win.ids == [b, c] and win.detail is not None and win.detail.id == b
    assert not win.form.claim_notice.isVisible() and win.claim_action.isEnabled()
    with qtbot.waitSignal(win.claim_changed, timeout=20000):
        win.claim_action.trigger()
    assert win.claim_mine and not win.claim_action.isEnabled() and win.release_action.isEnabled()
    assert "Claimed by Alex Approver since" in win.position.text()
    assert ClaimService(db).claims([a, b, c]).keys() == {a, b}

    with qtbot.waitSignals([win.queue_loaded, win.certificate_shown], timeout=20000):
        win.claim_combo.setCurrentIndex(win.claim_combo.findData("mine"))
        win.claim_combo.activated.emit(win.claim_combo.currentIndex())
    assert win.ids == [b] and win.query.claim is ClaimFilter.MINE
    with qtbot.waitSignal(win.claim_changed, timeout=20000):
        win.release_action.trigger()
    assert win.claim is None and ClaimService(db).claims([b]) == {}
    win.viewer.shutdown()
    runner.wait(10000)
    QApplication.processEvents()


def test_the_form_says_who_else_claimed_the_certificate(qtbot, db, claimed_by_riley) -> None:  # type: ignore[no-untyped-def]
    team, (a, b, _) = claimed_by_riley
    form = CertificateForm(team.dbs[ALEX], load_rules_pack())
    form.set_as_of(AS_OF)
    qtbot.addWidget(form)
    form.show()
    with qtbot.waitSignal(form.checks_loaded, timeout=10000):
        form.load(CertificateService(db).get(a, AS_OF))
    assert form.claim_notice.isVisible() and form.claim_notice.text().startswith("Claimed by Riley Reviewer since ")
    with qtbot.waitSignal(form.checks_loaded, timeout=10000):
        form.load(CertificateService(db).get(b, AS_OF))
    assert not form.claim_notice.isVisible()
    form.runner.wait(10000)
    own = CertificateForm(team.dbs[RILEY], load_rules_pack())  # the claimant is not warned about their own claim
    own.set_as_of(AS_OF)
    qtbot.addWidget(own)
    own.show()
    with qtbot.waitSignal(own.checks_loaded, timeout=10000):
        own.load(CertificateService(db).get(a, AS_OF))
    assert not own.claim_notice.isVisible()
    own.runner.wait(10000)


def test_the_filter_bar_chooses_whose_certificates(qtbot) -> None:  # type: ignore[no-untyped-def]
    bar = FilterBar(["TX"], ["TX-01-339"])
    qtbot.addWidget(bar)
    with qtbot.waitSignal(bar.filters_changed) as changed:
        bar.claim_combo.setCurrentIndex(bar.claim_combo.findData("unclaimed"))
    assert changed.args == [Filters(claim=ClaimFilter.UNCLAIMED)]
    assert _filters_from_json(_filters_to_json(Filters(claim=ClaimFilter.MINE))) == Filters(claim=ClaimFilter.MINE)
    bar.clear()
    assert bar.filters() == Filters()
    bar.set_filters(Filters(claim=ClaimFilter.MINE))
    assert bar.claim_combo.currentData() == "mine" and bar.list_name() == "Filtered certificates"


