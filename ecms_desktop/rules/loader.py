"""Loading the state rules pack (``resources/rules``) into the frozen dataclasses of
:mod:`ecms_desktop.rules.pack`.

The rules pack is versioned JSON data (see ``resources/rules/README.md``):

* ``pack.json`` - version, exempt reason codes, the certificate field vocabulary and what reading a
  certificate uses for every form (generic labels, check marks, value formats);
* ``states/XX.json`` - one file per state + DC;
* ``forms/*.json`` - the multistate forms (SST F0003, MTC uniform certificate);
  every form, a state's or a multistate one, may carry ``identification`` (titles, number and revision
  patterns, printed labels and boxes);
* ``schema/*.schema.json`` - the JSON Schemas (draft 2020-12) every file is checked against.

Loading checks each file strictly against its schema (:mod:`ecms_desktop.rules.schema`: unknown keys,
bad enum values, unknown field names or reason codes raise :class:`~ecms_desktop.rules.pack.RulesPackError`
naming the file, the JSON path and the problem in words), then what a schema cannot say (file names,
form codes across files), and returns frozen dataclasses.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ecms_desktop.paths import resource_root
from ecms_desktop.rules.pack import (
    MTC_FORM_CODE,
    SST_FORM_CODE,
    ExemptReason,
    ExpiryRule,
    ExtractionVocabulary,
    FieldDef,
    FormIdentification,
    FormRule,
    GoodFaith,
    LabelPhrase,
    MtcRule,
    PermitFormat,
    PrintedPattern,
    RefusedForm,
    RevisionPattern,
    RulesPack,
    RulesPackError,
    SstRule,
    StateRule,
    TitlePhrase,
    normalize_form_code,
)
from ecms_desktop.rules.schema import SchemaCheck, Traversable, read_json

__all__ = ["default_rules_dir", "load_rules_pack"]


def _freeze_map(data: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(data))


def _expiry(d: Mapping[str, Any]) -> ExpiryRule:
    return ExpiryRule(kind=d["kind"], years=d["years"], basis=d["basis"], text=d["text"], source=d["source"],
                      confidence=d["confidence"])


def _labels(d: Mapping[str, Any]) -> Mapping[str, tuple[LabelPhrase, ...]]:
    return _freeze_map({
        name: tuple(LabelPhrase(text=p["text"], position=p["position"], part=p.get("part", 1),
                                anchor=p.get("anchor", ""), weight=float(p.get("weight", 1.0))) for p in phrases)
        for name, phrases in d.items()})


def _identification(d: Mapping[str, Any] | None) -> FormIdentification | None:
    if d is None:
        return None
    choices = d["choices"]
    return FormIdentification(
        titles=tuple(TitlePhrase(t["text"], t["source"]) for t in d["titles"]),
        numbers=tuple(PrintedPattern(n["pattern"], n["printed"], n["source"]) for n in d["numbers"]),
        revisions=tuple(RevisionPattern(r["pattern"], r["revision"], r["source"]) for r in d["revisions"]),
        labels=_labels(d["labels"]),
        type_choices=_freeze_map({k: tuple(v) for k, v in choices.get("certificate_type", {}).items()}),
        reason_choices=_freeze_map({k: tuple(v) for k, v in choices.get("exempt_reason", {}).items()}),
        source=d["source"],
        confidence=d["confidence"],
    )


def _extraction(d: Mapping[str, Any]) -> ExtractionVocabulary:
    return ExtractionVocabulary(label_fallbacks=_labels(d["label_fallbacks"]), check_marks=tuple(d["check_marks"]),
                                value_formats=_freeze_map(d["value_formats"]), source=d["source"])


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
        identification=_identification(d.get("identification")),
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


def _json_files(folder: Traversable) -> list[Traversable]:
    if not folder.is_dir():
        return []
    return sorted(
        (n for n in folder.iterdir() if n.name.endswith(".json") and n.is_file()),
        key=lambda n: n.name,
    )


def _load(root: Traversable) -> RulesPack:
    meta = SchemaCheck(root, "pack.schema.json").check(read_json(root.joinpath("pack.json"), "pack.json"),
                                                        "pack.json")
    state_check = SchemaCheck(root, "state.schema.json")
    states: dict[str, StateRule] = {}
    for node in _json_files(root.joinpath("states")):
        label = f"states/{node.name}"
        states[node.name[:-5]] = _state(state_check.check(read_json(node, label), label), label, node.name[:-5])
    if not states:
        raise RulesPackError("states/: no state files found")

    forms: dict[str, FormRule] = {}
    for st in states.values():
        for form in st.forms:
            if form.code in forms:
                raise RulesPackError(f"states/{st.state}.json: duplicate form code {form.code!r}")
            forms[form.code] = form
    form_check = SchemaCheck(root, "form.schema.json")
    for node in _json_files(root.joinpath("forms")):
        label = f"forms/{node.name}"
        code = node.name[:-5]
        form = _form(form_check.check(read_json(node, label), label), states=())
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
        extraction=_extraction(meta["extraction"]),
    )


def _accepts(st: StateRule, form: FormRule, reason: str) -> bool:
    """Whether ``st`` accepts the multistate ``form`` for ``reason`` (used while loading)."""
    if not st.has_sales_tax or st.refusal(form.code, reason) is not None:
        return False
    if form.code == SST_FORM_CODE:
        return RulesPack.sst_acceptance(st, reason).accepted
    return RulesPack.mtc_acceptance(st, reason).accepted


# --------------------------------------------------------------------------- entry points


def default_rules_dir() -> Traversable:
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
