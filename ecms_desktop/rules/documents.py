"""Number formats (a state's permit, a foreign number, a state-issued document's number) and rules about
documents and numbers beyond a form's fields (loaded into :mod:`ecms_desktop.rules.pack`):
documents the state itself issues to the purchaser, whose numbers a form takes besides the coverage
line's state (another state's, Mexico's RFC), numbers of a state's format that cannot serve a reason,
forms the state no longer supports, and reasons a state grants no exemption for. Frozen, Qt-free data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ForeignIssuer", "NoExemption", "NumberIssuers", "ObsoleteForm", "PermitFormat", "PermitRestriction",
           "StateDocument"]


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
    #: Numbers of this format that cannot be used for some reasons (South Dakota's use tax and
    #: contractor's excise tax licences cannot buy for resale).
    restrictions: tuple[PermitRestriction, ...] = ()

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

    def restriction_for(self, number: str, reason: str) -> PermitRestriction | None:
        """The restriction that keeps ``number`` from being used for ``reason``, if any."""
        cleaned = self.normalize(number)
        for restriction in self.restrictions:
            if reason in restriction.reasons and re.search(restriction.pattern, cleaned):
                return restriction
        return None


@dataclass(frozen=True)
class PermitRestriction:
    """Numbers (``pattern`` searched in the normalised number) that cannot be used for ``reasons``."""

    pattern: str
    reasons: tuple[str, ...]
    message: str
    source: str
    confidence: str


@dataclass(frozen=True)
class ForeignIssuer:
    """A jurisdiction outside the pack's states whose numbers a form accepts (``MX``: Mexico's RFC)."""

    code: str
    name: str
    number: PermitFormat


@dataclass(frozen=True)
class NumberIssuers:
    """Whose numbers a form takes in its permit-number box besides the coverage line's own state:
    another US state's registration number (``other_states``) and foreign numbers (``foreign``)."""

    other_states: bool
    foreign: tuple[ForeignIssuer, ...]
    text: str
    source: str
    confidence: str

    def foreign_issuer(self, code: str) -> ForeignIssuer | None:
        """The foreign issuer with two-letter ``code`` the form accepts, if any."""
        return next((f for f in self.foreign if f.code == code.upper()), None)


@dataclass(frozen=True)
class StateDocument:
    """A document the state itself issues to the purchaser (an exemption number, letter, card or
    certificate): who issues it, what it is, its number format (None when not known), where the
    purchaser gets it and how the seller verifies it."""

    issued_by: str
    document: str
    number: PermitFormat | None
    obtain: str
    obtain_url: str | None
    verify: str
    verify_url: str | None
    source: str
    confidence: str


@dataclass(frozen=True)
class ObsoleteForm:
    """The state no longer supports the form (``replaced_by``: the codes of its current forms)."""

    since: str | None
    replaced_by: tuple[str, ...]
    text: str
    source: str
    confidence: str


@dataclass(frozen=True)
class NoExemption:
    """The state grants no general exemption for ``reason`` (so no document can be accepted for it)."""

    reason: str
    text: str
    source: str
    confidence: str
