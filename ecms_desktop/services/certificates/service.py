"""Certificates: create, read, edit with optimistic locking, review (approve, reject, archive).

Every change is one transaction that also writes the audit event with the values before and after.
Views and the CLI receive frozen DTOs, never live ORM objects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from ecms_desktop.models import (
    AuditEvent,
    Certificate,
    CertificateType,
    Company,
    CoverageLine,
    Customer,
    ExemptReason,
    ExpiryPolicyOverride,
    ReviewState,
    utcnow,
)
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.rules.pack import ExpiryRule, RulesPackError, UnknownFormError, UnknownStateError
from ecms_desktop.services.certificates import claims
from ecms_desktop.services.certificates.history_service import ACTION_LABELS
from ecms_desktop.services.core import audit, people
from ecms_desktop.services.core.certificate_records import (
    CertificateDetail,
    CertificateInput,
    DocumentInfo,
    LineDetail,
    LineInput,
)
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import ConflictError, NotFoundError, Problem, ValidationError
from ecms_desktop.services.core.expiry import (
    ExpiryDecision,
    certificate_status,
    compute_expiry,
    days_left,
    entered_expiry,
    line_status,
)
from ecms_desktop.services.core.field_limits import currency_problem, date_problem, limits_of, text_list_problem
from ecms_desktop.services.core.people import Permission
from ecms_desktop.services.core.settings import business_settings
from ecms_desktop.services.documents.storage import CheckedFile, store_checked
from ecms_desktop.services.sales import exemption_feed
from ecms_desktop.services.sales.sales_history import recurring_lapses
from ecms_desktop.services.validation.runs import (
    ApprovalResult,
    accept_findings,
    approval_gate,
    approval_result,
    evaluate_certificate,
    record_validation,
    store_run,
)

_INPUT_FIELDS = tuple(f.name for f in fields(CertificateInput))
_SCALAR_FIELDS = [f.name for f in fields(CertificateInput)
                  if f.name not in ("lines", "company_id", "customer_id", "product_codes", "commodity_codes")]


# -- expiry -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompanyExpiryPolicy:
    """A company's own expiry rule for one state and purpose (a copy of its stored override)."""

    kind: str
    years: int | None
    reason: str
    changed_by: str


@dataclass
class ExpiryContext:
    """The rules pack plus one company's expiry policy overrides, for computing line expiries."""

    rules: RulesPack
    overrides: dict[tuple[str, str], CompanyExpiryPolicy] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, rules: RulesPack, company_id: int) -> ExpiryContext:
        rows = session.execute(select(ExpiryPolicyOverride).where(
            ExpiryPolicyOverride.company_id == company_id)).scalars()
        return cls(rules, {(r.state, r.purpose): CompanyExpiryPolicy(r.kind, r.years, r.reason, r.changed_by)
                           for r in rows})

    def decide(self, state: str, form_code: str, reason: str, *, effective: dt.date | None,
               signed: dt.date | None, override: dt.date | None, override_reason: str,
               renewal: bool = False) -> ExpiryDecision:
        """The expiry of one line: set by hand (or as printed by the state) > company policy > rules pack.
        ``renewal``: the certificate renews one the customer already held (see :func:`renewal_states`)."""
        if override is not None:
            try:
                rule = self.rules.expiry_rule(state, form_code, reason) if form_code and reason else None
            except RulesPackError:  # an unknown state, form or reason: reported by validation
                rule = None
            return entered_expiry(override, override_reason, rule)
        if not form_code or not reason:
            # A pending certificate whose form or exempt reason is not known yet: its state's rule for them
            # cannot be looked up, and no expiry is guessed (it covers nothing until it is approved).
            missing = " and ".join(w for w, v in (("form", form_code), ("exempt reason", reason)) if not v)
            return ExpiryDecision(None, f"not known yet: the expiry follows from the {missing}, not given yet",
                                  "", "rules")
        purpose = "resale" if reason == ExemptReason.RESALE else "exemption"
        company_rule = self.overrides.get((state, purpose))
        if company_rule is not None:
            rule = ExpiryRule(company_rule.kind, company_rule.years, "company policy", company_rule.reason,
                              f"Company policy set by {company_rule.changed_by}", "n/a")
            return compute_expiry(rule, effective=effective, signed=signed, origin="company")
        return compute_expiry(self.rules.expiry_rule(state, form_code, reason), effective=effective,
                              signed=signed, renewal=renewal)


