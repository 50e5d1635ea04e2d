"""The renewal loop: which certificate lines need a request, a reminder, an escalation or a
suspension as of a date, and carrying those steps out (audited).

The ladder, per company (business settings, changed through the audited settings service):

- **request** when an approved line expires within ``renewal_window_days`` (default 60) or has
  already expired, and no request for it is open or answered;
- **reminders** after each of ``renewal_reminder_days`` (default 7 and 14) days unanswered;
- **escalation** to the internal owner (certificate owner, else the customer's account owner)
  after ``renewal_escalation_days`` (default 21) days unanswered;
- **suspension** on the day after expiry: the line's exempt status is suspended
  (``CoverageLine.suspended_at``) and an audit event ``coverage.suspended`` is written in the same
  transaction.

A line is left alone when a newer approved certificate of the same customer covers the same state
beyond it (it has been renewed). Carrying out a plan writes the requests, steps, suspensions and
one outbox message per e-mail in ONE transaction; exactly those messages are then delivered by
:class:`~ecms_desktop.services.renewals.email_service.EmailService` (effectively once). A send checks
the mail server before it creates anything, and never sends messages queued by an earlier run.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecms_desktop.models import (
    Certificate,
    Company,
    CompanyRegistration,
    CoverageLine,
    Customer,
    DocumentFile,
    ReviewState,
    utcnow,
)
from ecms_desktop.models.renewal import EmailTemplate, FormLibraryEntry, RenewalRequest, RenewalStep
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core import audit, people
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import DocumentError, NotFoundError, ValidationError
from ecms_desktop.services.core.people import Permission
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.core.settings import business_settings
from ecms_desktop.services.documents.shared_sandbox import read_form_fields
from ecms_desktop.services.documents.storage import check_file
from ecms_desktop.services.renewals.email_service import (
    DeliveryReport,
    EmailService,
    build_message,
    enqueue,
    new_message_id,
)
from ecms_desktop.services.renewals.lapsed import lapsed_lines
from ecms_desktop.services.renewals.request_packet import (
    Address,
    Packet,
    PacketData,
    build_packet,
    document_request,
)
from ecms_desktop.services.renewals.state_forms import customer_reasons, reason_for_form
from ecms_desktop.services.renewals.templates import (
    PREVIEW_TOKEN,
    TEMPLATE_KINDS,
    TemplateSource,
    builtin_template,
    render_template,
    sample_context,
)
from ecms_desktop.services.sales.recurring import Lapse

_TOKEN_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


class Action(StrEnum):
    REQUEST = "request"
    REMINDER = "reminder"
    ESCALATION = "escalation"
    SUSPEND = "suspend"


@dataclass(frozen=True)
class Ladder:
    """A company's renewal ladder (days)."""

    window_days: int
    reminder_days: tuple[int, ...]
    escalation_days: int | None

    @classmethod
    def load(cls, session: Session, company_id: int) -> Ladder:
        settings = business_settings(session, company_id)
        escalation = settings.renewal_escalation_days
        return cls(settings.renewal_window_days, tuple(sorted(settings.renewal_reminder_days)),
                   escalation if escalation > 0 else None)


@dataclass(frozen=True)
class PlanItem:
    """One step due as of the plan's date for one certificate line, or for a first request (a request
    for a state no certificate covered: no certificate, line or expiry)."""

    action: Action
    certificate_id: int | None
    coverage_line_id: int | None
    state: str
    customer_id: int
    customer_number: str
    customer_name: str
    #: Who gets the e-mail (customer, or the owner for an escalation); empty for a suspension.
    recipient: str
    expiry_date: dt.date | None
    days_left: int | None
    form_code: str
    request_id: int | None = None
    token: str | None = None
    requested_on: dt.date | None = None
    #: Reminder number (1, 2 ...) for reminders.
    number: int = 0
    #: Why the step cannot send an e-mail (no address ...); the step is still recorded.
    problem: str = ""
    #: For a line with no expiry in an SST state: "lapsed for new sales on D (no purchase since ...)", the
    #: recurring relationship that ended (``expiry_date`` is then the last day it covered new sales).
    lapse: str = ""

    @property
    def key(self) -> str:
        if self.coverage_line_id is None:
            return f"first-{self.request_id}:{self.action.value}"
        return f"{self.coverage_line_id}:{self.action.value}"

    @property
    def first_request(self) -> bool:
        """A step of a first request: the customer had no certificate for the state."""
        return self.certificate_id is None

    @property
    def sends_email(self) -> bool:
        return self.action is not Action.SUSPEND and not self.problem


@dataclass(frozen=True)
class RenewalPlan:
    """The steps due for one company as of a date."""

    company_id: int
    as_of: dt.date
    ladder: Ladder
    items: tuple[PlanItem, ...]

    def of(self, action: Action) -> list[PlanItem]:
        return [i for i in self.items if i.action is action]

    def counts(self) -> dict[str, int]:
        return {a.value: len(self.of(a)) for a in Action}


