"""The exemption determination engine: which certificate covers which sale, and why (pure, no DB, no Qt).

:func:`determine` takes one sales line and the candidate certificates of its customer in its
ship-to state, as plain frozen dataclasses, and returns a :class:`Result` that says whether the
line is exempt, under which certificate, for how much, and - for every candidate - why it applied
or why not.

Conditions a certificate must meet to cover a line (all of them):

1. **Customer**: the certificate belongs to the line's customer (matched on the normalised
   customer number, so ``" c-1001 "`` and ``"C-1001"`` are one customer).
2. **Jurisdiction**: the certificate has a coverage line for the ship-to state; where that line is
   limited to local jurisdictions, the ship-to county, city or ZIP code must be one of them
   (``"county:Travis"``, ``"city:Austin"``, ``"zip:78701"``, a ZIP prefix ``"787*"``, or a bare name
   matched against county and city).
3. **Acceptance**: the ship-to state accepts the certificate's form for its exempt reason, as the
   rules pack says (:meth:`RulesPack.form_acceptance`, the same answer validation gives): an SST
   certificate never covers Texas resale, an MTC certificate never covers New York, whatever the
   certificate's review state. The explanation names the rule, the rules pack's message and its source.
4. **Validity**: the invoice date is on or after the effective date (the signed date when there is
   none) and on or before the coverage line's expiry date (inclusive; no expiry date: no end).
   A line that was valid on the invoice date counts even if it has expired since.
   *Good faith* (the state's ``good_faith.days`` in the rules pack): a certificate not yet effective on
   the invoice date still covers the sale when the seller obtained it after the sale and within the
   state's window (SST members 90 days, PA 60, MI and WA 120); after the window, or where the state has
   none, it does not, and the explanation says which. "Obtained" is
   :attr:`CandidateCertificate.obtained_on` (see :mod:`~ecms_desktop.services.sales.candidates`).
   *Renewal policy is not law*: where the coverage line's expiry comes only from a renewal policy (an
   expiry rule whose basis is a recommendation or practice, or the company's own policy), a past sale
   after that expiry but while the certificate was still valid in law is covered "in law, past our
   renewal policy"; for new sales and the status question (``policy_binds``) the policy's expiry and
   the suspension it leads to end coverage, as the renewal loop wants.
5. **Status**: only approved certificates cover sales; pending, rejected and archived ones never do.
   A line suspended (renewal loop) covers nothing invoiced on or after the day it was suspended
   (a past sale still valid in law after a suspension at a policy-only expiry: see 4).
6. **Exempt reason**: where the sales line records a reason, it must be the certificate's.
7. **Single use**: a single-use certificate covers only the sale whose PO number (or invoice number)
   is the one on the certificate.
8. **Products**: a certificate with a product-code list covers only lines with one of those codes; a
   certificate with a commodity-code list only lines with one of those commodity codes (both lists:
   both must match).
9. **Currency**: the line's currency is the certificate's.

Partial exemption: a certificate with an exempt percent exempts that share of each covered line; one
with an exempt amount exempts at most that amount of each covered line (per line, so that the result
never depends on the order lines are processed in). Amounts are rounded to the cent, half up.

A sale shipped to a state that taxes no sales (:attr:`StateRule.taxes_sales`: Oregon, Delaware,
Montana, New Hampshire; not Alaska, whose cities and boroughs tax sales) is not taxable at all: no
certificate is needed, nothing is exempt or taxable, and the explanation says why (rule
``no_sales_tax``, with the rules pack's source).

Every result names the rule that decided it (:attr:`Result.rule`, kept in the explanation as ``rule``):
``no_sales_tax``; ``coverage.certificate`` (in force on the invoice date), ``coverage.good_faith``
(obtained within the window after the sale), ``coverage.past_policy`` (valid in law, past our renewal
policy); or, when nothing covers it, ``coverage.none`` (no certificate in the state) or the reason all
candidates share (``coverage.expired``, ``coverage.form_refused``, ``coverage.after_good_faith_window``,
``coverage.not_yet_effective``, ``coverage.suspended``, ``coverage.not_approved``,
``coverage.recurring_lapsed``), else ``coverage.not_covering``.

Coverage tiers: a certificate in force on the invoice date comes before one that covers by good faith,
which comes before one valid only in law past our renewal policy; within a tier, the precedence below.

Precedence when several certificates cover the same line (deterministic, first difference wins):

1. a single-use certificate for this PO/invoice number;
2. a product- or commodity-limited certificate (the one written for these goods);
3. the most specific jurisdiction: a coverage line limited to local jurisdictions over a statewide one;
4. the latest effective date (the newest certificate);
5. the lowest certificate id (the one recorded first).

The other covering certificates are recorded as ``also_eligible`` with a conflict warning, so that
the accountant can archive the one that should no longer apply.

SST recurring relationship (when the line carries the customer's sales history, :attr:`SaleLine.sales`):
in a state whose rules pack has ``sst.recurring_relationship``, a blanket certificate that meets every
condition above still does not cover a sale made on or after the day it lapsed, i.e. after more than 12
months without a sale between the company and the customer since the certificate's date
(:mod:`~ecms_desktop.services.sales.recurring`). The explanation says so per sale, with the rule's source.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from ecms_desktop.rules import (
    AcceptanceTable,
    GoodFaith,
    RecurringRelationship,
    RulesPack,
    RulesPackError,
    load_rules_pack,
)
from ecms_desktop.services.sales.recurring import SalesHistory

#: The precedence order, as shown to users (README, explanation of conflicts).
PRECEDENCE = (
    "single-use certificate for this PO/invoice number",
    "product- or commodity-limited certificate",
    "most specific jurisdiction (local over statewide)",
    "latest effective date",
    "lowest certificate id",
)

#: The rule ids of a result (:attr:`Result.rule`).
RULE_NO_SALES_TAX = "no_sales_tax"
RULE_NONE = "coverage.none"
RULE_CERTIFICATE = "coverage.certificate"
RULE_GOOD_FAITH = "coverage.good_faith"
RULE_PAST_POLICY = "coverage.past_policy"
RULE_NOT_COVERING = "coverage.not_covering"
RULE_EXPIRED = "coverage.expired"
RULE_FORM_REFUSED = "coverage.form_refused"
RULE_AFTER_WINDOW = "coverage.after_good_faith_window"
RULE_NOT_YET_EFFECTIVE = "coverage.not_yet_effective"
RULE_SUSPENDED = "coverage.suspended"
RULE_NOT_APPROVED = "coverage.not_approved"
#: The SST recurring relationship lapsed before the sale (see the end of the module's docstring).
RULE_RECURRING_LAPSED = "coverage.recurring_lapsed"
#: Coverage tiers (see the module): in force on the invoice date, by good faith, in law past policy.
_TIER_OF_RULE = {RULE_CERTIFICATE: 0, RULE_GOOD_FAITH: 1, RULE_PAST_POLICY: 2}

_CENT = Decimal("0.01")
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class SaleLine:
    """The facts of one sales line that the engine looks at. ``None`` means "not known" (used by the
    status question "is this customer exempt here?"): the condition is then reported, not checked."""

    invoice_number: str
    line: int
    invoice_date: dt.date
    customer_key: str
    ship_to_state: str
    amount: Decimal = _ZERO
    ship_to_county: str = ""
    ship_to_city: str = ""
    ship_to_zip: str = ""
    product_code: str | None = ""
    commodity_code: str | None = ""
    currency: str | None = "USD"
    exempt_reason: str = ""
    po_number: str | None = ""
    #: The customer's sales with the company (any state), for the SST recurring-relationship rule
    #: (None: not known, the rule is not applied).
    sales: SalesHistory | None = None


@dataclass(frozen=True, slots=True)
class CoverageFacts:
    """One state a candidate certificate covers."""

    coverage_line_id: int
    state: str
    expiry_date: dt.date | None = None
    local_jurisdictions: tuple[str, ...] = ()
    suspended_on: dt.date | None = None
    # -- renewal policy is not law (see the module) --
    #: ``expiry_date`` (and a suspension at it) comes only from a renewal policy, not from law.
    policy_only: bool = False
    #: Where ``policy_only``: the expiry in law (None: none in law).
    law_expiry: dt.date | None = None
    #: Where ``policy_only``: the policy in words, with its basis and source.
    policy_text: str = ""


@dataclass(frozen=True, slots=True)
class CandidateCertificate:
    """What the engine needs of a certificate (a snapshot: id and version identify it exactly)."""

    certificate_id: int
    customer_key: str
    review_state: str
    exempt_reason: str
    #: The rules-pack form code: whether each state accepts it for ``exempt_reason`` is condition 3.
    form_code: str
    lines: tuple[CoverageFacts, ...]
    certificate_number: str = ""
    version: int = 1
    certificate_type: str = "blanket"
    po_number: str = ""
    #: Effective date, or the signed date when there is none.
    effective_date: dt.date | None = None
    product_codes: frozenset[str] = frozenset()
    commodity_codes: frozenset[str] = frozenset()
    currency: str = "USD"
    exempt_percent: Decimal | None = None
    exempt_amount: Decimal | None = None
    #: When the seller obtained the certificate (good-faith windows; None: not known).
    obtained_on: dt.date | None = None

    def line_for(self, state: str) -> CoverageFacts | None:
        for line in self.lines:
            if line.state == state:
                return line
        return None


@dataclass(frozen=True, slots=True)
class CandidateOutcome:
    """Why one candidate certificate applied or not."""

    certificate_id: int
    certificate_number: str
    #: ``applied``, ``eligible`` (covers the line but lost on precedence) or ``not_applicable``.
    outcome: str
    reasons: tuple[str, ...]
    #: The rule id of the outcome (see the module): how it covers, or why not.
    rule: str = ""

    def to_json(self) -> dict[str, Any]:
        out = {"certificate_id": self.certificate_id, "certificate_number": self.certificate_number,
               "outcome": self.outcome, "reasons": list(self.reasons)}
        if self.rule:
            out["rule"] = self.rule
        return out


@dataclass(frozen=True, slots=True)
class Result:
    """The determination for one line, with its evidence."""

    exempt: bool
    amount: Decimal
    exempt_amount: Decimal
    taxable_amount: Decimal
    certificate: CandidateCertificate | None = None
    coverage: CoverageFacts | None = None
    also_eligible: tuple[int, ...] = ()
    conflict_warning: str = ""
    outcomes: tuple[CandidateOutcome, ...] = ()
    summary: str = ""
    notes: tuple[str, ...] = field(default=())
    #: The rule that decided the line (see the module), kept in the explanation.
    rule: str = ""

    @property
    def certificate_id(self) -> int | None:
        return self.certificate.certificate_id if self.certificate else None

    @property
    def certificate_number(self) -> str | None:
        return self.certificate.certificate_number if self.certificate else None

    def explanation(self) -> dict[str, Any]:
        """The explanation as JSON: summary, conflict warning, and one entry per candidate."""
        out: dict[str, Any] = {"summary": self.summary,
                               "candidates": [o.to_json() for o in self.outcomes]}
        if self.rule:
            out["rule"] = self.rule
        if self.conflict_warning:
            out["conflict"] = self.conflict_warning
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


class Refusals:
    """Why a state does not accept a form for an exempt reason, in the words of the rules pack (empty
    text: it accepts it). The decision is :meth:`RulesPack.form_acceptance`'s; this only phrases it
    for explanations and remembers it per (state, form, reason), since a run asks millions of times.
    It also answers, per state, the other questions of law the engine asks: whether the state taxes
    sales at all (:meth:`no_sales_tax`) and its good-faith window (:meth:`window`)."""

    def __init__(self, rules: RulesPack) -> None:
        self.rules = rules
        self._acceptance = AcceptanceTable(rules)
        self._texts: dict[tuple[str, str, str], str] = {}
        self._untaxed: dict[str, str] = {}
        self._windows: dict[str, GoodFaith | None] = {}
        self._recurring: dict[tuple[str, str, str], RecurringRelationship | None] = {}

    # -- the SST recurring relationship --
    def recurring(self, state: str, form_code: str, certificate_type: str) -> RecurringRelationship | None:
        """:meth:`RulesPack.recurring_relationship`, remembered (asked for most covered lines of a run)."""
        key = (state, form_code, certificate_type)
        if key not in self._recurring:
            self._recurring[key] = self.rules.recurring_relationship(state, form_code, certificate_type)
        return self._recurring[key]

    # -- states without a sales tax --
    def no_sales_tax(self, state: str) -> str:
        """Why a sale shipped to ``state`` owes no sales tax at all (``""``: it can owe tax, or the state
        is not in the pack), from :attr:`StateRule.taxes_sales`."""
        text = self._untaxed.get(state)
        if text is None:
            st = self.rules.states.get(state)
            text = "" if st is None or st.taxes_sales else (
                f"{state} has no sales tax ({st.sales_tax_note}; rules pack {self.rules.version}, source: "
                f"{st.sources[0] if st.sources else st.mtc.source}): no certificate is needed and nothing is at risk")
            self._untaxed[state] = text
        return text

    # -- good-faith windows --
    def window(self, state: str) -> GoodFaith | None:
        """The state's good-faith standard from the rules pack (None: the state is not in the pack)."""
        if state not in self._windows:
            st = self.rules.states.get(state)
            self._windows[state] = st.good_faith if st is not None else None
        return self._windows[state]

    def __call__(self, state: str, form_code: str, reason: str) -> str:
        key = (state, form_code, reason)
        text = self._texts.get(key)
        if text is None:
            text = self._texts[key] = self._explain(state, form_code, reason)
        return text

    def _explain(self, state: str, form_code: str, reason: str) -> str:
        try:
            acc = self._acceptance(state, form_code, reason)
        except RulesPackError as exc:
            return (f"the rules pack {self.rules.version} cannot tell whether {state} accepts "
                    f"{form_code or '(no form)'} for {reason}: {exc}")
        if not acc.refused:
            return ""
        return (f"{state} does not accept {form_code} for {reason}: {acc.message} (rule {acc.rule}; "
                f"source: {acc.source}; confidence: {acc.confidence})")