def renewal_states(session: Session, cert: Certificate, rules: RulesPack) -> frozenset[str]:
    """The states in which ``cert`` is a renewal: its customer already held a certificate on the same form
    covering the state, effective (or signed) before this one and not rejected. Asked only where the state's rule has a
    renewal term (Maine's resale certificate), so other certificates cost no query."""
    start = cert.effective_date or cert.signed_date
    if start is None or not cert.form_code or not cert.exempt_reason:
        return frozenset()
    try:
        wanted = [ln.state for ln in cert.lines
                  if rules.expiry_rule(ln.state, cert.form_code, cert.exempt_reason).renewal is not None]
    except RulesPackError:  # an unknown state, form or reason: reported by validation
        return frozenset()
    if not wanted:
        return frozenset()
    earlier = select(CoverageLine.state).join(Certificate).where(
        Certificate.customer_id == cert.customer_id, Certificate.company_id == cert.company_id,
        Certificate.form_code == cert.form_code, Certificate.review_state != ReviewState.REJECTED,
        CoverageLine.state.in_(wanted), func.coalesce(Certificate.effective_date, Certificate.signed_date) < start)
    if cert.id is not None:
        earlier = earlier.where(Certificate.id != cert.id)
    with session.no_autoflush:
        return frozenset(session.execute(earlier.distinct()).scalars())


def apply_expiry(session: Session, cert: Certificate, ctx: ExpiryContext) -> None:
    """Recompute every line's expiry and the certificate's earliest expiry (``session`` tells whether the
    certificate renews one its customer held: :func:`renewal_states`)."""
    renewals = renewal_states(session, cert, ctx.rules)
    for line in cert.lines:
        decision = ctx.decide(line.state, cert.form_code, cert.exempt_reason, effective=cert.effective_date,
                              signed=cert.signed_date, override=cert.expiry_override,
                              override_reason=cert.expiry_override_reason, renewal=line.state in renewals)
        line.expiry_date = decision.expiry_date
        line.expiry_basis = decision.basis
        line.expiry_source = decision.source
        line.expiry_origin = decision.origin
    dates = [line.expiry_date for line in cert.lines if line.expiry_date is not None]
    cert.expiry_date = min(dates) if dates else None


def recompute_company_expiries(session: Session, company_id: int, state: str,
                               rules: RulesPack | None = None) -> int:
    """Recompute the expiry of a company's lines in one state (after a policy change). Returns how
    many lines changed. Each certificate whose expiry changes gets a new version and its own audit
    event ``certificate.expiry_recomputed`` in the caller's transaction."""
    ctx = ExpiryContext.load(session, rules or load_rules_pack(), company_id)
    certs = session.execute(
        select(Certificate).join(CoverageLine).where(Certificate.company_id == company_id,
                                                     CoverageLine.state == state)
        .order_by(Certificate.id).options(selectinload(Certificate.lines)).with_for_update(of=Certificate)
    ).unique().scalars().all()
    changed = 0
    events: list[audit.NewEvent] = []
    for cert in certs:
        before = snapshot(cert)
        expiries = {line.state: line.expiry_date for line in cert.lines}
        apply_expiry(session, cert, ctx)
        n = sum(1 for line in cert.lines if expiries.get(line.state) != line.expiry_date)
        if n:
            changed += n
            events.append(audit.NewEvent(
                "certificate.expiry_recomputed", "certificate", cert.id, company_id=company_id,
                certificate_id=cert.id, before={"lines": before["lines"]}, after={"lines": snapshot(cert)["lines"]},
                details={"state": state, "reason": f"the company's expiry policy for {state} changed"}))
    if events:
        session.flush()
        audit.record_many(session, events)
    return changed


# -- input checks -----------------------------------------------------------------------------------


def not_known(data: CertificateInput) -> list[Problem]:
    """What a certificate does not say yet: its form, states, exempt reason or type left empty (a pending
    certificate made from an inbox document before anyone read it)."""
    problems = []
    if not data.form_code.strip():
        problems.append(Problem("the form is not known yet", column="form"))
    if not data.lines:
        problems.append(Problem("no state is given yet: at least one state is required", column="state"))
    if not data.exempt_reason:
        problems.append(Problem("the exempt reason is not known yet", column="exempt_reason"))
    if not data.certificate_type:
        problems.append(Problem("the certificate type is not known yet", column="certificate_type"))
    return problems


