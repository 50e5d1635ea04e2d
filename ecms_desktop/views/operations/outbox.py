"""E-mail: carrying out the chosen renewal steps, reading the outbox, sending queued messages, retrying
a refused one and sending a test message with the settings being edited."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from ecms_desktop.services.renewals.email_service import DeliveryReport, EmailService, OutboxEntry, SmtpSettings
from ecms_desktop.services.renewals.service import RenewalService, RunResult
from ecms_desktop.views.operations import Operation


@dataclass(frozen=True)
class OutboxView:
    """What the outbox window shows: the messages (newest first) and how many wait, queued."""

    entries: list[OutboxEntry]
    queued: int


def send_renewal_steps(service: RenewalService, company_id: int, as_of: dt.date, keys: Sequence[str], *,
                       password: str | None) -> Operation[RunResult]:
    """Send selected: carry out exactly the ticked steps and send their e-mails (the mail server is
    checked first; nothing is created when it cannot be used)."""
    chosen = list(keys)
    return Operation(lambda progress, cancel: service.run(company_id, as_of, keys=chosen, password=password,
                                                          progress=progress, cancel=cancel),
                     title="Sending renewal requests")


def read_outbox(email: EmailService, company_id: int, status: str | None) -> Operation[OutboxView]:
    """The outbox, or only its queued, sent or failed messages."""
    return Operation(lambda _p, _c: OutboxView(email.outbox(company_id, status=status),
                                               email.queued_count(company_id)))


def send_queued(email: EmailService, company_id: int, ids: Sequence[int] | None, *,
                password: str | None) -> Operation[DeliveryReport]:
    """Send queued…: the messages left queued by earlier runs (the chosen ones, or all)."""
    chosen = list(ids) if ids is not None else None
    return Operation(lambda progress, cancel: email.send_queued(company_id, chosen, password=password,
                                                                progress=progress, cancel=cancel),
                     title="Sending queued messages")


def retry_message(email: EmailService, company_id: int, outbox_id: int, *,
                  password: str | None) -> Operation[DeliveryReport]:
    """Retry: send a message the server refused again."""
    return Operation(lambda progress, cancel: email.retry(company_id, outbox_id, password=password,
                                                          progress=progress, cancel=cancel),
                     title="Sending the message again")


def send_test_message(email: EmailService, settings: SmtpSettings, to_address: str, *,
                      password: str | None) -> Operation[str]:
    """Send test message: one short message through the settings on screen (saved or not)."""
    return Operation(lambda _p, _c: email.send_test_message(settings, to_address, password),
                     title="Sending a test message")
