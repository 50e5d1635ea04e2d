"""The certificates a sale may be covered by, as the determination engine sees them.

:func:`load_candidates` reads every certificate of a company (or of one customer) with its coverage
lines and indexes them by (customer key, state) as the engine's frozen
:class:`~ecms_desktop.services.sales.determination.CandidateCertificate`; the determination run, the
"is this customer exempt here?" question of the ERP feed and the exposure report all decide from it.

Two facts of law are read here for the engine, once per certificate:

* **When the seller obtained the certificate** (:attr:`CandidateCertificate.obtained_on`, for the
  good-faith windows): the day the first of its documents was received (``document.received_at``,
  discarded documents left out), or, for a certificate without a document, the day it was recorded
  (``certificate.created_at``); never before the purchaser signed it (``signed_date``). The signed and
  effective dates are the purchaser's: they say when the certificate was completed and from when it
  applies, not when the seller had it, which is what the windows count (SSUTA section 317: "obtains ...
  within ninety days subsequent to the date of sale"). A receipt the program recorded is the evidence
  an auditor can check; recording late only shortens the window, never lengthens it.
* **Which coverage expiry is renewal policy, not law** (:attr:`CoverageFacts.policy_only`): a line
  whose expiry the rules pack computed (``expiry_origin`` ``rules``) from an expiry rule whose ``basis``
  is ``recommendation`` or ``practice`` (no expiry in law), and a line under the company's own expiry
  policy (``company``; the law's expiry is then the rules pack's, where its basis is law, regulation or
  guidance). A date set by hand or printed on the certificate is never policy.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session

from ecms_desktop.models import Certificate, CoverageLine, Customer, Document
from ecms_desktop.rules import RulesPack, RulesPackError, load_rules_pack
from ecms_desktop.services.core.expiry import compute_expiry
from ecms_desktop.services.sales.determination import CandidateCertificate, CoverageFacts

#: Candidate certificates by (customer key, state), in certificate order.
CandidateIndex = dict[tuple[str, str], tuple[CandidateCertificate, ...]]

#: The ``basis`` values of an expiry rule (rules pack schema) that are a renewal policy, not law.
POLICY_BASES = frozenset({"recommendation", "practice"})
#: ``coverage_line.expiry_origin`` of a line under the company's own expiry policy.
COMPANY_POLICY = "company"


def load_candidates(session: Session, company_id: int, customer_key: str | None = None) -> CandidateIndex:
    """Every certificate of the company (or of one customer) as engine candidates, indexed by
    (customer key, state). All review states are included so that explanations can say why a
    pending or archived certificate did not apply.

    One query, fetched at once; the JSON lists (product and commodity codes, local jurisdictions) are
    read as text and each distinct text parsed once (most are ``[]``), so that a hundred thousand
    certificates load in a few seconds."""
    return index_candidates(candidate_rows(session, company_id, customer_key))


def candidate_rows(session: Session, company_id: int, customer_key: str | None = None) -> list[tuple[Any, ...]]:
    """The certificates and coverage lines :func:`index_candidates` builds the index from, as plain
    tuples (they can be sent to a worker process)."""
    cert, line, cust, doc = Certificate.__table__, CoverageLine.__table__, Customer.__table__, Document.__table__
    # When the first document of each certificate was received (a document stored with a certificate
    # belongs to the certificate's company; its own company_id is empty).
    received = (select(doc.c.certificate_id, func.min(doc.c.received_at).label("received"))
                .select_from(doc.join(cert, cert.c.id == doc.c.certificate_id))
                .where(cert.c.company_id == company_id, doc.c.discarded_at.is_(None))
                .group_by(doc.c.certificate_id).subquery())
    stmt = (select(cert.c.id, cert.c.certificate_number, cert.c.version, cert.c.review_state, cert.c.exempt_reason,
                   cert.c.certificate_type, cert.c.po_number, cert.c.effective_date, cert.c.signed_date,
                   type_coerce(cert.c.product_codes, String), type_coerce(cert.c.commodity_codes, String),
                   cert.c.currency, cert.c.exempt_percent, cert.c.exempt_amount, cust.c.number_key,
                   line.c.id.label("line_id"), line.c.state, line.c.expiry_date,
                   type_coerce(line.c.local_jurisdictions, String), line.c.suspended_at, cert.c.form_code,
                   line.c.expiry_origin, func.coalesce(received.c.received, cert.c.created_at))
            .select_from(cert.join(cust, cust.c.id == cert.c.customer_id)
                         .join(line, line.c.certificate_id == cert.c.id)
                         .outerjoin(received, received.c.certificate_id == cert.c.id))
            .where(cert.c.company_id == company_id).order_by(cert.c.id, line.c.state))
    if customer_key is not None:
        stmt = stmt.where(cust.c.number_key == customer_key)
    return [tuple(r) for r in session.execute(stmt).all()]


def index_candidates(rows: Sequence[tuple[Any, ...]], rules: RulesPack | None = None) -> CandidateIndex:
    """The candidate index built from the rows of :func:`load_candidates`' query (ordered by certificate);
    ``rules``: the rules pack that says which expiries are policy (the program's own by default)."""
    parsed: dict[str, tuple[str, ...]] = {}
    policy = _Policy(rules or load_rules_pack())

    def codes(value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, str):  # PostgreSQL's driver hands JSONB over already parsed
            return tuple(value)
        out = parsed.get(value)
        if out is None:
            out = parsed[value] = tuple(json.loads(value) or ())
        return out

    frozen: dict[tuple[str, ...], frozenset[str]] = {}
    index: dict[tuple[str, str], list[CandidateCertificate]] = defaultdict(list)
    i, n = 0, len(rows)
    while i < n:
        r = rows[i]
        j = i + 1
        while j < n and rows[j][0] == r[0]:
            j += 1
        start = r[7] or r[8]
        lines = tuple(CoverageFacts(x[15], x[16], x[17], codes(x[18]), x[19].date() if x[19] else None,
                                    *policy(x[16], r[20], r[4], x[21], start))
                      for x in rows[i:j])
        products, commodities = codes(r[9]), codes(r[10])
        candidate = CandidateCertificate(
            certificate_id=r[0], customer_key=r[14], review_state=r[3], exempt_reason=r[4], form_code=r[20],
            lines=lines,
            certificate_number=r[1] or "", version=r[2], certificate_type=r[5], po_number=r[6] or "",
            effective_date=r[7] or r[8],
            product_codes=frozen.get(products) or frozen.setdefault(products, frozenset(products)),
            commodity_codes=frozen.get(commodities) or frozen.setdefault(commodities, frozenset(commodities)),
            currency=r[11], exempt_percent=r[12], exempt_amount=r[13], obtained_on=_obtained(r[22], r[8]))
        for facts in lines:
            index[(r[14], facts.state)].append(candidate)
        i = j
    return {k: tuple(v) for k, v in index.items()}


def _obtained(received: Any, signed: dt.date | None) -> dt.date | None:
    """When the seller obtained the certificate (see the module): the first receipt of a document (else
    when it was recorded), never before it was signed."""
    if received is None:
        return signed
    if isinstance(received, str):  # SQLite hands an aggregate of a datetime column over as text
        received = dt.datetime.fromisoformat(received)
    day = received.date() if isinstance(received, dt.datetime) else received
    return max(day, signed) if signed is not None else day


class _Policy:
    """Whether a coverage line's expiry is renewal policy, not law (see the module): (policy only, expiry
    in law, the policy in words). A line under the rules pack's expiry is answered once per (state,
    form, reason); one under the company's policy needs its own dates."""

    _LAW: tuple[bool, dt.date | None, str] = (False, None, "")

    def __init__(self, rules: RulesPack) -> None:
        self.rules = rules
        self._rules: dict[tuple[str, str, str], Any] = {}
        self._of_rules: dict[tuple[str, str, str], tuple[bool, dt.date | None, str]] = {}

    def _rule(self, state: str, form_code: str, reason: str) -> Any:
        key = (state, form_code, reason)
        if key not in self._rules:
            try:
                self._rules[key] = self.rules.expiry_rule(state, form_code, reason)
            except RulesPackError:  # a form or reason not known yet: nothing to say it is policy
                self._rules[key] = None
        return self._rules[key]

    def __call__(self, state: str, form_code: str, reason: str, origin: str, start: dt.date | None
                 ) -> tuple[bool, dt.date | None, str]:
        if origin == "rules":
            key = (state, form_code, reason)
            found = self._of_rules.get(key)
            if found is None:
                rule = self._rule(state, form_code, reason)
                found = self._of_rules[key] = self._LAW if rule is None or rule.basis not in POLICY_BASES else (
                    True, None, f"{state}, {rule.basis}: {rule.text} (source: {rule.source})")
            return found
        if origin != COMPANY_POLICY:
            return self._LAW  # set by hand, or printed on the certificate
        rule = self._rule(state, form_code, reason)
        if rule is None or rule.basis in POLICY_BASES or rule.kind == "none":
            return True, None, "the company's own expiry policy; the rules pack has no expiry in law"
        law = compute_expiry(rule, effective=start, signed=start).expiry_date
        return True, law, (f"the company's own expiry policy; in law ({rule.basis}): {rule.text} "
                           f"(source: {rule.source})")