def check_input(data: CertificateInput, rules: RulesPack, *, pending: bool = False) -> list[Problem]:
    """Structural problems that make a certificate impossible to store (state-specific checks are
    the validation engine's job and do not block saving). A ``pending`` certificate may leave its form,
    states, exempt reason and type empty, not known yet (validation then says each is missing and approval
    waits for them); any other needs them."""
    problems: list[Problem] = [] if pending else not_known(data)
    if data.form_code.strip():
        try:
            rules.form(data.form_code)
        except UnknownFormError as exc:
            problems.append(Problem(str(exc), column="form"))
    seen: set[str] = set()
    for line in data.lines:
        try:
            rules.state(line.state)
        except UnknownStateError:
            problems.append(Problem(f"unknown state {line.state!r}", column="state"))
        if line.state in seen:
            problems.append(Problem(f"state {line.state} is listed twice", column="state"))
        seen.add(line.state)
    if data.exempt_reason and data.exempt_reason not in {r.value for r in ExemptReason}:
        problems.append(Problem(f"unknown exempt reason {data.exempt_reason!r} (one of: "
                                f"{', '.join(r.value for r in ExemptReason)})", column="exempt_reason"))
    if data.certificate_type and data.certificate_type not in {t.value for t in CertificateType}:
        problems.append(Problem("certificate type must be 'blanket' or 'single_use'", column="certificate_type"))
    if data.expiry_override is not None and not data.expiry_override_reason.strip():
        problems.append(Problem("an expiry date set by hand needs a reason", column="expiry_override_reason"))
    if data.effective_date and data.expiry_override and data.expiry_override < data.effective_date:
        problems.append(Problem("the expiry date is before the effective date", column="expiry_date"))
    # What the database columns can hold (the same on SQLite and PostgreSQL; see field_limits).
    limits = limits_of(Certificate)
    unstorable: set[str] = set()
    for name in _SCALAR_FIELDS:
        found = limits[name].problem(getattr(data, name)) if name in limits else None
        if found is not None:
            unstorable.add(name)
            problems.append(Problem(found, column=_FIELD_COLUMNS.get(name, name)))
    for name in ("product_codes", "commodity_codes"):
        found = text_list_problem(getattr(data, name))
        if found is not None:
            problems.append(Problem(found, column=name))
    line_limit = limits_of(CoverageLine)["state_tax_id"]
    for line in data.lines:
        found = line_limit.text_problem(line.state_tax_id) or text_list_problem(line.local_jurisdictions)
        if found is not None:
            problems.append(Problem(f"{line.state}: {found}", column="state_tax_id"))
    percent, amount = data.exempt_percent, data.exempt_amount
    if percent is not None and "exempt_percent" not in unstorable and not Decimal(0) < percent <= Decimal(100):
        problems.append(Problem(f"exempt percent must be more than 0 and at most 100 (it is {percent} with the "
                                f"{limits['exempt_percent'].scale} decimals stored)", column="exempt_percent"))
    if amount is not None and "exempt_amount" not in unstorable and amount <= 0:
        problems.append(Problem(f"exempt amount must be positive (it is {amount} with the "
                                f"{limits['exempt_amount'].scale} decimals stored)", column="exempt_amount"))
    found = currency_problem(data.currency) if "currency" not in unstorable else None
    if found is not None:
        problems.append(Problem(found, column="currency"))
    for name in ("signed_date", "effective_date", "expiry_override"):
        found = date_problem(getattr(data, name))
        if found is not None:
            problems.append(Problem(found, column=_FIELD_COLUMNS.get(name, name)))
    return problems


#: Where a problem with an input field is shown when the field has another name in the form and the
#: import (their column names).
_FIELD_COLUMNS = {"form_code": "form", "expiry_override": "expiry_date"}


def normalized_input(data: CertificateInput, rules: RulesPack) -> CertificateInput:
    """Canonical spelling of codes: form code, upper-case states, trimmed text."""
    try:
        form_code = rules.form(data.form_code).code
    except UnknownFormError:
        form_code = data.form_code.strip()
    lines = tuple(sorted((replace(line, state=line.state.strip().upper(),
                                  state_tax_id=line.state_tax_id.strip()) for line in data.lines),
                         key=lambda line: line.state))
    changes: dict[str, Any] = {"form_code": form_code, "lines": lines,
                               "currency": data.currency.strip().upper() or "USD",
                               "product_codes": tuple(c.strip() for c in data.product_codes if c.strip()),
                               "commodity_codes": tuple(c.strip() for c in data.commodity_codes if c.strip())}
    for name in _SCALAR_FIELDS:
        value = getattr(data, name)
        if isinstance(value, str) and name not in changes:
            changes[name] = value.strip()
    # Amounts and percentages as the columns keep them (rounded half up), on every database alike.
    limits = limits_of(Certificate)
    for name in ("exempt_percent", "exempt_amount"):
        value = getattr(data, name)
        if value is not None and limits[name].number_problem(value) is None:
            changes[name] = limits[name].fit(value)
    return replace(data, **changes)


