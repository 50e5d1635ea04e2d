"""Business settings: values a company's team agrees on (the expiring-soon window, the renewal
ladder's days, how old a permit check may be, the SMTP sending rate), kept in the database so that
everyone on a shared database works with the same ones.

A setting is the company's own value, else the value set for all companies, else the default of
:class:`BusinessSettings`. Settings are changed through
:meth:`ecms_desktop.services.companies.service.CompanyService.set_setting`, which checks the value and
records the change in the audit trail; everything else reads them here, typed, in one statement.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ecms_desktop.models import Setting
from ecms_desktop.services.core.expiry import DEFAULT_EXPIRING_SOON_DAYS

SettingValue = int | list[int]


@dataclass(frozen=True)
class BusinessSettings:
    """The business settings in force for one company: stored in the database, so that everyone on a
    shared database works with the same ones. Each is the company's own value, else the value set for
    all companies, else the default below (see :func:`business_settings`)."""

    #: Days before its expiry from which a certificate counts as expiring soon.
    expiring_soon_days: int = DEFAULT_EXPIRING_SOON_DAYS
    #: Days before expiry when the renewal request goes out.
    renewal_window_days: int = 60
    #: Days after the request on which reminders go out.
    renewal_reminder_days: tuple[int, ...] = (7, 14)
    #: Days after the request on which the customer's account owner is told (0: never).
    renewal_escalation_days: int = 21
    #: How old a permit check may be, in days, before it is done again.
    permit_check_max_age_days: int = 365
    #: Most renewal e-mails sent per minute (0: no limit).
    smtp_rate_per_minute: int = 600

    def as_json(self) -> dict[str, SettingValue]:
        """The settings as stored (JSON values), by name."""
        out: dict[str, SettingValue] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


#: Business settings with their defaults, as stored (JSON values). Stored per company (or for all
#: companies) in the database.
DEFAULT_SETTINGS: dict[str, SettingValue] = BusinessSettings().as_json()

#: The values each setting may take (inclusive; for a list, each of its days), with what the bounds
#: mean: a negative window or a window of centuries is a slip, not a policy.
SETTING_BOUNDS: dict[str, tuple[int, int, str]] = {
    "expiring_soon_days": (1, 365, "days before expiry"),
    "renewal_window_days": (1, 365, "days before expiry"),
    "renewal_reminder_days": (1, 365, "days after the request"),
    "renewal_escalation_days": (0, 365, "days after the request (0: never)"),
    "permit_check_max_age_days": (1, 3660, "days"),
    "smtp_rate_per_minute": (0, 10000, "e-mails per minute (0: no limit)"),
}
#: Most reminder days a renewal ladder may have.
MAX_REMINDERS = 10


def setting_problem(key: str, value: SettingValue) -> str | None:
    """Why ``value`` cannot be the setting ``key`` (naming the setting and the allowed range), or
    None when it can. The value's type is checked by the caller."""
    low, high, unit = SETTING_BOUNDS[key]
    values = list(value) if isinstance(value, list) else [value]
    if isinstance(value, list) and len(values) > MAX_REMINDERS:
        return f"Setting {key!r} takes at most {MAX_REMINDERS} values; {len(values)} were given."
    for item in values:
        if not low <= item <= high:
            return f"Setting {key!r} must be from {low} to {high} {unit}; {item} is outside that range."
    return None


def business_settings(session: Session, company_id: int | None = None) -> BusinessSettings:
    """The business settings in force for a company, read in one statement: for each setting the
    company's own value, else the value set for all companies, else the default. ``company_id`` None:
    the values set for all companies, else the defaults."""
    stmt = select(Setting.company_id, Setting.key, Setting.value)
    if company_id is None:
        stmt = stmt.where(Setting.company_id.is_(None))
    else:
        stmt = stmt.where(or_(Setting.company_id.is_(None), Setting.company_id == company_id))
    stored: dict[str, Any] = {}
    # the all-companies rows first, so that the company's own value overrides them
    for _company, key, value in sorted(session.execute(stmt), key=lambda row: row[0] is not None):
        stored[key] = value
    typed: dict[str, Any] = {}
    for f in fields(BusinessSettings):
        if f.name in stored:
            value = stored[f.name]
            typed[f.name] = tuple(int(d) for d in value) if isinstance(DEFAULT_SETTINGS[f.name], list) else int(value)
    return BusinessSettings(**typed)
