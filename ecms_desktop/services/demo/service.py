"""Demo data: a realistic, reproducible book of exemption certificates to try the program on.

``ecms demo`` (and the GUI's "Load demo data") fills an empty database with three selling
companies, their customers (resellers, manufacturers, nonprofits, churches, schools, governments,
farms, direct-pay holders; a few parents with subsidiaries), and certificates on the real forms of
the rules pack in every status as of the chosen date: active, expiring soon, expired, archived with
a reason, pending review and rejected with a reason. Multi-state SST and MTC certificates carry one
coverage line per state; some certificates are single-use with a PO number, some are limited to
product or commodity codes or exempt only in part. Each line's expiry comes from the same
:class:`~ecms_desktop.services.certificates.service.ExpiryContext` the rest of the program uses.

Documents are drawn with reportlab as filled-in forms (see :mod:`ecms_desktop.services.demo.documents`); some are
rasterised like crooked desk scans, some are PNG/JPEG pictures, one or two have several pages. Each
certificate's document is its own and shows its record's values, and the first clean PDFs are read
by the program's reader as they are stored, so validation compares them with the records (see
:mod:`ecms_desktop.services.demo.document_files`, which also describes the two deliberate slips: a
certificate pending review with another customer's certificate filed with it, and one with the
customer's certificate for another state, each reported by validation with both values).

Reproducible: the same seed and as-of date give the same companies, customers, certificates and
file bytes; only the timestamps of the moment it ran (created/received/audit times) differ.

Speed and the audit trail, measured at 100,000 certificates (see ``bench/README.md``): customers,
certificates and coverage lines are written with bulk Core inserts in chunks, and the audit trail
still gets **one event per created record** (``company.created``, ``customer.created``,
``certificate.created`` with a compact ``after`` that names its lines, expiry dates and document
hash, ``document.received`` for each document through the normal document storage, with its
reading) plus one ``demo.generated`` summary. A certificate's review history (approved / rejected /
archived) is recorded inside its ``certificate.created`` event, not as separate events.

Everything is written in one transaction: the demo is there completely or not at all (cancelling
rolls it back).

This module reads what the database holds, runs the pieces and counts the result. The pieces: the
fixed reference data (:mod:`~ecms_desktop.services.demo.reference`), permit numbers
(:mod:`~ecms_desktop.services.demo.permits`), what to make and the plans
(:mod:`~ecms_desktop.services.demo.plans`) drawn by :mod:`~ecms_desktop.services.demo.planner`, the
document files (:mod:`~ecms_desktop.services.demo.document_files`) and the bulk writer
(:mod:`~ecms_desktop.services.demo.writer`).
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecms_desktop.models import Certificate, Company, Customer, CustomerNumberAlias, Status
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.services.certificates.query import CertificateQuery, count_by_status
from ecms_desktop.services.certificates.service import ExpiryContext
from ecms_desktop.services.core import audit
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.core.settings import business_settings
from ecms_desktop.services.demo.document_files import documents_for, make_documents
from ecms_desktop.services.demo.permits import PermitNumbers
from ecms_desktop.services.demo.planner import Planner
from ecms_desktop.services.demo.plans import DemoOptions
from ecms_desktop.services.demo.reference import COMPANIES
from ecms_desktop.services.demo.writer import CHUNK, Writer


@dataclass(frozen=True)
class DemoResult:
    """What the demo wrote, with the certificates counted by status as of the date asked."""

    companies: tuple[str, ...]
    default_company: str
    customers: int
    certificates: int
    coverage_lines: int
    document_files: int
    document_arrivals: int
    audit_events: int
    status_counts: dict[Status, int]
    as_of: dt.date
    seed: int
    seconds: float
    #: Certificates whose document deliberately differs from the record (id -> what differs), for
    #: validation to catch.
    slips: dict[int, str] = field(default_factory=dict)


def _customers_for(n_certificates: int) -> int:
    """About four certificates per customer (renewals, several states), at least a handful."""
    return max(len(COMPANIES) * 3, min(n_certificates, round(n_certificates / 4)))


def existing_data(session: Session) -> dict[str, int]:
    """How many companies, customers and certificates the database holds."""
    return {
        "companies": session.execute(select(func.count()).select_from(Company)).scalar_one(),
        "customers": session.execute(select(func.count()).select_from(Customer)).scalar_one(),
        "certificates": session.execute(select(func.count()).select_from(Certificate)).scalar_one(),
    }


class DemoService:
    """Fill a database with demo data (see the module docstring for what and how)."""

    def __init__(self, db: Database, rules: RulesPack | None = None) -> None:
        self.db = db
        self.rules = rules or load_rules_pack()

    def generate(self, options: DemoOptions, *, progress: Progress | None = None,
                 cancel: CancelCheck | None = None) -> DemoResult:
        """Write the demo in one transaction. Refused (ValidationError) when the database already
        holds companies, customers or certificates, unless ``options.add``: then companies with the
        demo's names are reused and new customer numbers skip the ones in use. Raises
        :class:`Cancelled` (nothing written) when ``cancel()`` turns true."""
        started = time.perf_counter()
        n = options.certificates
        if n < 1:
            raise ValidationError("Say how many demo certificates to make (at least 1).")
        if n > 1_000_000:
            raise ValidationError("At most 1,000,000 demo certificates.")
        names = [options.company.strip() or COMPANIES[0]["name"], *(c["name"] for c in COMPANIES[1:])]
        if len(set(n.casefold() for n in names)) != len(names):
            raise ValidationError(f"The company name {names[0]!r} is already used by another demo company.")

        # Read what is there (outside the write transaction: drawing documents takes a while).
        with self.db.reader() as s:
            existing = existing_data(s)
            # Numbers merged into other customers still mean them: never reused for a new demo customer.
            taken = set(s.execute(select(Customer.number_key)).scalars()) | set(
                s.execute(select(CustomerNumberAlias.number_key)).scalars())
            contexts, windows = [], []
            for name in names:
                company = s.execute(select(Company).where(Company.name == name)).scalar_one_or_none()
                if company is None:
                    contexts.append(ExpiryContext(self.rules))
                    windows.append(business_settings(s, None).expiring_soon_days)
                else:
                    contexts.append(ExpiryContext.load(s, self.rules, company.id))
                    windows.append(business_settings(s, company.id).expiring_soon_days)
        _refuse_unless_empty(existing, options.add, self.db.display_url)

        planner = Planner(self.rules, options, contexts, windows, taken, names)
        registrations = [self._registrations(c["states"], planner.rng) for c in COMPANIES]
        customers = planner.plan_customers(_customers_for(n))
        cert_plans = planner.plan_certificates(n)
        first_chunk = [next(cert_plans) for _ in range(min(CHUNK, n))]
        n_docs = documents_for(first_chunk)
        total = n_docs + len(customers) + n
        files = make_documents(first_chunk, customers, registrations, self.rules,
                               f"ecms-demo:{options.seed}:{options.as_of.isoformat()}", progress, cancel, total)

        with self.db.transaction() as s:
            # Checked again under the write lock: someone may have written meanwhile.
            _refuse_unless_empty(existing_data(s), options.add, self.db.display_url)
            writer = Writer(s, self.rules, options, names, registrations, customers, files, progress, cancel,
                             total, n_docs)
            writer.companies()
            writer.customers()
            writer.certificates(first_chunk)
            while True:
                chunk = [p for _, p in zip(range(CHUNK), cert_plans, strict=False)]
                if not chunk:
                    break
                writer.certificates(chunk)
            window = writer.window_of_default()
            counts = count_by_status(s, CertificateQuery(as_of=options.as_of, window_days=window,
                                                         company_id=None))
            seconds = time.perf_counter() - started
            audit.record(s, "demo.generated", "database", "demo", details={
                "seed": options.seed, "as_of": options.as_of, "certificates": n, "customers": len(customers),
                "companies": names, "coverage_lines": writer.n_lines, "document_files": len(files),
                "document_arrivals": writer.n_documents, "added_to_existing": options.add,
                "status_counts": {k.value: v for k, v in counts.items()},
                "deliberate_slips": {str(k): v for k, v in writer.slips.items()},
            })
            writer.n_events += 1
            if progress:
                progress(total, total, "Demo data written")
            return DemoResult(tuple(names), names[0], len(customers), n, writer.n_lines, len(files),
                              writer.n_documents, writer.n_events, counts, options.as_of, options.seed,
                              seconds, dict(writer.slips))

    def _registrations(self, states: Sequence[str], rng: random.Random) -> dict[str, str]:
        permits = PermitNumbers(self.rules)
        return {st: permits.make(st, rng) for st in states if self.rules.state(st).has_sales_tax}


def _refuse_unless_empty(existing: dict[str, int], add: bool, url: str) -> None:
    if add or not any(existing.values()):
        return
    raise ValidationError(
        f"{url} already holds data ({existing['companies']} companies, {existing['customers']} customers, "
        f"{existing['certificates']} certificates). Demo data goes into an empty database: use a new one "
        "(--db), or add the demo beside your data with --add (its customers get numbers not yet in use)."
    )