@functools.lru_cache(maxsize=1)
def default_refusals() -> Refusals:
    """:class:`Refusals` of the program's own rules pack (one per process)."""
    return Refusals(load_rules_pack())


def _local_match(entries: tuple[str, ...], line: SaleLine) -> str | None:
    """The local entry the ship-to address matches, or None."""
    county, city, zip_code = line.ship_to_county.casefold(), line.ship_to_city.casefold(), line.ship_to_zip
    for entry in entries:
        kind, sep, value = entry.partition(":")
        if not sep:
            kind, value = "", entry
        kind, value = kind.strip().casefold(), value.strip()
        folded = value.casefold()
        if kind in ("county", "") and folded and folded == county:
            return entry
        if kind in ("city", "") and folded and folded == city:
            return entry
        if kind in ("zip", "") and value:
            if value.endswith("*") and zip_code.startswith(value[:-1]):
                return entry
            if zip_code[:5] == value[:5] and value[:5].isdigit():
                return entry
    return None


def check_candidate(line: SaleLine, cert: CandidateCertificate, refusals: Refusals | None = None, *,
                    policy_binds: bool = False) -> tuple[bool, list[str], CoverageFacts | None, list[str], str]:
    """Check every condition of one certificate against one line (``refusals``: the rules pack's
    acceptance of forms, the program's own pack by default; ``policy_binds``: a new sale or the status
    question, where a renewal policy's expiry ends coverage).

    Returns (covers, reasons, coverage line, notes, rule): ``reasons`` says why it covers or not,
    ``notes`` the limits of a certificate checked against unknown facts (status question), ``rule`` how
    it covers (``coverage.certificate``, ``coverage.good_faith``, ``coverage.past_policy``) or why not
    (the first failure's rule when every failure has one, else ``coverage.not_covering``).
    """
    refusals = refusals or default_refusals()
    fails: list[str] = []
    passes: list[str] = []
    notes: list[str] = []
    codes: list[str] = []  # the rule id of each coded failure (see the return value)
    covers_by = RULE_CERTIFICATE
    if cert.customer_key != line.customer_key:
        fails.append("belongs to another customer")
    coverage = cert.line_for(line.ship_to_state)
    if coverage is None:
        states = ", ".join(c.state for c in cert.lines) or "no state"
        fails.append(f"does not cover {line.ship_to_state} (covers {states})")
    else:
        refusal = refusals(coverage.state, cert.form_code, cert.exempt_reason)
        if refusal:
            fails.append(refusal)
            codes.append(RULE_FORM_REFUSED)
        if coverage.local_jurisdictions:
            if not (line.ship_to_county or line.ship_to_city or line.ship_to_zip):
                notes.append("limited to " + ", ".join(coverage.local_jurisdictions))
            else:
                hit = _local_match(coverage.local_jurisdictions, line)
                if hit is None:
                    where = ", ".join(p for p in (line.ship_to_county, line.ship_to_city, line.ship_to_zip) if p)
                    fails.append(f"limited to {', '.join(coverage.local_jurisdictions)}; ship-to is {where}")
                else:
                    passes.append(f"covers {line.ship_to_state} locally ({hit})")
        else:
            passes.append(f"covers {line.ship_to_state}")
        start = cert.effective_date
        if start is None:
            fails.append("has neither an effective nor a signed date")
        elif line.invoice_date < start:
            # -- good-faith windows --
            late, code = _good_faith(line, cert, start, refusals.window(coverage.state))
            if code == RULE_GOOD_FAITH:
                passes.append(late)
                covers_by = RULE_GOOD_FAITH
            else:
                fails.append(late)
                codes.append(code)
        # -- renewal policy is not law --
        in_law = _valid_in_law_past_policy(line, coverage, policy_binds)
        if in_law:
            passes.append(in_law)
            covers_by = RULE_PAST_POLICY
        elif coverage.expiry_date is not None and line.invoice_date > coverage.expiry_date:
            fails.append(f"{coverage.state} line expired {coverage.expiry_date}, before the invoice date "
                         f"{line.invoice_date}" + _policy_note(line, coverage, policy_binds))
            codes.append(RULE_EXPIRED)
        elif start is not None and line.invoice_date >= start:
            until = coverage.expiry_date.isoformat() if coverage.expiry_date else "no expiry"
            passes.append(f"valid on {line.invoice_date} ({start} to {until})")
        if (not in_law and coverage.suspended_on is not None
                and line.invoice_date >= coverage.suspended_on):
            fails.append(f"exempt status in {coverage.state} suspended on {coverage.suspended_on}")
            codes.append(RULE_SUSPENDED)
    if cert.review_state != "approved":
        fails.append(f"is {cert.review_state.replace('_', ' ')}, not approved: it never covers sales")
        codes.append(RULE_NOT_APPROVED)
    if line.exempt_reason and line.exempt_reason != cert.exempt_reason:
        fails.append(f"exempt reason is {cert.exempt_reason}; the sale claims {line.exempt_reason}")
    if cert.certificate_type == "single_use":
        wanted = cert.po_number.strip().casefold()
        if line.po_number is None:
            notes.append(f"single use for PO {cert.po_number}")
        elif not wanted or wanted not in (line.po_number.strip().casefold(), line.invoice_number.strip().casefold()):
            got = line.po_number or "none"
            fails.append(f"single use for PO {cert.po_number or '(none given)'}; this sale's PO is {got}")
        else:
            passes.append(f"single use for this PO ({cert.po_number})")
    if cert.product_codes:
        if line.product_code is None:
            notes.append("only products " + ", ".join(sorted(cert.product_codes)))
        elif line.product_code not in cert.product_codes:
            fails.append(f"product {line.product_code or '(none)'} is not in its list "
                         f"({', '.join(sorted(cert.product_codes))})")
        else:
            passes.append(f"product {line.product_code} is in its list")
    if cert.commodity_codes:
        if line.commodity_code is None:
            notes.append("only commodities " + ", ".join(sorted(cert.commodity_codes)))
        elif line.commodity_code not in cert.commodity_codes:
            fails.append(f"commodity {line.commodity_code or '(none)'} is not in its list "
                         f"({', '.join(sorted(cert.commodity_codes))})")
        else:
            passes.append(f"commodity {line.commodity_code} is in its list")
    if line.currency is not None and line.currency != cert.currency:
        fails.append(f"currency {cert.currency}; the sale is in {line.currency}")
    if (line.sales is not None and line.sales.known and coverage is not None and not fails
            and _recurring_lapsed(line, line.sales, cert, refusals, passes, fails)):
        codes.append(RULE_RECURRING_LAPSED)
    if fails:
        return False, fails, coverage, notes, codes[0] if len(codes) == len(fails) else RULE_NOT_COVERING
    return True, passes, coverage, notes, covers_by


