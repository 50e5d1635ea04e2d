"""Sales dated inside a filed period that arrive after the return was filed.

A filed return's figures never change silently. When the ERP sends an invoice line dated inside a period
the company has already filed for its ship-to state:

* the import says so (:func:`new_lines_in_filed_periods`, :func:`filed_period_warning`: the invoices and
  lines, and the filed period), and still imports the line (it is a real sale);
* its determination is booked the way reprocessing books corrections (:func:`book_late_determinations`,
  run at the end of every determination run, and of a reprocessing that decides a line for the first
  time): the decision goes into a correction entry
  (``recreation``) of the current open period of the state as of the run's date, and the line's own
  determination, the one that belongs to the filed period, reports nothing (no exempt or taxable amount,
  no exposure; ``origin`` ``late``) and says where the decision was booked. Nothing of the filed period
  is reversed: the line was not in its return.

A determination is late when it was made (by a determination run or a reprocessing) after the period
was filed: reprocessing never updates a determination in a filed period, so such a row can only be the
first decision of a line the return did not contain. One made before the filing was in the return and
is never moved.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, and_, insert, select, update
from sqlalchemy.orm import Session

from ecms_desktop.models import utcnow
from ecms_desktop.models.transactions import Determination, DeterminationAdjustment, FiledPeriod, TransactionLine
from ecms_desktop.services.core import audit, people
from ecms_desktop.services.sales.periods import PeriodBook

_TL = cast(Table, TransactionLine.__table__)
_DET = cast(Table, Determination.__table__)
_ADJ = cast(Table, DeterminationAdjustment.__table__)
_FP = cast(Table, FiledPeriod.__table__)
_ZERO = Decimal(0)
#: The ``origin`` of the determination of a line decided after its period was filed.
LATE_ORIGIN = "late"
#: How many lines a warning names before it says "and N more".
_NAMED = 20


@dataclass(frozen=True)
class LineInFiledPeriod:
    """An invoice line dated inside a filed period of its ship-to state."""

    transaction_line_id: int
    invoice_number: str
    line: int
    invoice_date: dt.date
    state: str
    filed_period: str


def _in_filed_period() -> Any:
    return _TL.join(_FP, and_(_FP.c.company_id == _TL.c.company_id, _FP.c.state == _TL.c.ship_to_state,
                              _TL.c.invoice_date >= _FP.c.start_date, _TL.c.invoice_date <= _FP.c.end_date))


def _has_filed_periods(session: Session, company_id: int) -> bool:
    return session.execute(select(_FP.c.id).where(_FP.c.company_id == company_id).limit(1)).first() is not None


def new_lines_in_filed_periods(session: Session, company_id: int, imported_at: dt.datetime
                               ) -> list[LineInFiledPeriod]:
    """The lines an import stored at ``imported_at`` that have no determination and are dated inside a
    filed period (none at all, without a query of the lines, when the company has filed nothing)."""
    if not _has_filed_periods(session, company_id):
        return []
    stmt = (select(_TL.c.id, _TL.c.invoice_number, _TL.c.line, _TL.c.invoice_date, _TL.c.ship_to_state, _FP.c.period)
            .select_from(_in_filed_period().outerjoin(_DET, _DET.c.transaction_line_id == _TL.c.id))
            .where(_TL.c.company_id == company_id, _TL.c.imported_at == imported_at,
                   _DET.c.transaction_line_id.is_(None))
            .order_by(_TL.c.ship_to_state, _FP.c.period, _TL.c.invoice_number, _TL.c.line))
    return [LineInFiledPeriod(*r) for r in session.execute(stmt)]


def filed_period_warning(name: str, lines: Sequence[LineInFiledPeriod]) -> str:
    """The import's warning about new lines in filed periods, naming the periods and the lines."""
    if not lines:
        return ""
    by_period: dict[tuple[str, str], list[LineInFiledPeriod]] = defaultdict(list)
    for x in lines:
        by_period[(x.state, x.filed_period)].append(x)
    parts = []
    for (state, period), found in by_period.items():
        named = ", ".join(f"invoice {x.invoice_number} line {x.line} ({x.invoice_date})" for x in found[:_NAMED])
        more = f" and {len(found) - _NAMED} more" if len(found) > _NAMED else ""
        parts.append(f"{state} {period}: {named}{more}")
    return (f"{name}: {len(lines)} new line(s) are dated inside periods already filed - " + "; ".join(parts)
            + ". They were imported; their determination will be booked in the current open period, "
              "like a correction, and the filed returns' figures do not change.")


def book_late_determinations(session: Session, company_id: int, as_of: dt.date) -> list[LineInFiledPeriod]:
    """Move the decision of every line determined after its period was filed into a correction entry of
    the state's current open period as of ``as_of`` (see the module); the lines, audited. Nothing to do,
    without a query of the lines, when the company has filed nothing."""
    if not _has_filed_periods(session, company_id):
        return []
    stmt = (select(_TL.c.id, _TL.c.invoice_number, _TL.c.line, _TL.c.invoice_date, _TL.c.ship_to_state,
                   _FP.c.period, _DET)
            .select_from(_in_filed_period().join(_DET, _DET.c.transaction_line_id == _TL.c.id))
            .where(_TL.c.company_id == company_id, _DET.c.origin.in_(("determine", "reprocess")),
                   _DET.c.determined_at > _FP.c.filed_at)
            .order_by(_TL.c.id))
    rows = session.execute(stmt).all()
    if not rows:
        return []
    book = PeriodBook.load(session, company_id)
    now = utcnow()
    actor = people.actor_name(session)
    out, entries, events = [], [], []
    for r in rows:
        late = LineInFiledPeriod(r.id, r.invoice_number, r.line, r.invoice_date, r.ship_to_state, r.period)
        booked_in = book.current_open(r.ship_to_state, as_of).label
        why = (f"dated {r.invoice_date}, inside the filed period {r.ship_to_state} {r.period}, and determined after "
               f"it was filed: booked in the open period {booked_in}")
        entries.append({
            "company_id": company_id, "transaction_line_id": r.id, "kind": "recreation", "state": r.ship_to_state,
            "period": booked_in, "posted_on": as_of, "reason": why, "created_by": actor, "created_at": now,
            "exempt": r.exempt, "certificate_id": r.certificate_id, "certificate_number": r.certificate_number or "",
            "certificate_version": r.certificate_version, "coverage_line_id": r.coverage_line_id,
            "coverage_expiry": r.coverage_expiry, "certificate_status": r.certificate_status or "",
            "rules_pack_version": r.rules_pack_version or "", "exempt_amount": r.exempt_amount,
            "taxable_amount": r.taxable_amount, "explanation": r.explanation})
        session.execute(update(_DET).where(_DET.c.transaction_line_id == r.id).values(
            exempt=False, exempt_amount=_ZERO, taxable_amount=_ZERO, exposure_kind="", exposure_amount=_ZERO,
            origin=LATE_ORIGIN,
            explanation={"summary": f"not part of the filed return {r.ship_to_state} {r.period}: {why} "
                                    "(see the correction entry)", "booked_in": booked_in}))
        events.append(audit.NewEvent(
            "determination.booked_in_open_period", "transaction_line", r.id, company_id=company_id,
            details={"invoice_number": r.invoice_number, "line": r.line, "filed_period": r.period,
                     "posted_to": booked_in, "as_of": as_of.isoformat()}))
        out.append(late)
    session.execute(insert(_ADJ), entries)
    audit.record_many(session, events)
    return out
