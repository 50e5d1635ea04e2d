"""What the certificate edit form shows, decided from the rules pack (Qt-free).

For a certificate's state(s), form and exempt reason, :func:`build_form_spec` says which fields
appear on the form, which of them the state requires (an auditor will look for them), the format
of the permit number, the exempt reasons the form allows, one coverage line per state with that
state's acceptance of the form and its computed expiry (with basis and source), and the expiry of
the certificate as a whole. The Qt form (``views/certificates/form_builder.py``) renders this spec; the CLI and
the validation engine can reuse it without Qt.

:func:`local_findings` applies the spec to the values typed in: required fields left empty and
permit numbers that do not fit the state's format, as :class:`FieldFinding` objects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecms_desktop.models.enums import CertificateType, Status
from ecms_desktop.rules import RulesPack
from ecms_desktop.rules.pack import FormRule, UnknownFormError, UnknownStateError
from ecms_desktop.services.certificates.service import ExpiryContext
from ecms_desktop.services.core.expiry import (
    DEFAULT_EXPIRING_SOON_DAYS,
    ExpiryDecision,
    compute_expiry,
    line_status,
    override_expiry,
)

__all__ = [
    "BASE_FIELDS",
    "GENERIC_FIELDS",
    "GROUPS",
    "KINDS",
    "CoverageSpec",
    "ExpirySpec",
    "FieldFinding",
    "FieldSpec",
    "FormChoice",
    "FormSpec",
    "build_form_spec",
    "form_choices",
    "load_expiry_decider",
    "local_findings",
    "parse_date",
    "parse_states",
    "spec_for_input",
]

#: Widget kinds a view must know how to render.
KINDS = ("text", "multiline", "date", "bool", "choice", "info")

#: Groups, in display order, with their titles.
GROUPS: tuple[tuple[str, str], ...] = (
    ("purchaser", "Purchaser"),
    ("seller", "Seller (your company)"),
    ("exemption", "Exemption"),
    ("signature", "Signature and dates"),
    ("other", "Notes"),
)


@dataclass(frozen=True)
class _FieldInfo:
    attr: str  # CertificateInput attribute ("" when the value is not stored)
    kind: str
    group: str
    label: str = ""


#: Rules-pack field vocabulary -> how the certificate stores and the form shows it.
_FIELD_INFO: dict[str, _FieldInfo] = {
    "certificate_number": _FieldInfo("certificate_number", "text", "purchaser", "Certificate number"),
    "purchaser_name": _FieldInfo("purchaser_name", "text", "purchaser"),
    "purchaser_address": _FieldInfo("purchaser_address", "multiline", "purchaser"),
    "purchaser_tax_id": _FieldInfo("purchaser_tax_id", "text", "purchaser"),
    "purchaser_ein": _FieldInfo("purchaser_ein", "text", "purchaser"),
    "business_type": _FieldInfo("business_type", "text", "purchaser"),
    "business_description": _FieldInfo("business_description", "multiline", "purchaser"),
    "home_state": _FieldInfo("", "info", "purchaser"),
    "seller_name": _FieldInfo("", "info", "seller"),
    "seller_address": _FieldInfo("", "info", "seller"),
    "certificate_type": _FieldInfo("certificate_type", "choice", "exemption", "Certificate type"),
    "property_description": _FieldInfo("property_description", "multiline", "exemption"),
    "exemption_detail": _FieldInfo("exemption_detail", "text", "exemption"),
    "po_number": _FieldInfo("po_number", "text", "exemption"),
    "signature": _FieldInfo("signed", "bool", "signature", "Signed by the purchaser"),
    "signer_name": _FieldInfo("signer_name", "text", "signature"),
    "signer_title": _FieldInfo("signer_title", "text", "signature"),
    "signed_date": _FieldInfo("signed_date", "date", "signature"),
    "effective_date": _FieldInfo("effective_date", "date", "signature"),
    "notes": _FieldInfo("notes", "multiline", "other", "Notes"),
}

#: Fields every certificate form shows, whatever the rules pack requires.
BASE_FIELDS: tuple[str, ...] = (
    "certificate_number", "purchaser_name", "purchaser_address", "purchaser_tax_id",
    "certificate_type", "property_description", "signature", "signed_date", "effective_date", "notes",
)

#: Display order of the fields (the form walks this list).
_ORDER: tuple[str, ...] = tuple(_FIELD_INFO)

#: Fields a certificate whose form is not known yet shows besides the base ones (most forms ask for them).
GENERIC_FIELDS: tuple[str, ...] = ("purchaser_ein", "signer_name", "signer_title")

#: Fields handled outside the generated field list (header combos, expiry section).
_HANDLED_ELSEWHERE = {"exempt_reason", "expiry_date"}


@dataclass(frozen=True)
class FieldSpec:
    """One field on the form.

    ``name`` is the rules-pack field name (``signature``, ``purchaser_tax_id``...); ``attr`` is the
    :class:`~ecms_desktop.services.certificates.service.CertificateInput` attribute that stores it
    (``signed`` for ``signature``; empty for ``info`` fields such as the seller, which is your
    company and is shown, not typed). ``hint`` is the format to type (placeholder text); ``pattern``
    the regular expression a value must match after ``strip`` characters are removed (only when
    ``pattern_confidence`` is reliable enough to warn about).
    """

    name: str
    attr: str
    label: str
    kind: str
    group: str
    required: bool
    description: str = ""
    hint: str = ""
    pattern: str | None = None
    pattern_strip: str = ""
    pattern_confidence: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    required_because: str = ""


@dataclass(frozen=True)
class CoverageSpec:
    """One state the certificate covers: does it accept the form, and until when it is valid."""

    state: str
    state_name: str
    accepted: bool
    acceptance_message: str
    restriction: str
    requires_fields: tuple[str, ...]
    permit_label: str
    permit_hint: str
    permit_pattern: str | None
    permit_confidence: str
    state_tax_id: str
    expiry_date: dt.date | None
    expiry_basis: str
    expiry_source: str
    expiry_origin: str
    expiry_confidence: str
    status: Status | None


@dataclass(frozen=True)
class ExpirySpec:
    """The certificate's expiry as computed (the earliest of its lines), with basis and source.

    ``printed_on_form`` is True when the form itself prints an expiry date (FL DR-13): the
    accountant should compare it with the computed one and override with a reason if they differ.
    """

    date: dt.date | None
    basis: str
    source: str
    origin: str
    confidence: str
    printed_on_form: bool
    override: dt.date | None
    override_reason: str


@dataclass(frozen=True)
class FormChoice:
    """An entry of the form combo."""

    code: str
    label: str
    multistate: bool
    accepted: bool


@dataclass(frozen=True)
class FieldFinding:
    """A message about one field (or one state's line) of the form."""

    field: str
    severity: str  # error | warning | info
    message: str
    state: str = ""


@dataclass(frozen=True)
class FormSpec:
    """Everything the form shows for one certificate's state(s), form and reason."""

    form_code: str
    form_name: str
    form_known: bool
    multistate: bool
    states: tuple[str, ...]
    exempt_reason: str
    reasons: tuple[tuple[str, str], ...]
    reason_allowed: bool
    fields: tuple[FieldSpec, ...]
    coverage: tuple[CoverageSpec, ...]
    expiry: ExpirySpec
    single_use_allowed: bool
    form_note: str
    form_source: str
    messages: tuple[FieldFinding, ...]
    rules_version: str

    def field(self, name: str) -> FieldSpec | None:
        """The field spec by rules-pack name or storage attribute."""
        for f in self.fields:
            if f.name == name or (f.attr and f.attr == name):
                return f
        return None

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


#: Decides a line's expiry: (state, form_code, reason, effective, signed, override, override_reason).
ExpiryDecider = Callable[..., ExpiryDecision]


def _rules_decider(rules: RulesPack) -> ExpiryDecider:
    def decide(state: str, form_code: str, reason: str, *, effective: dt.date | None,
               signed: dt.date | None, override: dt.date | None, override_reason: str) -> ExpiryDecision:
        if override is not None:
            return override_expiry(override, override_reason)
        rule = rules.expiry_rule(state, form_code, reason)
        return compute_expiry(rule, effective=effective, signed=signed)

    return decide


def load_expiry_decider(db: Any, rules: RulesPack, company_id: int) -> ExpiryDecider:
    """The expiry decision used when saving, including the company's own expiry policy (one read)."""
    with db.reader() as s:
        ctx = ExpiryContext.load(s, rules, company_id)
        s.expunge_all()
    return ctx.decide


def parse_states(text: str | Iterable[str]) -> tuple[str, ...]:
    """State codes from ``"wa, nc OH"`` or a list, upper-cased, without duplicates, in given order."""
    parts = text.replace(",", " ").replace(";", " ").split() if isinstance(text, str) else list(text)
    out: list[str] = []
    for p in parts:
        code = p.strip().upper()
        if code and code not in out:
            out.append(code)
    return tuple(out)


def parse_date(text: str) -> dt.date | None:
    """A date typed by the accountant: ``2026-03-15``, ``03/15/2026`` or ``3/15/26``; empty -> None.

    Raises ``ValueError`` with a message naming the expected format.
    """
    text = text.strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%d", "%m/%d/%Y", "%m/%d/%y", "%m-%d-%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not a date; type it as YYYY-MM-DD or MM/DD/YYYY")


def form_choices(rules: RulesPack, states: Sequence[str], current: str = "") -> list[FormChoice]:
    """Forms to offer for ``states``: each state's own forms, then the multistate forms, then
    ``current`` if it is none of these (so a stored value is never silently dropped)."""
    out: list[FormChoice] = []
    seen: set[str] = set()
    for code in states:
        try:
            st = rules.state(code)
        except UnknownStateError:
            continue
        for f in st.forms:
            if f.code not in seen:
                seen.add(f.code)
                out.append(FormChoice(f.code, f"{f.code} - {f.name}", False, True))
    for code in ("SST-F0003", "MTC-UNIFORM"):
        f = rules.form(code)
        accepted = bool(states) and all(s in f.states for s in states)
        out.append(FormChoice(f.code, f"{f.code} - {f.name}", True, accepted))
        seen.add(f.code)
    if current:
        try:
            code = rules.form(current).code
        except UnknownFormError:
            code = current
        if code not in seen:
            label = code
            try:
                label = f"{code} - {rules.form(code).name}"
            except UnknownFormError:
                label = f"{code} (not in the rules pack)"
            out.append(FormChoice(code, label, False, False))
    return out


def _permit_hint(rules: RulesPack, states: Sequence[str], form: FormRule | None) -> tuple[str, str | None, str, str]:
    """The hint, pattern, strip characters and confidence of the number box: the state-issued
    document's number, else the state's permit; where the form also takes other issuers' numbers, no
    pattern (validation checks the number against the issuer written before it)."""
    document = form.state_document if form is not None else None
    if document is not None and document.number is not None:
        n = document.number
        return n.display, n.pattern, n.strip, n.confidence
    if len(states) != 1:
        return "", None, "", ""
    try:
        p = rules.state(states[0]).permit
    except UnknownStateError:
        return "", None, "", ""
    issuers = form.number_issuers if form is not None else None
    if issuers is not None:
        return (f"{p.display}; the form also takes {issuers.text}: write the issuing state or country before "
                "such a number (e.g. 'OK 123456789')", None, p.strip, p.confidence)
    return p.display, p.pattern, p.strip, p.confidence


def build_form_spec(
    rules: RulesPack,
    *,
    form_code: str,
    states: Sequence[str],
    exempt_reason: str,
    certificate_type: str = CertificateType.BLANKET.value,
    effective_date: dt.date | None = None,
    signed_date: dt.date | None = None,
    expiry_override: dt.date | None = None,
    expiry_override_reason: str = "",
    state_tax_ids: Mapping[str, str] | None = None,
    present: Iterable[str] = (),
    review_state: str | None = None,
    as_of: dt.date | None = None,
    window_days: int = DEFAULT_EXPIRING_SOON_DAYS,
    decide: ExpiryDecider | None = None,
) -> FormSpec:
    """The form for a certificate on ``form_code`` covering ``states`` for ``exempt_reason``.

    ``present`` names fields (rules-pack names or storage attributes) that already hold a value:
    they are shown even if this form does not ask for them, so no stored value is hidden.
    ``review_state`` and ``as_of`` give each coverage line a status; ``decide`` replaces the
    rules-pack expiry decision (e.g. with the company's policy, see :func:`load_expiry_decider`).
    """
    states = parse_states(states)
    messages: list[FieldFinding] = []
    decide = decide or _rules_decider(rules)
    form = None
    if not form_code:  # a certificate made from an arriving document before its form is known
        messages.append(FieldFinding("form", "error", "The form is not known yet: choose the one the document is."))
    else:
        try:
            form = rules.form(form_code)
        except UnknownFormError as exc:
            messages.append(FieldFinding("form", "error", str(exc)))
    reason_labels = {r.code: r.label for r in rules.exempt_reasons}
    if form is not None:
        reasons = tuple((code, reason_labels.get(code, code)) for code in form.exempt_reasons)
    else:
        reasons = tuple((r.code, r.label) for r in rules.exempt_reasons)
    reason_allowed = exempt_reason in dict(reasons)
    if not exempt_reason:
        messages.append(FieldFinding("exempt_reason", "error", "The exempt reason is not known yet: choose it."))
    elif not reason_allowed:
        messages.append(FieldFinding(
            "exempt_reason", "error",
            f"{form.code if form else form_code} is not used for "
            f"{reason_labels.get(exempt_reason, exempt_reason)!r} exemptions; it covers: "
            f"{', '.join(label for _, label in reasons)}"))
    if not states:
        messages.append(FieldFinding("state", "error", "Name at least one state the certificate covers."))

    # Which fields are required, and why.
    required: dict[str, str] = {}
    if form is not None:
        for name in form.fields_for(exempt_reason if reason_allowed else ""):
            required.setdefault(name, f"{form.code} asks for it")
    coverage: list[CoverageSpec] = []
    tax_ids = dict(state_tax_ids or {})
    for code in states:
        try:
            st = rules.state(code)
        except UnknownStateError as exc:
            messages.append(FieldFinding("state", "error", str(exc), code))
            continue
        accepted, message, restriction, conf = False, "", "", "n/a"
        extra: tuple[str, ...] = ()
        if form is not None and exempt_reason in rules.reason_codes:
            acc = rules.form_acceptance(code, form.code, exempt_reason)
            accepted, message, restriction = acc.accepted, acc.message, acc.restriction
            extra = acc.requires_fields
            if not acc.accepted:
                messages.append(FieldFinding("form", "error", f"{code}: {acc.message}", code))
            for name in acc.requires_fields:
                required.setdefault(name, f"{st.name} requires it: {acc.restriction}".strip(": "))
        decision: ExpiryDecision | None = None
        if form is not None and exempt_reason in rules.reason_codes:
            decision = decide(code, form.code, exempt_reason, effective=effective_date, signed=signed_date,
                              override=expiry_override, override_reason=expiry_override_reason)
            conf = rules.expiry_rule(code, form.code, exempt_reason).confidence
        expiry_date = decision.expiry_date if decision else None
        status = None
        if review_state is not None and as_of is not None:
            status = line_status(review_state, expiry_date, as_of, window_days)
        coverage.append(CoverageSpec(
            state=code, state_name=st.name, accepted=accepted, acceptance_message=message,
            restriction=restriction, requires_fields=tuple(extra), permit_label=st.permit.label,
            permit_hint=st.permit.display, permit_pattern=st.permit.pattern,
            permit_confidence=st.permit.confidence, state_tax_id=tax_ids.get(code, ""),
            expiry_date=expiry_date, expiry_basis=decision.basis if decision else "",
            expiry_source=decision.source if decision else "",
            expiry_origin=decision.origin if decision else "",
            expiry_confidence=conf, status=status,
        ))
    if certificate_type == CertificateType.SINGLE_USE.value:
        required.setdefault("po_number", "a single-use certificate is limited to one order or invoice")
    if expiry_override is not None:
        required.setdefault("expiry_override_reason", "an expiry date set by hand needs a reason")

    # Which fields appear.
    present_set = set(present)
    wanted = set(BASE_FIELDS) | set(required)
    if form is None:
        wanted.update(GENERIC_FIELDS)
    if exempt_reason != "resale":
        wanted.add("exemption_detail")
    if form is not None and (form.single_use_allowed or certificate_type == CertificateType.SINGLE_USE.value):
        wanted.add("po_number")
    if form is not None and form.is_multistate:
        wanted.add("home_state")
    for name, info in _FIELD_INFO.items():
        if name in present_set or (info.attr and info.attr in present_set):
            wanted.add(name)

    pack_fields = {f.name: f for f in rules.fields}
    hint, pattern, strip, pconf = _permit_hint(rules, states, form)
    fields: list[FieldSpec] = []
    for name in _ORDER:
        if name not in wanted:
            continue
        info = _FIELD_INFO[name]
        pf = pack_fields.get(name)
        label = info.label or (pf.label if pf else name.replace("_", " ").capitalize())
        spec_hint: str = ""
        spec_pattern: str | None = None
        choices: tuple[tuple[str, str], ...] = ()
        if name == "purchaser_tax_id":
            if len(states) == 1:
                spec_hint = hint
                spec_pattern = pattern if pconf in ("high", "medium") else None
            elif form is not None and form.is_multistate:
                spec_hint = "Home-state number; each state's number goes in the coverage table"
        elif name == "purchaser_ein":
            spec_hint, spec_pattern = "NN-NNNNNNN", r"^[0-9]{9}$"
        elif info.kind == "date":
            spec_hint = "YYYY-MM-DD"
        elif name == "certificate_type":
            choices = ((CertificateType.BLANKET.value, "Blanket (all qualifying purchases)"),)
            single_ok = form is None or form.single_use_allowed
            if single_ok or certificate_type == CertificateType.SINGLE_USE.value:
                choices += ((CertificateType.SINGLE_USE.value, "Single use (one order / invoice)"),)
        fields.append(FieldSpec(
            name=name, attr=info.attr, label=label, kind=info.kind, group=info.group,
            required=name in required and info.kind != "info", description=pf.description if pf else "",
            hint=spec_hint, pattern=spec_pattern, pattern_strip=strip if name == "purchaser_tax_id" else "-",
            pattern_confidence=pconf if name == "purchaser_tax_id" else "high", choices=choices,
            required_because=required.get(name, ""),
        ))

    # The certificate's expiry: the earliest line.
    dated = [c for c in coverage if c.expiry_date is not None]
    first: CoverageSpec | None = coverage[0] if coverage else None
    if dated:
        first = min(dated, key=lambda c: c.expiry_date or dt.date.max)
    if first is not None and len(coverage) > 1 and dated:
        basis = f"{first.state} (earliest of {len(coverage)} states): {first.expiry_basis}"
    else:
        basis = first.expiry_basis if first else "Expiry not computed: no state"
    expiry = ExpirySpec(
        date=first.expiry_date if first else None, basis=basis,
        source=first.expiry_source if first else "", origin=first.expiry_origin if first else "",
        confidence=first.expiry_confidence if first else "",
        printed_on_form="expiry_date" in required, override=expiry_override,
        override_reason=expiry_override_reason,
    )
    return FormSpec(
        form_code=form.code if form else form_code, form_name=form.name if form else "",
        form_known=form is not None, multistate=bool(form and form.is_multistate), states=states,
        exempt_reason=exempt_reason, reasons=reasons, reason_allowed=reason_allowed,
        fields=tuple(fields), coverage=tuple(coverage), expiry=expiry,
        single_use_allowed=bool(form and form.single_use_allowed), form_note=form.note if form else "",
        form_source=form.source if form else "", messages=tuple(messages), rules_version=rules.version,
    )


def spec_for_input(rules: RulesPack, data: Any, *, review_state: str | None = None,
                   as_of: dt.date | None = None, window_days: int = DEFAULT_EXPIRING_SOON_DAYS,
                   decide: ExpiryDecider | None = None) -> FormSpec:
    """The spec for a :class:`~ecms_desktop.services.certificates.service.CertificateInput`."""
    present = [name for name in _FIELD_INFO if _FIELD_INFO[name].attr
               and getattr(data, _FIELD_INFO[name].attr) not in (None, "", False)]
    return build_form_spec(
        rules, form_code=data.form_code, states=[line.state for line in data.lines],
        exempt_reason=data.exempt_reason, certificate_type=data.certificate_type,
        effective_date=data.effective_date, signed_date=data.signed_date,
        expiry_override=data.expiry_override, expiry_override_reason=data.expiry_override_reason,
        state_tax_ids={line.state: line.state_tax_id for line in data.lines}, present=present,
        review_state=review_state, as_of=as_of, window_days=window_days, decide=decide,
    )


def _empty(value: Any) -> bool:
    return value is None or value is False or (isinstance(value, str) and not value.strip())


def local_findings(spec: FormSpec, values: Mapping[str, Any]) -> list[FieldFinding]:
    """Problems visible from the form alone: required fields left empty, permit and EIN numbers that
    do not fit their format, a state that does not accept the form. ``values`` maps storage
    attributes (``signed``, ``purchaser_tax_id``...) to what was typed; ``state_tax_ids`` (a mapping)
    holds each coverage line's number."""
    import re

    out: list[FieldFinding] = list(spec.messages)
    for f in spec.fields:
        if f.kind == "info" or not f.attr:
            continue
        value = values.get(f.attr)
        if f.required and _empty(value):
            what = "must be ticked" if f.kind == "bool" else "is required"
            because = f" ({f.required_because})" if f.required_because else ""
            out.append(FieldFinding(f.name, "error", f"{f.label} {what}{because}."))
            continue
        if f.pattern and isinstance(value, str) and value.strip():
            cleaned = value.strip().upper()
            for ch in f.pattern_strip:
                cleaned = cleaned.replace(ch, "")
            if re.fullmatch(f.pattern, cleaned) is None:
                severity = "error" if f.pattern_confidence == "high" else "warning"
                expected = f.hint or "the expected format"
                text = f"{value.strip()!r} does not look like {expected}."
                out.append(FieldFinding(f.name, severity, text))
    if spec.expiry.override is not None and _empty(values.get("expiry_override_reason")):
        out.append(FieldFinding("expiry_override_reason", "error",
                                "An expiry date set by hand needs a reason."))
    ids = values.get("state_tax_ids") or {}
    if spec.multistate:
        for line in spec.coverage:
            number = str(ids.get(line.state, line.state_tax_id) or "").strip()
            if number and line.permit_pattern and line.permit_confidence == "high":
                cleaned = number.upper().replace(" ", "").replace("-", "")
                if re.fullmatch(line.permit_pattern, cleaned) is None:
                    out.append(FieldFinding("state_tax_id", "warning",
                                            f"{number!r} does not look like {line.permit_hint}.", line.state))
    return out