# -- mapping ----------------------------------------------------------------------------------------


def _write(cert: Certificate, data: CertificateInput) -> None:
    for name in _SCALAR_FIELDS:
        setattr(cert, name, getattr(data, name))
    cert.company_id = data.company_id
    cert.customer_id = data.customer_id
    cert.product_codes = list(data.product_codes)
    cert.commodity_codes = list(data.commodity_codes)
    existing = {line.state: line for line in cert.lines}
    wanted = {line.state for line in data.lines}
    for state, line in list(existing.items()):
        if state not in wanted:
            cert.lines.remove(line)
    for line_in in data.lines:
        found = existing.get(line_in.state)
        if found is None:
            line = CoverageLine(state=line_in.state)
            cert.lines.append(line)
        else:
            line = found
        line.state_tax_id = line_in.state_tax_id
        line.local_jurisdictions = list(line_in.local_jurisdictions)


def _sorted_lines(cert: Certificate) -> list[CoverageLine]:
    """Lines in state order (new lines are appended in memory until the next load)."""
    return sorted(cert.lines, key=lambda line: line.state)


def input_of(cert: Certificate) -> CertificateInput:
    """The editable content of a stored certificate."""
    values = {name: getattr(cert, name) for name in _SCALAR_FIELDS}
    return CertificateInput(
        company_id=cert.company_id, customer_id=cert.customer_id,
        lines=tuple(LineInput(line.state, line.state_tax_id, tuple(line.local_jurisdictions or ()))
                    for line in _sorted_lines(cert)),
        product_codes=tuple(cert.product_codes or ()), commodity_codes=tuple(cert.commodity_codes or ()),
        **values,
    )


def snapshot(cert: Certificate) -> dict[str, Any]:
    """The certificate's values for the audit trail."""
    lines = [{"state": line.state, "state_tax_id": line.state_tax_id,
              "local_jurisdictions": line.local_jurisdictions, "expiry_date": line.expiry_date,
              "expiry_origin": line.expiry_origin} for line in cert.lines]
    return snapshot_values(input_of(cert), lines, cert.review_state, cert.review_reason)


def snapshot_values(data: CertificateInput, lines: Iterable[Mapping[str, Any]], review_state: str,
                    review_reason: str) -> dict[str, Any]:
    """The audit trail's values of a certificate from its content, its lines' stored values (state,
    purchaser number, local limits, expiry and its origin) and its review state."""
    out: dict[str, Any] = {name: getattr(data, name) for name in _INPUT_FIELDS}  # shallow: asdict copies deeply
    out["lines"] = [{"state": ln["state"], "state_tax_id": ln["state_tax_id"],
                     "local_jurisdictions": list(ln["local_jurisdictions"] or ()),
                     "expiry_date": ln["expiry_date"], "expiry_origin": ln["expiry_origin"]}
                    for ln in sorted(lines, key=lambda ln: ln["state"])]
    out["review_state"] = review_state
    out["review_reason"] = review_reason
    return {k: v if type(v) is str or v is None else audit.jsonable(v) for k, v in out.items()}


def gate_decision(review_state: str, *, gate: bool, findings: Sequence[Any], accept_findings_reason: str
                  ) -> tuple[str, dict[str, Any], bool]:
    """The approval gate of a new certificate (see :func:`create_certificate`): the review state it is
    stored in, what its ``certificate.created`` event says about that, and whether its findings are
    accepted with the reason given."""
    wants_approval = gate and review_state == ReviewState.APPROVED
    blocking = [f for f in findings if f.severity in ("error", "warning")]
    details: dict[str, Any] = {}
    if wants_approval and blocking and not accept_findings_reason.strip():
        errors = sum(f.severity == "error" for f in blocking)
        details["held_for_review"] = (f"asked for as approved; validation found {errors} error(s) and "
                                      f"{len(blocking) - errors} warning(s)")
        return ReviewState.PENDING.value, details, False
    return review_state, details, wants_approval and bool(blocking)


