"""Expiry arithmetic and status boundaries (pure, no database)."""

from __future__ import annotations

import datetime as dt

import pytest

from ecms_desktop.models import ReviewState, Status
from ecms_desktop.rules.pack import ExpiryRule
from ecms_desktop.services.core.expiry import (
    anniversary,
    certificate_status,
    compute_expiry,
    days_left,
    line_status,
    override_expiry,
)

D = dt.date


def Rule(kind: str, years: int | None = None, *, text: str = "test rule") -> ExpiryRule:
    """An expiry rule of the rules pack's own type, for the arithmetic alone."""
    return ExpiryRule(kind, years, "law", text, "test source", "high")


@pytest.mark.parametrize(
    ("start", "years", "expected"),
    [
        (D(2026, 3, 15), 3, D(2029, 3, 14)),  # the issue's own example
        (D(2026, 1, 1), 1, D(2026, 12, 31)),
        (D(2024, 2, 29), 1, D(2025, 2, 27)),  # anniversary 28 Feb in a common year, valid the day before
        (D(2024, 2, 29), 4, D(2028, 2, 28)),  # leap year anniversary exists: 29 Feb 2028, valid through the 28th
        (D(2023, 3, 1), 1, D(2024, 2, 29)),   # day before 1 March in a leap year is 29 February
        (D(2026, 12, 31), 5, D(2031, 12, 30)),
    ],
)
def test_years_rule_ends_the_day_before_the_anniversary(start: dt.date, years: int, expected: dt.date) -> None:
    decision = compute_expiry(Rule("years", years), effective=start, signed=None)
    assert decision.expiry_date == expected
    assert f"{years} year" in decision.basis and start.isoformat() in decision.basis


def test_anniversary_of_29_february_falls_on_28_february_in_a_common_year() -> None:
    assert anniversary(D(2024, 2, 29), 1) == D(2025, 2, 28)
    assert anniversary(D(2024, 2, 29), 4) == D(2028, 2, 29)


def test_signed_date_is_used_when_there_is_no_effective_date() -> None:
    decision = compute_expiry(Rule("years", 3), effective=None, signed=D(2025, 6, 1))
    assert decision.expiry_date == D(2028, 5, 31)


def test_effective_date_wins_over_signed_date() -> None:
    decision = compute_expiry(Rule("years", 3), effective=D(2025, 7, 1), signed=D(2025, 6, 1))
    assert decision.expiry_date == D(2028, 6, 30)


@pytest.mark.parametrize("start", [D(2026, 1, 1), D(2026, 6, 30), D(2026, 12, 31)])
def test_end_of_year_rule_runs_through_31_december(start: dt.date) -> None:
    decision = compute_expiry(Rule("end_of_year", 1), effective=start, signed=None)
    assert decision.expiry_date == D(2026, 12, 31)


def test_no_expiry_is_a_real_state_with_its_basis() -> None:
    decision = compute_expiry(Rule("none", None, text="valid until revoked"), effective=D(2026, 1, 1), signed=None)
    assert decision.expiry_date is None
    assert "No expiry" in decision.basis and "valid until revoked" in decision.basis


def test_missing_dates_say_why_no_expiry_was_computed() -> None:
    decision = compute_expiry(Rule("years", 3), effective=None, signed=None)
    assert decision.expiry_date is None
    assert "neither an effective nor a signed date" in decision.basis


def test_override_keeps_the_reason() -> None:
    decision = override_expiry(D(2027, 1, 31), "customer's letter of 2026-01-05")
    assert decision.expiry_date == D(2027, 1, 31)
    assert decision.origin == "override" and "letter" in decision.basis


EXPIRY = D(2026, 12, 31)


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (D(2026, 11, 30), Status.ACTIVE),          # 31 days before
        (D(2026, 12, 1), Status.EXPIRING_SOON),    # exactly 30 days before
        (D(2026, 12, 31), Status.EXPIRING_SOON),   # last valid day (inclusive)
        (D(2027, 1, 1), Status.EXPIRED),           # the day after
    ],
)
def test_status_boundaries_with_the_default_30_day_window(as_of: dt.date, expected: Status) -> None:
    assert line_status(ReviewState.APPROVED, EXPIRY, as_of) is expected


def test_window_is_a_setting() -> None:
    assert line_status(ReviewState.APPROVED, EXPIRY, D(2026, 11, 30), window_days=45) is Status.EXPIRING_SOON
    assert line_status(ReviewState.APPROVED, EXPIRY, D(2026, 12, 1), window_days=10) is Status.ACTIVE


def test_no_expiry_is_active_forever() -> None:
    assert line_status(ReviewState.APPROVED, None, D(2099, 1, 1)) is Status.ACTIVE


@pytest.mark.parametrize(
    ("review", "expected"),
    [(ReviewState.PENDING, Status.PENDING_REVIEW), (ReviewState.REJECTED, Status.REJECTED),
     (ReviewState.ARCHIVED, Status.ARCHIVED)],
)
def test_review_state_decides_before_dates(review: ReviewState, expected: Status) -> None:
    assert line_status(review, D(2000, 1, 1), D(2026, 1, 1)) is expected
    assert certificate_status(review, [D(2000, 1, 1), None], D(2026, 1, 1)) is expected


def test_certificate_status_is_its_worst_line() -> None:
    as_of = D(2026, 12, 15)
    assert certificate_status(ReviewState.APPROVED, [None, D(2030, 1, 1)], as_of) is Status.ACTIVE
    assert certificate_status(ReviewState.APPROVED, [None, D(2026, 12, 31)], as_of) is Status.EXPIRING_SOON
    assert certificate_status(ReviewState.APPROVED, [D(2026, 12, 31), D(2026, 12, 1)], as_of) is Status.EXPIRED


def test_days_left() -> None:
    assert days_left(D(2026, 12, 31), D(2026, 12, 31)) == 0
    assert days_left(D(2026, 12, 31), D(2027, 1, 2)) == -2
    assert days_left(None, D(2026, 1, 1)) is None
