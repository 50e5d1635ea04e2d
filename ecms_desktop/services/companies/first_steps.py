"""What an empty desk still needs before the accountant can work: a company, then its certificates."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from ecms_desktop.models import Certificate, Company
from ecms_desktop.services.core.database import Database


@dataclass(frozen=True)
class FirstSteps:
    """The desk's company (None when the database has none yet) and how many certificates it holds."""

    company_name: str | None
    certificates: int

    @property
    def needed(self) -> bool:
        """Whether the desk should greet the user with the first steps (no company, or no certificate)."""
        return self.company_name is None or self.certificates == 0


def first_steps(db: Database, company_id: int | None) -> FirstSteps:
    """Whether the database is still empty for the desk: its company (``company_id``, else none) and the
    number of that company's certificates, whatever their state (archived ones count)."""
    with db.reader() as s:
        company = s.get(Company, company_id) if company_id is not None else None
        if company is None:
            return FirstSteps(None, 0)
        count = s.execute(select(func.count(Certificate.id)).where(Certificate.company_id == company.id)).scalar_one()
        return FirstSteps(company.name, int(count))