def detail_of(cert: Certificate, as_of: dt.date, window_days: int,
              lapses: Mapping[str, str] | None = None) -> CertificateDetail:
    """The certificate as the desk and ``ecms show`` show it as of a date; ``lapses``: the text of the
    states where the SST recurring relationship has lapsed (see :meth:`CertificateService.get`)."""
    lapses = lapses or {}
    lines = tuple(
        LineDetail(line.state, line.state_tax_id, tuple(line.local_jurisdictions or ()), line.expiry_date,
                   line.expiry_basis, line.expiry_source, line.expiry_origin,
                   line_status(cert.review_state, line.expiry_date, as_of, window_days),
                   days_left(line.expiry_date, as_of), line.suspended_at, lapses.get(line.state, ""))
        for line in _sorted_lines(cert)
    )
    docs = tuple(
        DocumentInfo(d.id, d.sha256, d.original_name, d.file.media_type, d.file.page_count, d.file.size,
                     d.received_via, d.received_at, d.view_rotation, d.extraction)
        for d in cert.documents
    )
    return CertificateDetail(
        id=cert.id, version=cert.version, data=input_of(cert), company_name=cert.company.name,
        customer_number=cert.customer.number, customer_name=cert.customer.legal_name,
        customer_email=cert.customer.email, review_state=cert.review_state, review_reason=cert.review_reason,
        reviewed_by=cert.reviewed_by, reviewed_at=cert.reviewed_at, reviewed_version=cert.reviewed_version,
        status=certificate_status(cert.review_state, [line.expiry_date for line in cert.lines], as_of,
                                  window_days),
        expiry_date=cert.expiry_date, lines=lines, documents=docs, origin=cert.origin,
        created_at=cert.created_at, updated_at=cert.updated_at, as_of=as_of,
    )


# -- service ----------------------------------------------------------------------------------------


