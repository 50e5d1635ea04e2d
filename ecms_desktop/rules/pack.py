"""The state rules pack as typed, frozen, Qt-free data (loaded by :mod:`ecms_desktop.rules.loader`).

A :class:`RulesPack` holds the exempt reasons, the certificate field vocabulary and, per state (and
DC), its forms (each with the data that identifies it on a page and the labels that locate its values),
expiry rules, permit format, SST and MTC membership and good-faith standard; it answers
which expiry rule applies to a certificate and whether a state accepts a form for a reason
(:meth:`RulesPack.form_acceptance`, the one place that decides it). The errors it raises name what
was asked for and, for a form, near matches.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from ecms_desktop.rules.documents import (
    NoExemption,
    NumberIssuers,
    ObsoleteForm,
    PermitFormat,
    StateDocument,
)

__all__ = [
    "CONFIDENCE_LEVELS",
    "EXPIRY_BASES",
    "EXPIRY_KINDS",
    "REFUSAL_RULES",
    "Acceptance",
    "AcceptanceTable",
    "ExemptReason",
    "ExpiryRule",
    "ExtractionVocabulary",
    "FieldDef",
    "FieldZone",
    "FormIdentification",
    "FormRule",
    "FormTemplate",
    "GoodFaith",
    "IssueMonthTerm",
    "LabelPhrase",
    "MtcRule",
    "PrintedPattern",
    "RecurringRelationship",
    "RefusedForm",
    "RevisionPattern",
    "RulesPack",
    "RulesPackError",
    "SstRule",
    "StateRule",
    "TemplateAnchor",
    "TemplatePage",
    "TitlePhrase",
    "UnknownFormError",
    "UnknownStateError",
    "normalize_form_code",
]

SST_FORM_CODE = "SST-F0003"
MTC_FORM_CODE = "MTC-UNIFORM"

CONFIDENCE_LEVELS: tuple[str, ...] = ("high", "medium", "low", "unverified", "n/a")
EXPIRY_KINDS: tuple[str, ...] = ("none", "years", "end_of_year")
EXPIRY_BASES: tuple[str, ...] = (
    "law",
    "regulation",
    "guidance",
    "recommendation",
    "practice",
    "not_applicable",
)


# --------------------------------------------------------------------------- errors


class RulesPackError(Exception):
    """The rules pack is missing, malformed or was asked for something it does not hold."""


class UnknownFormError(RulesPackError, KeyError):
    """No form with the requested code; the message lists near matches."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class UnknownStateError(RulesPackError, KeyError):
    """No state (or DC) with the requested two-letter code."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# --------------------------------------------------------------------------- helpers


def normalize_form_code(text: str) -> str:
    """Return the canonical form code: upper-case, trimmed, and runs of whitespace,
    underscores and hyphens collapsed to a single hyphen.

    >>> normalize_form_code("tx 01-339")
    'TX-01-339'
    >>> normalize_form_code(" mtc uniform")
    'MTC-UNIFORM'
    """
    return re.sub(r"[\s_\-]+", "-", text.strip().upper()).strip("-")


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class ExemptReason:
    """An exempt reason code (``resale``, ``government``, ...) with label and description."""

    code: str
    label: str
    description: str


@dataclass(frozen=True)
class FieldDef:
    """A certificate field of the pack vocabulary (``purchaser_name``, ...)."""

    name: str
    label: str
    description: str


@dataclass(frozen=True)
class ExpiryRule:
    """How long a certificate stays valid.

    ``kind``: ``none`` (no expiry: valid until revoked / recurring relationship, or no
    sales tax), ``years`` (valid from the effective date through the day before the
    ``years``-th anniversary) or ``end_of_year`` (valid through 31 December of the
    ``years``-th calendar year counting the effective date's year; 1 = same year).
    ``basis`` says whether the period is law, regulation, guidance, a recommendation,
    the project's default practice, or not applicable. ``printed``: the state prints the
    expiry on the document (the printed date is required and wins); ``by_issue_month``: the
    years depend on the month of issue; ``renewal``: the rule for a renewal certificate.
    """

    kind: str
    years: int | None
    basis: str
    text: str
    source: str
    confidence: str
    #: The state prints the expiry date on the document: the printed date is asked for and wins.
    printed: bool = False
    #: Month-dependent terms: the first whose months hold the issue month gives the years.
    by_issue_month: tuple[IssueMonthTerm, ...] = ()
    #: The rule for a renewal (the customer already held a certificate of this form and state).
    renewal: ExpiryRule | None = None

    def years_for(self, issued: dt.date, *, renewal: bool = False) -> tuple[ExpiryRule, int | None]:
        """The rule that applies to a certificate issued (effective) on ``issued`` - the renewal rule
        for a renewal when there is one - and its number of years for that issue month."""
        rule = self.renewal if renewal and self.renewal is not None else self
        for term in rule.by_issue_month:
            if issued.month in term.months:
                return rule, term.years
        return rule, rule.years


@dataclass(frozen=True)
class IssueMonthTerm:
    """Years of an expiry rule for certificates issued in one of ``months`` (1 = January)."""

    months: tuple[int, ...]
    years: int


@dataclass(frozen=True)
class TitlePhrase:
    """A title the form prints (matched tolerantly on a read page) and where it was read."""

    text: str
    source: str


@dataclass(frozen=True)
class PrintedPattern:
    """A regular expression (case-insensitive) for the form number as ``printed`` on the form."""

    pattern: str
    printed: str
    source: str


@dataclass(frozen=True)
class RevisionPattern:
    """A regular expression for a printed revision mark, and the ``revision`` it stands for."""

    pattern: str
    revision: str
    source: str


@dataclass(frozen=True)
class LabelPhrase:
    """A printed label and where the filled-in value sits from it (``right``, ``below`` or ``above``).

    Labels of one field with different ``part`` numbers are joined in that order (street line, then city
    line); the same ``part`` means alternatives. ``anchor`` picks, when the label is printed more than once,
    the occurrence in the column of that field's label and below it. ``weight`` (0..1] says how far a value
    found by this label is trusted: generic fallbacks are lower than a form's own labels.
    """

    text: str
    position: str
    part: int = 1
    anchor: str = ""
    weight: float = 1.0


@dataclass(frozen=True)
class TemplateAnchor:
    """A phrase printed once on a blank form's page and its box there (points, top-left origin): a scan's
    words that read it tell where that spot of the form is on the scan."""

    text: str
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class FieldZone:
    """Where a field is filled in on a blank form's page: its ``box`` (points), the AcroForm ``widget``
    it was taken from and the words ``printed`` inside it on the blank form (a label, not a value).
    Zones of one field with different ``part`` numbers are joined in order; the same part means
    alternatives."""

    field: str
    part: int
    widget: str
    box: tuple[float, float, float, float]
    printed: tuple[str, ...]


@dataclass(frozen=True)
class TemplatePage:
    """One page of a blank form that has fields: its number (1 = first), size in points, anchors and
    zones."""

    page: int
    width: float
    height: float
    anchors: tuple[TemplateAnchor, ...]
    zones: tuple[FieldZone, ...]


@dataclass(frozen=True)
class FormTemplate:
    """A blank official form (one revision) as a template for reading scans of it: the file it was made
    from (name, SHA-256, where it came from), the revision printed on it and its pages with fields."""

    file: str
    sha256: str
    origin: str
    revision: str
    pages: tuple[TemplatePage, ...]


@dataclass(frozen=True)
class FormIdentification:
    """How a form is recognised on a read page (titles, number and revision patterns) and where its
    printed labels and boxes put each value (and, for the official forms we hold a blank copy of, where
    each field is filled in: ``templates``). ``type_choices`` maps ``blanket``/``single`` and
    ``reason_choices`` an exempt reason code to the text printed beside the box that claims it."""

    titles: tuple[TitlePhrase, ...]
    numbers: tuple[PrintedPattern, ...]
    revisions: tuple[RevisionPattern, ...]
    labels: Mapping[str, tuple[LabelPhrase, ...]]
    type_choices: Mapping[str, tuple[str, ...]]
    reason_choices: Mapping[str, tuple[str, ...]]
    source: str
    confidence: str
    #: The blank official form(s) a scan is registered to, one per revision (``zones/<FORM>.json``).
    templates: tuple[FormTemplate, ...] = ()


@dataclass(frozen=True)
class ExtractionVocabulary:
    """What reading any certificate uses: generic ``label_fallbacks`` per field (tried after a form's own
    labels, or alone when the form is not known), the ``check_marks`` that tick a box and the
    ``value_formats`` (regular expressions a whole value must match) per field."""

    label_fallbacks: Mapping[str, tuple[LabelPhrase, ...]]
    check_marks: tuple[str, ...]
    value_formats: Mapping[str, str]
    source: str


@dataclass(frozen=True)
class FormRule:
    """A certificate form: a state's own form or a multistate form.

    ``states`` are the state(s) the form belongs to; for SST F0003 and the MTC form,
    the states that accept it (for at least one reason). ``expiry`` overrides the
    state's rule when set. ``required_fields_by_reason`` adds fields needed only for a
    given reason (e.g. the permit number for resale).
    """

    code: str
    number: str
    name: str
    purpose: str
    exempt_reasons: tuple[str, ...]
    required_fields: tuple[str, ...]
    single_use_allowed: bool
    expiry: ExpiryRule | None
    pdf_field_map: Mapping[str, str]
    note: str
    source: str
    confidence: str
    states: tuple[str, ...]
    issuer: str = ""
    revision: str = ""
    required_fields_by_reason: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    reason_letters: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    identification: FormIdentification | None = None
    #: What the document is: ``fill_in`` (the purchaser completes it), ``state_issued`` (a number, letter,
    #: card or certificate the state issues) or ``purchaser_document`` (the purchaser's own purchase record).
    kind: str = "fill_in"
    #: For a state-issued document: who issues it, its number, where to get and verify it.
    state_document: StateDocument | None = None
    #: Whose numbers the permit-number box takes besides the line's state (None: that state's only).
    number_issuers: NumberIssuers | None = None
    #: Set when the state no longer supports the form.
    obsolete: ObsoleteForm | None = None

    @property
    def is_state_issued(self) -> bool:
        """True for a document the state issues: the purchaser cannot fill it in."""
        return self.kind == "state_issued"

    @property
    def is_multistate(self) -> bool:
        """True for SST F0003 and the MTC uniform certificate."""
        return self.code in (SST_FORM_CODE, MTC_FORM_CODE)

    def fields_for(self, reason: str) -> tuple[str, ...]:
        """Required fields when the certificate claims ``reason`` (base + per-reason)."""
        extra = self.required_fields_by_reason.get(reason, ())
        return self.required_fields + tuple(f for f in extra if f not in self.required_fields)


@dataclass(frozen=True)
class RefusedForm:
    """An explicit refusal of a (multistate) form by a state; empty ``reasons`` = all."""

    code: str
    reasons: tuple[str, ...]
    message: str
    source: str
    confidence: str

    def applies_to(self, reason: str) -> bool:
        """Whether the refusal covers ``reason``."""
        return not self.reasons or reason in self.reasons


@dataclass(frozen=True)
class RecurringRelationship:
    """The SST recurring-business-relationship rule of a member state (SSUTA s.317): a certificate of
    one of ``certificate_types`` needs no renewal while the purchaser keeps buying, and no longer
    covers new sales once more than ``months`` pass without a sale between seller and purchaser."""

    months: int
    certificate_types: tuple[str, ...]
    text: str
    source: str
    confidence: str


@dataclass(frozen=True)
class SstRule:
    """Streamlined Sales Tax membership and the resulting acceptance of SST F0003."""

    membership: str
    resale_only: bool
    restriction: str
    note: str
    source: str
    confidence: str
    #: The recurring-relationship rule (None: the state has none).
    recurring_relationship: RecurringRelationship | None = None


@dataclass(frozen=True)
class MtcRule:
    """Acceptance of the MTC uniform resale certificate in a state."""

    acceptance: str
    allowed_reasons: tuple[str, ...]
    requires_fields: tuple[str, ...]
    restriction: str
    source: str
    confidence: str


@dataclass(frozen=True)
class GoodFaith:
    """Good-faith standard; ``days`` = days after the sale to obtain a certificate (or None)."""

    text: str
    days: int | None
    source: str
    confidence: str


@dataclass(frozen=True)
class LocalTax:
    """Local sales taxes that need exemption documents where the state has no statewide sales tax
    (Alaska's ARSSTC member cities and boroughs)."""

    applies: bool
    text: str
    source: str
    confidence: str


@dataclass(frozen=True)
class StateRule:
    """All rules for one state (or DC)."""

    state: str
    name: str
    has_sales_tax: bool
    sales_tax_note: str
    sst: SstRule
    mtc: MtcRule
    forms: tuple[FormRule, ...]
    refused_forms: tuple[RefusedForm, ...]
    expiry_resale: ExpiryRule
    expiry_exemption: ExpiryRule
    permit: PermitFormat
    good_faith: GoodFaith
    confidence: Mapping[str, str]
    sources: tuple[str, ...]
    #: Local sales taxes where the state has none statewide (None: no such local taxes).
    local_tax: LocalTax | None = None
    #: Reasons the state grants no general exemption for.
    no_exemption: tuple[NoExemption, ...] = ()

    def no_exemption_for(self, reason: str) -> NoExemption | None:
        """The rule that the state grants no general exemption for ``reason``, if it has one: every form is
        then refused for it, with the acceptance rule ``state.no_exemption``."""
        return next((n for n in self.no_exemption if n.reason == reason), None)

    @property
    def taxes_sales(self) -> bool:
        """Whether a sale shipped here can owe sales tax (statewide or local): where it cannot, an
        exempt claim without a certificate puts nothing at risk."""
        return self.has_sales_tax or (self.local_tax is not None and self.local_tax.applies)

    def expiry_for(self, reason: str) -> ExpiryRule:
        """The state's expiry rule for ``reason`` (resale rule for resale, else exemption)."""
        return self.expiry_resale if reason == "resale" else self.expiry_exemption

    def refusal(self, form_code: str, reason: str) -> RefusedForm | None:
        """The explicit refusal of ``form_code`` for ``reason``, if any."""
        code = normalize_form_code(form_code)
        for refused in self.refused_forms:
            if refused.code == code and refused.applies_to(reason):
                return refused
        return None


#: The rule id of a refusal, by form (any other form: ``form.not_accepted``).
REFUSAL_RULES: Mapping[str, str] = {SST_FORM_CODE: "sst.refused", MTC_FORM_CODE: "mtc.refused"}


@dataclass(frozen=True)
class Acceptance:
    """Answer of :meth:`RulesPack.form_acceptance`.

    ``restriction`` is the state's condition in plain words (empty when none);
    ``requires_fields`` are fields the state's restriction demands in addition to the
    form's own; ``message`` explains the decision for a user. ``no_sales_tax``: no sale there
    owes sales tax, statewide or local (:attr:`StateRule.taxes_sales`), so there is nothing to
    accept (``accepted`` is false but nothing is refused). ``rule`` is the stable id of a refusal
    (``form.not_accepted``, ``sst.refused``, ``mtc.refused``; empty otherwise).
    """

    accepted: bool
    restriction: str
    requires_fields: tuple[str, ...]
    source: str
    confidence: str
    message: str
    no_sales_tax: bool = False
    rule: str = ""

    @property
    def refused(self) -> bool:
        """The state taxes sales and does not take this form for this reason: a certificate on it is
        not valid there (validation reports an error; determination never covers a sale with it)."""
        return not self.accepted and not self.no_sales_tax


class AcceptanceTable:
    """:meth:`RulesPack.form_acceptance` remembered per (state, form, reason), for code that asks the
    same question many times (the validation of many certificates, the determination of many sales)."""

    def __init__(self, rules: RulesPack) -> None:
        self.rules = rules
        self._answers: dict[tuple[str, str, str], Acceptance] = {}

    def __call__(self, state: str, form_code: str, reason: str) -> Acceptance:
        """The answer; raises :class:`RulesPackError` for an unknown state, form or reason."""
        key = (state, form_code, reason)
        found = self._answers.get(key)
        if found is None:
            found = self._answers[key] = self.rules.form_acceptance(state, form_code, reason)
        return found


# --------------------------------------------------------------------------- the pack


@dataclass(frozen=True)
class RulesPack:
    """The loaded rules pack. Look things up with :meth:`state`, :meth:`form`,
    :meth:`expiry_rule` and :meth:`form_acceptance`."""

    version: str
    title: str
    exempt_reasons: tuple[ExemptReason, ...]
    fields: tuple[FieldDef, ...]
    states: Mapping[str, StateRule]
    forms: Mapping[str, FormRule]
    generated_from: tuple[str, ...] = ()
    extraction: ExtractionVocabulary = field(
        default_factory=lambda: ExtractionVocabulary(MappingProxyType({}), (), MappingProxyType({}), ""))

    @property
    def reason_codes(self) -> tuple[str, ...]:
        """The exempt reason codes, in pack order."""
        return tuple(r.code for r in self.exempt_reasons)

    @property
    def field_names(self) -> tuple[str, ...]:
        """The certificate field names, in pack order."""
        return tuple(f.name for f in self.fields)

    def state(self, code: str) -> StateRule:
        """The rules of state ``code`` (case-insensitive, e.g. ``"tx"``)."""
        key = code.strip().upper()
        try:
            return self.states[key]
        except KeyError:
            raise UnknownStateError(
                f"Unknown state {code!r}: the rules pack has the 50 states and DC "
                f"({', '.join(sorted(self.states))})"
            ) from None

    def form(self, code: str) -> FormRule:
        """The form with ``code``; un-normalised input such as ``"tx 01 339"`` is accepted."""
        key = normalize_form_code(code)
        found = self.forms.get(key)
        if found is not None:
            return found
        near = difflib.get_close_matches(key, list(self.forms), n=5, cutoff=0.6)
        if not near:
            near = sorted(c for c in self.forms if key and (key in c or c in key))[:5]
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise UnknownFormError(f"Unknown form {code!r} (normalised {key!r}){hint}")

    def expiry_rule(self, state: str, form_code: str, reason: str) -> ExpiryRule:
        """The expiry rule for a certificate on ``form_code`` given in ``state`` for ``reason``.

        The form's own expiry wins when set (e.g. FL DR-13 ends 31 December); otherwise
        the state's resale rule for ``reason == "resale"`` and its exemption rule for any
        other reason (also for multistate forms without an own expiry).
        """
        self._check_reason(reason)
        st = self.state(state)
        form = self.form(form_code)
        if form.expiry is not None:
            return form.expiry
        return st.expiry_for(reason)

    def recurring_relationship(self, state: str, form_code: str, certificate_type: str
                               ) -> RecurringRelationship | None:
        """The SST recurring-relationship rule that governs a certificate of ``certificate_type`` on
        ``form_code`` in ``state`` (None: none does). The rule is about the certificates a purchaser
        completes and the seller keeps (SSUTA s.317); a state-issued document (a reseller permit, an
        exemption number or card) lasts as its issuer says, not by the sales between the two."""
        st = self.states.get(state)
        rule = st.sst.recurring_relationship if st is not None else None
        if rule is None or certificate_type not in rule.certificate_types:
            return None
        form = self.forms.get(normalize_form_code(form_code))
        if form is not None and form.is_state_issued:
            return None
        return rule

    def form_acceptance(self, state: str, form_code: str, reason: str) -> Acceptance:
        """Whether ``state`` accepts a certificate on ``form_code`` for ``reason``: the one place that
        decides it, for validation (an error) and determination (no coverage) alike."""
        self._check_reason(reason)
        st = self.state(state)
        form = self.form(form_code)
        if not st.taxes_sales:
            return self._no_sales_tax(st, form, reason)
        none = st.no_exemption_for(reason)
        if none is not None:
            return Acceptance(False, "", (), none.source, none.confidence,
                              f"{st.name} grants no general exemption for {reason} purchases, so no form or "
                              f"document covers them: {none.text}", rule="state.no_exemption")
        answer = self._acceptance(st, form, reason)
        if answer.accepted:
            return answer
        return replace(answer, rule=REFUSAL_RULES.get(form.code, "form.not_accepted"))

    def _acceptance(self, st: StateRule, form: FormRule, reason: str) -> Acceptance:
        refused = st.refusal(form.code, reason)
        if refused is not None:
            return Acceptance(False, "", (), refused.source, refused.confidence, refused.message)
        if form.code == SST_FORM_CODE:
            return self.sst_acceptance(st, reason)
        if form.code == MTC_FORM_CODE:
            return self.mtc_acceptance(st, reason)
        if st.state not in form.states:
            owners = "/".join(form.states) or "another state"
            return Acceptance(
                False,
                "",
                (),
                form.source,
                form.confidence,
                f"{form.code} is a {owners} form; {st.state} does not accept another "
                f"state's own certificate form",
            )
        if reason not in form.exempt_reasons:
            return Acceptance(
                False,
                "",
                (),
                form.source,
                form.confidence,
                f"{form.code} ({form.name}) is not used for {reason!r} exemptions; "
                f"it covers: {', '.join(form.exempt_reasons)}",
            )
        return Acceptance(
            True,
            "",
            (),
            form.source,
            form.confidence,
            f"{form.code} is {st.name}'s own form for {reason}",
        )

    # ----------------------------------------------------------------- internals

    def _check_reason(self, reason: str) -> None:
        if reason not in self.reason_codes:
            raise RulesPackError(
                f"Unknown exempt reason {reason!r}; expected one of {', '.join(self.reason_codes)}"
            )

    @staticmethod
    def _no_sales_tax(st: StateRule, form: FormRule, reason: str) -> Acceptance:
        """A state where no sale owes sales tax, statewide or local: nothing to accept. (A state with
        local taxes only, Alaska's ARSSTC members, is judged like any other: the MTC form per its note.)"""
        return Acceptance(False, "", (), st.mtc.source, st.confidence["overall"],
                          f"{st.state} has no statewide sales tax", no_sales_tax=True)

    @staticmethod
    def sst_acceptance(st: StateRule, reason: str) -> Acceptance:
        sst = st.sst
        if sst.membership == "none":
            return Acceptance(
                False,
                "",
                (),
                sst.source,
                sst.confidence,
                f"{st.state} is not a Streamlined Sales Tax member and does not take the SST "
                f"certificate; use {st.name}'s own form",
            )
        if sst.resale_only and reason != "resale":
            return Acceptance(
                False,
                sst.restriction,
                (),
                sst.source,
                sst.confidence,
                f"{st.state} ({sst.membership} SST member) accepts the SST certificate for resale only",
            )
        kind = "a full" if sst.membership == "full" else "an associate"
        message = f"{st.state} is {kind} SST member and accepts SST F0003 for {reason}"
        if sst.restriction:
            message += f" ({sst.restriction})"
        return Acceptance(True, sst.restriction, (), sst.source, sst.confidence, message)

    @staticmethod
    def mtc_acceptance(st: StateRule, reason: str) -> Acceptance:
        mtc = st.mtc
        if mtc.acceptance in ("no", "n/a"):
            return Acceptance(
                False,
                mtc.restriction,
                (),
                mtc.source,
                mtc.confidence,
                f"{st.state} does not accept the MTC uniform certificate: {mtc.restriction}",
            )
        if reason not in mtc.allowed_reasons:
            return Acceptance(
                False,
                mtc.restriction,
                (),
                mtc.source,
                mtc.confidence,
                f"{st.state} accepts the MTC uniform certificate only for "
                f"{', '.join(mtc.allowed_reasons)}, not {reason}",
            )
        message = f"{st.state} accepts the MTC uniform certificate for {reason}"
        if mtc.acceptance == "restricted":
            message += f" with restrictions: {mtc.restriction}"
        return Acceptance(True, mtc.restriction, mtc.requires_fields, mtc.source, mtc.confidence, message)
