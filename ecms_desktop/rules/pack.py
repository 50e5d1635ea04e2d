"""Typed, Qt-free loader for the state rules pack (``resources/rules``).

The rules pack is versioned JSON data (see ``resources/rules/README.md``):

* ``pack.json`` - version, exempt reason codes and the certificate field vocabulary;
* ``states/XX.json`` - one file per state + DC;
* ``forms/*.json`` - the multistate forms (SST F0003, MTC uniform certificate);
* ``schema/*.schema.json`` - the JSON Schemas (draft 2020-12) every file is checked against.

Loading checks each file strictly against its schema (unknown keys, bad enum values, unknown
field names or reason codes raise :class:`RulesPackError` naming the file, the JSON path and the
problem in words), then what a schema cannot say (file names, form codes across files), and
returns frozen dataclasses.
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
from typing import Any, Protocol, cast

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


#: JSON types in words, for messages.
_TYPE_WORDS = {"object": "an object", "array": "a list", "string": "a string", "boolean": "true or false",
               "integer": "a whole number", "number": "a number", "null": "null"}


def _shown(value: Any) -> str:
    """A JSON value as a message shows it: scalars as written, objects and lists by kind."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return json.dumps(value, ensure_ascii=False)


def _json_path(parts: Iterable[str | int]) -> str:
    """``$.forms[0].required_fields[2]``; keys that are not plain names as ``['PDF field 1']``."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{part!r}]"
    return out


def _inline_refs(schema: dict[str, Any], label: str) -> dict[str, Any]:
    """The schema with every local ``$ref`` (``#/$defs/...``) replaced by what it names: jsonschema
    validates the rules pack about twice as fast without resolving references on the way."""

    def inline(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [inline(v, seen) for v in node]
        if not isinstance(node, dict):
            return node
        if "$ref" not in node:
            return {k: inline(v, seen) for k, v in node.items() if k != "$defs"}
        ref = node["$ref"]
        if not ref.startswith("#/") or ref in seen:
            raise RulesPackError(f"{label}: {ref}: only local, non-recursive references are supported")
        target: Any = schema
        try:
            for part in ref[2:].split("/"):
                target = target[part]
        except (KeyError, TypeError):
            raise RulesPackError(f"{label}: {ref}: the reference names nothing in the schema") from None
        resolved = inline(target, (*seen, ref))
        rest = {k: inline(v, seen) for k, v in node.items() if k != "$ref"}
        if set(rest) <= {"description", "title"}:
            return {**resolved, **rest}
        return {"allOf": [resolved], **rest}

    return cast(dict[str, Any], inline(schema, ()))


class _SchemaCheck:
    """One kind of rules-pack file checked against the JSON Schema the pack ships for it
    (``schema/<kind>.schema.json``), with messages that name the file, the JSON path and what is
    wrong in words (``states/TX.json: $.mtc.surprise: unknown key 'surprise'``)."""

    def __init__(self, root: _Traversable, schema_file: str) -> None:
        # jsonschema (and its referencing machinery) is imported when a pack is loaded, not with this
        # module: it takes about 0.1 s, which commands that never read the rules should not pay.
        import jsonschema

        label = f"schema/{schema_file}"
        raw: dict[str, Any] = _read_json(root.joinpath("schema", schema_file), label)
        if not isinstance(raw, dict):
            raise RulesPackError(f"{label}: not a JSON Schema (expected an object)")
        # The schemas themselves are checked against JSON Schema's meta-schema by tests/rules, not on
        # every start (that alone takes longer than checking the whole pack).
        self.schema = _inline_refs(raw, label)
        self.validator = jsonschema.Draft202012Validator(self.schema, format_checker=jsonschema.FormatChecker())
        self.best_match = jsonschema.exceptions.best_match
        self.schema_error = jsonschema.SchemaError
        self.label = label
        # The pack's vocabularies, named in messages about an unknown value.
        defs = raw.get("$defs", {})
        self.vocabularies: dict[tuple[Any, ...], str] = {}
        if "field" in defs:
            self.vocabularies[tuple(defs["field"]["enum"])] = "unknown certificate field name"
        if "reason" in defs:
            self.vocabularies[tuple(defs["reason"]["enum"])] = "unknown exempt reason code"

    def check(self, data: Any, label: str) -> dict[str, Any]:
        """``data`` when it fits the schema; else :class:`RulesPackError` for the most relevant problem."""
        try:
            error = self.best_match(self.validator.iter_errors(data))
        except self.schema_error as exc:
            raise RulesPackError(f"{self.label}: not a valid JSON Schema: {exc.message}") from None
        if error is not None:
            path, message = self._describe(error)
            raise RulesPackError(f"{label}: {path}: {message}")
        return cast(dict[str, Any], data)

    def _describe(self, error: Any) -> tuple[str, str]:
        path: list[str | int] = list(error.absolute_path)
        kind, value, limit = error.validator, error.instance, error.validator_value
        when = self._condition(list(error.absolute_schema_path))
        if "propertyNames" in error.absolute_schema_path:
            path.append(value)  # the key itself is what is wrong
        if kind == "additionalProperties":
            known = error.schema.get("properties", {})
            extra = next(k for k in value if k not in known)
            path.append(extra)
            message = f"unknown key {extra!r}"
        elif kind == "required":
            missing = next(k for k in limit if k not in value)
            path.append(missing)
            message = f"missing required key {missing!r}"
        elif kind == "enum":
            vocabulary = self.vocabularies.get(tuple(limit))
            message = (f"{vocabulary} {value!r}" if vocabulary
                       else f"{value!r} is not one of {', '.join(str(v) for v in limit)}")
        elif kind == "const":
            message = f"expected {_shown(limit)}{when}, got {_shown(value)}"
        elif kind == "type":
            wanted = [limit] if isinstance(limit, str) else list(limit)
            message = f"expected {' or '.join(_TYPE_WORDS.get(w, w) for w in wanted)}{when}, got {_shown(value)}"
        elif (kind == "minLength" and limit == 1) or (kind == "pattern" and limit == r"\S"):
            message = "must not be empty"
        elif kind == "minItems":
            message = (f"must list at least one entry{when}" if limit == 1
                       else f"has {len(value)} entries{when}; at least {limit} are needed")
        elif kind == "maxItems":
            message = f"must be empty{when}" if limit == 0 else f"has {len(value)} entries; at most {limit} are allowed"
        elif kind == "uniqueItems":
            message = "has duplicate entries"
        elif kind == "minimum":
            message = f"expected at least {limit}{when}, got {_shown(value)}"
        elif kind == "pattern":
            described = error.schema.get("description", "")
            message = (f"{value!r} is not of the form {described}" if described and len(described) < 40
                       else f"{value!r} does not match the pattern {limit}")
        elif kind in ("oneOf", "anyOf") and all("type" in s for s in limit):
            wanted = [s["type"] for s in limit]
            message = f"expected {' or '.join(_TYPE_WORDS.get(w, w) for w in wanted)}, got {_shown(value)}"
        elif kind == "format" and limit == "regex":
            try:
                re.compile(value)
                message = error.message
            except re.error as exc:
                message = f"invalid regular expression: {exc}"
        else:
            message = error.message
        return _json_path(path), message

    def _condition(self, schema_path: list[str | int]) -> str:
        """`` when kind is 'none'`` for a rule that applies under a JSON Schema if/then (`` unless ...``
        under its else), else empty."""
        branches = [i for i, part in enumerate(schema_path) if part in ("then", "else")]
        if not branches:
            return ""
        at = branches[-1]
        node: Any = self.schema
        for part in schema_path[:at]:
            node = node[part]
        parts = []
        for name, rule in node.get("if", {}).get("properties", {}).items():
            if "const" in rule:
                parts.append(f"{name} is {rule['const']!r}")
            elif "enum" in rule:
                parts.append(f"{name} is {' or '.join(repr(v) for v in rule['enum'])}")
        if not parts:
            return ""
        return f" {'when' if schema_path[at] == 'then' else 'unless'} {' and '.join(parts)}"


# --------------------------------------------------------------------------- loading


def _expiry(d: Mapping[str, Any]) -> ExpiryRule:
    return ExpiryRule(kind=d["kind"], years=d["years"], basis=d["basis"], text=d["text"], source=d["source"],
                      confidence=d["confidence"])


def _form(d: Mapping[str, Any], *, states: tuple[str, ...]) -> FormRule:
    return FormRule(
        code=d["code"],
        number=d.get("number", ""),
        name=d["name"],
        purpose=d["purpose"],
        exempt_reasons=tuple(d["exempt_reasons"]),
        required_fields=tuple(d["required_fields"]),
        single_use_allowed=d["single_use_allowed"],
        expiry=None if d["expiry"] is None else _expiry(d["expiry"]),
        pdf_field_map=_freeze_map(d["pdf_field_map"]),
        note=d["note"],
        source=d["source"],
        confidence=d["confidence"],
        states=states,
        issuer=d.get("issuer", ""),
        revision=d.get("revision", ""),
        required_fields_by_reason=_freeze_map(
            {reason: tuple(fields) for reason, fields in d.get("required_fields_by_reason", {}).items()}),
        reason_letters=_freeze_map(d.get("reason_letters", {})),
    )


def _state(d: Mapping[str, Any], label: str, expected_code: str) -> StateRule:
    code = d["state"]
    if code != expected_code:
        raise RulesPackError(f"{label}: $.state: {code!r} does not match the file name {expected_code!r}")
    for i, f in enumerate(d["forms"]):
        if not f["code"].startswith(code + "-"):
            raise RulesPackError(f"{label}: $.forms[{i}].code: {f['code']!r} must start with {code + '-'!r}")
    s, m, pm, g = d["sst"], d["mtc"], d["permit"], d["good_faith"]
    return StateRule(
        state=code,
        name=d["name"],
        has_sales_tax=d["has_sales_tax"],
        sales_tax_note=d["sales_tax_note"],
        sst=SstRule(membership=s["membership"], resale_only=s["resale_only"], restriction=s["restriction"],
                    note=s["note"], source=s["source"], confidence=s["confidence"]),
        mtc=MtcRule(acceptance=m["acceptance"], allowed_reasons=tuple(m["allowed_reasons"]),
                    requires_fields=tuple(m["requires_fields"]), restriction=m["restriction"], source=m["source"],
                    confidence=m["confidence"]),
        forms=tuple(_form(f, states=(code,)) for f in d["forms"]),
        refused_forms=tuple(
            RefusedForm(code=normalize_form_code(r["code"]), reasons=tuple(r["reasons"]), message=r["message"],
                        source=r["source"], confidence=r["confidence"])
            for r in d["refused_forms"]),
        expiry_resale=_expiry(d["expiry"]["resale"]),
        expiry_exemption=_expiry(d["expiry"]["exemption"]),
        permit=PermitFormat(label=pm["label"], pattern=pm["pattern"], display=pm["display"], strip=pm["strip"],
                            confidence=pm["confidence"], source=pm["source"], lookup_url=pm["lookup_url"],
                            lookup_name=pm["lookup_name"]),
        good_faith=GoodFaith(text=g["text"], days=g["days"], source=g["source"], confidence=g["confidence"]),
        confidence=_freeze_map(d["confidence"]),
        sources=tuple(d["sources"]),
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
    meta = _SchemaCheck(root, "pack.schema.json").check(_read_json(root.joinpath("pack.json"), "pack.json"),
                                                         "pack.json")
    state_check = _SchemaCheck(root, "state.schema.json")
    states: dict[str, StateRule] = {}
    for node in _json_files(root.joinpath("states")):
        label = f"states/{node.name}"
        states[node.name[:-5]] = _state(state_check.check(_read_json(node, label), label), label, node.name[:-5])
    if not states:
        raise RulesPackError("states/: no state files found")

    forms: dict[str, FormRule] = {}
    for st in states.values():
        for form in st.forms:
            if form.code in forms:
                raise RulesPackError(f"states/{st.state}.json: duplicate form code {form.code!r}")
            forms[form.code] = form
    form_check = _SchemaCheck(root, "form.schema.json")
    for node in _json_files(root.joinpath("forms")):
        label = f"forms/{node.name}"
        code = node.name[:-5]
        form = _form(form_check.check(_read_json(node, label), label), states=())
        if form.code != code:
            raise RulesPackError(f"{label}: $.code: {form.code!r} does not match the file name {code!r}")
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
        version=meta["version"],
        title=meta["title"],
        exempt_reasons=tuple(ExemptReason(r["code"], r["label"], r["description"]) for r in meta["exempt_reasons"]),
        fields=tuple(FieldDef(f["name"], f["label"], f["description"]) for f in meta["fields"]),
        states=MappingProxyType(dict(sorted(states.items()))),
        forms=MappingProxyType(dict(sorted(forms.items()))),
        generated_from=tuple(meta["generated_from"]),
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