class CertificateService:
    """Certificate use cases for the GUI and the CLI."""

    def __init__(self, db: Database, rules: RulesPack | None = None) -> None:
        self.db = db
        self.rules = rules or load_rules_pack()

    def _load(self, session: Session, cert_id: int) -> Certificate:
        cert = session.execute(
            select(Certificate).where(Certificate.id == cert_id)
            .options(selectinload(Certificate.lines), selectinload(Certificate.documents))
        ).scalar_one_or_none()
        if cert is None:
            raise NotFoundError(f"There is no certificate {cert_id}.")
        return cert

    def get(self, cert_id: int, as_of: dt.date) -> CertificateDetail:
        """One certificate with its lines' status as of a date (and, in SST states, whether it has lapsed
        for new sales by then: no purchase for more than 12 months)."""
        with self.db.reader() as s:
            cert = self._load(s, cert_id)
            return self._detail(s, cert, as_of)

    def _detail(self, s: Session, cert: Certificate, as_of: dt.date) -> CertificateDetail:
        """:func:`detail_of` with the lapses of the SST recurring relationship as of ``as_of``."""
        lapses = recurring_lapses(s, self.rules, cert.company_id, cert.customer.number_key, cert.form_code,
                                  cert.certificate_type, cert.effective_date or cert.signed_date,
                                  [ln.state for ln in cert.lines], as_of)
        return detail_of(cert, as_of, business_settings(s, cert.company_id).expiring_soon_days,
                         {state: lapse.text() for state, lapse in lapses.items()})

    def company_of(self, cert_id: int) -> int | None:
        """The company holding certificate ``cert_id``, or None when there is no such certificate."""
        with self.db.reader() as s:
            return s.execute(select(Certificate.company_id).where(Certificate.id == cert_id)).scalar_one_or_none()

    def create(self, data: CertificateInput, *, as_of: dt.date, origin: str = "manual",
               review_state: str = ReviewState.PENDING.value) -> CertificateDetail:
        """Store a new certificate (pending review unless said otherwise) with computed expiries."""
        with self.db.transaction() as s:
            cert = create_certificate(s, self.rules, data, origin=origin, review_state=review_state,
                                      validate="save", as_of=as_of)
            return self._detail(s, cert, as_of)

    def save(self, cert_id: int, data: CertificateInput, *, expected_version: int,
             as_of: dt.date) -> CertificateDetail:
        """Save an edit made on a copy. Refused as a conflict when someone else saved meanwhile."""
        data = normalized_input(data, self.rules)
        problems = check_input(data, self.rules, pending=True)
        if problems:
            raise ValidationError("The certificate cannot be saved:", problems)
        try:
            with self.db.transaction() as s:
                cert = certificate_for_change(s, cert_id, expected_version)
                people.require(s, Permission.EDIT, f"edit certificate {cert_id}")
                claims.require_unclaimed_or_mine(s, cert_id, "save")
                unknown = not_known(data) if cert.review_state != ReviewState.PENDING else []
                if unknown:
                    raise ValidationError(f"The certificate cannot be saved: it is {cert.review_state}, and only a "
                                          "pending certificate may leave these empty:", unknown)
                before = snapshot(cert)
                exempt_before = exemption_feed.exempt_by_state(cert, as_of)
                _write(cert, data)
                apply_expiry(s, cert, ExpiryContext.load(s, self.rules, cert.company_id))
                s.flush()
                record_validation(s, self.rules, cert, as_of=as_of, trigger="save")
                old, new = audit.diff(before, snapshot(cert))
                if new:
                    audit.record(s, "certificate.edited", "certificate", cert.id, company_id=cert.company_id,
                                 certificate_id=cert.id, before=old, after=new)
                    # An approved certificate's edit can change where the customer is exempt: tell the ERP.
                    exemption_feed.record_amendment(s, cert, exempt_before, as_of=as_of)
                return self._detail(s, cert, as_of)
        except StaleDataError as exc:
            raise self._lost_race(cert_id, expected_version) from exc

    def _lost_race(self, cert_id: int, expected_version: int) -> ConflictError:
        """The conflict when another transaction changed the certificate between our read and our write
        (the version-checked UPDATE found a newer row): read what it did, now that it is committed."""
        with self.db.reader() as s:
            version = s.execute(select(Certificate.version).where(Certificate.id == cert_id)).scalar_one_or_none()
            if version is None:
                return ConflictError(f"Certificate {cert_id} was deleted by someone else while you saved.")
            return conflict_error(s, cert_id, expected_version, version)

    def _review(self, cert_id: int, expected_version: int, new_state: str, reason: str, action: str,
                as_of: dt.date, allowed_from: Sequence[str], details: dict[str, Any] | None = None,
                gate: Callable[[Session, Certificate], dict[str, Any]] | None = None) -> CertificateDetail:
        try:
            with self.db.transaction() as s:
                people.require(s, Permission.APPROVE, f"{_VERBS[action]} certificate {cert_id}")
                cert = certificate_for_change(s, cert_id, expected_version)
                if cert.review_state not in allowed_from:
                    raise ValidationError(f"Certificate {cert_id} is {cert.review_state}; it cannot be "
                                          f"{action.split('.')[-1]} from that state.")
                before = {"review_state": cert.review_state, "review_reason": cert.review_reason}
                if gate is not None:
                    details = {**(details or {}), **gate(s, cert)}
                if new_state == ReviewState.ARCHIVED:
                    cert.state_before_archive = cert.review_state
                if new_state != ReviewState.PENDING:  # the claim ends with the certificate leaving pending
                    ended = claims.end_claim(s, cert_id)
                    if ended is not None:
                        details = {**(details or {}), "claim": ended}
                cert.review_state = new_state
                cert.review_reason = reason
                cert.reviewed_by = people.actor_name(s)
                cert.reviewed_at = utcnow()
                # The decision is about what the reviewer saw: this version (the decision raises it).
                cert.reviewed_version = expected_version
                details = {**(details or {}), "version": expected_version}
                s.flush()
                # Approval, rejection, archive and unarchive change the customer's exempt status: the
                # outbox event for the ERP is written in this same transaction.
                exemption_feed.record_review_change(s, cert, before["review_state"], new_state, as_of=as_of)
                audit.record(s, action, "certificate", cert.id, company_id=cert.company_id,
                             certificate_id=cert.id, before=before,
                             after={"review_state": new_state, "review_reason": reason}, details=details)
                return self._detail(s, cert, as_of)
        except StaleDataError as exc:
            raise self._lost_race(cert_id, expected_version) from exc

    def approve(self, cert_id: int, *, expected_version: int, as_of: dt.date,
                acknowledge_warnings: bool = False, note: str = "",
                details: dict[str, Any] | None = None) -> CertificateDetail:
        """Accept a pending certificate: from now on it covers sales.

        The validation engine runs first, in the same transaction: approval is refused while errors
        remain, and warnings must be acknowledged (``acknowledge_warnings``), which is recorded with
        who and when. A refused approval still leaves its validation run on file."""

        def gate(session: Session, cert: Certificate) -> dict[str, Any]:
            return approval_gate(session, self.rules, cert, as_of=as_of,
                                 acknowledge_warnings=acknowledge_warnings, note=note)

        try:
            return self._review(cert_id, expected_version, ReviewState.APPROVED, "", "certificate.approved",
                                as_of, (ReviewState.PENDING, ReviewState.REJECTED), details, gate=gate)
        except ValidationError:
            # The refused attempt rolled back; keep its validation run on file as evidence of the check.
            with self.db.transaction() as s:
                cert = s.get(Certificate, cert_id)
                if cert is not None:
                    record_validation(s, self.rules, cert, as_of=as_of, trigger="approval")
            raise

    def approve_with_validation(self, cert_id: int, *, expected_version: int, as_of: dt.date,
                                acknowledge_warnings: bool, note: str = "") -> ApprovalResult:
        """Approve a certificate only when its validation (run now, stored as evidence even when the
        approval is refused) shows no errors; warnings need ``acknowledge_warnings`` and the
        acknowledgement is recorded with who and when. A stale ``expected_version`` is a conflict.

        The approval itself is :meth:`approve` (one code path for the GUI, the CLI and this method:
        the validation gate, the audit event and the ERP outbox event); this also returns the
        validation run the approval rests on."""
        detail = self.approve(cert_id, expected_version=expected_version, as_of=as_of,
                              acknowledge_warnings=acknowledge_warnings, note=note)
        with self.db.reader() as s:
            return approval_result(s, cert_id, detail.data.certificate_number, detail.version)

    def reject(self, cert_id: int, reason: str, *, expected_version: int, as_of: dt.date) -> CertificateDetail:
        """Refuse a certificate, with the reason (kept for the customer and the auditor)."""
        if not reason.strip():
            raise ValidationError("Say why the certificate is rejected.")
        return self._review(cert_id, expected_version, ReviewState.REJECTED, reason.strip(),
                            "certificate.rejected", as_of, (ReviewState.PENDING, ReviewState.APPROVED))

    def archive(self, cert_id: int, reason: str, *, expected_version: int, as_of: dt.date) -> CertificateDetail:
        """Take a certificate out of use (it no longer applies to new sales), with the reason."""
        if not reason.strip():
            raise ValidationError("Say why the certificate is archived.")
        return self._review(cert_id, expected_version, ReviewState.ARCHIVED, reason.strip(),
                            "certificate.archived", as_of,
                            (ReviewState.PENDING, ReviewState.APPROVED, ReviewState.REJECTED))

    def unarchive(self, cert_id: int, reason: str, *, expected_version: int, as_of: dt.date) -> CertificateDetail:
        """Bring an archived certificate back to the review state it had."""
        if not reason.strip():
            raise ValidationError("Say why the certificate is brought back.")
        with self.db.reader() as s:
            cert = self._load(s, cert_id)
            target = cert.state_before_archive or ReviewState.PENDING.value
        return self._review(cert_id, expected_version, target, reason.strip(), "certificate.unarchived",
                            as_of, (ReviewState.ARCHIVED,))


    def attach_document(self, checked: CheckedFile, *, certificate_id: int, expected_version: int,
                        received_via: str = "upload") -> int:
        """Attach a probed file to an existing certificate, as the user saw it (``expected_version``:
        refused as a conflict when the certificate changed meanwhile). Raises its version."""
        with self.db.transaction() as s:
            cert = certificate_for_change(s, certificate_id, expected_version)
            return store_checked(s, checked, received_via=received_via, certificate_id=certificate_id,
                                 company_id=cert.company_id).id


