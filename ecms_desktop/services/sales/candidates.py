"""The certificates a sale may be covered by, as the determination engine sees them.

:func:`load_candidates` reads every certificate of a company (or of one customer) with its coverage
lines and indexes them by (customer key, state) as the engine's frozen
:class:`~ecms_desktop.services.sales.determination.CandidateCertificate`; the determination run, the
"is this customer exempt here?" question of the ERP feed and the exposure report all decide from it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import String, select, type_coerce
from sqlalchemy.orm import Session

from ecms_desktop.models import Certificate, CoverageLine, Customer
from ecms_desktop.services.sales.determination import CandidateCertificate, CoverageFacts

#: Candidate certificates by (customer key, state), in certificate order.
CandidateIndex = dict[tuple[str, str], tuple[CandidateCertificate, ...]]


def load_candidates(session: Session, company_id: int, customer_key: str | None = None) -> CandidateIndex:
    """Every certificate of the company (or of one customer) as engine candidates, indexed by
    (customer key, state). All review states are included so that explanations can say why a
    pending or archived certificate did not apply.

    One query, fetched at once; the JSON lists (product and commodity codes, local jurisdictions) are
    read as text and each distinct text parsed once (most are ``[]``), so that a hundred thousand
    certificates load in a few seconds."""
    return index_candidates(candidate_rows(session, company_id, customer_key))


def candidate_rows(session: Session, company_id: int, customer_key: str | None = None) -> list[tuple[Any, ...]]:
    """The certificates and coverage lines :func:`index_candidates` builds the index from, as plain
    tuples (they can be sent to a worker process)."""
    cert, line, cust = Certificate.__table__, CoverageLine.__table__, Customer.__table__
    stmt = (select(cert.c.id, cert.c.certificate_number, cert.c.version, cert.c.review_state, cert.c.exempt_reason,
                   cert.c.certificate_type, cert.c.po_number, cert.c.effective_date, cert.c.signed_date,
                   type_coerce(cert.c.product_codes, String), type_coerce(cert.c.commodity_codes, String),
                   cert.c.currency, cert.c.exempt_percent, cert.c.exempt_amount, cust.c.number_key,
                   line.c.id.label("line_id"), line.c.state, line.c.expiry_date,
                   type_coerce(line.c.local_jurisdictions, String), line.c.suspended_at, cert.c.form_code)
            .select_from(cert.join(cust, cust.c.id == cert.c.customer_id)
                         .join(line, line.c.certificate_id == cert.c.id))
            .where(cert.c.company_id == company_id).order_by(cert.c.id, line.c.state))
    if customer_key is not None:
        stmt = stmt.where(cust.c.number_key == customer_key)
    return [tuple(r) for r in session.execute(stmt).all()]


def index_candidates(rows: Sequence[tuple[Any, ...]]) -> CandidateIndex:
    """The candidate index built from the rows of :func:`load_candidates`' query (ordered by certificate)."""
    parsed: dict[str, tuple[str, ...]] = {}

    def codes(value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, str):  # PostgreSQL's driver hands JSONB over already parsed
            return tuple(value)
        out = parsed.get(value)
        if out is None:
            out = parsed[value] = tuple(json.loads(value) or ())
        return out

    frozen: dict[tuple[str, ...], frozenset[str]] = {}
    index: dict[tuple[str, str], list[CandidateCertificate]] = defaultdict(list)
    i, n = 0, len(rows)
    while i < n:
        r = rows[i]
        j = i + 1
        while j < n and rows[j][0] == r[0]:
            j += 1
        lines = tuple(CoverageFacts(x[15], x[16], x[17], codes(x[18]), x[19].date() if x[19] else None)
                      for x in rows[i:j])
        products, commodities = codes(r[9]), codes(r[10])
        candidate = CandidateCertificate(
            certificate_id=r[0], customer_key=r[14], review_state=r[3], exempt_reason=r[4], form_code=r[20],
            lines=lines,
            certificate_number=r[1] or "", version=r[2], certificate_type=r[5], po_number=r[6] or "",
            effective_date=r[7] or r[8],
            product_codes=frozen.get(products) or frozen.setdefault(products, frozenset(products)),
            commodity_codes=frozen.get(commodities) or frozen.setdefault(commodities, frozenset(commodities)),
            currency=r[11], exempt_percent=r[12], exempt_amount=r[13])
        for facts in lines:
            index[(r[14], facts.state)].append(candidate)
        i = j
    return {k: tuple(v) for k, v in index.items()}
