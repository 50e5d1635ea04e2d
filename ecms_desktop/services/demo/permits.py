"""Plausible permit / registration numbers for the demo's companies and customers: matching the rules
pack's pattern for the state where it knows one (the test factories use them too).
"""

from __future__ import annotations

import random
import re._constants as sre_c
import re._parser as sre_parse
from typing import Any

from ecms_desktop.rules import PermitFormat, RulesPack


def _shape(items: Any, rng: random.Random) -> list[str]:
    """One concrete shape of a parsed regular expression (the small subset permit patterns use):
    a list with the characters allowed at each position, branches and repeat counts chosen."""
    out: list[str] = []
    for op, av in items:
        if op is sre_c.LITERAL:
            out.append(chr(av))
        elif op is sre_c.IN:
            choices: list[str] = []
            for sub_op, sub_av in av:
                if sub_op is sre_c.LITERAL:
                    choices.append(chr(sub_av))
                elif sub_op is sre_c.RANGE:
                    choices.extend(chr(c) for c in range(sub_av[0], sub_av[1] + 1))
                elif sub_op is sre_c.CATEGORY and sub_av is sre_c.CATEGORY_DIGIT:
                    choices.extend("0123456789")
            out.append("".join(choices) or "0")
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT):
            lo, hi, sub = av
            if hi is sre_c.MAXREPEAT or hi > lo + 8:  # open-ended: a plausible 6-9 more characters
                lo = max(lo, 6)
                hi = lo + 3
            for _ in range(rng.randint(lo, hi)):
                out.extend(_shape(sub, rng))
        elif op is sre_c.SUBPATTERN:
            out.extend(_shape(av[-1], rng))
        elif op is sre_c.BRANCH:
            out.extend(_shape(rng.choice(av[1]), rng))
        elif op is sre_c.CATEGORY and av is sre_c.CATEGORY_DIGIT:
            out.append("0123456789")
    return out


class PermitNumbers:
    """Plausible permit / registration numbers per state: matching the rules pack's pattern where
    the pack knows one (a few shapes are drawn from the pattern once, then filled in), else a
    number of a common shape."""

    def __init__(self, rules: RulesPack) -> None:
        self.rules = rules
        self._shapes: dict[str, list[list[str]]] = {}

    def _shapes_of(self, state: str, rng: random.Random, permit: PermitFormat | None = None) -> list[list[str]]:
        key = state if permit is None else f"{state}/{permit.label}"
        shapes = self._shapes.get(key)
        if shapes is None:
            permit = permit or self.rules.state(state).permit
            shapes = []
            if permit.pattern:
                parsed = sre_parse.parse(permit.pattern)
                for _ in range(12):
                    shape = _shape(parsed, rng)
                    if shape and permit.matches("".join(rng.choice(c) for c in shape)):
                        shapes.append(shape)
            self._shapes[key] = shapes
        return shapes

    def make(self, state: str, rng: random.Random, number: PermitFormat | None = None) -> str:
        """A number for ``state``: of the state's permit format, or of ``number`` (a state-issued
        document's own format) when given."""
        shapes = self._shapes_of(state, rng, number)
        if shapes:
            return "".join([rng.choice(c) for c in rng.choice(shapes)])
        # No known format: 8-10 digits, sometimes grouped with a hyphen.
        digits = str(rng.randrange(10 ** 9, 10 ** 10))[: rng.choice((8, 9, 10))]
        return digits if rng.random() < 0.7 else f"{digits[:3]}-{digits[3:]}"