@dataclass(frozen=True)
class MessagePreview:
    """A message as it would be sent (for the Renewal center's preview)."""

    key: str
    to: str
    subject: str
    text: str
    html: str
    attachments: tuple[tuple[str, int], ...]


@dataclass
class RunResult:
    """What carrying out a plan did."""

    as_of: dt.date
    requests_opened: int = 0
    reminders: int = 0
    escalations: int = 0
    suspended: int = 0
    messages_queued: int = 0
    skipped: list[str] = field(default_factory=list)
    eml_files: list[Path] = field(default_factory=list)
    delivery: DeliveryReport | None = None
    #: Messages queued by earlier runs and still not sent (they wait for the accountant's "send queued").
    queued_earlier: int = 0

    def summary(self) -> str:
        text = (f"{self.requests_opened} requests, {self.reminders} reminders, {self.escalations} escalations, "
                f"{self.suspended} lines suspended")
        if self.eml_files:
            text += f"; {len(self.eml_files)} messages written as .eml (nothing sent)"
        elif self.delivery is not None:
            text += f"; e-mail: {self.delivery.summary()}"
        if self.queued_earlier:
            n = self.queued_earlier
            text += (f"; {n} message queued earlier is not sent" if n == 1 else
                     f"; {n} messages queued earlier are not sent") + " (Renewals > Outbox…)"
        return text


def new_token() -> str:
    """A fresh request token, e.g. ``RQ-7K2M9QXD4T`` (no 0/O/1/I to misread)."""
    return "RQ-" + "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(10))


def form_for_line(rules: RulesPack, cert_form: str, state: str, reason: str) -> str:
    """The form to ask for: the certificate's own when the state accepts it for the reason, else the
    state's own form for the reason, else SST (member states) or MTC."""
    try:
        if rules.form_acceptance(state, cert_form, reason).accepted:
            return rules.form(cert_form).code
    except Exception:
        pass
    try:
        st = rules.state(state)
    except Exception:
        return cert_form
    for form in st.forms:
        if reason in form.exempt_reasons:
            return form.code
    if st.forms:
        return st.forms[0].code
    for code in ("SST-F0003", "MTC-UNIFORM"):
        try:
            if rules.form_acceptance(state, code, reason).accepted:
                return code
        except Exception:
            continue
    return cert_form


# -- the service ----------------------------------------------------------------------------------------


