"""The first steps of an empty desk: is it empty, adding the company, making a demo database to try the
program on. The work is the services' (``companies``, ``demo``), the same ``ecms company add`` and
``ecms demo`` use."""

from __future__ import annotations

import datetime as dt

from ecms_desktop.services.companies.first_steps import FirstSteps, first_steps
from ecms_desktop.services.companies.service import CompanyInfo, CompanyService
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.database_setup import initialize_database
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.demo.plans import DemoOptions
from ecms_desktop.services.demo.service import DemoService
from ecms_desktop.views.operations import Operation

#: How many certificates the desk's demo holds: every status and form kind, made in well under a minute.
DEMO_CERTIFICATES = 250


def read_first_steps(db: Database, company_id: int | None) -> Operation[FirstSteps]:
    """Whether the desk is still empty (no company, or no certificate of the company)."""
    return Operation(lambda _p, _c: first_steps(db, company_id), show_progress=False)


def add_company(db: Database, name: str, *, legal_name: str, state: str, reply_to_email: str) -> Operation[CompanyInfo]:
    """Add the company that sells and holds the certificates (audited)."""
    return Operation(lambda _p, _c: CompanyService(db).create(name, legal_name=legal_name, state=state,
                                                              reply_to_email=reply_to_email),
                     title="Adding the company")


def make_demo_database(url: str, *, as_of: dt.date, certificates: int = DEMO_CERTIFICATES) -> Operation[Database]:
    """Create a new database at ``url`` and fill it with demo data (invented companies, customers,
    certificates and their documents, statuses as of ``as_of``); returns it opened. Cancel leaves an
    empty database there."""

    def work(progress: Progress, cancel: CancelCheck) -> Database:
        db = Database(url)
        try:
            initialize_database(db)
            db.ensure_ready()
            DemoService(db).generate(DemoOptions(certificates=certificates, as_of=as_of), progress=progress,
                                     cancel=cancel)
        except BaseException:
            db.dispose()
            raise
        return db

    return Operation(work, title="Making the demo database")