def _good_faith(line: SaleLine, cert: CandidateCertificate, start: dt.date, window: GoodFaith | None
                ) -> tuple[str, str]:
    """A certificate not yet effective on the invoice date: (why it covers the sale by the state's
    good-faith window, ``coverage.good_faith``) or (why it does not, its rule). It covers when the
    seller obtained it after the sale and no later than the window's last day."""
    text = f"not yet effective on {line.invoice_date} (effective {start})"
    obtained = cert.obtained_on
    if obtained is None or obtained <= line.invoice_date:
        return text, RULE_NOT_YET_EFFECTIVE
    late = (obtained - line.invoice_date).days
    if window is None or window.days is None:
        said = f"{window.text} (source: {window.source})" if window is not None else "not in the rules pack"
        return (f"{text}; obtained {late} days after the sale, and {line.ship_to_state} gives no good-faith "
                f"window to obtain a certificate after the sale: {said}"), RULE_AFTER_WINDOW
    cited = f"{window.text}; source: {window.source}"
    if late <= window.days:
        return (f"obtained {late} days after the sale, within the state's window of {window.days} days "
                f"({cited})"), RULE_GOOD_FAITH
    return (f"{text}; obtained {late} days after the sale, after the state's window of {window.days} days "
            f"({cited})"), RULE_AFTER_WINDOW


