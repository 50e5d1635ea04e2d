"""The JSON texts the services write hundreds of thousands of times (audit events and their hashed
content, record digests, stored determinations), each with one encoder built once.

``json.dumps`` with options builds a new encoder for every call, which costs as much as encoding a
small value; these are the same encoders, made once. They write exactly what ``json.dumps`` writes
with the same options (``tests/services/core/test_json_text.py``)."""

from __future__ import annotations

import json

#: ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``: the canonical text
#: that the audit chain and the record digests hash.
canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                             check_circular=False).encode

#: ``json.dumps(value, separators=(",", ":"), ensure_ascii=False)``: a JSON column's value as stored.
compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False).encode

#: ``json.dumps(value, separators=(",", ":"))``: compact text with non-ASCII characters escaped.
compact_ascii = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
