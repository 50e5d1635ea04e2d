"""Finding the company a command or a screen names (by id or name), shared by every capability that
works for one company."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecms_desktop.models import Company
from ecms_desktop.services.core.errors import NotFoundError, ValidationError


def find_company(session: Session, name_or_id: str | int | None) -> Company:
    """The company named (by id or name, case-insensitive); the only one when none is named."""
    if name_or_id is None or name_or_id == "":
        companies = session.execute(select(Company).order_by(Company.id).limit(2)).scalars().all()
        if len(companies) == 1:
            return companies[0]
        if not companies:
            raise NotFoundError("There is no company yet: create one first (`ecms company add NAME`).")
        raise ValidationError("There are several companies: say which one (--company NAME).")
    if isinstance(name_or_id, int) or str(name_or_id).isdigit():
        company = session.get(Company, int(name_or_id))
        if company:
            return company
    wanted = str(name_or_id).strip().casefold()
    for company in session.execute(select(Company)).scalars():
        if company.name.casefold() == wanted or company.legal_name.casefold() == wanted:
            return company
    raise NotFoundError(f"No company named {name_or_id!r}.")