def _valid_in_law_past_policy(line: SaleLine, coverage: CoverageFacts, policy_binds: bool) -> str:
    """Why a past sale after a policy-only expiry (or the suspension at it) is still covered in law
    (``""``: it is not such a sale)."""
    if policy_binds or not coverage.policy_only:
        return ""
    day = line.invoice_date
    past_expiry = coverage.expiry_date is not None and day > coverage.expiry_date
    past_suspension = coverage.suspended_on is not None and day >= coverage.suspended_on
    if not (past_expiry or past_suspension):
        return ""
    if coverage.law_expiry is not None and day > coverage.law_expiry:
        return ""
    law = f"valid in law through {coverage.law_expiry}" if coverage.law_expiry else "no expiry in law"
    ended = (f"expired {coverage.expiry_date}" if past_expiry else f"suspended on {coverage.suspended_on}")
    return (f"covered in law, past our renewal policy: the {coverage.state} line {ended} under a renewal "
            f"policy, not the law ({coverage.policy_text}); {law}")


def _policy_note(line: SaleLine, coverage: CoverageFacts, policy_binds: bool) -> str:
    """What an expiry failure adds when the expiry is a renewal policy's (``""`` otherwise)."""
    if not coverage.policy_only:
        return ""
    if policy_binds:
        return f" (our renewal policy, which governs new sales: {coverage.policy_text})"
    return f" (renewal policy: {coverage.policy_text}; it also expired in law on {coverage.law_expiry})"


