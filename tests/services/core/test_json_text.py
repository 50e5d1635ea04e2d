"""The shared JSON encoders write exactly what ``json.dumps`` writes with the same options (the audit
chain and the record digests hash these texts, so one character's difference breaks verification)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecms_desktop.services.core import json_text

VALUES: list[Any] = [
    None, True, 0, -7, 1.5, "", "plain", "Zoë's café — “quoted” \u2028 line\nbreak\t\"", "\U0001F600",
    [], {}, [1, "a", None], {"b": 1, "a": [2, {"d": None, "c": "é"}], "ä": {"z": 1, "y": 2}},
]


@pytest.mark.parametrize("value", VALUES)
def test_encoders_write_what_json_dumps_writes(value: Any) -> None:
    assert json_text.canonical(value) == json.dumps(value, sort_keys=True, separators=(",", ":"),
                                                    ensure_ascii=False)
    assert json_text.compact(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    assert json_text.compact_ascii(value) == json.dumps(value, separators=(",", ":"))


def test_canonical_sorts_keys_and_keeps_non_ascii() -> None:
    assert json_text.canonical({"b": "é", "a": 1}) == '{"a":1,"b":"é"}'
    assert json_text.compact_ascii({"b": "é"}) == '{"b":"\\u00e9"}'
