"""Certificate lines whose SST recurring relationship has lapsed, as the renewal plan sees them: the
plan asks for a fresh certificate (see :meth:`~ecms_desktop.services.renewals.service.RenewalService.plan`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from ecms_desktop.models import CoverageLine
from ecms_desktop.rules import RulesPack
from ecms_desktop.services.sales.recurring import Lapse
from ecms_desktop.services.sales.sales_history import LapseFinder


def lapsed_lines(s: Session, rules: RulesPack, company_id: int, rows: Sequence[Any], as_of: dt.date
                 ) -> dict[int, Lapse]:
    """The approved lines without an expiry whose SST recurring relationship has lapsed by ``as_of``
    (``sst.recurring_relationship`` of the state; the customer's sales in any state), one per customer
    and state: the newest certificate's. None where another approved certificate still covers the
    customer in the state as of the date (an expiry not yet passed, or no lapse)."""
    find = LapseFinder(s, rules, as_of)
    if not any(line.expiry_date is None and find.months_for((line.state,), cert.form_code, cert.certificate_type)
               for line, cert, _cust in rows):
        return {}
    covered: set[tuple[int, str]] = set()
    newest: dict[tuple[int, str], tuple[dt.date, int, CoverageLine, Lapse]] = {}
    for line, cert, cust in rows:
        k = (cert.customer_id, line.state)
        if line.expiry_date is not None:
            if line.expiry_date >= as_of:
                covered.add(k)
            continue
        obtained = cert.effective_date or cert.signed_date
        lapse = find(company_id, cust.number_key, cert.form_code, cert.certificate_type, obtained,
                     (line.state,)).get(line.state)
        if lapse is None or obtained is None:
            covered.add(k)  # no such rule here, or still in force: the line covers the state
        elif k not in newest or (obtained, cert.id) > newest[k][:2]:
            newest[k] = (obtained, cert.id, line, lapse)
    return {line.id: lapse for k, (_o, _i, line, lapse) in newest.items() if k not in covered}
