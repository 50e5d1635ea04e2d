"""Gathering an audit pack's content from the database: which certificates the auditor's selection
takes in, each line's status during the period, and where each stored file goes in the pack
(``certificates/<customer>/<state>/<file>``, under names that are safe on every system and in a zip).

Everything is read in one session into the plain records of
:mod:`ecms_desktop.services.audit_pack.content`, which the writers of the workbook and the PDF book use.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import defaultdict

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from ecms_desktop import __version__
from ecms_desktop.models import AuditEvent, Certificate, CoverageLine, Document, ReviewState, Status
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.services.audit_pack.content import (
    CERTIFICATES_DIR,
    AuditPackSelection,
    CompanyBrand,
    PackCertificate,
    PackContent,
    PackDocument,
    PackLine,
)
from ecms_desktop.services.audit_pack.period_status import (
    describe_period,
    effective_timeline,
    in_force_ranges,
    review_timeline,
    state_on,
)
from ecms_desktop.services.audit_pack.sections import chunks, permit_results, validation_results
from ecms_desktop.services.core import people
from ecms_desktop.services.core.company_lookup import find_company
from ecms_desktop.services.core.expiry import line_status
from ecms_desktop.services.core.settings import business_settings
from ecms_desktop.services.customers.service import find_customer

#: Review-state changes read from the audit trail to know a certificate's state on each day.
REVIEW_ACTIONS = ("certificate.created", "certificate.approved", "certificate.rejected",
                  "certificate.archived", "certificate.unarchived")


# ================================================================================ safe names

_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
                     *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()&,+'-]+")
_SPACES = re.compile(r"\s+")


def safe_name(raw: str, *, max_length: int = 80, fallback: str = "unnamed") -> str:
    """A file or folder name that is safe on every system and in a zip: ASCII letters, digits and a
    few punctuation marks; no path separators, no ``..``, no leading dot, no reserved Windows device
    names, at most ``max_length`` characters (the extension is kept)."""
    text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
    text = _UNSAFE.sub("_", text.replace("/", "_").replace("\\", "_"))
    text = _SPACES.sub(" ", text)
    while ".." in text:
        text = text.replace("..", ".")
    text = text.strip(" ._-")
    if not text:
        text = fallback
    stem, dot, ext = text.rpartition(".")
    if not dot or len(ext) > 8 or not stem:
        stem, ext = text, ""
    if stem.split(".")[0].strip().upper() in _WINDOWS_RESERVED:
        stem = "_" + stem
    ext = ("." + ext) if ext else ""
    stem = stem[: max(1, max_length - len(ext))].rstrip(" .")
    return (stem or fallback) + ext


def unique_name(name: str, taken: set[str]) -> str:
    """``name`` or ``name (2)``, ``name (3)`` ... so that no two files in a folder collide (compared
    case-insensitively, as on Windows and macOS)."""
    candidate, n = name, 1
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{stem} ({n})" + (f".{ext}" if ext else "")
    taken.add(candidate.casefold())
    return candidate


# ================================================================================ gathering


def candidate_certificate_ids(session: Session, sel: AuditPackSelection, company_id: int,
                              customer_ids: list[int]) -> list[int]:
    """The certificates of the company (of the given customers; all when none) whose validity overlaps
    the period in a selected state: those the pack considers, before their review history is read."""
    start_col = Certificate.effective_date
    stmt = (
        select(Certificate.id).join(CoverageLine, CoverageLine.certificate_id == Certificate.id)
        .where(Certificate.company_id == company_id)
        .where(or_(CoverageLine.expiry_date.is_(None), CoverageLine.expiry_date >= sel.date_from))
        .where(or_(start_col.is_(None), start_col <= sel.date_to))
        .where(or_(Certificate.effective_date.is_not(None), Certificate.signed_date.is_(None),
                   Certificate.signed_date <= sel.date_to))
        .distinct()
    )
    if sel.states:
        stmt = stmt.where(CoverageLine.state.in_(sel.states))
    if customer_ids:
        stmt = stmt.where(Certificate.customer_id.in_(customer_ids))
    return sorted(session.execute(stmt).scalars().all())


def gather(session: Session, selection: AuditPackSelection, *, generated_at: dt.datetime, database: str,
           rules: RulesPack | None = None, window_days: int = 30) -> PackContent:
    """Read everything the pack needs in one session. Certificates in pack order: customer number,
    then certificate id; lines in state order."""
    rules = rules or load_rules_pack()
    sel = selection.checked()
    company = find_company(session, sel.company)
    customer_ids: list[int] = []
    for wanted in sel.customers:
        customer_ids.append(find_customer(session, company.id, wanted).id)
    window_days = business_settings(session, company.id).expiring_soon_days or window_days

    ids = candidate_certificate_ids(session, sel, company.id, customer_ids)

    validation = validation_results(session, ids)
    permits = permit_results(session, ids)

    history: dict[int, list[tuple[dt.datetime, str]]] = defaultdict(list)
    for chunk in chunks(ids, 500):
        for cid, when, after in session.execute(
                select(AuditEvent.certificate_id, AuditEvent.occurred_at, AuditEvent.after)
                .where(AuditEvent.certificate_id.in_(chunk), AuditEvent.action.in_(REVIEW_ACTIONS))
                .order_by(AuditEvent.seq)):
            state = (after or {}).get("review_state")
            if cid is not None and state:
                history[cid].append((when, str(state)))

    certs: list[Certificate] = []
    for chunk in chunks(ids, 500):
        certs.extend(session.execute(
            select(Certificate).where(Certificate.id.in_(chunk))
            .options(selectinload(Certificate.lines), selectinload(Certificate.documents),
                     selectinload(Certificate.customer))).scalars())
    certs.sort(key=lambda c: (c.customer.number_key, c.customer.id, c.id))

    folders: dict[int, str] = {}
    taken_folders: set[str] = set()
    files_taken: dict[tuple[str, str], set[str]] = defaultdict(set)
    included: list[PackCertificate] = []
    for cert in certs:
        recorded = review_timeline(history.get(cert.id, []), cert.review_state, cert.created_at)
        timeline = effective_timeline(recorded)
        start = cert.effective_date or cert.signed_date
        lines: list[PackLine] = []
        for line in cert.lines:
            if sel.states and line.state not in sel.states:
                continue
            suspended = line.suspended_at.astimezone(dt.UTC).date() if line.suspended_at else None
            lo = max(sel.date_from, start) if start else sel.date_from
            hi = min(sel.date_to, line.expiry_date) if line.expiry_date else sel.date_to
            if lo > hi:
                continue  # this line's validity does not overlap the period
            held = {state_on(timeline, lo), *[s for d, s in timeline if lo < d <= hi]}
            if not held & set(sel.review_states):
                continue
            ranges = in_force_ranges(timeline, start, line.expiry_date, suspended, sel.date_from, sel.date_to)
            code, words = describe_period(timeline, start, line.expiry_date, suspended, ranges,
                                          sel.date_from, sel.date_to)
            accepted = next((d for d, st in recorded if st == ReviewState.APPROVED), None)
            if accepted is not None:
                words += f"; accepted (approved) {accepted.isoformat()}"
            end_state = state_on(timeline, sel.date_to) or cert.review_state
            status = line_status(end_state, line.expiry_date, sel.date_to, window_days)
            if suspended is not None and suspended <= sel.date_to and status in (Status.ACTIVE,
                                                                                 Status.EXPIRING_SOON):
                status = Status.EXPIRED
            permit = permits.get((cert.id, line.state), "not checked")
            lines.append(PackLine(line.state, line.state_tax_id, line.expiry_date, line.expiry_basis, status,
                                  code, tuple(ranges), words, permit))
        if not lines:
            continue
        if cert.customer_id not in folders:
            folders[cert.customer_id] = unique_name(
                safe_name(f"{cert.customer.number} {cert.customer.legal_name}", max_length=60), taken_folders)
        folder = folders[cert.customer_id]
        docs: list[PackDocument] = []
        for doc in cert.documents:
            paths: list[tuple[str, str]] = []
            base = safe_name(f"{cert.id}-{cert.certificate_number + '-' if cert.certificate_number else ''}"
                             f"{doc.original_name}", max_length=90)
            if "." not in base:
                base += _extension(doc.file.media_type)
            for pack_line in lines:
                name = unique_name(base, files_taken[(folder, pack_line.state)])
                paths.append((pack_line.state, f"{CERTIFICATES_DIR}/{folder}/{safe_name(pack_line.state)}/{name}"))
            docs.append(PackDocument(doc.id, doc.sha256, doc.original_name, doc.file.media_type,
                                     doc.file.page_count, doc.file.size, doc.received_at, doc.received_via,
                                     tuple(paths)))
        try:
            form_name = rules.form(cert.form_code).name
        except Exception:
            form_name = ""
        included.append(PackCertificate(
            id=cert.id, version=cert.version, customer_id=cert.customer_id, customer_number=cert.customer.number,
            customer_name=cert.customer.legal_name, customer_folder=folder, form_code=cert.form_code,
            form_name=form_name, certificate_number=cert.certificate_number, purchaser_name=cert.purchaser_name,
            purchaser_address=cert.purchaser_address, purchaser_tax_id=cert.purchaser_tax_id,
            purchaser_ein=cert.purchaser_ein, exempt_reason=cert.exempt_reason,
            certificate_type=cert.certificate_type, po_number=cert.po_number, signed=cert.signed,
            signer_name=cert.signer_name, signed_date=cert.signed_date, effective_date=cert.effective_date,
            review_state=cert.review_state, review_reason=cert.review_reason,
            all_states=tuple(line.state for line in cert.lines), lines=tuple(lines), documents=tuple(docs),
            review_history=recorded,
            validation_result=validation.get(cert.id, "not validated")))
    brand = CompanyBrand(company.id, company.name, company.legal_name or company.name, company.address_text(),
                         company.brand_color or "#1F4E79", company.logo, company.logo_media_type,
                         company.reply_to_email, tuple((r.state, r.number) for r in company.registrations))
    session.expunge_all()
    content = PackContent(sel, brand, tuple(sel.customers), tuple(included), generated_at, __version__,
                          rules.version, database, prepared_by=people.actor_name(session))
    return content


def _extension(media_type: str) -> str:
    return {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg", "image/tiff": ".tif",
            "image/gif": ".gif", "image/bmp": ".bmp", "image/webp": ".webp"}.get(media_type, ".bin")


_ = Document  # imported for the relationship targets used by selectinload
