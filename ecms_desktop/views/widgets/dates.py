"""Dates between Python and Qt's date editors, and a date field that takes a date as typed.

:class:`TypedDateField` reads what the user types and never guesses silently: ``2026-12-05`` (ISO) and
``12/05/2026`` (US, month first) are taken as written; ``12/5`` (no year) is taken in the year of the
desk's date and the field says so beside it; anything else is refused with a message saying what to
write. Qt's ``QDateEdit`` instead turns ``12/5`` typed into a ``yyyy-MM-dd`` mask into another date.
"""

from __future__ import annotations

import datetime as dt
import re

from PySide6.QtCore import QDate, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QWidget

_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_US = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d+)$")
_US_NO_YEAR = re.compile(r"^(\d{1,2})/(\d{1,2})$")
_FORMATS = "write 2026-12-05 or 12/05/2026 (month/day/year), or 12/5 for this year"


def qdate(day: dt.date) -> QDate:
    """``day`` for a ``QDateEdit``."""
    return QDate(day.year, day.month, day.day)


def pydate(day: QDate) -> dt.date:
    """The date a ``QDateEdit`` shows."""
    return dt.date(day.year(), day.month(), day.day())


def read_typed_date(text: str, year: int) -> tuple[dt.date, bool]:
    """The date ``text`` names, and whether its year was supplied (``year``, as month/day had none).
    ValueError, with a message saying what to write, for anything else."""
    text = text.strip()
    if not text:
        raise ValueError(f"No date: {_FORMATS}.")
    if m := _ISO.match(text):
        y, month, day, supplied = int(m[1]), int(m[2]), int(m[3]), False
    elif m := _US.match(text):
        if len(m[3]) != 4:
            raise ValueError(f"{text!r}: write the year in full (for example 12/05/2026).")
        month, day, y, supplied = int(m[1]), int(m[2]), int(m[3]), False
    elif m := _US_NO_YEAR.match(text):
        month, day, y, supplied = int(m[1]), int(m[2]), year, True
    else:
        raise ValueError(f"{text!r} is not a date: {_FORMATS}.")
    if not 1 <= month <= 12:
        raise ValueError(f"{text!r}: there is no month {month} (month comes first: 12/05/2026 is 5 December).")
    try:
        return dt.date(y, month, day), supplied
    except ValueError:
        raise ValueError(f"{text!r}: {dt.date(2000, month, 1):%B} has no day {day}"
                         + (f" in {y}." if month == 2 and day == 29 else ".")) from None


class TypedDateField(QWidget):
    """A date typed as text (see the module), with a note beside it: the date a year-less entry was
    read as, or what is wrong. ``date_changed`` follows every accepted change."""

    date_changed = Signal(object)  # dt.date

    def __init__(self, day: dt.date, *, year: int, parent: QWidget | None = None) -> None:
        """``year``: the year a month/day entry is taken in (the desk's date's), shown when used."""
        super().__init__(parent)
        self.year = year
        self._date: dt.date | None = day
        self._problem = ""
        self.edit = QLineEdit(day.isoformat())
        self.edit.setPlaceholderText("2026-12-05 or 12/05/2026")
        self.edit.setToolTip(f"Type a date: {_FORMATS} ({year}).")
        self.edit.setMaximumWidth(140)
        self.note = QLabel("")
        self.note.setObjectName("dateNote")
        self.note.setWordWrap(True)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit)
        layout.addWidget(self.note, 1)
        self.edit.editingFinished.connect(self.read)
        self.edit.textChanged.connect(self._on_edit_text_changed)

    def date(self) -> dt.date | None:
        """The date read from the field; None while the text is not a date (see :meth:`problem`)."""
        return self._date

    def problem(self) -> str:
        """What is wrong with the typed text ("" when it is a date)."""
        return self._problem

    def set_date(self, day: dt.date) -> None:
        self.edit.setText(day.isoformat())
        self.note.setText("")
        self.read()

    def read(self) -> dt.date | None:
        """Read the typed text now (done when editing finishes): the date, shown in ISO form, or the
        problem shown beside the field."""
        typed = self.edit.text().strip()
        if self._date is not None and typed == self._date.isoformat():
            return self._date  # read already (editing finishes again when the field loses focus)
        try:
            day, supplied = read_typed_date(typed, self.year)
        except ValueError as exc:
            self._date, self._problem = None, str(exc)
            self.note.setStyleSheet("color: #B03A2E;")
            self.note.setText(self._problem)
            return None
        self._problem = ""
        changed, self._date = day != self._date, day
        if typed != day.isoformat():
            self.edit.setText(day.isoformat())  # shown as it was read
        self.note.setStyleSheet("")
        self.note.setText(f"{typed} read as {day:%a %d %b %Y}"
                          if supplied else "")
        if changed:
            self.date_changed.emit(day)
        return day

    def _on_edit_text_changed(self, text: str) -> None:
        if self._date is None or text.strip() != self._date.isoformat():
            self._date = None  # read again when editing finishes: never a stale date
            self.note.setText("")
