"""The renewal plan and ladder, day by day over a 120-day calendar, including suspension."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from ecms_desktop.models import CoverageLine, Customer
from ecms_desktop.models.renewal import OutboxMessage, RenewalRequest, RenewalStep
from ecms_desktop.services.core.audit import list_events, verify_chain
from ecms_desktop.services.renewals.service import Action, RenewalService
from tests.factories import DAY0, RULES, make_expiring_certificate


def _ladder_day(start: int, expiry: int, days: int = 120, window: int = 60, reminders=(7, 14),
                escalation: int = 21) -> dict[int, set[str]]:
    """What the issue's ladder prescribes for a line expiring on day ``expiry``, by day."""
    out: dict[int, set[str]] = {}
    first = max(0, expiry - window)
    out.setdefault(first, set()).add("request")
    for n, d in enumerate(reminders, 1):
        out.setdefault(first + d, set()).add(f"reminder{n}")
    out.setdefault(first + escalation, set()).add("escalation")
    out.setdefault(max(expiry + 1, 0), set()).add("suspend")
    return {d: a for d, a in out.items() if d < days}


def test_ladder_day_by_day_over_120_days(db, company_id):
    svc = RenewalService(db, RULES)
    a = make_expiring_certificate(db, company_id, "C-A", DAY0 + dt.timedelta(days=60))
    b = make_expiring_certificate(db, company_id, "C-B", DAY0 + dt.timedelta(days=90))
    c = make_expiring_certificate(db, company_id, "C-C", DAY0 - dt.timedelta(days=5))  # already expired, never asked
    # outside the calendar's window:
    far = make_expiring_certificate(db, company_id, "C-D", DAY0 + dt.timedelta(days=400))
    pending = make_expiring_certificate(db, company_id, "C-E", DAY0 + dt.timedelta(days=10), review="pending")
    expected = {a: _ladder_day(0, 60), b: _ladder_day(0, 90), c: {0: {"request", "suspend"}, 7: {"reminder1"},
                                                                    14: {"reminder2"}, 21: {"escalation"}}}
    seen: dict[int, dict[int, set[str]]] = {a: {}, b: {}, c: {}, far: {}, pending: {}}
    for day in range(120):
        as_of = DAY0 + dt.timedelta(days=day)
        plan = svc.plan(company_id, as_of)
        for item in plan.items:
            label = f"reminder{item.number}" if item.action is Action.REMINDER else item.action.value
            seen[item.certificate_id].setdefault(day, set()).add(label)
        result = svc.run(company_id, as_of, send=False)
        assert result.suspended == len(plan.of(Action.SUSPEND))
        # carried out: the same plan is empty afterwards
        assert svc.plan(company_id, as_of).items == ()
    assert seen[a] == expected[a]
    assert seen[b] == expected[b]
    assert seen[c] == expected[c]
    assert seen[far] == {} and seen[pending] == {}

    with db.reader() as s:
        lines = {ln.certificate_id: ln for ln in s.execute(select(CoverageLine)).scalars()}
        assert lines[a].suspended_at == dt.datetime(2026, 3, 3, tzinfo=dt.UTC)  # day 61 = day after expiry
        assert lines[b].suspended_at is not None and lines[far].suspended_at is None
        steps = s.execute(select(RenewalStep.certificate_id, RenewalStep.kind, RenewalStep.step_on)
                          .order_by(RenewalStep.id)).all()
        kinds_a = [(k, (d - DAY0).days) for cid, k, d in steps if cid == a]
        assert kinds_a == [("request", 0), ("reminder", 7), ("reminder", 14), ("escalation", 21),
                           ("suspension", 61)]
        outbox = s.execute(select(OutboxMessage.kind, OutboxMessage.to_address, OutboxMessage.state)).all()
        # 3 lines x (request + 2 reminders + escalation); escalations go to the owner
        assert len(outbox) == 12
        assert {o.to_address for o in outbox if o.kind == "escalation"} == {"owner@acme.example"}
        assert {o.state for o in outbox} == {"pending"}
        events = list_events(s)
        suspended = [e for e in events if e.action == "coverage.suspended"]
        assert {e.certificate_id for e in suspended} == {a, b, c}
        assert all(e.before == {"suspended_at": None} for e in suspended)
        assert len([e for e in events if e.action == "renewal.reminded"]) == 6
        assert verify_chain(s).ok


def test_ladder_is_configurable_per_company_and_audited(db, company_id):
    svc = RenewalService(db, RULES)
    svc.set_ladder(company_id, window_days=30, reminder_days=[5], escalation_days=10)
    cert = make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=40))
    days: dict[int, set[str]] = {}
    for day in range(60):
        as_of = DAY0 + dt.timedelta(days=day)
        for item in svc.plan(company_id, as_of).items:
            days.setdefault(day, set()).add(item.action.value)
        svc.run(company_id, as_of, send=False)
    assert days == {10: {"request"}, 15: {"reminder"}, 20: {"escalation"}, 41: {"suspend"}}
    with db.reader() as s:
        changed = [e for e in list_events(s) if e.action == "setting.changed"]
        assert {next(iter(e.after)) for e in changed} == {"renewal_window_days", "renewal_reminder_days",
                                                           "renewal_escalation_days"}
    assert cert


def test_renewed_line_and_missing_addresses(db, company_id):
    svc = RenewalService(db, RULES)
    old = make_expiring_certificate(db, company_id, "C-R", DAY0 + dt.timedelta(days=20))
    make_expiring_certificate(db, company_id, "C-R", DAY0 + dt.timedelta(days=900))  # renewed already
    noaddr = make_expiring_certificate(db, company_id, "C-N", DAY0 + dt.timedelta(days=20), email=" ", owner="")
    with db.transaction() as s:
        s.execute(Customer.__table__.update().where(Customer.number == "C-N").values(email=""))
    plan = svc.plan(company_id, DAY0)
    assert [i.certificate_id for i in plan.items] == [noaddr]
    assert plan.items[0].problem == "the customer has no e-mail address"
    result = svc.run(company_id, DAY0, send=False)
    assert result.requests_opened == 0 and result.skipped
    with db.reader() as s:
        assert s.execute(select(RenewalRequest)).first() is None
    assert old


def test_cancelled_request_is_asked_again(db, company_id):
    svc = RenewalService(db, RULES)
    make_expiring_certificate(db, company_id, "C-X", DAY0 + dt.timedelta(days=30))
    svc.run(company_id, DAY0, send=False)
    [req] = svc.open_requests(company_id)
    svc.cancel_request(req["id"], "customer changed address")
    plan = svc.plan(company_id, DAY0 + dt.timedelta(days=1))
    assert [i.action for i in plan.items] == [Action.REQUEST]