class RenewalService:
    """Plan and carry out the renewal ladder for one company; manage templates and the forms library."""

    def __init__(self, db: Database, rules: RulesPack | None = None, email: EmailService | None = None) -> None:
        self.db = db
        self.rules = rules or load_rules_pack()
        self.email = email or EmailService(db)

    # -- ladder settings

    def ladder(self, company_id: int) -> Ladder:
        with self.db.reader() as s:
            return Ladder.load(s, company_id)

    def set_ladder(self, company_id: int, *, window_days: int | None = None,
                   reminder_days: Sequence[int] | None = None, escalation_days: int | None = None) -> Ladder:
        """Change the company's ladder (each change audited as a setting change)."""
        companies = CompanyService(self.db)
        if window_days is not None:
            if window_days < 0:
                raise ValidationError("The renewal window cannot be negative.")
            companies.set_setting("renewal_window_days", int(window_days), company_id)
        if reminder_days is not None:
            days = sorted({int(d) for d in reminder_days})
            if any(d <= 0 for d in days):
                raise ValidationError("Reminder days count from the request and must be positive.")
            companies.set_setting("renewal_reminder_days", days, company_id)
        if escalation_days is not None:
            companies.set_setting("renewal_escalation_days", int(escalation_days), company_id)
        return self.ladder(company_id)

    # -- plan

    def plan(self, company_id: int, as_of: dt.date) -> RenewalPlan:
        """The steps due on ``as_of`` (nothing is changed)."""
        with self.db.reader() as s:
            return self._plan(s, company_id, as_of)

    def _plan(self, s: Session, company_id: int, as_of: dt.date) -> RenewalPlan:
        ladder = Ladder.load(s, company_id)
        rows = s.execute(
            select(CoverageLine, Certificate, Customer)
            .join(Certificate, Certificate.id == CoverageLine.certificate_id)
            .join(Customer, Customer.id == Certificate.customer_id)
            .where(Certificate.company_id == company_id, Certificate.review_state == ReviewState.APPROVED.value)
            .order_by(CoverageLine.expiry_date, Certificate.id, CoverageLine.state)
        ).all()
        # The furthest coverage per (customer, state) among approved lines; None = never expires.
        furthest: dict[tuple[int, str], dt.date | None] = {}
        for line, cert, _cust in rows:
            k = (cert.customer_id, line.state)
            if k in furthest and furthest[k] is None:
                continue
            if line.expiry_date is None or k not in furthest or line.expiry_date > furthest[k]:  # type: ignore[operator]
                furthest[k] = line.expiry_date
        requests = s.execute(select(RenewalRequest).where(
            RenewalRequest.company_id == company_id,
            RenewalRequest.status.in_(("open", "answered")))).scalars().all()
        open_by_line = {r.coverage_line_id: r for r in requests if r.status == "open"}
        answered_lines = {r.coverage_line_id for r in requests if r.status == "answered"}
        items: list[PlanItem] = []
        horizon = as_of + dt.timedelta(days=ladder.window_days)
        lapsed = lapsed_lines(s, self.rules, company_id, rows, as_of)
        for line, cert, cust in rows:
            if line.expiry_date is None:
                if line.id in lapsed:
                    items.extend(self._after_lapse(ladder, as_of, line, cert, cust, lapsed[line.id],
                                                   open_by_line.get(line.id), line.id in answered_lines))
                continue
            best = furthest.get((cert.customer_id, line.state), line.expiry_date)
            if best is None or best > line.expiry_date:
                continue  # renewed: a newer approved certificate covers the state beyond this line
            base = dict(certificate_id=cert.id, coverage_line_id=line.id, state=line.state,
                        customer_id=cust.id, customer_number=cust.number, customer_name=cust.legal_name,
                        expiry_date=line.expiry_date, days_left=(line.expiry_date - as_of).days)
            req = open_by_line.get(line.id)
            if req is None:
                if line.id not in answered_lines and line.expiry_date <= horizon:
                    form = form_for_line(self.rules, cert.form_code, line.state, cert.exempt_reason)
                    problem = "" if cust.email.strip() else "the customer has no e-mail address"
                    items.append(PlanItem(Action.REQUEST, recipient=cust.email.strip(), form_code=form,
                                          problem=problem, **base))  # type: ignore[arg-type]
            else:
                items.extend(_follow_ups(ladder, as_of, req, cust, cert.owner_email or cust.owner_email, base))
            if as_of > line.expiry_date and line.suspended_at is None:
                req = open_by_line.get(line.id)
                items.append(PlanItem(Action.SUSPEND, recipient="", form_code=cert.form_code,
                                      request_id=req.id if req else None, token=req.token if req else None,
                                      **base))  # type: ignore[arg-type]
        # First requests (no certificate for the state): reminders and escalation until a certificate
        # valid on the date covers the state, or one waits for review (the accountant added the paper);
        # never a suspension (there is no line).
        waiting = {(customer_id, state) for customer_id, state in s.execute(
            select(Certificate.customer_id, CoverageLine.state).join(
                CoverageLine, CoverageLine.certificate_id == Certificate.id).where(
                Certificate.company_id == company_id, Certificate.review_state == ReviewState.PENDING.value))}
        for req, cust in s.execute(
                select(RenewalRequest, Customer).join(Customer, Customer.id == RenewalRequest.customer_id)
                .where(RenewalRequest.company_id == company_id, RenewalRequest.status == "open",
                       RenewalRequest.certificate_id.is_(None))
                .order_by(RenewalRequest.requested_on, RenewalRequest.id)).all():
            k = (cust.id, req.state)
            if k in waiting or (k in furthest and (furthest[k] is None or furthest[k] >= as_of)):  # type: ignore[operator]
                continue  # covered meanwhile, or a certificate waits for review (added by hand)
            base = dict(certificate_id=None, coverage_line_id=None, state=req.state, customer_id=cust.id,
                        customer_number=cust.number, customer_name=cust.legal_name, expiry_date=None,
                        days_left=None)
            items.extend(_follow_ups(ladder, as_of, req, cust, cust.owner_email, base))
        return RenewalPlan(company_id, as_of, ladder, tuple(items))

    def _after_lapse(self, ladder: Ladder, as_of: dt.date, line: CoverageLine, cert: Certificate, cust: Customer,
                     lapse: Lapse, req: RenewalRequest | None, answered: bool) -> list[PlanItem]:
        """The steps for a line whose SST recurring relationship has lapsed: a request for a fresh
        certificate (then reminders and escalation, as for an expired line); no suspension - the lapse
        itself already keeps the certificate from covering new sales."""
        last_day = lapse.on - dt.timedelta(days=1)
        base = dict(certificate_id=cert.id, coverage_line_id=line.id, state=line.state, customer_id=cust.id,
                    customer_number=cust.number, customer_name=cust.legal_name, expiry_date=last_day,
                    days_left=(last_day - as_of).days, lapse=lapse.text())
        if req is not None:
            return _follow_ups(ladder, as_of, req, cust, cert.owner_email or cust.owner_email, base)
        if answered:
            return []
        form = form_for_line(self.rules, cert.form_code, line.state, cert.exempt_reason)
        problem = "" if cust.email.strip() else "the customer has no e-mail address"
        return [PlanItem(Action.REQUEST, recipient=cust.email.strip(), form_code=form, problem=problem,
                         **base)]  # type: ignore[arg-type]

    def queue_step(self, s: Session, item: PlanItem, as_of: dt.date, result: RunResult) -> int | None:
        """Carry out one step in the caller's transaction (request, reminder, escalation: the request and
        step rows, the e-mail queued in the outbox, the audit event); the id of the outbox message queued,
        if any. Used by the first request of a missing state (:mod:`.first_request`)."""
        return self._apply(s, _Composer(self, s, s.get_one(Customer, item.customer_id).company_id, as_of),
                           item, as_of, result)

    # -- carrying out

    def run(self, company_id: int, as_of: dt.date, *, keys: Iterable[str] | None = None,
            certificate_ids: Iterable[int] | None = None, dry_run_dir: Path | None = None, send: bool = True,
            password: str | None = None, progress: Progress | None = None,
            cancel: CancelCheck | None = None) -> RunResult:
        """Carry out the plan, or exactly the steps named by ``keys`` (the rows the accountant ticked)
        and/or ``certificate_ids``: open requests, record reminders and escalations, suspend expired
        lines and queue their e-mails in one transaction, then send those e-mails (``send``) - and only
        those: messages queued by an earlier run wait in the outbox until the accountant sends them
        (:meth:`EmailService.send_queued`); ``queued_earlier`` says how many.

        When e-mails are to be sent, the mail server is checked first (set up, password at hand,
        reachable, login accepted); if it is not, the error says why and nothing is created. A key
        no longer due (the plan changed meanwhile) is refused and nothing is created. With
        ``dry_run_dir`` nothing is changed: the messages are written there as .eml files."""
        wanted_keys = set(keys) if keys is not None else None
        wanted_certs = set(certificate_ids) if certificate_ids is not None else None

        def chosen(plan: RenewalPlan) -> list[PlanItem]:
            items = [i for i in plan.items if (wanted_keys is None or i.key in wanted_keys)
                     and (wanted_certs is None or i.certificate_id in wanted_certs)]
            if wanted_keys is not None and len(items) < len(wanted_keys):
                gone = sorted(wanted_keys - {i.key for i in items})
                raise ValidationError(f"{len(gone)} of the chosen steps are no longer due on {as_of} (done "
                                      "meanwhile, or the plan changed); refresh the plan and choose again. "
                                      "Nothing was done.")
            return items

        result = RunResult(as_of)
        if dry_run_dir is not None:
            dry_run_dir.mkdir(parents=True, exist_ok=True)
            with self.db.reader() as s:
                items = chosen(self._plan(s, company_id, as_of))
                composer = _Composer(self, s, company_id, as_of)
                for n, item in enumerate(items):
                    if progress:
                        progress(n, len(items), f"Writing message {n + 1} of {len(items)}")
                    _count(result, item)
                    if not item.sends_email:
                        if item.problem:
                            result.skipped.append(f"{item.customer_name} {item.state}: {item.problem}")
                        continue
                    token = item.token or new_token()
                    msg, _packet = composer.compose(item, token)
                    name = f"{n + 1:04d}-{item.action.value}-{_safe(item.customer_number)}-{item.state}.eml"
                    path = dry_run_dir / name
                    path.write_bytes(msg.as_bytes())
                    result.eml_files.append(path)
            return result

        if send:
            # A send that cannot start creates nothing: check the mail server before the transaction.
            with self.db.reader() as s:
                mails = any(i.sends_email for i in chosen(self._plan(s, company_id, as_of)))
            if mails:
                if progress:
                    progress(0, 0, "Connecting to the mail server")
                password = self.email.check_server(company_id, password)
        queued: list[int] = []
        with self.db.transaction() as s:
            items = chosen(self._plan(s, company_id, as_of))
            # A suspension changes the certificate (and raises its version): lock those certificates
            # first, in id order, before the audit trail's head, as every other change does.
            suspended = sorted({i.certificate_id for i in items
                                if i.action is Action.SUSPEND and i.certificate_id is not None})
            if suspended:
                s.execute(select(Certificate.id).where(Certificate.id.in_(suspended)).order_by(Certificate.id)
                          .with_for_update()).all()
            composer = _Composer(self, s, company_id, as_of)
            for n, item in enumerate(items):
                if progress:
                    progress(n, len(items), f"Preparing {item.action.value} for {item.customer_name}")
                outbox_id = self._apply(s, composer, item, as_of, result)
                if outbox_id is not None:
                    queued.append(outbox_id)
        if send and queued:
            result.delivery = self.email.deliver(company_id, queued, password=password, progress=progress,
                                                 cancel=cancel)
        result.queued_earlier = self.email.queued_count(company_id) - (
            len(result.delivery.deferred) if result.delivery else len(queued))
        return result

    def _apply(self, s: Session, composer: _Composer, item: PlanItem, as_of: dt.date,
               result: RunResult) -> int | None:
        """Carry out one step; the id of the outbox message it queued, if any."""
        cert_id, company_id = item.certificate_id, composer.company_id
        if item.action is Action.SUSPEND:
            line = s.get(CoverageLine, item.coverage_line_id)
            assert line is not None and item.expiry_date is not None
            line.suspended_at = dt.datetime.combine(item.expiry_date + dt.timedelta(days=1), dt.time(),
                                                    tzinfo=dt.UTC)
            s.add(RenewalStep(company_id=company_id, request_id=item.request_id, certificate_id=cert_id,
                              state=item.state, kind="suspension", number=0, step_on=as_of, note=""))
            audit.record(s, "coverage.suspended", "coverage_line", line.id, company_id=company_id,
                         certificate_id=cert_id, before={"suspended_at": None},
                         after={"suspended_at": line.suspended_at},
                         details={"state": item.state, "expiry_date": item.expiry_date, "as_of": as_of,
                                  "open_request": item.token,
                                  "reason": "the certificate line expired without a renewal"})
            result.suspended += 1
            return None
        if item.action is Action.REQUEST:
            if item.problem:
                result.skipped.append(f"{item.customer_name} {item.state}: {item.problem}")
                return None
            req = RenewalRequest(company_id=company_id, customer_id=item.customer_id, certificate_id=cert_id,
                                 coverage_line_id=item.coverage_line_id, state=item.state,
                                 form_code=item.form_code, token=new_token(), status="open",
                                 line_expiry=item.expiry_date, requested_on=as_of,
                                 requested_by=people.actor_name(s), reminders_sent=0,
                                 last_step_on=as_of, closed_reason="")
            s.add(req)
            s.flush()
            item = _with_request(item, req)
            result.requests_opened += 1
        else:
            found = s.get(RenewalRequest, item.request_id)
            assert found is not None
            req = found
            req.last_step_on = as_of
            if item.action is Action.REMINDER:
                req.reminders_sent = item.number
                result.reminders += 1
            else:
                req.escalated_on = as_of
                result.escalations += 1
        outbox_id = None
        if item.sends_email:
            msg, _packet = composer.compose(item, req.token)
            row = enqueue(s, company_id=company_id,
                          customer_id=item.customer_id, request_id=req.id, kind=item.action.value, message=msg)
            outbox_id = row.id
            s.expunge(row)  # keep a 1,000-message batch out of memory
            result.messages_queued += 1
        elif item.problem:
            result.skipped.append(f"{item.customer_name} {item.state}: {item.problem}")
        s.add(RenewalStep(company_id=company_id, request_id=req.id, certificate_id=cert_id, state=item.state,
                          kind=item.action.value, number=item.number, step_on=as_of, outbox_id=outbox_id,
                          note=item.problem))
        action = {"request": "renewal.requested", "reminder": "renewal.reminded",
                  "escalation": "renewal.escalated"}[item.action.value]
        if item.first_request and item.action is Action.REQUEST:
            action = "renewal.first_requested"
        audit.record(s, action, "renewal_request", req.id, company_id=company_id, certificate_id=cert_id,
                     details={"token": req.token, "state": item.state, "to": item.recipient,
                              "number": item.number, "as_of": as_of, "form": req.form_code,
                              "expiry_date": item.expiry_date, "outbox_id": outbox_id,
                              "not_sent_because": item.problem or None})
        return outbox_id

    def preview(self, company_id: int, as_of: dt.date, key: str) -> MessagePreview:
        """The message a plan item would send, rendered (nothing is changed)."""
        with self.db.reader() as s:
            plan = self._plan(s, company_id, as_of)
            item = next((i for i in plan.items if i.key == key), None)
            if item is None:
                raise NotFoundError(f"Nothing is due for {key} on {as_of}.")
            if item.action is Action.SUSPEND:
                return MessagePreview(key, "", f"Suspension of {item.state} for certificate {item.certificate_id}",
                                      "No e-mail: the line's exempt status is suspended and recorded.",
                                      "<p>No e-mail: the line's exempt status is suspended and recorded.</p>", ())
            if item.problem:
                return MessagePreview(key, "", f"Cannot send: {item.problem}", item.problem,
                                      f"<p><b>Cannot send:</b> {item.problem}</p>", ())
            msg, packet = _Composer(self, s, company_id, as_of).compose(item, item.token or PREVIEW_TOKEN)
            text_part = msg.get_body(preferencelist=("plain",))
            html_part = msg.get_body(preferencelist=("html",))
            return MessagePreview(key, str(msg["To"]), str(msg["Subject"]),
                                  text_part.get_content() if text_part else "",
                                  html_part.get_content() if html_part else "",
                                  tuple((f.name, len(f.data)) for f in (packet.files if packet else ())))

    # -- requests

    def open_requests(self, company_id: int) -> list[dict[str, Any]]:
        """Open requests with their ladder position, oldest first."""
        with self.db.reader() as s:
            rows = s.execute(select(RenewalRequest, Customer.legal_name).join(
                Customer, Customer.id == RenewalRequest.customer_id).where(
                RenewalRequest.company_id == company_id, RenewalRequest.status == "open").order_by(
                RenewalRequest.requested_on, RenewalRequest.id)).all()
            return [{"id": r.id, "token": r.token, "customer": name, "certificate_id": r.certificate_id,
                     "state": r.state, "form": r.form_code, "requested_on": r.requested_on,
                     "reminders_sent": r.reminders_sent, "escalated_on": r.escalated_on} for r, name in rows]

    def cancel_request(self, request_id: int, reason: str) -> None:
        """Close an open request without an answer (audited with the reason)."""
        if not reason.strip():
            raise ValidationError("Say why the request is cancelled.")
        with self.db.transaction() as s:
            req = s.get(RenewalRequest, request_id)
            if req is None or req.status != "open":
                raise NotFoundError(f"There is no open renewal request {request_id}.")
            req.status, req.closed_at, req.closed_reason = "cancelled", utcnow(), reason.strip()
            audit.record(s, "renewal.cancelled", "renewal_request", req.id, company_id=req.company_id,
                         certificate_id=req.certificate_id, details={"token": req.token, "reason": reason.strip()})

    # -- templates

    def template(self, company_id: int, kind: str) -> TemplateSource:
        """The company's template for ``kind``, else the built-in one."""
        builtin = builtin_template(kind)
        with self.db.reader() as s:
            row = s.execute(select(EmailTemplate).where(EmailTemplate.company_id == company_id,
                                                        EmailTemplate.kind == kind)).scalar_one_or_none()
            if row is None:
                return builtin
            return TemplateSource(kind, row.subject, row.body_text, row.body_html, True)

    def save_template(self, company_id: int, source: TemplateSource) -> None:
        """Store the company's own template after checking that it renders (audited)."""
        render_template(source, sample_context(source.kind))
        with self.db.transaction() as s:
            people.require(s, Permission.ADMINISTER, "change an e-mail template")
            row = s.execute(select(EmailTemplate).where(EmailTemplate.company_id == company_id,
                                                        EmailTemplate.kind == source.kind)).scalar_one_or_none()
            before = None if row is None else {"subject": row.subject, "text": row.body_text, "html": row.body_html}
            if row is None:
                row = EmailTemplate(company_id=company_id, kind=source.kind)
                s.add(row)
            row.subject, row.body_text, row.body_html = source.subject, source.text, source.html
            row.updated_by = people.actor_name(s)
            s.flush()
            audit.record(s, "email_template.changed", "email_template", f"{company_id}:{source.kind}",
                         company_id=company_id, before=before,
                         after={"subject": source.subject, "text": source.text, "html": source.html})

    def reset_template(self, company_id: int, kind: str) -> None:
        """Go back to the built-in template (audited)."""
        with self.db.transaction() as s:
            people.require(s, Permission.ADMINISTER, "reset an e-mail template")
            row = s.execute(select(EmailTemplate).where(EmailTemplate.company_id == company_id,
                                                        EmailTemplate.kind == kind)).scalar_one_or_none()
            if row is not None:
                s.delete(row)
                audit.record(s, "email_template.reset", "email_template", f"{company_id}:{kind}",
                             company_id=company_id, before={"subject": row.subject})

    # -- forms library

    def add_form(self, company_id: int, form_code: str, path: Path) -> dict[str, Any]:
        """Keep an official fill-in PDF for ``form_code`` in the company's forms library, stored by hash
        (audited). The file is probed in the document sandbox first; it must have fill-in fields."""
        form = self.rules.form(form_code)
        checked = check_file(path)
        if checked.media_type != "application/pdf":
            raise DocumentError(f"{path.name}: is {checked.media_type}, not a PDF form.")
        names = _field_names(checked.data, path.name)
        if not names:
            raise DocumentError(f"{path.name}: has no fill-in fields, so it cannot be filled in for customers. "
                                "Add the fillable version of the form.")
        known = sorted(set(names) & set(form.pdf_field_map))
        with self.db.transaction() as s:
            blob = s.get(DocumentFile, checked.sha256)
            if blob is None:
                s.add(DocumentFile(sha256=checked.sha256, size=len(checked.data), media_type=checked.media_type,
                                   page_count=checked.page_count, data=checked.data))
                s.flush()
            row = s.execute(select(FormLibraryEntry).where(FormLibraryEntry.company_id == company_id,
                                                           FormLibraryEntry.form_code == form.code)
                            ).scalar_one_or_none()
            before = None if row is None else {"sha256": row.sha256, "original_name": row.original_name}
            if row is None:
                row = FormLibraryEntry(company_id=company_id, form_code=form.code)
                s.add(row)
            row.sha256, row.original_name, row.field_names = checked.sha256, path.name[:255], names
            row.added_by, row.added_at = people.actor_name(s), utcnow()
            s.flush()
            audit.record(s, "forms_library.added", "form_library_entry", row.id, company_id=company_id,
                         before=before, after={"form_code": form.code, "sha256": checked.sha256,
                                               "original_name": row.original_name, "fields": len(names),
                                               "mapped_fields": len(known)})
        return {"form_code": form.code, "sha256": checked.sha256, "fields": len(names), "mapped_fields": known}

    def forms(self, company_id: int) -> list[dict[str, Any]]:
        with self.db.reader() as s:
            rows = s.execute(select(FormLibraryEntry).where(FormLibraryEntry.company_id == company_id)
                             .order_by(FormLibraryEntry.form_code)).scalars()
            return [{"form_code": r.form_code, "sha256": r.sha256, "original_name": r.original_name,
                     "fields": len(r.field_names or []), "added_at": r.added_at} for r in rows]