def _recurring_lapsed(line: SaleLine, sales: SalesHistory, cert: CandidateCertificate, refusals: Refusals,
                      passes: list[str], fails: list[str]) -> bool:
    """The SST recurring-relationship rule of the ship-to state (``sst.recurring_relationship`` in the
    rules pack; see :mod:`~ecms_desktop.services.sales.recurring`): a blanket certificate no longer covers
    a sale made after more than N months without a sale between the company and the customer since the
    certificate's date. Checked only for a certificate that meets every other condition; True when it
    has lapsed (the reason is in ``fails``), else the reason it is in force is in ``passes``."""
    rule = refusals.recurring(line.ship_to_state, cert.form_code, cert.certificate_type)
    if rule is None or cert.effective_date is None:
        return False
    lapse = sales.lapse(cert.effective_date, rule.months)
    if line.invoice_date >= lapse.on:
        fails.append(f"{line.ship_to_state} SST recurring relationship: {lapse.text()}, so it does not cover this "
                     f"sale of {line.invoice_date}; a fresh certificate is needed (rule "
                     f"sst.recurring_relationship; source: {rule.source}; confidence: {rule.confidence})")
        return True
    previous = sales.previous_sale(line.invoice_date)
    if previous is None or previous < cert.effective_date:
        passes.append(f"{line.ship_to_state} SST recurring relationship in force: no gap of more than "
                      f"{rule.months} months since the certificate's date {cert.effective_date}")
    else:
        passes.append(f"{line.ship_to_state} SST recurring relationship in force: previous purchase {previous}")
    return False


