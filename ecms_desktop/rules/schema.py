"""Checking the rules pack's files against the JSON Schemas the pack ships (``schema/*.schema.json``).

Each kind of file (``pack.json``, ``states/XX.json``, ``forms/*.json``) is checked strictly: unknown
keys, bad enum values, unknown field names or reason codes raise
:class:`~ecms_desktop.rules.pack.RulesPackError` naming the file, the JSON path and the problem in
words (``states/TX.json: $.mtc.surprise: unknown key 'surprise'``). Used by
:mod:`ecms_desktop.rules.loader`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any, Protocol, cast

from ecms_desktop.rules.pack import RulesPackError


class Traversable(Protocol):
    """The subset of importlib.resources.abc.Traversable the loader uses (Path fits it too)."""

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


class SchemaCheck:
    """One kind of rules-pack file checked against the JSON Schema the pack ships for it
    (``schema/<kind>.schema.json``), with messages that name the file, the JSON path and what is
    wrong in words (``states/TX.json: $.mtc.surprise: unknown key 'surprise'``)."""

    def __init__(self, root: Traversable, schema_file: str) -> None:
        # jsonschema (and its referencing machinery) is imported when a pack is loaded, not with this
        # module: it takes about 0.1 s, which commands that never read the rules should not pay.
        import jsonschema

        label = f"schema/{schema_file}"
        raw: dict[str, Any] = read_json(root.joinpath("schema", schema_file), label)
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


def read_json(node: Traversable, label: str) -> Any:
    """The JSON in a file of the pack; :class:`RulesPackError` naming ``label`` when it is missing or not JSON."""
    try:
        return json.loads(node.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesPackError(f"{label}: file not found") from None
    except json.JSONDecodeError as exc:
        raise RulesPackError(f"{label}: invalid JSON: {exc}") from None
