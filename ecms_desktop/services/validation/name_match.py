"""Do two business names name the same business? One normaliser and one matcher for the whole
program: the validation engine compares the purchaser on a certificate with the customer's legal name,
and every permit check compares the holder a registry, an online service or a reviewer recorded with
the purchaser.

Names are compared after normalising them (case, punctuation, ``&``, a leading "The", corporate
suffixes such as Inc, LLC, Co at the end) and part by part around "d/b/a" ("doing business as",
"t/a"), so that "Smith Hardware Inc DBA Smith's Tools" matches "Smith's Tools". The verdict is one of
:class:`NameVerdict`; what it means for a finding (error, warning) is the caller's rule. No Qt here.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from enum import StrEnum

#: Words dropped from the end of a business name before comparing (after removing dots).
CORPORATE_SUFFIXES: frozenset[str] = frozenset({
    "inc", "incorporated", "llc", "llp", "lp", "lllp", "pllc", "ltd", "limited", "co", "company",
    "corp", "corporation", "pc", "pa", "plc", "gmbh", "na",
})

#: At or above this similarity (0..1, the better of the plain and the word-sorted comparison of the
#: normalised names) two names MATCH. 0.90 lets a one-letter slip in a long name pass ("Lone Star
#: Retailers" / "Lone Star Retail", 0.91) but not a different word ("Acme Supply" / "Acme Supplies",
#: 0.83; "First Baptist Church of Memphis" / "... of Dallas", 0.82), which a person should look at.
STRONG_MATCH = 0.90
#: Below this similarity, and unless one name is contained in the other, the names are a MISMATCH:
#: they share hardly more than what any two names share ("Zenith Petroleum Holdings" / "Memphis
#: Friends Meeting", 0.33; "Dallas Tire" / "Houston Tire", 0.52). Between the two: a WEAK match.
WEAK_MATCH = 0.60
#: A name (spaces removed) of at least this many letters found whole inside the other is at least a
#: weak match, whatever the similarity: registries add outlet words and states ("WAL-MART STORES
#: TEXAS" / "Walmart", "HOME DEPOT USA" / "The Home Depot"); shorter names are too common to count.
MIN_CONTAINED = 5


class NameVerdict(StrEnum):
    """How two business names compare."""

    MATCH = "match"
    WEAK = "weak"
    MISMATCH = "mismatch"


@dataclass(frozen=True)
class NameComparison:
    """The verdict on two names, their similarity (0..1) and the two names as compared."""

    verdict: NameVerdict
    similarity: float
    left: str
    right: str


@functools.lru_cache(maxsize=65536)
def normalize_name(name: str) -> str:
    """A business name for comparison: case-folded, punctuation and corporate suffixes removed."""
    text = name.casefold().replace("&", " and ")
    text = re.sub(r"[.,']", "", text)
    text = re.sub(r"[^\w\s]", " ", text)
    words = text.split()
    if words and words[0] == "the":
        words = words[1:]
    while len(words) > 1 and words[-1] in CORPORATE_SUFFIXES:
        words.pop()
    return " ".join(words)


def name_parts(name: str) -> list[str]:
    """The names a business goes by: the legal name and each "d/b/a" (or "t/a") name."""
    parts = re.split(r"\b(?:d/?b/?a|doing business as|t/a)\b", name, flags=re.IGNORECASE)
    return [p for p in (x.strip(" ,;-") for x in parts) if p] or [name]


def name_similarity(a: str, b: str) -> float:
    """Similarity of two business names, 0..1 (the better of plain and word-sorted comparison; a
    "d/b/a" name is compared in each of its parts)."""
    return _score(a, b)[0]


@functools.lru_cache(maxsize=65536)
def _score(a: str, b: str) -> tuple[float, bool]:
    best, contained = 0.0, False
    for left in name_parts(a):
        for right in name_parts(b):
            x, y = normalize_name(left), normalize_name(right)
            if not x or not y:
                continue
            if x == y:
                return 1.0, True
            plain = difflib.SequenceMatcher(None, x, y).ratio()
            by_words = difflib.SequenceMatcher(None, " ".join(sorted(x.split())),
                                               " ".join(sorted(y.split()))).ratio()
            best = max(best, plain, by_words)
            short, long_ = sorted((x.replace(" ", ""), y.replace(" ", "")), key=len)
            contained = contained or (len(short) >= MIN_CONTAINED and short in long_)
    return best, contained


def compare_names(a: str, b: str) -> NameComparison:
    """Whether ``a`` and ``b`` name the same business: a MATCH, a WEAK match or a MISMATCH (see the
    thresholds above)."""
    similarity, contained = _score(a, b)
    if similarity >= STRONG_MATCH:
        verdict = NameVerdict.MATCH
    elif similarity >= WEAK_MATCH or contained:
        verdict = NameVerdict.WEAK
    else:
        verdict = NameVerdict.MISMATCH
    return NameComparison(verdict, similarity, a, b)


def compare_holder(holder: str, purchaser: str, customer: str = "") -> NameComparison | None:
    """A permit holder's name (as a registry, an online service or a reviewer recorded it) against
    the purchaser named on the certificate, or the customer's legal name when that matches better
    (the customer record may hold the legal name where the certificate shows a trade name). None
    when there is nothing to compare."""
    holder = holder.strip()
    found = [compare_names(holder, name.strip()) for name in (purchaser, customer) if name and name.strip()]
    if not holder or not found:
        return None
    order = {NameVerdict.MATCH: 0, NameVerdict.WEAK: 1, NameVerdict.MISMATCH: 2}
    return min(found, key=lambda c: (order[c.verdict], -c.similarity))


__all__ = ["CORPORATE_SUFFIXES", "MIN_CONTAINED", "STRONG_MATCH", "WEAK_MATCH", "NameComparison", "NameVerdict",
           "compare_holder", "compare_names", "name_parts", "name_similarity", "normalize_name"]