_VERBS = {"certificate.approved": "approve", "certificate.rejected": "reject", "certificate.archived": "archive",
          "certificate.unarchived": "unarchive"}

#: Audit actions that change what a certificate is (each raises its version); the latest of them
#: says who changed a certificate and how when an older copy is refused.
CHANGE_ACTIONS = ("certificate.created", "certificate.edited", "certificate.approved", "certificate.rejected",
                  "certificate.archived", "certificate.unarchived", "certificate.expiry_recomputed",
                  "document.received", "document.assigned", "coverage.suspended")


def certificate_for_change(session: Session, cert_id: int, expected_version: int) -> Certificate:
    """The certificate a user changes, locked for the rest of the caller's transaction (row lock on
    PostgreSQL; SQLite's write transaction already holds the database), with its lines and documents.

    A user's change is of a version: when the certificate's version is no longer ``expected_version``
    (anything it is changed meanwhile: fields, state lines, documents, review), :class:`ConflictError`
    says who changed it and how, and nothing is written."""
    cert = session.execute(
        select(Certificate).where(Certificate.id == cert_id).with_for_update()
        .options(selectinload(Certificate.lines), selectinload(Certificate.documents))
    ).scalar_one_or_none()
    if cert is None:
        raise NotFoundError(f"There is no certificate {cert_id}.")
    if cert.version != expected_version:
        raise conflict_error(session, cert_id, expected_version, cert.version)
    return cert