def _rank(cert: CandidateCertificate, coverage: CoverageFacts | None) -> tuple[int, int, int, int, int]:
    effective = cert.effective_date.toordinal() if cert.effective_date else 0
    return (
        0 if cert.certificate_type == "single_use" else 1,
        0 if (cert.product_codes or cert.commodity_codes) else 1,
        0 if coverage is not None and coverage.local_jurisdictions else 1,
        -effective,
        cert.certificate_id,
    )


def _why_won(winner: CandidateCertificate, wc: CoverageFacts | None, other: CandidateCertificate,
             oc: CoverageFacts | None) -> str:
    a, b = _rank(winner, wc), _rank(other, oc)
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x != y:
            return PRECEDENCE[i]
    return PRECEDENCE[-1]  # pragma: no cover - ids differ


def exempt_share(cert: CandidateCertificate, amount: Decimal) -> Decimal:
    """The exempt part of a covered amount: all of it, a percentage, or at most a fixed amount."""
    if cert.exempt_percent is not None:
        return _cents(amount * cert.exempt_percent / _HUNDRED)
    if cert.exempt_amount is not None:
        return _cents(min(amount, cert.exempt_amount)) if amount > 0 else _cents(amount)
    return _cents(amount)


def determine(line: SaleLine, candidates: Sequence[CandidateCertificate], refusals: Refusals | None = None, *,
              policy_binds: bool = False) -> Result:
    """Decide whether ``line`` is exempt among ``candidates`` (the customer's certificates in the
    ship-to state; others are reported as not applicable) and explain every candidate. ``refusals``:
    which state accepts which form, from the program's own rules pack unless given. ``policy_binds``:
    decide as for a new sale (the status question), where a renewal policy's expiry ends coverage; a
    past sale (the default) is covered while the certificate is valid in law."""
    amount = line.amount
    refusals = refusals or default_refusals()
    # -- states without a sales tax --
    untaxed = refusals.no_sales_tax(line.ship_to_state)
    if untaxed:
        return Result(False, amount, _ZERO, _ZERO, summary=f"not taxable: {untaxed}", rule=RULE_NO_SALES_TAX)
    if not candidates:
        return Result(False, amount, _ZERO, _cents(amount),
                      summary=f"taxable: customer has no certificate for {line.ship_to_state}", rule=RULE_NONE)
    covering: list[tuple[tuple[int, int, int, int, int, int], CandidateCertificate, CoverageFacts | None,
                         list[str], str]] = []
    failing: dict[int, tuple[list[str], str]] = {}
    notes: list[str] = []
    for cert in candidates:
        ok, reasons, coverage, cert_notes, rule = check_candidate(line, cert, refusals, policy_binds=policy_binds)
        if ok:
            covering.append(((_TIER_OF_RULE[rule], *_rank(cert, coverage)), cert, coverage, reasons, rule))
            notes.extend(f"{cert.certificate_number or cert.certificate_id}: {n}" for n in cert_notes)
        else:
            failing[cert.certificate_id] = (reasons, rule)
    if not covering:
        outcomes = tuple(CandidateOutcome(c.certificate_id, c.certificate_number, "not_applicable",
                                          tuple(failing[c.certificate_id][0]), failing[c.certificate_id][1])
                         for c in candidates)
        rules = {o.rule for o in outcomes}
        return Result(False, amount, _ZERO, _cents(amount), outcomes=outcomes,
                      summary=f"taxable: none of {len(candidates)} certificate(s) covers this sale",
                      rule=rules.pop() if len(rules) == 1 else RULE_NOT_COVERING)
    covering.sort(key=lambda item: item[0])
    best, winner, coverage, win_reasons, win_rule = covering[0]
    exempt_amount = exempt_share(winner, amount)
    taxable = _cents(amount) - exempt_amount
    # Only certificates of the winner's tier compete with it (a conflict); one covering in a later tier
    # (by good faith, or in law past our policy) is shown as eligible but is no conflict.
    others = [item for item in covering[1:] if item[0][0] == best[0]]
    outcomes_list: list[CandidateOutcome] = []
    for cert in candidates:
        if cert is winner:
            outcomes_list.append(CandidateOutcome(cert.certificate_id, cert.certificate_number, "applied",
                                                  tuple(win_reasons), win_rule))
        elif cert.certificate_id in failing:
            reasons, rule = failing[cert.certificate_id]
            outcomes_list.append(CandidateOutcome(cert.certificate_id, cert.certificate_number, "not_applicable",
                                                  tuple(reasons), rule))
        else:
            key, _, oc, _, rule = next(item for item in covering if item[1] is cert)
            why = (_TIERS[best[0]] if key[0] != best[0] else _why_won(winner, coverage, cert, oc))
            outcomes_list.append(CandidateOutcome(
                cert.certificate_id, cert.certificate_number, "eligible",
                (f"also covers this sale; not chosen: {why} "
                 f"favours certificate {winner.certificate_number or winner.certificate_id}",), rule))
    name = winner.certificate_number or f"id {winner.certificate_id}"
    warning = ""
    if others:
        ids = ", ".join(str(o[1].certificate_number or o[1].certificate_id) for o in others)
        warning = (f"{len(others) + 1} certificates cover this sale; {name} applied by precedence, "
                   f"also eligible: {ids}")
    partial = exempt_amount != _cents(amount)
    summary = (f"{'partly ' if partial else ''}exempt under certificate {name} "
               f"(version {winner.version}, {line.ship_to_state} line)"
               + (f": {exempt_amount} of {_cents(amount)} exempt" if partial else "")
               + _SUMMARY_OF_RULE[win_rule])
    return Result(True, amount, exempt_amount, taxable, winner, coverage,
                  tuple(o[1].certificate_id for o in others), warning, tuple(outcomes_list), summary,
                  tuple(notes), win_rule)


#: Why a certificate of an earlier coverage tier is chosen over one of a later tier.
_TIERS = ("a certificate in force on the invoice date (over one obtained after the sale or valid only in law)",
          "a certificate obtained within the good-faith window (over one valid only in law past our policy)",
          "")
#: What the summary adds for each way of covering.
_SUMMARY_OF_RULE = {RULE_CERTIFICATE: "",
                    RULE_GOOD_FAITH: "; obtained after the sale, within the state's good-faith window",
                    RULE_PAST_POLICY: "; covered in law, past our renewal policy"}
