"""Which certificates the review queue walks: a work list of the desk (the grid's query, in the grid's
order), or by default the certificates waiting for the accountant's review, oldest arrival first; either
narrowed to the certificates the reviewer claimed ("Mine") or to those nobody claimed ("Unclaimed")."""

from __future__ import annotations

import datetime as dt

from ecms_desktop.models.enums import Status
from ecms_desktop.services.certificates.query import CertificateQuery, ClaimFilter


def pending_query(*, as_of: dt.date, company_id: int | None = None,
                  claim: ClaimFilter | None = None) -> CertificateQuery:
    """The certificates pending review, oldest arrival first (first in, first reviewed)."""
    return CertificateQuery(statuses=(Status.PENDING_REVIEW,), company_id=company_id, claim=claim, sort="created",
                            as_of=as_of)
