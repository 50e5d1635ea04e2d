"""Typed, Qt-free loader for the state rules pack (``resources/rules``).

The rules pack is versioned JSON data (see ``resources/rules/README.md``):

* ``pack.json`` - version, exempt reason codes and the certificate field vocabulary;
* ``states/XX.json`` - one file per state + DC;
* ``forms/*.json`` - the multistate forms (SST F0003, MTC uniform certificate);
* ``schema/*.schema.json`` - JSON Schemas (draft 2020-12) used by the tests.

Loading validates structure strictly *without* jsonschema (unknown keys, bad enum
values, unknown field names or reason codes raise :class:`RulesPackError` naming the
file and the JSON path), and returns frozen dataclasses.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from ecms_desktop.paths import resource_root

__all__ = [
    "CONFIDENCE_LEVELS",
    "EXPIRY_BASES",
    "EXPIRY_KINDS",
    "REFUSAL_RULES",
    "Acceptance",
    "AcceptanceTable",
    "ExemptReason",
    "ExpiryRule",
    "FieldDef",
    "FormRule",
    "GoodFaith",
    "MtcRule",
    "PermitFormat",
    "RefusedForm",
    "RulesPack",
    "RulesPackError",
    "SstRule",
    "StateRule",
    "UnknownFormError",
    "UnknownStateError",
    "default_rules_dir",
    "load_rules_pack",
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
PURPOSES: tuple[str, ...] = ("resale", "exemption", "both")
SST_MEMBERSHIPS: tuple[str, ...] = ("full", "associate", "none")
MTC_ACCEPTANCE: tuple[str, ...] = ("yes", "restricted", "no", "n/a")
CONFIDENCE_KEYS: tuple[str, ...] = (
    "overall",
    "form",
    "mtc",
    "sst",
    "expiry",
    "exempt_forms",
    "good_faith",
    "permit_format",
    "verification",
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


def _freeze_map(data: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(data))


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
    the project's default practice, or not applicable.
    """

    kind: str
    years: int | None
    basis: str
    text: str
    source: str
    confidence: str


@dataclass(frozen=True)
class PermitFormat:
    """Format of a state's sales tax permit / registration number."""

    label: str
    pattern: str | None
    display: str
    strip: str
    confidence: str
    source: str
    lookup_url: str | None
    lookup_name: str

    def normalize(self, number: str) -> str:
        """Upper-case ``number`` and remove the ``strip`` characters (and outer blanks)."""
        cleaned = number.strip().upper()
        for ch in self.strip:
            cleaned = cleaned.replace(ch, "")
        return cleaned

    def matches(self, number: str) -> bool | None:
        """Whether ``number`` fits the known format; ``None`` when no pattern is known.

        Check ``confidence`` before treating a mismatch as an error: only
        high-confidence formats are reliable.
        """
        if self.pattern is None:
            return None
        return re.fullmatch(self.pattern, self.normalize(number)) is not None


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
class SstRule:
    """Streamlined Sales Tax membership and the resulting acceptance of SST F0003."""

    membership: str
    resale_only: bool
    restriction: str
    note: str
    source: str
    confidence: str


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
    form's own; ``message`` explains the decision for a user. ``no_sales_tax``: the state
    levies no statewide sales tax, so there is nothing to accept (``accepted`` is false but
    nothing is refused). ``rule`` is the stable id of a refusal (``form.not_accepted``,
    ``sst.refused``, ``mtc.refused``; empty otherwise).
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

    def form_acceptance(self, state: str, form_code: str, reason: str) -> Acceptance:
        """Whether ``state`` accepts a certificate on ``form_code`` for ``reason``: the one place that
        decides it, for validation (an error) and determination (no coverage) alike."""
        self._check_reason(reason)
        st = self.state(state)
        form = self.form(form_code)
        if not st.has_sales_tax:
            return self._no_sales_tax(st, form, reason)
        answer = self._acceptance(st, form, reason)
        if answer.accepted:
            return answer
        return replace(answer, rule=REFUSAL_RULES.get(form.code, "form.not_accepted"))

    def _acceptance(self, st: StateRule, form: FormRule, reason: str) -> Acceptance:
        refused = st.refusal(form.code, reason)
        if refused is not None:
            return Acceptance(False, "", (), refused.source, refused.confidence, refused.message)
        if form.code == SST_FORM_CODE:
            return self._sst_acceptance(st, reason)
        if form.code == MTC_FORM_CODE:
            return self._mtc_acceptance(st, reason)
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
        message = f"{st.state} has no statewide sales tax"
        restriction = ""
        requires: tuple[str, ...] = ()
        if form.code == MTC_FORM_CODE and st.mtc.acceptance in ("yes", "restricted"):
            # Alaska: local jurisdictions (ARSSTC) accept the MTC form under conditions.
            restriction = st.mtc.restriction
            requires = st.mtc.requires_fields
            message += f"; local jurisdictions only: {st.mtc.restriction}"
        return Acceptance(False, restriction, requires, st.mtc.source, st.confidence["overall"], message,
                          no_sales_tax=True)

    @staticmethod
    def _sst_acceptance(st: StateRule, reason: str) -> Acceptance:
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
    def _mtc_acceptance(st: StateRule, reason: str) -> Acceptance:
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


