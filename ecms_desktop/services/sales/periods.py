"""Filing periods: how often the company files in each state, and which returns are filed.

A sale in a filed period is never changed again; corrections go to the current open period
(see :mod:`ecms_desktop.services.sales.reprocessing`). A state without a configured frequency files
monthly.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecms_desktop.models.transactions import FiledPeriod, FilingPeriodConfig
from ecms_desktop.services.core import audit, people
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import ConflictError, ValidationError
from ecms_desktop.services.core.people import Permission
from ecms_desktop.vocabulary import FILING_FREQUENCIES as FREQUENCIES

DEFAULT_FREQUENCY = "monthly"

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


@dataclass(frozen=True)
class Period:
    """A filing period: its label (``2026-09``, ``2026-Q3``, ``2026``) and its first and last day."""

    label: str
    frequency: str
    start: dt.date
    end: dt.date

    def next(self) -> Period:
        return period_of(self.end + dt.timedelta(days=1), self.frequency)


def _month_end(year: int, month: int) -> dt.date:
    nxt = dt.date(year + (month == 12), month % 12 + 1, 1)
    return nxt - dt.timedelta(days=1)


def period_of(day: dt.date, frequency: str) -> Period:
    """The period of a given frequency that contains ``day``."""
    if frequency == "monthly":
        return Period(f"{day.year}-{day.month:02d}", frequency, day.replace(day=1), _month_end(day.year, day.month))
    if frequency == "quarterly":
        q = (day.month - 1) // 3 + 1
        return Period(f"{day.year}-Q{q}", frequency, dt.date(day.year, 3 * q - 2, 1), _month_end(day.year, 3 * q))
    if frequency == "annual":
        return Period(str(day.year), frequency, dt.date(day.year, 1, 1), dt.date(day.year, 12, 31))
    raise ValidationError(f"Unknown filing frequency {frequency!r} (one of: {', '.join(FREQUENCIES)}).")


def parse_period(text: str) -> Period:
    """``2026-09`` (month), ``2026-Q3`` (quarter) or ``2026`` (year)."""
    text = text.strip()
    if m := _MONTH.match(text):
        year, month = int(m[1]), int(m[2])
        if not 1 <= month <= 12:
            raise ValidationError(f"{text!r}: there is no month {month}.")
        return period_of(dt.date(year, month, 1), "monthly")
    if m := _QUARTER.match(text):
        return period_of(dt.date(int(m[1]), 3 * int(m[2]) - 2, 1), "quarterly")
    if m := _YEAR.match(text):
        return period_of(dt.date(int(m[1]), 1, 1), "annual")
    raise ValidationError(f"{text!r} is not a period: write 2026-09 (month), 2026-Q3 (quarter) or 2026 (year).")


class PeriodBook:
    """The filing frequencies and filed periods of one company, loaded once (for batch work)."""

    def __init__(self, frequencies: dict[str, str], filed: dict[str, list[tuple[dt.date, dt.date, str]]]) -> None:
        self.frequencies = frequencies
        self.filed = filed

    @classmethod
    def load(cls, session: Session, company_id: int) -> PeriodBook:
        freqs = {state: freq for state, freq in session.execute(
            select(FilingPeriodConfig.state, FilingPeriodConfig.frequency)
            .where(FilingPeriodConfig.company_id == company_id))}
        filed: dict[str, list[tuple[dt.date, dt.date, str]]] = {}
        for state, start, end, label in session.execute(
                select(FiledPeriod.state, FiledPeriod.start_date, FiledPeriod.end_date, FiledPeriod.period)
                .where(FiledPeriod.company_id == company_id)):
            filed.setdefault(state, []).append((start, end, label))
        return cls(freqs, filed)

    def frequency(self, state: str) -> str:
        return self.frequencies.get(state, DEFAULT_FREQUENCY)

    def period(self, state: str, day: dt.date) -> Period:
        return period_of(day, self.frequency(state))

    def filed_period(self, state: str, day: dt.date) -> str | None:
        """The label of the filed return that contains ``day`` in ``state``, or None when open."""
        for start, end, label in self.filed.get(state, ()):
            if start <= day <= end:
                return label
        return None

    def current_open(self, state: str, as_of: dt.date) -> Period:
        """The open period that receives corrections as of a date: the period containing ``as_of``,
        or the first later one not yet filed."""
        period = self.period(state, as_of)
        for _ in range(1000):
            if not any(start <= period.end and period.start <= end for start, end, _ in self.filed.get(state, ())):
                return period
            period = period.next()
        raise ValidationError(f"No open filing period found for {state} after {as_of}.")  # pragma: no cover


@dataclass(frozen=True)
class FiledInfo:
    state: str
    period: str
    start: dt.date
    end: dt.date


class PeriodService:
    """Set filing frequencies and mark returns as filed (both audited)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def set_frequency(self, company_id: int, state: str, frequency: str) -> None:
        """How often the company files in ``state`` from now on."""
        state = state.strip().upper()
        if frequency not in FREQUENCIES:
            raise ValidationError(f"Filing frequency must be one of: {', '.join(FREQUENCIES)}.")
        _check_state(state)
        with self.db.transaction() as s:
            people.require(s, Permission.ADMINISTER, "set a filing frequency")
            row = s.execute(select(FilingPeriodConfig).where(FilingPeriodConfig.company_id == company_id,
                                                             FilingPeriodConfig.state == state)).scalar_one_or_none()
            before = row.frequency if row else None
            if row is None:
                row = FilingPeriodConfig(company_id=company_id, state=state, frequency=frequency)
                s.add(row)
            row.frequency = frequency
            row.changed_by = people.actor_name(s)
            s.flush()
            audit.record(s, "period.frequency_set", "filing_period_config", row.id, company_id=company_id,
                         before={"state": state, "frequency": before}, after={"state": state, "frequency": frequency})

    def file(self, company_id: int, state: str, period_text: str) -> FiledInfo:
        """Mark the return of ``state`` for a period as filed: its sales are frozen from now on."""
        state = state.strip().upper()
        _check_state(state)
        period = parse_period(period_text)
        with self.db.transaction() as s:
            people.require(s, Permission.ADMINISTER, "mark a period as filed")
            book = PeriodBook.load(s, company_id)
            freq = book.frequency(state)
            if period.frequency != freq:
                example = period_of(period.start, freq).label
                raise ValidationError(f"{state} files {freq}: give the period as {example!r}, not {period_text!r} "
                                      f"(change it with `ecms periods set --state {state} --frequency ...`).")
            overlap = [label for start, end, label in book.filed.get(state, ())
                       if start <= period.end and period.start <= end]
            if overlap:
                raise ConflictError(f"{state} {period.label} overlaps the filed period {overlap[0]}; "
                                    "a filed return cannot be filed again.")
            row = FiledPeriod(company_id=company_id, state=state, period=period.label, start_date=period.start,
                              end_date=period.end, filed_by=people.actor_name(s))
            s.add(row)
            s.flush()
            audit.record(s, "period.filed", "filed_period", row.id, company_id=company_id,
                         after={"state": state, "period": period.label, "start": period.start, "end": period.end})
            return FiledInfo(state, period.label, period.start, period.end)

    def list_filed(self, company_id: int) -> list[FiledInfo]:
        with self.db.reader() as s:
            return [FiledInfo(r.state, r.period, r.start_date, r.end_date) for r in s.execute(
                select(FiledPeriod).where(FiledPeriod.company_id == company_id)
                .order_by(FiledPeriod.state, FiledPeriod.start_date)).scalars()]


def _check_state(state: str) -> None:
    if len(state) != 2 or not state.isalpha():
        raise ValidationError(f"{state!r} is not a two-letter state code.")
