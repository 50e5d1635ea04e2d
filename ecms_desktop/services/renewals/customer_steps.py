"""The renewal step a customer's exemption matrix offers for one state, taken through the renewal ladder.

"Request" opens the renewal request of the certificate line that runs out in the state, or for a state no
certificate covers (missing) a first request (:mod:`.first_request`); "remind" sends the reminder the ladder
has due for the open request. Both are the same plan items the Renewal Center
shows, carried out the same way (e-mail queued and delivered, audited): when the ladder has nothing due
for the state on the date, the accountant is told why instead.
"""

from __future__ import annotations

import datetime as dt

from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.customers.matrix import Coverage, ExemptionMatrixService, NextAction
from ecms_desktop.services.renewals.first_request import open_first_request
from ecms_desktop.services.renewals.service import Action, RenewalService, RunResult


def take_renewal_step(renewals: RenewalService, customer_id: int, state: str, *, as_of: dt.date,
                      password: str | None = None, progress: Progress | None = None,
                      cancel: CancelCheck | None = None) -> RunResult:
    """Carry out the matrix's next action for ``state`` of a customer when it is a renewal step (request
    or remind) as of ``as_of``."""
    matrix = ExemptionMatrixService(renewals.db).matrix(customer_id, as_of=as_of)
    row = matrix.row(state)
    who = f"{matrix.customer.number} {matrix.customer.legal_name}"
    if row.next_action not in (NextAction.REQUEST, NextAction.REMIND):
        raise ValidationError(f"{who}, {row.state}: the next action is not a renewal request or reminder "
                              f"({row.coverage.label.lower()}).")
    if row.next_action is NextAction.REQUEST and row.coverage is Coverage.MISSING:
        return open_first_request(renewals, customer_id, row.state, as_of=as_of, password=password,
                                  progress=progress, cancel=cancel)
    plan = renewals.plan(matrix.customer.company_id, as_of)
    if row.next_action is NextAction.REQUEST:
        item = next((i for i in plan.items if i.action is Action.REQUEST
                     and i.coverage_line_id == row.coverage_line_id), None)
        if item is None:
            opens = (row.expiry_date - dt.timedelta(days=plan.ladder.window_days)) if row.expiry_date else None
            when = f"the renewal window opens on {opens}" if opens and opens > as_of else \
                "a newer certificate or an answered request already covers this line"
            raise ValidationError(f"{who}, {row.state}: no renewal request is due on {as_of}: {when}.")
    else:
        item = next((i for i in plan.items if i.action is Action.REMINDER and i.request_id == row.request_id), None)
        if item is None:
            days = ", ".join(str(d) for d in plan.ladder.reminder_days) or "no"
            raise ValidationError(f"{who}, {row.state}: no reminder is due on {as_of} for the request sent on "
                                  f"{row.requested_on} (reminders go {days} days after the request).")
    if item.problem:
        raise ValidationError(f"{who}, {row.state}: cannot send: {item.problem}.")
    return renewals.run(matrix.customer.company_id, as_of, keys=[item.key], password=password, progress=progress,
                        cancel=cancel)
