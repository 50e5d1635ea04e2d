"""The SST recurring-relationship rule: when a blanket certificate stops covering new sales (pure).

In a Streamlined Sales Tax member state a blanket certificate needs no renewal while the purchaser keeps
buying (SSUTA s.317). Once more than N months (12) pass without a sale between the seller and the
purchaser, the certificate no longer covers *new* sales; the sales made while it was in force stay
covered. The rule is data: ``sst.recurring_relationship`` of the state in the rules pack.

How it is counted here:

* **Which sales**: every imported invoice line of the company to the customer, in any state (the
  relationship is between seller and purchaser, not per state). A credit note counts too: telling it
  apart by amount would cost the bulk run a read of the whole table instead of its (company, customer,
  date) index (see :mod:`~ecms_desktop.services.sales.sales_history`). :class:`SalesHistory` holds the
  customer's distinct invoice dates.
* **From when**: from the certificate's effective date (the signed date when there is none), or from
  the first sale the company has imported when that is later (sales before the ledger's first day are
  unknown, so they cannot be said to be missing).
* **The lapse**: the first stretch of more than N months without a sale, starting at the certificate's
  date or at a sale after it. The certificate lapses for new sales on the day after N months from the
  last sale (or from the certificate's date) before that stretch; a later sale does not revive it (a
  fresh certificate is needed). A sale on the last day of the N months is still covered ("no more than
  twelve months between sales").
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_ONE_DAY = dt.timedelta(days=1)


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus whole calendar months (the 31st becomes the month's last day when it has fewer)."""
    if months % 12 == 0:  # whole years: only 29 February moves (to the 28th)
        year = day.year + months // 12
        return day.replace(year=year) if (day.month, day.day) != (2, 29) or calendar.isleap(year) \
            else day.replace(year=year, day=28)
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True, slots=True)
class SalesHistory:
    """A customer's distinct sale dates with the company (sorted), and the first day the company's
    imported sales cover (``known_from``: nothing is known of sales before it)."""

    dates: tuple[dt.date, ...]
    known_from: dt.date | None = None
    #: Answers already worked out (:meth:`lapse`): a bulk run asks for every line of the customer
    #: against the same few certificates.
    _memo: dict[tuple[dt.date, int], Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, dates: Iterable[dt.date], known_from: dt.date | None = None) -> SalesHistory:
        return cls(tuple(sorted(set(dates))), known_from)

    @property
    def known(self) -> bool:
        """Whether the company has imported any sale at all: without one nothing can be said to be missing,
        and the rule is not applied."""
        return bool(self.dates) or self.known_from is not None

    def lapse(self, obtained: dt.date, months: int) -> Lapse:
        """:func:`lapse_of` for this history, remembered."""
        memo = self._memo
        hit = memo.get((obtained, months))
        if hit is None:
            gaps = memo.get((dt.date.min, months))
            if gaps is None:
                gaps = memo[(dt.date.min, months)] = gap_starts(self.dates, months)
            hit = memo[(obtained, months)] = lapse_of(self, obtained, months, gaps)
        return hit

    def previous_sale(self, day: dt.date) -> dt.date | None:
        """The last sale strictly before ``day``."""
        i = bisect.bisect_left(self.dates, day)
        return self.dates[i - 1] if i else None


@dataclass(frozen=True, slots=True)
class Lapse:
    """When a certificate stops covering new sales under the recurring-relationship rule: ``on`` is the
    first day it no longer covers; ``since`` the last sale before the gap (or the day counting began,
    ``since_certificate`` True: the certificate's date or the first imported sale)."""

    on: dt.date
    since: dt.date
    since_certificate: bool
    months: int

    def text(self) -> str:
        """"lapsed for new sales on D (no purchase since ...)" as shown on the certificate."""
        if self.since_certificate:
            why = f"no purchase in the {self.months} months from {self.since}"
        else:
            why = f"no purchase since {self.since}"
        return f"lapsed for new sales on {self.on} ({why})"


def gap_starts(dates: tuple[dt.date, ...], months: int) -> tuple[int, ...]:
    """The indexes of the sales followed by more than ``months`` without a sale (the last sale always:
    the gap after it is open)."""
    n = len(dates)
    surely_within, surely_beyond = 28 * months, 31 * months  # days: N months are 28N to 31N days
    out = []
    for i in range(n - 1):
        days = (dates[i + 1] - dates[i]).days
        if days > surely_within and (days > surely_beyond or dates[i + 1] > add_months(dates[i], months)):
            out.append(i)
    if n:
        out.append(n - 1)
    return tuple(out)


def lapse_of(history: SalesHistory, obtained: dt.date, months: int, gaps: tuple[int, ...] | None = None) -> Lapse:
    """When a certificate counted from ``obtained`` lapses, given the customer's sales (the lapse may be
    in the future: then it says until when the purchaser must buy again to keep it). ``gaps``:
    :func:`gap_starts` of the history, when the caller keeps them."""
    start = obtained if history.known_from is None or obtained >= history.known_from else history.known_from
    dates = history.dates
    i = bisect.bisect_right(dates, start)
    if i == len(dates) or dates[i] > add_months(start, months):
        on_a_sale = bool(i) and dates[i - 1] == start
        return Lapse(add_months(start, months) + _ONE_DAY, start, not on_a_sale, months)
    if gaps is None:
        gaps = gap_starts(dates, months)
    anchor = dates[gaps[bisect.bisect_left(gaps, i)]]
    return Lapse(add_months(anchor, months) + _ONE_DAY, anchor, False, months)
