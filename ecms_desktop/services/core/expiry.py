"""Expiry dates and statuses: pure functions, no database, no clock (the caller passes "as of").

Rules, as an accountant would read them:

- A certificate is valid through its expiry date, inclusive.
- An N-year period runs from the effective date (the signed date when there is none) and ends the
  day before the N-th anniversary: effective 2026-03-15, 3 years, valid through 2029-03-14. An
  anniversary on 29 February in a common year falls on 28 February.
- ``end_of_year``: valid through 31 December of the effective year (the Florida annual resale
  certificate); with ``years`` = N, through 31 December of the (N-1)-th following year.
- ``none``: the state sets no expiry. That is a real state, not a missing value.
- The years may depend on the month of the effective (issue) date (Maine: issued January-September,
  through 31 December of the 3rd calendar year; October-December, of the 4th), and a renewal may follow
  its own rule (Maine: 5 calendar years).
- Where the state prints the expiry on the document (``printed``), the date printed there is what counts:
  it is entered as the certificate's expiry date, and the computed date is only a cross-check.
- Status as of a date: ``expiring_soon`` from ``window`` days before the expiry date through the
  expiry date itself; ``expired`` the day after the expiry date onwards.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from ecms_desktop.models.enums import ReviewState, Status

DEFAULT_EXPIRING_SOON_DAYS = 30


class ExpiryRuleLike(Protocol):
    """What an expiry rule offers (the rules pack's ExpiryRule, or a company's own policy)."""

    @property
    def kind(self) -> str: ...
    @property
    def years(self) -> int | None: ...
    @property
    def basis(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def confidence(self) -> str: ...
    @property
    def printed(self) -> bool: ...

    def years_for(self, issued: dt.date, *, renewal: bool = False) -> tuple[ExpiryRuleLike, int | None]: ...


def anniversary(start: dt.date, years: int) -> dt.date:
    """The same day ``years`` later; 29 February becomes 28 February in a common year."""
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February -> common year
        return start.replace(year=start.year + years, day=28)


@dataclass(frozen=True)
class ExpiryDecision:
    """An expiry date (``None``: no expiry) with the reason an auditor can read."""

    expiry_date: dt.date | None
    basis: str
    source: str
    origin: str  # rules | company | override | printed


def compute_expiry(rule: ExpiryRuleLike, *, effective: dt.date | None, signed: dt.date | None,
                   origin: str = "rules", renewal: bool = False) -> ExpiryDecision:
    """Apply an expiry rule to a certificate's dates (``renewal``: the certificate renews one the customer
    already held, for rules whose renewals run another term)."""
    start = effective or signed
    if start is not None:
        rule, rule_years = rule.years_for(start, renewal=renewal)
    else:
        rule_years = rule.years
    label = {"company": "company policy"}.get(origin, rule.basis.replace("_", " "))
    if rule.kind == "none":
        return ExpiryDecision(None, f"No expiry ({label}): {rule.text}".strip(), rule.source, origin)
    if start is None:
        return ExpiryDecision(None, "Expiry not computed: the certificate has neither an effective nor a "
                              "signed date", rule.source, origin)
    years = rule_years or 1
    if rule.kind == "years":
        end = anniversary(start, years) - dt.timedelta(days=1)
        what = f"{years} year{'s' if years != 1 else ''} from {start.isoformat()}"
    elif rule.kind == "end_of_year":
        end = dt.date(start.year + years - 1, 12, 31)
        what = f"through 31 December of {end.year}"
    else:
        raise ValueError(f"unknown expiry rule kind {rule.kind!r}")
    return ExpiryDecision(end, f"{what} ({label}): {rule.text}".strip(), rule.source, origin)


def override_expiry(date: dt.date, reason: str) -> ExpiryDecision:
    """An expiry date set by hand, with the reason kept."""
    return ExpiryDecision(date, f"Set by hand: {reason}", "", "override")


def entered_expiry(date: dt.date, reason: str, rule: ExpiryRuleLike | None) -> ExpiryDecision:
    """An expiry date entered on the certificate: the date the state printed on the document where its rule
    says the state prints one (origin ``printed``, with the rule's source), else a date set by hand."""
    if rule is not None and rule.printed:
        return ExpiryDecision(date, f"As printed on the document: {rule.text}".strip(), rule.source, "printed")
    return override_expiry(date, reason)


def line_status(review_state: str, expiry_date: dt.date | None, as_of: dt.date,
                window_days: int = DEFAULT_EXPIRING_SOON_DAYS) -> Status:
    """The badge of one coverage line as of a date."""
    if review_state == ReviewState.PENDING:
        return Status.PENDING_REVIEW
    if review_state == ReviewState.REJECTED:
        return Status.REJECTED
    if review_state == ReviewState.ARCHIVED:
        return Status.ARCHIVED
    if expiry_date is None:
        return Status.ACTIVE
    if as_of > expiry_date:
        return Status.EXPIRED
    if as_of >= expiry_date - dt.timedelta(days=window_days):
        return Status.EXPIRING_SOON
    return Status.ACTIVE


_SEVERITY = {Status.ACTIVE: 0, Status.EXPIRING_SOON: 1, Status.EXPIRED: 2}


def certificate_status(review_state: str, line_expiries: Iterable[dt.date | None], as_of: dt.date,
                       window_days: int = DEFAULT_EXPIRING_SOON_DAYS) -> Status:
    """The certificate's badge: its review state, or for an approved certificate its worst line."""
    statuses = [line_status(review_state, e, as_of, window_days) for e in line_expiries]
    if review_state != ReviewState.APPROVED:
        return line_status(review_state, None, as_of, window_days)
    if not statuses:
        return Status.ACTIVE
    return max(statuses, key=lambda s: _SEVERITY[s])


def days_left(expiry_date: dt.date | None, as_of: dt.date) -> int | None:
    """Days from ``as_of`` to the expiry date (0 on the last valid day, negative once expired)."""
    return None if expiry_date is None else (expiry_date - as_of).days