# --------------------------------------------------------------------------- validation


class _Traversable(Protocol):
    """The subset of importlib.resources.abc.Traversable used here (Path fits it too)."""

    @property
    def name(self) -> str: ...
    def iterdir(self) -> Iterator[Any]: ...
    def joinpath(self, *descendants: str) -> Any: ...
    def is_file(self) -> bool: ...
    def is_dir(self) -> bool: ...
    def read_text(self, encoding: str | None = None) -> str: ...


class _Checker:
    """Strict structural checks with file + JSON-path error messages."""

    def __init__(self, file: str, reasons: Iterable[str], fields: Iterable[str]) -> None:
        self.file = file
        self.reasons = frozenset(reasons)
        self.fields = frozenset(fields)

    def fail(self, path: str, message: str) -> RulesPackError:
        return RulesPackError(f"{self.file}: {path}: {message}")

    def obj(
        self, value: Any, path: str, required: Iterable[str], optional: Iterable[str] = ()
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"expected an object, got {type(value).__name__}")
        req = tuple(required)
        allowed = set(req) | set(optional)
        for key in value:
            if key not in allowed:
                raise self.fail(f"{path}.{key}", f"unknown key {key!r}")
        for key in req:
            if key not in value:
                raise self.fail(f"{path}.{key}", f"missing required key {key!r}")
        return value

    def str_(self, value: Any, path: str, *, nonempty: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected a string, got {type(value).__name__}")
        if nonempty and not value.strip():
            raise self.fail(path, "must not be empty")
        return value

    def opt_str(self, value: Any, path: str) -> str | None:
        return None if value is None else self.str_(value, path)

    def bool_(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true/false, got {value!r}")
        return value

    def opt_int(self, value: Any, path: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(path, f"expected a positive integer or null, got {value!r}")
        return value

    def enum(self, value: Any, path: str, allowed: Iterable[str]) -> str:
        options = tuple(allowed)
        if value not in options:
            raise self.fail(path, f"{value!r} is not one of {', '.join(options)}")
        return str(value)

    def list_(self, value: Any, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {type(value).__name__}")
        return value

    def reasons_(self, value: Any, path: str) -> tuple[str, ...]:
        items = self.list_(value, path)
        for i, item in enumerate(items):
            if item not in self.reasons:
                raise self.fail(f"{path}[{i}]", f"unknown exempt reason code {item!r}")
        if len(set(items)) != len(items):
            raise self.fail(path, "duplicate reason codes")
        return tuple(items)

    def fields_(self, value: Any, path: str) -> tuple[str, ...]:
        items = self.list_(value, path)
        for i, item in enumerate(items):
            if item not in self.fields:
                raise self.fail(f"{path}[{i}]", f"unknown certificate field name {item!r}")
        if len(set(items)) != len(items):
            raise self.fail(path, "duplicate field names")
        return tuple(items)

    def confidence(self, value: Any, path: str) -> str:
        return self.enum(value, path, CONFIDENCE_LEVELS)

    def source(self, value: Any, path: str) -> str:
        return self.str_(value, path, nonempty=True)

    def expiry(self, value: Any, path: str) -> ExpiryRule:
        d = self.obj(value, path, ("kind", "years", "basis", "text", "source", "confidence"))
        kind = self.enum(d["kind"], f"{path}.kind", EXPIRY_KINDS)
        years = self.opt_int(d["years"], f"{path}.years")
        if kind == "none" and years is not None:
            raise self.fail(f"{path}.years", "must be null when kind is 'none'")
        if kind != "none" and years is None:
            raise self.fail(f"{path}.years", f"must be a positive integer when kind is {kind!r}")
        return ExpiryRule(
            kind=kind,
            years=years,
            basis=self.enum(d["basis"], f"{path}.basis", EXPIRY_BASES),
            text=self.str_(d["text"], f"{path}.text", nonempty=True),
            source=self.source(d["source"], f"{path}.source"),
            confidence=self.confidence(d["confidence"], f"{path}.confidence"),
        )

    def pdf_map(self, value: Any, path: str) -> Mapping[str, str]:
        if not isinstance(value, dict):
            raise self.fail(path, "expected an object")
        for key, target in value.items():
            if target not in self.fields:
                raise self.fail(f"{path}[{key!r}]", f"unknown certificate field name {target!r}")
        return _freeze_map(value)

    def by_reason(self, value: Any, path: str) -> Mapping[str, tuple[str, ...]]:
        if not isinstance(value, dict):
            raise self.fail(path, "expected an object")
        out: dict[str, tuple[str, ...]] = {}
        for key, fields in value.items():
            if key not in self.reasons:
                raise self.fail(f"{path}.{key}", f"unknown exempt reason code {key!r}")
            out[key] = self.fields_(fields, f"{path}.{key}")
        return _freeze_map(out)

    def form(self, value: Any, path: str, *, states: tuple[str, ...], multistate: bool) -> FormRule:
        base = (
            "code",
            "name",
            "purpose",
            "exempt_reasons",
            "required_fields",
            "single_use_allowed",
            "expiry",
            "pdf_field_map",
            "note",
            "source",
            "confidence",
        )
        if multistate:
            required = (*base, "issuer")
            optional: tuple[str, ...] = (
                "number",
                "revision",
                "reason_letters",
                "reason_letter_labels",
                "required_fields_by_reason",
            )
        else:
            required = (*base, "number")
            optional = ("required_fields_by_reason",)
        d = self.obj(value, path, required, optional)
        code = self.str_(d["code"], f"{path}.code", nonempty=True)
        if normalize_form_code(code) != code:
            raise self.fail(f"{path}.code", f"form code {code!r} is not normalised")
        letters: dict[str, str] = {}
        if "reason_letters" in d:
            raw = d["reason_letters"]
            if not isinstance(raw, dict):
                raise self.fail(f"{path}.reason_letters", "expected an object")
            for letter, reason in raw.items():
                if reason not in self.reasons:
                    raise self.fail(
                        f"{path}.reason_letters.{letter}", f"unknown exempt reason code {reason!r}"
                    )
                letters[letter] = reason
        if "reason_letter_labels" in d and not isinstance(d["reason_letter_labels"], dict):
            raise self.fail(f"{path}.reason_letter_labels", "expected an object")
        reasons = self.reasons_(d["exempt_reasons"], f"{path}.exempt_reasons")
        if not reasons:
            raise self.fail(f"{path}.exempt_reasons", "must list at least one reason")
        return FormRule(
            code=code,
            number=self.str_(d.get("number", ""), f"{path}.number"),
            name=self.str_(d["name"], f"{path}.name", nonempty=True),
            purpose=self.enum(d["purpose"], f"{path}.purpose", PURPOSES),
            exempt_reasons=reasons,
            required_fields=self.fields_(d["required_fields"], f"{path}.required_fields"),
            single_use_allowed=self.bool_(d["single_use_allowed"], f"{path}.single_use_allowed"),
            expiry=None if d["expiry"] is None else self.expiry(d["expiry"], f"{path}.expiry"),
            pdf_field_map=self.pdf_map(d["pdf_field_map"], f"{path}.pdf_field_map"),
            note=self.str_(d["note"], f"{path}.note"),
            source=self.source(d["source"], f"{path}.source"),
            confidence=self.confidence(d["confidence"], f"{path}.confidence"),
            states=states,
            issuer=self.str_(d.get("issuer", ""), f"{path}.issuer"),
            revision=self.str_(d.get("revision", ""), f"{path}.revision"),
            required_fields_by_reason=self.by_reason(
                d.get("required_fields_by_reason", {}), f"{path}.required_fields_by_reason"
            ),
            reason_letters=_freeze_map(letters),
        )

    def state(self, value: Any, expected_code: str) -> StateRule:
        p = "$"
        d = self.obj(
            value,
            p,
            (
                "state",
                "name",
                "has_sales_tax",
                "sales_tax_note",
                "sst",
                "mtc",
                "forms",
                "refused_forms",
                "expiry",
                "permit",
                "good_faith",
                "confidence",
                "sources",
            ),
        )
        code = self.str_(d["state"], f"{p}.state")
        if code != expected_code:
            raise self.fail(f"{p}.state", f"{code!r} does not match the file name {expected_code!r}")
        s = self.obj(
            d["sst"], f"{p}.sst", ("membership", "resale_only", "restriction", "note", "source", "confidence")
        )
        sst = SstRule(
            membership=self.enum(s["membership"], f"{p}.sst.membership", SST_MEMBERSHIPS),
            resale_only=self.bool_(s["resale_only"], f"{p}.sst.resale_only"),
            restriction=self.str_(s["restriction"], f"{p}.sst.restriction"),
            note=self.str_(s["note"], f"{p}.sst.note"),
            source=self.source(s["source"], f"{p}.sst.source"),
            confidence=self.confidence(s["confidence"], f"{p}.sst.confidence"),
        )
        m = self.obj(
            d["mtc"],
            f"{p}.mtc",
            ("acceptance", "allowed_reasons", "requires_fields", "restriction", "source", "confidence"),
        )
        mtc = MtcRule(
            acceptance=self.enum(m["acceptance"], f"{p}.mtc.acceptance", MTC_ACCEPTANCE),
            allowed_reasons=self.reasons_(m["allowed_reasons"], f"{p}.mtc.allowed_reasons"),
            requires_fields=self.fields_(m["requires_fields"], f"{p}.mtc.requires_fields"),
            restriction=self.str_(m["restriction"], f"{p}.mtc.restriction"),
            source=self.source(m["source"], f"{p}.mtc.source"),
            confidence=self.confidence(m["confidence"], f"{p}.mtc.confidence"),
        )
        if mtc.acceptance in ("no", "n/a") and mtc.allowed_reasons:
            raise self.fail(f"{p}.mtc.allowed_reasons", "must be empty when the MTC form is not accepted")
        if mtc.acceptance in ("yes", "restricted") and not mtc.allowed_reasons:
            raise self.fail(f"{p}.mtc.allowed_reasons", "must list the reasons the MTC form is accepted for")
        forms = tuple(
            self.form(f, f"{p}.forms[{i}]", states=(code,), multistate=False)
            for i, f in enumerate(self.list_(d["forms"], f"{p}.forms"))
        )
        for i, form in enumerate(forms):
            if not form.code.startswith(code + "-"):
                raise self.fail(f"{p}.forms[{i}].code", f"{form.code!r} must start with {code + '-'!r}")
        refused = []
        for i, r in enumerate(self.list_(d["refused_forms"], f"{p}.refused_forms")):
            rp = f"{p}.refused_forms[{i}]"
            rd = self.obj(r, rp, ("code", "reasons", "message", "source", "confidence"))
            refused.append(
                RefusedForm(
                    code=normalize_form_code(self.str_(rd["code"], f"{rp}.code", nonempty=True)),
                    reasons=self.reasons_(rd["reasons"], f"{rp}.reasons"),
                    message=self.str_(rd["message"], f"{rp}.message", nonempty=True),
                    source=self.source(rd["source"], f"{rp}.source"),
                    confidence=self.confidence(rd["confidence"], f"{rp}.confidence"),
                )
            )
        e = self.obj(d["expiry"], f"{p}.expiry", ("resale", "exemption"))
        pm = self.obj(
            d["permit"],
            f"{p}.permit",
            ("label", "pattern", "display", "strip", "confidence", "source", "lookup_url", "lookup_name"),
        )
        pattern = self.opt_str(pm["pattern"], f"{p}.permit.pattern")
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise self.fail(f"{p}.permit.pattern", f"invalid regular expression: {exc}") from None
        permit = PermitFormat(
            label=self.str_(pm["label"], f"{p}.permit.label", nonempty=True),
            pattern=pattern,
            display=self.str_(pm["display"], f"{p}.permit.display", nonempty=True),
            strip=self.str_(pm["strip"], f"{p}.permit.strip"),
            confidence=self.confidence(pm["confidence"], f"{p}.permit.confidence"),
            source=self.source(pm["source"], f"{p}.permit.source"),
            lookup_url=self.opt_str(pm["lookup_url"], f"{p}.permit.lookup_url"),
            lookup_name=self.str_(pm["lookup_name"], f"{p}.permit.lookup_name", nonempty=True),
        )
        g = self.obj(d["good_faith"], f"{p}.good_faith", ("text", "days", "source", "confidence"))
        good_faith = GoodFaith(
            text=self.str_(g["text"], f"{p}.good_faith.text", nonempty=True),
            days=self.opt_int(g["days"], f"{p}.good_faith.days"),
            source=self.source(g["source"], f"{p}.good_faith.source"),
            confidence=self.confidence(g["confidence"], f"{p}.good_faith.confidence"),
        )
        c = self.obj(d["confidence"], f"{p}.confidence", CONFIDENCE_KEYS)
        confidence = {k: self.confidence(c[k], f"{p}.confidence.{k}") for k in CONFIDENCE_KEYS}
        sources = self.list_(d["sources"], f"{p}.sources")
        if not sources:
            raise self.fail(f"{p}.sources", "must list at least one source")
        return StateRule(
            state=code,
            name=self.str_(d["name"], f"{p}.name", nonempty=True),
            has_sales_tax=self.bool_(d["has_sales_tax"], f"{p}.has_sales_tax"),
            sales_tax_note=self.str_(d["sales_tax_note"], f"{p}.sales_tax_note"),
            sst=sst,
            mtc=mtc,
            forms=forms,
            refused_forms=tuple(refused),
            expiry_resale=self.expiry(e["resale"], f"{p}.expiry.resale"),
            expiry_exemption=self.expiry(e["exemption"], f"{p}.expiry.exemption"),
            permit=permit,
            good_faith=good_faith,
            confidence=_freeze_map(confidence),
            sources=tuple(self.source(s_, f"{p}.sources[{i}]") for i, s_ in enumerate(sources)),
        )


def _read_json(node: _Traversable, label: str) -> Any:
    try:
        return json.loads(node.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesPackError(f"{label}: file not found") from None
    except json.JSONDecodeError as exc:
        raise RulesPackError(f"{label}: invalid JSON: {exc}") from None


def _json_files(folder: _Traversable) -> list[_Traversable]:
    if not folder.is_dir():
        return []
    return sorted(
        (n for n in folder.iterdir() if n.name.endswith(".json") and n.is_file()),
        key=lambda n: n.name,
    )


def _load(root: _Traversable) -> RulesPack:
    meta_checker = _Checker("pack.json", (), ())
    meta = meta_checker.obj(
        _read_json(root.joinpath("pack.json"), "pack.json"),
        "$",
        ("version", "title", "generated_from", "exempt_reasons", "fields"),
    )
    version = meta_checker.str_(meta["version"], "$.version", nonempty=True)
    if not re.fullmatch(r"[0-9]{4}\.[0-9]{1,2}\.[0-9]+", version):
        raise meta_checker.fail("$.version", f"{version!r} is not of the form YYYY.MM.N")
    reasons = []
    for i, r in enumerate(meta_checker.list_(meta["exempt_reasons"], "$.exempt_reasons")):
        rd = meta_checker.obj(r, f"$.exempt_reasons[{i}]", ("code", "label", "description"))
        reasons.append(
            ExemptReason(
                code=meta_checker.str_(rd["code"], f"$.exempt_reasons[{i}].code", nonempty=True),
                label=meta_checker.str_(rd["label"], f"$.exempt_reasons[{i}].label", nonempty=True),
                description=meta_checker.str_(rd["description"], f"$.exempt_reasons[{i}].description"),
            )
        )
    fields = []
    for i, f in enumerate(meta_checker.list_(meta["fields"], "$.fields")):
        fd = meta_checker.obj(f, f"$.fields[{i}]", ("name", "label", "description"))
        fields.append(
            FieldDef(
                name=meta_checker.str_(fd["name"], f"$.fields[{i}].name", nonempty=True),
                label=meta_checker.str_(fd["label"], f"$.fields[{i}].label", nonempty=True),
                description=meta_checker.str_(fd["description"], f"$.fields[{i}].description"),
            )
        )
    reason_codes = [r.code for r in reasons]
    field_names = [f.name for f in fields]

    states: dict[str, StateRule] = {}
    for node in _json_files(root.joinpath("states")):
        label = f"states/{node.name}"
        checker = _Checker(label, reason_codes, field_names)
        states[node.name[:-5]] = checker.state(_read_json(node, label), node.name[:-5])
    if not states:
        raise RulesPackError("states/: no state files found")

    forms: dict[str, FormRule] = {}
    for st in states.values():
        for form in st.forms:
            if form.code in forms:
                raise RulesPackError(f"states/{st.state}.json: duplicate form code {form.code!r}")
            forms[form.code] = form
    for node in _json_files(root.joinpath("forms")):
        label = f"forms/{node.name}"
        checker = _Checker(label, reason_codes, field_names)
        data = _read_json(node, label)
        code = node.name[:-5]
        form = checker.form(data, "$", states=(), multistate=True)
        if form.code != code:
            raise checker.fail("$.code", f"{form.code!r} does not match the file name {code!r}")
        forms[code] = form

    for required in (SST_FORM_CODE, MTC_FORM_CODE):
        if required not in forms:
            raise RulesPackError(f"forms/{required}.json: missing multistate form")
    for st in states.values():
        for i, refused in enumerate(st.refused_forms):
            if refused.code not in forms:
                raise RulesPackError(
                    f"states/{st.state}.json: $.refused_forms[{i}].code: unknown form {refused.code!r}"
                )

    # The multistate forms belong to the states that accept them for at least one reason.
    for code in (SST_FORM_CODE, MTC_FORM_CODE):
        accepting = tuple(
            s
            for s, rule in sorted(states.items())
            if any(_accepts(rule, forms[code], r) for r in forms[code].exempt_reasons)
        )
        forms[code] = replace(forms[code], states=accepting)

    return RulesPack(
        version=version,
        title=meta_checker.str_(meta["title"], "$.title", nonempty=True),
        exempt_reasons=tuple(reasons),
        fields=tuple(fields),
        states=MappingProxyType(dict(sorted(states.items()))),
        forms=MappingProxyType(dict(sorted(forms.items()))),
        generated_from=tuple(
            meta_checker.str_(x, f"$.generated_from[{i}]")
            for i, x in enumerate(meta_checker.list_(meta["generated_from"], "$.generated_from"))
        ),
    )


def _accepts(st: StateRule, form: FormRule, reason: str) -> bool:
    """Whether ``st`` accepts the multistate ``form`` for ``reason`` (used while loading)."""
    if not st.has_sales_tax or st.refusal(form.code, reason) is not None:
        return False
    if form.code == SST_FORM_CODE:
        return RulesPack._sst_acceptance(st, reason).accepted
    return RulesPack._mtc_acceptance(st, reason).accepted


# --------------------------------------------------------------------------- entry points


def default_rules_dir() -> _Traversable:
    """Location of the packaged rules pack: ``rules`` in :func:`ecms_desktop.paths.resource_root`."""
    return resource_root().joinpath("rules")


@functools.lru_cache(maxsize=1)
def _default_pack() -> RulesPack:
    return _load(default_rules_dir())


def load_rules_pack(path: Path | None = None) -> RulesPack:
    """Load and validate the rules pack.

    ``path`` is the rules directory (the one holding ``pack.json``) or ``pack.json``
    itself; ``None`` loads the packaged pack (cached). Raises :class:`RulesPackError`
    naming the file and JSON path of the first structural problem.
    """
    if path is None:
        return _default_pack()
    root = Path(path)
    if root.is_file() and root.name == "pack.json":
        root = root.parent
    if not root.is_dir():
        raise RulesPackError(f"{root}: rules pack directory not found")
    return _load(root)
