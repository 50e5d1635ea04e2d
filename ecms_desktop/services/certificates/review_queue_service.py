"""Which certificates wait for the accountant's review, in the order the review queue walks them."""

from __future__ import annotations

import datetime as dt

from ecms_desktop.models.enums import Status
from ecms_desktop.services.certificates.query import CertificateQuery, matching_ids
from ecms_desktop.services.core.database import Database


def pending_certificate_ids(db: Database, *, as_of: dt.date, company_id: int | None = None) -> list[int]:
    """Ids of the certificates pending review, oldest arrival first (first in, first reviewed)."""
    query = CertificateQuery(statuses=(Status.PENDING_REVIEW,), company_id=company_id, sort="created",
                             as_of=as_of)
    with db.reader() as s:
        return matching_ids(s, query)