def conflict_error(session: Session, cert_id: int, expected_version: int, version: int) -> ConflictError:
    """The refusal of a change made on version ``expected_version`` of a certificate now at ``version``,
    naming the latest change recorded in the audit trail (who, when, what)."""
    last = session.execute(
        select(AuditEvent).where(AuditEvent.certificate_id == cert_id, AuditEvent.action.in_(CHANGE_ACTIONS))
        .order_by(AuditEvent.seq.desc()).limit(1)
    ).scalar_one_or_none()
    latest = ""
    if last is not None:
        what = _what_changed(last)
        latest = (f" Last change: {ACTION_LABELS.get(last.action, last.action)} by {last.actor} on "
                  f"{last.occurred_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC{': ' + what if what else ''}.")
    return ConflictError(
        f"Certificate {cert_id} was changed by someone else meanwhile (your copy is version {expected_version}, "
        f"the database has version {version}).{latest} Nothing was overwritten: reload it and make your change "
        "again."
    )


def _what_changed(event: AuditEvent) -> str:
    after, details = event.after or {}, event.details or {}
    if event.action == "certificate.edited":
        return "changed " + ", ".join(sorted(after))
    if event.action in ("document.received", "document.assigned"):
        return f"attached {after.get('original_name', 'a document')}"
    if event.action == "coverage.suspended":
        return f"exempt status in {details.get('state', '?')} suspended"
    if event.action == "certificate.expiry_recomputed":
        return f"expiry of the {details.get('state', '?')} line recomputed: {details.get('reason', '')}".rstrip(": ")
    if event.action in ("certificate.rejected", "certificate.archived", "certificate.unarchived"):
        return str(after.get("review_reason") or "")
    return ""


def create_certificate(session: Session, rules: RulesPack, data: CertificateInput, *, origin: str,
                       review_state: str = ReviewState.PENDING.value,
                       ctx: ExpiryContext | None = None, record_audit: bool = True,
                       validate: str | None = None, as_of: dt.date | None = None,
                       gate: bool = False, accept_findings_reason: str = "") -> Certificate:
    """Add a certificate in the caller's transaction (used by the service, import and intake).

    With ``validate`` (the trigger: ``save``, ``import``, ``intake``, ...) the validation engine runs
    at once and its run is stored, with its audit event, in the same transaction.

    With ``gate`` (the import of records approved in another system), a certificate asked for as
    *approved* passes the approval gate first, as one approved at the desk does: it is validated
    (trigger ``validate``, else ``save``) and stored approved only when the validation finds neither
    errors nor warnings, or when ``accept_findings_reason`` says why the user accepts them (recorded
    per certificate with who and when, see
    :func:`~ecms_desktop.services.validation.runs.accept_findings`). Otherwise it is stored
    pending review with its findings; its ``certificate.created`` event says it was held."""
    data = normalized_input(data, rules)
    problems = check_input(data, rules, pending=review_state == ReviewState.PENDING)
    if problems:
        raise ValidationError("The certificate cannot be stored:", problems)
    customer = session.get(Customer, data.customer_id)
    if customer is None:
        raise ValidationError("The certificate's customer does not exist.",
                              [Problem("unknown customer", column="customer")])
    day = as_of or dt.date.today()
    wants_approval = gate and review_state == ReviewState.APPROVED
    if wants_approval and validate is None:
        validate = "save"
    company = session.get(Company, data.company_id)
    if company is None:
        raise ValidationError("The certificate's company does not exist.",
                              [Problem("unknown company", column="company")])
    cert = Certificate(origin=origin, review_state=review_state)
    _write(cert, data)
    apply_expiry(session, cert, ctx or ExpiryContext.load(session, rules, data.company_id))
    findings = []
    if validate is not None:  # before the certificate is stored, so that it is stored once, as decided
        cert.customer, cert.company = customer, company
        findings = evaluate_certificate(session, rules, cert, as_of=day)
    cert.review_state, gated, accepted = gate_decision(review_state, gate=gate, findings=findings,
                                                       accept_findings_reason=accept_findings_reason)
    details: dict[str, Any] = {"origin": origin, **gated}
    if cert.review_state != ReviewState.PENDING:
        people.require(session, Permission.APPROVE, f"store a certificate as {cert.review_state}")
        cert.reviewed_by, cert.reviewed_at = people.actor_name(session), utcnow()
    session.add(cert)
    session.flush()
    if record_audit:
        audit.record(session, "certificate.created", "certificate", cert.id, company_id=cert.company_id,
                     certificate_id=cert.id, after=snapshot(cert), details=details)
    if validate is not None:
        run = store_run(session, cert, findings, rules_version=rules.version, as_of=day, trigger=validate)
        if accepted:
            accept_findings(session, cert, run, reason=accept_findings_reason)
    return cert