def _field_names(pdf: bytes, name: str) -> list[str]:
    """The names of a PDF's fill-in fields, in order, read in the document sandbox (a form added to
    the library comes from outside, like any other PDF)."""
    seen: list[str] = []
    for found in read_form_fields(pdf, filename=name, text_limit=0).fields:
        if found.name and found.name not in seen:
            seen.append(found.name)
    return seen


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text).strip("-") or "x"


def _count(result: RunResult, item: PlanItem) -> None:
    if item.action is Action.REQUEST and not item.problem:
        result.requests_opened += 1
    elif item.action is Action.REMINDER:
        result.reminders += 1
    elif item.action is Action.ESCALATION:
        result.escalations += 1
    elif item.action is Action.SUSPEND:
        result.suspended += 1


def _follow_ups(ladder: Ladder, as_of: dt.date, req: RenewalRequest, cust: Customer, owner_email: str | None,
                base: dict[str, Any]) -> list[PlanItem]:
    """The reminder and escalation due on ``as_of`` for an open request."""
    out: list[PlanItem] = []
    days_open = (as_of - req.requested_on).days
    passed = sum(1 for d in ladder.reminder_days if days_open >= d)
    common: dict[str, Any] = dict(request_id=req.id, token=req.token, requested_on=req.requested_on,
                                  form_code=req.form_code)
    if passed > req.reminders_sent:
        problem = "" if cust.email.strip() else "the customer has no e-mail address"
        out.append(PlanItem(Action.REMINDER, recipient=cust.email.strip(), number=passed, problem=problem,
                            **common, **base))
    if ladder.escalation_days is not None and days_open >= ladder.escalation_days and req.escalated_on is None:
        owner = (owner_email or "").strip()
        problem = "" if owner else "no owner e-mail on the certificate or the customer"
        out.append(PlanItem(Action.ESCALATION, recipient=owner, problem=problem, **common, **base))
    return out


