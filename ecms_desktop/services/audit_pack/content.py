"""What an audit pack holds: its file names and format, the data gathered for it, and the date its
zip entries carry.

The data are plain dataclasses, gathered once by :mod:`ecms_desktop.services.audit_pack.gather` and
handed to the writers of the workbook (:mod:`ecms_desktop.services.audit_pack.workbook`) and of the
PDF book (:mod:`ecms_desktop.services.audit_pack.pdf`); :mod:`ecms_desktop.services.audit_pack.verify`
checks a pack later against the same names.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ecms_desktop.models import ReviewState, Status
from ecms_desktop.services.core.errors import ValidationError

WORKBOOK_NAME = "audit-pack.xlsx"
PDF_NAME = "audit-pack.pdf"
MANIFEST_NAME = "manifest.json"
SUMS_NAME = "SHA256SUMS"
CERTIFICATES_DIR = "certificates"
MANIFEST_FORMAT = "ecms-audit-pack/1"


# ================================================================================ selection


@dataclass(frozen=True)
class AuditPackSelection:
    """What the auditor asked for. Empty ``customers``/``states`` mean all of them.

    ``customers`` are customer numbers or exact names; ``review_states`` are the review states a
    certificate must have held at some time in the period (default: approved, i.e. in force).
    """

    date_from: dt.date
    date_to: dt.date
    company: str | int | None = None
    customers: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    review_states: tuple[str, ...] = (ReviewState.APPROVED.value,)

    def checked(self) -> AuditPackSelection:
        """The selection with codes normalised; ValidationError when it cannot be used."""
        if self.date_to < self.date_from:
            raise ValidationError(f"The period ends ({self.date_to}) before it starts ({self.date_from}).")
        wanted = tuple(sorted({s.strip().lower() for s in self.review_states if s.strip()}))
        known = {r.value for r in ReviewState}
        bad = [s for s in wanted if s not in known]
        if bad:
            raise ValidationError(f"Unknown review state {', '.join(bad)} (one of: {', '.join(sorted(known))}).")
        states = tuple(sorted({s.strip().upper() for s in self.states if s.strip()}))
        return AuditPackSelection(self.date_from, self.date_to, self.company,
                                  tuple(c.strip() for c in self.customers if c.strip()), states,
                                  wanted or (ReviewState.APPROVED.value,))


# ================================================================================ gathered data


@dataclass(frozen=True)
class Column:
    """A column of a pack table: its title, kind (text, date, datetime, int, number, money, bool)
    and a sensible width in characters."""

    title: str
    kind: str = "text"
    width: int = 14


@dataclass(frozen=True)
class PackDocument:
    """A certificate file in the pack: where it is stored in the pack for each state."""

    document_id: int
    sha256: str
    original_name: str
    media_type: str
    page_count: int
    size: int
    received_at: dt.datetime
    received_via: str
    paths: tuple[tuple[str, str], ...]  # (state, path inside the pack)

    def path_for(self, state: str) -> str:
        return next((p for s, p in self.paths if s == state), self.paths[0][1] if self.paths else "")


@dataclass(frozen=True)
class PackLine:
    """One state line of an included certificate, with what it was during the period."""

    state: str
    state_tax_id: str
    expiry_date: dt.date | None
    expiry_basis: str
    #: Status on the last day of the period (review state on that day, expiry as of that day).
    status_at_end: Status
    #: ``in_force`` (all period), ``partly`` or ``not_in_force``.
    in_force: str
    #: Day ranges within the period when the line was in force.
    in_force_ranges: tuple[tuple[dt.date, dt.date], ...]
    #: The status during the period in words, e.g. "In force 2026-01-01 to 2026-03-14; expired 2026-03-14".
    period_status: str
    #: The latest permit check of this line, in words ("not checked" when there is none).
    permit_check: str


@dataclass(frozen=True)
class PackCertificate:
    """A certificate included in the pack, as plain data."""

    id: int
    version: int
    customer_id: int
    customer_number: str
    customer_name: str
    customer_folder: str
    form_code: str
    form_name: str
    certificate_number: str
    purchaser_name: str
    purchaser_address: str
    purchaser_tax_id: str
    purchaser_ein: str
    exempt_reason: str
    certificate_type: str
    po_number: str
    signed: bool
    signer_name: str
    signed_date: dt.date | None
    effective_date: dt.date | None
    review_state: str
    review_reason: str
    all_states: tuple[str, ...]
    lines: tuple[PackLine, ...]
    documents: tuple[PackDocument, ...]
    #: review-state changes from the audit trail: (UTC date, state)
    review_history: tuple[tuple[dt.date, str], ...]
    #: The latest validation run, in words ("not validated" when there is none).
    validation_result: str

    @property
    def start_date(self) -> dt.date | None:
        return self.effective_date or self.signed_date


@dataclass(frozen=True)
class CompanyBrand:
    """The company as printed on the pack's cover."""

    id: int
    name: str
    legal_name: str
    address: str
    brand_color: str
    logo: bytes | None
    logo_media_type: str | None
    reply_to_email: str
    registrations: tuple[tuple[str, str], ...]


@dataclass
class SectionTable:
    """A table of the pack (one workbook sheet; some also go into the PDF appendix)."""

    key: str
    title: str
    columns: tuple[Column, ...]
    rows: Iterable[Sequence[Any]]
    in_pdf: bool = False


@dataclass
class PackContent:
    """Everything gathered for one pack, handed to the workbook and PDF writers."""

    selection: AuditPackSelection
    company: CompanyBrand
    customers_named: tuple[str, ...]
    certificates: tuple[PackCertificate, ...]
    generated_at: dt.datetime
    program_version: str
    rules_version: str
    database: str
    #: The person who prepared the pack (``services/core/people.py``).
    prepared_by: str = ""
    sections: list[SectionTable] = field(default_factory=list)

    def groups(self) -> list[tuple[str, str, str, list[tuple[PackCertificate, PackLine]]]]:
        """(customer folder, customer label, state, [(certificate, line)]) in pack order."""
        out: dict[tuple[str, str], list[tuple[PackCertificate, PackLine]]] = {}
        labels: dict[str, str] = {}
        for cert in self.certificates:
            labels[cert.customer_folder] = f"{cert.customer_name} ({cert.customer_number})"
            for line in cert.lines:
                out.setdefault((cert.customer_folder, line.state), []).append((cert, line))
        return [(folder, labels[folder], state, items) for (folder, state), items in out.items()]

    def counts_by_state_status(self) -> list[tuple[str, str, str, int]]:
        """(state, status at end of period, in force during period, lines) sorted."""
        c: Counter[tuple[str, str, str]] = Counter()
        for cert in self.certificates:
            for line in cert.lines:
                c[(line.state, line.status_at_end.label, IN_FORCE_LABEL[line.in_force])] += 1
        return [(s, st, f, n) for (s, st, f), n in sorted(c.items())]


IN_FORCE_LABEL = {"in_force": "In force throughout", "partly": "In force part of the period",
                   "not_in_force": "Not in force"}


def zip_date_time(when: dt.datetime) -> tuple[int, int, int, int, int, int]:
    """The date and time a zip entry of the pack carries: ``when`` in UTC, to the even second (as zip
    stores it), never before 1980."""
    utc = when.astimezone(dt.UTC)
    return (max(utc.year, 1980), utc.month, utc.day, utc.hour, utc.minute, utc.second - utc.second % 2)
