"""What each stored field can hold, read from the model's own columns.

SQLite stores a 400-character name in a ``VARCHAR(300)``, a NUL character, or an amount of 1e20 in a
``NUMERIC(18, 4)``; PostgreSQL refuses each of them with a ``DataError`` in the middle of a write. So
that both databases accept and refuse the same values, and with the same message, every path that
stores user input (the certificate and transaction imports, the desk's form through the certificate
service, customers) checks its values here first: text within the column's length and free of NUL
characters, numbers finite and within the column's precision, integers within the column's range.
The limits come from the column definitions, never from numbers repeated in code.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import BigInteger, Integer, Numeric, String, inspect

#: What an e-mail address looks like (one ``@``, a dot in the domain, no white space).
EMAIL_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

#: Characters no database here stores in text: NUL (PostgreSQL refuses it, in JSONB too) and lone
#: UTF-16 surrogates (not encodable as UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: The dates the program works with: a certificate signed in year 1 or a sale in 9999 is a typing
#: mistake, and expiry arithmetic near the end of the calendar would fail.
FIRST_DATE, LAST_DATE = dt.date(1900, 1, 1), dt.date(2199, 12, 31)
_CURRENCY = re.compile(r"[A-Z]{3}")
#: Integer range of each integer column type (PostgreSQL's; SQLite's is wider).
_INT_RANGES = {BigInteger: (-(2**63), 2**63 - 1), Integer: (-(2**31), 2**31 - 1)}


@dataclass(frozen=True)
class FieldLimit:
    """What one column holds: text up to ``max_length`` characters, a number with ``precision`` digits
    of which ``scale`` after the point, or an integer between ``min_int`` and ``max_int``."""

    name: str
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    min_int: int | None = None
    max_int: int | None = None

    def text_problem(self, value: str) -> str | None:
        """What keeps ``value`` from being stored in this column, or None."""
        bad = _UNSTORABLE.search(value)
        if bad is not None:
            what = "a NUL character (\\0)" if bad.group() == "\x00" else "an invalid character (a lone surrogate)"
            return f"contains {what} at position {bad.start() + 1}, which cannot be stored; remove it"
        if self.max_length is not None and len(value) > self.max_length:
            return f"is {len(value):,} characters long; at most {self.max_length:,} can be stored"
        return None

    def number_problem(self, value: Decimal, shown: str | None = None) -> str | None:
        """What keeps ``value`` from being stored in this numeric column, or None (it is then stored
        rounded half up to the column's decimals, see :meth:`fit`). ``shown``: the value as the user
        wrote it, for the message."""
        text = shown if shown is not None else _plain(value)
        if not value.is_finite():
            return f"{text} is not a finite number"
        if self.precision is not None and self.scale is not None:
            digits = self.precision - self.scale
            if abs(value) >= Decimal(10) ** digits or abs(self.fit(value)) >= Decimal(10) ** digits:
                return f"{text} is too large: at most {digits} digits before the decimal point can be stored"
        return None

    def fit(self, value: Decimal) -> Decimal:
        """``value`` rounded half up to the decimals the column keeps (as both databases then hold it).
        Only for a value :meth:`number_problem` accepts."""
        if self.scale is None or not value.is_finite():
            return value
        if value.adjusted() < -self.scale - 1:  # far below the last kept decimal: quantize cannot overflow
            return Decimal(0).scaleb(-self.scale)
        return value.quantize(Decimal(1).scaleb(-self.scale), ROUND_HALF_UP)

    def integer_problem(self, value: int) -> str | None:
        """What keeps ``value`` from being stored in this integer column, or None."""
        if self.min_int is not None and self.max_int is not None and not self.min_int <= value <= self.max_int:
            return f"{value} is outside the range that can be stored ({self.min_int:,} to {self.max_int:,})"
        return None

    def problem(self, value: Any) -> str | None:
        """The problem of any value for this column (text, Decimal or int), or None."""
        if isinstance(value, str):
            return self.text_problem(value)
        if isinstance(value, Decimal):
            return self.number_problem(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return self.integer_problem(value)
        return None


def _plain(value: Decimal) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _limit_of(name: str, column_type: Any) -> FieldLimit:
    if isinstance(column_type, String):
        return FieldLimit(name, max_length=column_type.length)
    if isinstance(column_type, Numeric):
        return FieldLimit(name, precision=column_type.precision, scale=column_type.scale)
    for kind, (low, high) in _INT_RANGES.items():
        if isinstance(column_type, kind):
            return FieldLimit(name, min_int=low, max_int=high)
    return FieldLimit(name)  # JSON, dates, booleans: only text inside them is checked, by the caller


@functools.cache
def limits_of(model: type) -> dict[str, FieldLimit]:
    """Every mapped column of an ORM class with its limit, by attribute name."""
    out: dict[str, FieldLimit] = {}
    mapper: Any = inspect(model)
    for attr in mapper.column_attrs:
        # Variants (``BigInteger().with_variant(Integer(), "sqlite")``): the base type is the strictest.
        out[attr.key] = _limit_of(attr.key, attr.columns[0].type)
    return out


def limit(model: type, attribute: str) -> FieldLimit:
    """The limit of one column (``limit(Certificate, "purchaser_name").max_length == 300``)."""
    return limits_of(model)[attribute]


def text_list_problem(values: Any) -> str | None:
    """The problem of a list of codes stored as JSON (NUL characters cannot be stored), or None."""
    for value in values:
        bad = FieldLimit("").text_problem(str(value))
        if bad is not None:
            return f"{str(value)[:40]!r} {bad}"
    return None


def date_problem(value: dt.date | None) -> str | None:
    """What is wrong with a date the program is to store, or None (see :data:`FIRST_DATE`)."""
    if value is not None and not FIRST_DATE <= value <= LAST_DATE:
        return f"{value.isoformat()} is not a plausible date (between {FIRST_DATE.year} and {LAST_DATE.year})"
    return None


def currency_problem(code: str) -> str | None:
    """What is wrong with a currency code (three letters A-Z, as ISO 4217), or None."""
    return None if _CURRENCY.fullmatch(code) else f"{code[:20]!r} is not a 3-letter currency code"