def _with_request(item: PlanItem, req: RenewalRequest) -> PlanItem:
    from dataclasses import replace

    return replace(item, request_id=req.id, token=req.token, requested_on=req.requested_on)


class _Composer:
    """Builds the e-mails of one batch, loading the company, its templates and forms once."""

    def __init__(self, service: RenewalService, s: Session, company_id: int, as_of: dt.date) -> None:
        self.service, self.s, self.company_id, self.as_of = service, s, company_id, as_of
        company = s.get(Company, company_id)
        if company is None:
            raise NotFoundError(f"There is no company {company_id}.")
        self.company = company
        self.registrations = {r.state: r.number for r in s.execute(select(CompanyRegistration).where(
            CompanyRegistration.company_id == company_id)).scalars()}
        profile = service.email.get_profile(company_id) if service.email else None
        self.from_address = (profile.from_address if profile else "") or company.reply_to_email
        if not self.from_address:
            raise ValidationError("Set the company's SMTP sender (Settings > E-mail, or `ecms smtp set ... --from "
                                  "ADDRESS`) or its reply-to address before sending renewal requests.")
        self.templates = {kind: service.template(company_id, kind) for kind in TEMPLATE_KINDS}
        self._forms: dict[str, bytes | None] = {}
        self.logo = company.logo
        self.company_ctx = {
            "name": company.name, "legal_name": company.legal_name or company.name,
            "address": company.address_text(), "address_one_line": company.address_text().replace("\n", ", "),
            "reply_to": company.reply_to_email, "brand_color": company.brand_color or "#1F4E79", "logo_cid": None,
        }

    def official_form(self, form_code: str) -> bytes | None:
        if form_code not in self._forms:
            data = self.s.execute(select(DocumentFile.data).join(
                FormLibraryEntry, FormLibraryEntry.sha256 == DocumentFile.sha256).where(
                FormLibraryEntry.company_id == self.company_id, FormLibraryEntry.form_code == form_code)
            ).scalar_one_or_none()
            self._forms[form_code] = data
        return self._forms[form_code]

    def compose(self, item: PlanItem, token: str) -> tuple[Any, Packet | None]:
        cust = self.s.get_one(Customer, item.customer_id)
        cert = line = None
        if item.certificate_id is not None:  # else a first request: no certificate for the state yet
            cert = self.s.get_one(Certificate, item.certificate_id)
            line = self.s.get(CoverageLine, item.coverage_line_id) if item.coverage_line_id is not None else None
        rules = self.service.rules
        reason = cert.exempt_reason if cert is not None else reason_for_form(
            rules, item.state, item.form_code, customer_reasons(self.s, cust.id))
        state_name = rules.state(item.state).name
        packet: Packet | None = None
        form_file = ""
        if item.action in (Action.REQUEST, Action.REMINDER):
            purchaser = Address(cust.bill_to_line1, cust.bill_to_city, cust.bill_to_state, cust.bill_to_zip)
            if not purchaser.one_line() and cert is not None and cert.purchaser_address:
                purchaser = Address(street=cert.purchaser_address.replace("\n", ", "))
            company = self.company
            data = PacketData(
                token=token, form_code=item.form_code, state=item.state, state_name=state_name,
                exempt_reason=reason, kind=item.action.value, company_name=company.name,
                company_legal_name=company.legal_name or company.name,
                company_address=Address(", ".join(p for p in (company.address_line1, company.address_line2) if p),
                                        company.city, company.state, company.postal_code),
                company_registration=self.registrations.get(item.state, ""),
                company_reply_to=company.reply_to_email, brand_color=company.brand_color or "#1F4E79",
                customer_name=(cert.purchaser_name if cert else "") or cust.legal_name, customer_number=cust.number,
                purchaser_address=purchaser, certificate_id=cert.id if cert else None,
                certificate_number=cert.certificate_number if cert else "",
                expiry=item.expiry_date, as_of=self.as_of, logo=self.logo,
                known={} if cert is None else {
                    "purchaser_tax_id": (line.state_tax_id if line else "") or cert.purchaser_tax_id,
                    "purchaser_ein": cert.purchaser_ein, "business_description": cert.business_description,
                    "property_description": cert.property_description},
            )
            packet = build_packet(data, rules, self.official_form(item.form_code))
            form_file = packet.form_file.name if packet.form_file is not None else ""
        kind = item.action.value
        context = {
            "company": self.company_ctx,
            "customer": {"name": cust.legal_name, "number": cust.number, "email": cust.email},
            "state": item.state, "state_name": state_name,
            "expiry": item.expiry_date.isoformat() if item.expiry_date else "",
            "expired": bool(item.expiry_date and item.expiry_date < self.as_of), "token": token,
            "form_code": item.form_code, "form_file": form_file, "first_request": cert is None,
            # A document the state issues (nothing to fill in): what it is and where the customer gets it.
            "state_document": document_request(rules.form(item.form_code)) if packet is not None else None,
            # A company's own template from before first requests may name the certificate: "(none yet)".
            "certificate_id": cert.id if cert else "(none yet)",
            "certificate_number": cert.certificate_number if cert else "",
            "requested_on": (item.requested_on or self.as_of).isoformat(), "reminder_number": item.number,
            "days_open": (self.as_of - (item.requested_on or self.as_of)).days,
            "reminders_sent": item.number if item.action is Action.REMINDER else 0, "subject": "",
        }
        if item.action is Action.ESCALATION:
            req = self.s.get(RenewalRequest, item.request_id) if item.request_id else None
            context["reminders_sent"] = req.reminders_sent if req else 0
        subject, text, html = render_template(self.templates[kind], context)
        if token not in subject:
            subject = f"{subject} [{token}]"
        msg = build_message(
            from_address=self.from_address, to_address=item.recipient, subject=subject, text=text, html=html,
            message_id=new_message_id(self.from_address), reply_to=self.company.reply_to_email,
            attachments=[(f.name, f.data, f.media_type) for f in (packet.files if packet else ())],
            headers={"X-ECMS-Request-Token": token, "X-ECMS-Kind": kind},
        )
        return msg, packet
