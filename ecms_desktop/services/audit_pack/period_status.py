"""A certificate line's status during the audit period, from its review history: which review state
it held on each day (the history comes from the audit trail), the day ranges it was in force, and the
same in words for the pack.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from ecms_desktop.models import ReviewState


def review_timeline(events: Sequence[tuple[dt.datetime, str]], current: str,
                    fallback_since: dt.datetime | None) -> tuple[tuple[dt.date, str], ...]:
    """The certificate's review state changes as (UTC date, state), oldest first. Without audit
    events (old data) the current state is assumed since ``fallback_since``."""
    if not events:
        since = (fallback_since or dt.datetime(1900, 1, 1, tzinfo=dt.UTC)).astimezone(dt.UTC).date()
        return ((since, current),)
    out: list[tuple[dt.date, str]] = []
    for when, state in sorted(events, key=lambda e: e[0]):
        day = when.astimezone(dt.UTC).date()
        if not out or out[-1][1] != state:
            out.append((day, state))  # several changes on one day: the last one holds from that day
    return tuple(out)


def effective_timeline(timeline: Sequence[tuple[dt.date, str]]) -> tuple[tuple[dt.date, str], ...]:
    """The review timeline as it bears on sales: the first approval of a certificate that was only
    pending before applies from the certificate's own validity start (an accepted certificate covers
    the sales from its effective date, even when it was entered or approved later: legacy imports);
    later changes (archive, rejection, unarchive) apply from the day they were made."""
    for i, (_day, state) in enumerate(timeline):
        if state == ReviewState.APPROVED:
            if all(s == ReviewState.PENDING for _d, s in timeline[:i]):
                return ((dt.date.min, state), *timeline[i + 1:])
            break
        if state != ReviewState.PENDING:
            break
    return tuple(timeline)


def state_on(timeline: Sequence[tuple[dt.date, str]], day: dt.date) -> str | None:
    """The review state held on ``day`` (None: the certificate did not exist yet)."""
    found = None
    for since, state in timeline:
        if since <= day:
            found = state
        else:
            break
    return found


def in_force_ranges(timeline: Sequence[tuple[dt.date, str]], start: dt.date | None, expiry: dt.date | None,
                    suspended: dt.date | None, date_from: dt.date,
                    date_to: dt.date) -> list[tuple[dt.date, dt.date]]:
    """The day ranges within [date_from, date_to] when a line was in force: approved on that day,
    on or after its start and through its expiry, and not suspended."""
    lo = max(date_from, start) if start else date_from
    hi = min(date_to, expiry) if expiry else date_to
    if suspended is not None:
        hi = min(hi, suspended - dt.timedelta(days=1))
    if lo > hi:
        return []
    # breakpoints: the period ends and every review change inside it
    points = sorted({lo, *[d for d, _ in timeline if lo < d <= hi]})
    ranges: list[tuple[dt.date, dt.date]] = []
    for i, begin in enumerate(points):
        end = points[i + 1] - dt.timedelta(days=1) if i + 1 < len(points) else hi
        if state_on(timeline, begin) == ReviewState.APPROVED:
            if ranges and ranges[-1][1] + dt.timedelta(days=1) == begin:
                ranges[-1] = (ranges[-1][0], end)
            else:
                ranges.append((begin, end))
    return ranges


def describe_period(timeline: Sequence[tuple[dt.date, str]], start: dt.date | None, expiry: dt.date | None,
                    suspended: dt.date | None, ranges: Sequence[tuple[dt.date, dt.date]], date_from: dt.date,
                    date_to: dt.date) -> tuple[str, str]:
    """(code, words) for a line's status during the period."""
    notes: list[str] = []
    if start is None:
        notes.append("no effective or signed date on the certificate")
    elif start > date_from:
        notes.append(f"effective {start.isoformat()}")
    for day, state in timeline:
        if date_from < day <= date_to:
            notes.append(f"{state} {day.isoformat()}")
    if expiry is not None and expiry < date_to:
        notes.append(f"expired after {expiry.isoformat()}")
    if suspended is not None and suspended <= date_to:
        notes.append(f"suspended {suspended.isoformat()}")
    if ranges and ranges[0][0] == date_from and ranges[-1][1] == date_to and len(ranges) == 1:
        return "in_force", "; ".join(["In force throughout the period", *notes])
    if ranges:
        spans = ", ".join(f"{a.isoformat()} to {b.isoformat()}" for a, b in ranges)
        return "partly", "; ".join([f"In force {spans}", *notes])
    held = sorted({s for s in (state_on(timeline, date_from), *[s for d, s in timeline if date_from < d <= date_to])
                   if s})
    what = ", ".join(held) if held else "not yet received"
    return "not_in_force", "; ".join([f"Not in force in the period ({what})", *notes])

