"""Dates between Python and Qt's date editors."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import QDate


def qdate(day: dt.date) -> QDate:
    """``day`` for a ``QDateEdit``."""
    return QDate(day.year, day.month, day.day)


def pydate(day: QDate) -> dt.date:
    """The date a ``QDateEdit`` shows."""
    return dt.date(day.year(), day.month(), day.day())
