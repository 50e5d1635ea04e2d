"""Determination use cases of the GUI and the CLI (:class:`DeterminationService`).

* :meth:`DeterminationService.run` decides every imported line that has no determination yet (the bulk
  run: :mod:`~ecms_desktop.services.sales.determination_run`).
* :meth:`DeterminationService.iter_results` and :meth:`~DeterminationService.adjustments` read the
  stored determinations (each with its evidence snapshot:
  :mod:`~ecms_desktop.services.sales.determination_records`) and their correction entries.
* :meth:`DeterminationService.exposure`: sales sold exempt without a covering certificate (their
  untaxed amount), and tax collected on sales a certificate covered (the tax), by state, filing period
  and customer, two measures never added together; :meth:`~DeterminationService.exposure_lines`: the
  sales behind one row, each with its explanation (:mod:`~ecms_desktop.services.sales.exposure`).
* :meth:`DeterminationService.preview_reprocess` / :meth:`~DeterminationService.reprocess`: apply a
  certificate to the customer's sales in a date range (:mod:`~ecms_desktop.services.sales.reprocessing`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, select

from ecms_desktop.models.transactions import Determination, DeterminationAdjustment, TransactionLine
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.core import audit
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.sales.determination_records import rounded_to_cent, same_company
from ecms_desktop.services.sales.determination_run import RunSummary, run_determination
from ecms_desktop.services.sales.exposure import (
    ExposureLine,
    ExposureReport,
    exposed_lines,
    exposure_lines,
    exposure_report,
)
from ecms_desktop.services.sales.reprocessing import ReprocessPlan, apply_reprocessing, plan_reprocessing

_TL = cast(Table, TransactionLine.__table__)
_DET = cast(Table, Determination.__table__)
_ADJ = cast(Table, DeterminationAdjustment.__table__)


@dataclass(frozen=True)
class DeterminationRow:
    """A determined sale as the CLI and the views show it."""

    transaction_line_id: int
    invoice_number: str
    line: int
    invoice_date: dt.date
    customer_number: str
    ship_to_state: str
    amount: Decimal
    exempt: bool
    certificate_id: int | None
    certificate_number: str | None
    certificate_version: int | None
    exempt_amount: Decimal
    taxable_amount: Decimal
    also_eligible: list[Any]
    conflict: bool
    exposure_kind: str
    exposure_amount: Decimal
    rules_pack_version: str
    explanation: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return audit.jsonable({
            "invoice_number": self.invoice_number, "line": self.line, "invoice_date": self.invoice_date,
            "customer_number": self.customer_number, "ship_to_state": self.ship_to_state, "amount": self.amount,
            "exempt": self.exempt, "certificate_id": self.certificate_id,
            "certificate_number": self.certificate_number, "certificate_version": self.certificate_version,
            "exempt_amount": self.exempt_amount, "taxable_amount": self.taxable_amount,
            "also_eligible": self.also_eligible, "conflict": self.conflict,
            "exposure": self.exposure_kind or None, "exposure_amount": self.exposure_amount,
            "rules_pack_version": self.rules_pack_version, "explanation": self.explanation,
        })


# -- service ------------------------------------------------------------------------------------------


class DeterminationService:
    """Determination use cases for the GUI and the CLI."""

    def __init__(self, db: Database, rules_version: str | None = None) -> None:
        self.db = db
        self.rules_version = rules_version or load_rules_pack().version

    # run ------------------------------------------------------------------------------------------

    def run(self, company_id: int, *, date_from: dt.date | None = None, date_to: dt.date | None = None,
            batch: int = 50_000, progress: Progress | None = None, cancel: CancelCheck | None = None,
            workers: int | None = None, as_of: dt.date | None = None) -> RunSummary:
        """Decide every imported line (in the date range) that has no determination yet: see
        :func:`~ecms_desktop.services.sales.determination_run.run_determination`."""
        return run_determination(self.db, self.rules_version, company_id, date_from=date_from, date_to=date_to,
                                 batch=batch, progress=progress, cancel=cancel, workers=workers, as_of=as_of)

    # results ----------------------------------------------------------------------------------------

    def iter_results(self, company_id: int, *, date_from: dt.date | None = None, date_to: dt.date | None = None,
                     batch: int = 10_000) -> Iterator[DeterminationRow]:
        """Stored determinations in invoice order, streamed in primary-key batches."""
        last = 0
        while True:
            with self.db.reader() as s:
                stmt = (select(_TL.c.id, _TL.c.invoice_number, _TL.c.line, _TL.c.invoice_date, _TL.c.customer_number,
                               _TL.c.ship_to_state, _TL.c.amount, _DET)
                        .select_from(_TL.join(_DET, _DET.c.transaction_line_id == _TL.c.id))
                        .where(same_company(company_id), _TL.c.id > last).order_by(_TL.c.id).limit(batch))
                if date_from:
                    stmt = stmt.where(_TL.c.invoice_date >= date_from)
                if date_to:
                    stmt = stmt.where(_TL.c.invoice_date <= date_to)
                rows = s.execute(stmt).all()
            if not rows:
                return
            for r in rows:
                yield DeterminationRow(r.id, r.invoice_number, r.line, r.invoice_date, r.customer_number,
                                       r.ship_to_state, rounded_to_cent(r.amount), r.exempt, r.certificate_id,
                                       r.certificate_number or None, r.certificate_version,
                                       rounded_to_cent(r.exempt_amount), rounded_to_cent(r.taxable_amount),
                                       list(r.also_eligible or []), r.conflict, r.exposure_kind,
                                       rounded_to_cent(r.exposure_amount), r.rules_pack_version, r.explanation)
            last = rows[-1].id

    def adjustments(self, company_id: int, transaction_line_id: int | None = None) -> list[dict[str, Any]]:
        """Correction entries (negations and re-creations), oldest first."""
        with self.db.reader() as s:
            stmt = select(_ADJ).where(_ADJ.c.company_id == company_id).order_by(_ADJ.c.id)
            if transaction_line_id is not None:
                stmt = stmt.where(_ADJ.c.transaction_line_id == transaction_line_id)
            return [dict(r._mapping) for r in s.execute(stmt)]

    # exposure ---------------------------------------------------------------------------------------

    def exposure(self, company_id: int, date_from: dt.date, date_to: dt.date, *, state: str | None = None
                 ) -> ExposureReport:
        """Audit exposure by state, filing period and customer (see
        :func:`~ecms_desktop.services.sales.exposure.exposure_report`)."""
        with self.db.reader() as s:
            return exposure_report(s, company_id, date_from, date_to, state=state)

    def exposure_lines(self, company_id: int, date_from: dt.date, date_to: dt.date, *, state: str, period: str,
                       customer_number: str) -> tuple[ExposureLine, ...]:
        """The exposed sales behind one row of the exposure report, each with the certificate its
        decision rests on and why (see :func:`~ecms_desktop.services.sales.exposure.exposure_lines`)."""
        with self.db.reader() as s:
            return exposure_lines(s, company_id, date_from, date_to, state=state, period=period,
                                  customer_number=customer_number)

    def exposed_lines(self, company_id: int, date_from: dt.date, date_to: dt.date, *, state: str | None = None
                      ) -> tuple[ExposureLine, ...]:
        """Every sale in a measure of the exposure report, each with its measure and the rule that put it
        there (see :func:`~ecms_desktop.services.sales.exposure.exposed_lines`)."""
        with self.db.reader() as s:
            return exposed_lines(s, company_id, date_from, date_to, state=state)

    # reprocessing -----------------------------------------------------------------------------------

    def preview_reprocess(self, certificate_id: int, date_from: dt.date, date_to: dt.date, *,
                          as_of: dt.date, prefer_customer_address: bool = False) -> ReprocessPlan:
        """What reprocessing would change, without changing anything."""
        with self.db.reader() as s:
            return plan_reprocessing(s, certificate_id, date_from, date_to, as_of=as_of,
                                     prefer_customer_address=prefer_customer_address)

    def reprocess(self, certificate_id: int, date_from: dt.date, date_to: dt.date, *, as_of: dt.date,
                  prefer_customer_address: bool = False, reason: str = "") -> ReprocessPlan:
        """Apply the certificate (and the customer's other current certificates, by the precedence) to
        the customer's sales in the range, in one transaction, audited line by line."""
        with self.db.transaction() as s:
            return apply_reprocessing(s, self.rules_version, certificate_id, date_from, date_to, as_of=as_of,
                                      prefer_customer_address=prefer_customer_address, reason=reason)
