"""A first request: e-mail a customer that buys in a state where no certificate covers it a request for a
certificate, with the state's form, tracked like a renewal request.

The request has no certificate (nothing was ever received for the state). Its token travels in the subject
and the request packet; the ladder sends its reminders and escalation (:meth:`RenewalService.plan`) until a
certificate covers the state or the returned form is read back (which answers it and makes a pending
certificate for the customer); there is no line to suspend. It shows in the Renewal center and the outbox
like any request, and each step is audited.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecms_desktop.models import Customer
from ecms_desktop.services.core.errors import NotFoundError, ValidationError
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.customers.matrix import Coverage, matrix_in
from ecms_desktop.services.renewals.service import Action, PlanItem, RenewalService, RunResult
from ecms_desktop.services.renewals.state_forms import customer_reasons, first_request_form


def _first_request_item(renewals: RenewalService, s: Session, customer_id: int, state: str,
                        as_of: dt.date) -> PlanItem:
    """The first request due for (customer, state) on ``as_of``, or the reason there is none."""
    customer = s.get(Customer, customer_id)
    if customer is None:
        raise NotFoundError(f"There is no customer {customer_id} (it may have been merged).")
    row = matrix_in(s, customer, as_of).row(state)
    who = f"{customer.number} {customer.legal_name}, {row.state}"
    if row.request_id is not None:
        raise ValidationError(f"{who}: a request is already open (sent on {row.requested_on}); send its reminder "
                              "instead.")
    if row.coverage is not Coverage.MISSING:
        cert = f"certificate {row.certificate_id}" if row.certificate_id else "a certificate"
        raise ValidationError(f"{who}: {cert} already covers the state ({row.coverage.label.lower()} on {as_of}); "
                              "a first request is only for a state no certificate covers.")
    form_code, _reason = first_request_form(renewals.rules, row.state, customer_reasons(s, customer.id))
    email = customer.email.strip()
    if not email:
        raise ValidationError(f"{who}: the customer has no e-mail address; add one (Edit…) before sending a request.")
    return PlanItem(Action.REQUEST, certificate_id=None, coverage_line_id=None, state=row.state,
                    customer_id=customer.id, customer_number=customer.number, customer_name=customer.legal_name,
                    recipient=email, expiry_date=None, days_left=None, form_code=form_code)


def first_request_plan(renewals: RenewalService, customer_id: int, state: str, as_of: dt.date) -> PlanItem:
    """The first request that would be sent to a customer for ``state`` on ``as_of`` (nothing is changed):
    who gets it and which form. Raises :class:`ValidationError` when none can be sent (see
    :func:`open_first_request`)."""
    with renewals.db.reader() as s:
        return _first_request_item(renewals, s, customer_id, state.strip().upper(), as_of)


def open_first_request(renewals: RenewalService, customer_id: int, state: str, *, as_of: dt.date,
                       send: bool = True, password: str | None = None, progress: Progress | None = None,
                       cancel: CancelCheck | None = None) -> RunResult:
    """E-mail a customer a request for a certificate for ``state``, where it buys but no certificate covers
    it, as of ``as_of``: the request (with its token) and its first step are recorded, the e-mail with the
    state's form is queued in the outbox and the event audited in one transaction, then the e-mail is sent
    (``send``; else it waits in the outbox).

    The form is the one the state accepts for the customer's exemption (the reason of its certificates,
    else the state's resale form). Refused, with nothing created, when a certificate covers the state, a
    request for it is already open, the customer has no e-mail address, no form can be chosen, or (when
    sending) the mail server is not ready: it is checked before anything is created."""
    state = state.strip().upper()
    first_request_plan(renewals, customer_id, state, as_of)  # refused before the mail server is asked
    with renewals.db.reader() as s:
        company_id = s.get_one(Customer, customer_id).company_id
    if send:
        if progress:
            progress(0, 0, "Connecting to the mail server")
        password = renewals.email.check_server(company_id, password)
    result = RunResult(as_of)
    with renewals.db.transaction() as s:
        # One first request per customer and state, even when two desks click at once.
        s.execute(select(Customer.id).where(Customer.id == customer_id).with_for_update()).all()
        item = _first_request_item(renewals, s, customer_id, state, as_of)
        outbox_id = renewals.queue_step(s, item, as_of, result)
    if send and outbox_id is not None:
        result.delivery = renewals.email.deliver(company_id, [outbox_id], password=password, progress=progress,
                                                 cancel=cancel)
    result.queued_earlier = renewals.email.queued_count(company_id) - (
        len(result.delivery.deferred) if result.delivery else 1 if outbox_id is not None else 0)
    return result
