"""Returned forms, read back: a customer's completed form (PDF, image, or an .eml with attachments)
becomes a pending certificate linked to the renewal request it answers, and the request is closed.

For each file:

- the intake timestamp is recorded (the receipt time and, for an e-mail, its Date header) with the
  file's SHA-256; a file already received (same hash) is recognised as a duplicate and not stored
  again;
- the request is found by its token (the hidden form field, the PDF metadata, or the e-mail
  subject), else by the sender's address: the customer with that e-mail address and its open
  request (the one for the returned form when there are several);
- a filled fill-in form's field values are read and mapped back to certificate fields (the rules
  pack's ``pdf_field_map`` for official forms, the field names for generated ones);
- a new *pending* certificate is created with those values, the file stored with it, the request
  closed as ``answered`` - all in one transaction, audited (``renewal.answered``);
- the validation engine runs at once when it is installed
  (``ecms_desktop.services.validation.service``).

A file that matches no request is stored once by hash (evidence of arrival) for the company and waits
in its intake inbox (:mod:`ecms_desktop.services.intake.inbox`), reported as ``inbox``.

Every stored file is also read (:func:`~ecms_desktop.services.intake.reading.read_document`: its words,
the form it is, its fields with confidence and box) and the reading is stored with the document
(``document.extraction``) in the same transaction; a file that cannot be read is stored all the same,
its reading saying "nothing could be read". The reading is a suggestion: it fills no certificate field.

Returned files are untrusted: the e-mail, the probe and the form's fields and text are all parsed in
the document sandbox's worker process, which has time and memory limits. A file that cannot be read
within them is **refused** with the reason, nothing of it is stored, and the refusal is recorded
(an :class:`~ecms_desktop.models.renewal.IntakeRecord` with outcome ``refused``) so that a watched
folder does not read it again at every start.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecms_desktop.models import (
    Certificate,
    Customer,
    DocumentSource,
    ExemptReason,
    utcnow,
)
from ecms_desktop.models.renewal import IntakeRecord, RenewalRequest
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.services.certificates.service import create_certificate
from ecms_desktop.services.core import audit
from ecms_desktop.services.core.certificate_records import CertificateInput, LineInput
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import Cancelled, DocumentError, EcmsError
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.core.user_files import read_user_file
from ecms_desktop.services.documents.media_types import sniff_media_type
from ecms_desktop.services.documents.results import PasswordRequired
from ecms_desktop.services.documents.shared_sandbox import read_email, read_form_fields
from ecms_desktop.services.documents.storage import MAX_FILE_BYTES, CheckedFile, check_bytes, sha256_of, store_checked
from ecms_desktop.services.intake.inbox import stored_copy
from ecms_desktop.services.intake.reading import read_arriving_document
from ecms_desktop.services.renewals.request_packet import TOKEN_RE, FormReadback, form_readback, parse_form_date
from ecms_desktop.services.renewals.state_forms import customer_reasons, reason_for_form
from ecms_desktop.services.validation import service as validation_service

log = logging.getLogger(__name__)


_ACCEPTED_SUFFIXES = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".gif", ".bmp", ".webp"}
#: Certificate text fields filled from a returned form (others need the accountant's decision).
_TEXT_FIELDS = ("purchaser_name", "purchaser_address", "purchaser_tax_id", "purchaser_ein", "business_type",
                "business_description", "property_description", "exemption_detail", "po_number", "signer_name",
                "signer_title")


@dataclass(frozen=True)
class ReturnedItem:
    """What happened to one returned file (or one attachment of an e-mail)."""

    name: str
    #: ``answered`` (request closed, pending certificate created), ``attached`` (added to the
    #: certificate made from another attachment of the same e-mail), ``inbox`` (stored, matched no
    #: request: it waits in the company's intake inbox), ``duplicate`` or ``refused``.
    outcome: str
    message: str
    token: str | None = None
    matched_by: str = "none"
    request_id: int | None = None
    certificate_id: int | None = None
    document_id: int | None = None
    values: dict[str, str] = field(default_factory=dict)
    validation: str = ""
    #: What was read from the document as stored with it (for a duplicate, the stored one's; None when
    #: nothing was stored or the stored document was never read).
    extraction: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``ecms intake --format json``): ``file``, ``document_id``, ``outcome``
        (``matched`` for a file that answered a request), ``certificate_id`` and ``extraction``, then
        the rest of what happened."""
        return {"file": self.name, "document_id": self.document_id,
                "outcome": "matched" if self.outcome == "answered" else self.outcome,
                "certificate_id": self.certificate_id, "extraction": self.extraction, "message": self.message,
                "token": self.token, "matched_by": self.matched_by, "request_id": self.request_id,
                "values": self.values, "validation": self.validation}


@dataclass(frozen=True)
class _Part:
    name: str
    data: bytes
    sender: str = ""
    sent_at: dt.datetime | None = None
    subject_token: str | None = None
    #: How the file arrived, for a file that waits in the inbox (a matched one is a renewal return).
    via: str = DocumentSource.RENEWAL_RETURN.value


class _Unread:
    """The fields of a part were not read yet."""


_UNREAD = _Unread()


class ReturnedFormsService:
    """Read returned forms back for one company (``ecms intake``, drag and drop, watched folder)."""

    def __init__(self, db: Database, rules: RulesPack | None = None, *, read_timeout: float = 15.0) -> None:
        self.db = db
        self.rules = rules or load_rules_pack()
        #: Seconds the sandbox may spend on parsing one e-mail or reading one form's fields and text.
        self.read_timeout = read_timeout

    def intake(self, paths: Sequence[Path | str], company_id: int, *, as_of: dt.date | None = None,
               received_via: str = DocumentSource.RENEWAL_RETURN.value, progress: Progress | None = None,
               cancel: CancelCheck | None = None) -> list[ReturnedItem]:
        """Receive each file; one transaction per file part, so a bad file never undoes the others.
        ``received_via``: how the files came (the desk: ``upload``), kept with a file that matches no
        request and waits in the inbox."""
        files = [Path(p) for p in paths]
        out: list[ReturnedItem] = []
        for n, path in enumerate(files):
            if cancel and cancel():
                raise Cancelled(f"Intake cancelled after {n} of {len(files)} files.")
            if progress:
                progress(n, len(files), f"Reading {path.name}")
            try:
                data = read_user_file(path, max_bytes=MAX_FILE_BYTES)
            except DocumentError as exc:
                out.append(ReturnedItem(path.name, "refused", f"{exc}."))
                continue
            if path.suffix.lower() == ".eml":
                out.extend(self.intake_email(data, path.name, company_id, as_of=as_of))
            else:
                out.append(self._receive(_Part(path.name, data, via=received_via), company_id, as_of, {}, _UNREAD))
        if progress:
            progress(len(files), len(files), f"{len(out)} files read")
        return out

    def intake_email(self, raw: bytes, name: str, company_id: int, *,
                     as_of: dt.date | None = None) -> list[ReturnedItem]:
        """An e-mail with attached forms: the Date header, the sender and the subject's token travel
        with each attachment. Attachments with form fields are read first. The message is parsed in
        the document sandbox; one that cannot be parsed there is refused."""
        try:
            msg = read_email(raw, filename=name, timeout=self.read_timeout)
        except DocumentError as exc:
            return [self._refuse(company_id, name, sha256_of(raw), str(exc))]
        m = TOKEN_RE.search(msg.subject)
        token = m.group(0) if m else None
        parts: list[_Part] = []
        for att in msg.attachments:
            filename = att.filename or "attachment"
            ctype = att.content_type
            suffix = Path(filename).suffix.lower()
            if not (ctype == "application/pdf" or ctype.startswith("image/") or suffix in _ACCEPTED_SUFFIXES):
                continue
            if att.data:
                parts.append(_Part(f"{name}: {filename}", att.data, msg.sender, msg.sent_at, token))
        if not parts:
            return [self._refuse(company_id, name, sha256_of(raw), f"{name}: the e-mail has no PDF or image attached.")]
        reads = {id(p): self._read_fields(p) for p in parts}

        def fields_first(part: _Part) -> int:
            read = reads[id(part)]
            return 0 if isinstance(read, FormReadback) and read.has_fields else 1

        parts.sort(key=fields_first)
        made: dict[int, int] = {}
        return [self._receive(p, company_id, as_of, made, reads[id(p)]) for p in parts]

    def _read_fields(self, part: _Part) -> FormReadback | DocumentError | None:
        """The form fields of a PDF part, read in the sandbox (None for an image; the error when the
        worker could not read it)."""
        if sniff_media_type(part.data) != "application/pdf":
            return None
        try:
            return form_readback(read_form_fields(part.data, filename=part.name, timeout=self.read_timeout),
                                 self.rules)
        except DocumentError as exc:
            return exc

    # -- one file

    def _receive(self, part: _Part, company_id: int, as_of: dt.date | None, made: dict[int, int],
                 read: FormReadback | DocumentError | _Unread | None) -> ReturnedItem:
        sha = sha256_of(part.data)
        with self.db.reader() as s:
            dup = stored_copy(s, sha)
        if dup is not None:
            return ReturnedItem(part.name, "duplicate", dup.message(part.name), document_id=dup.document_id,
                                certificate_id=dup.certificate_id, extraction=dup.extraction)
        try:
            checked = check_bytes(part.data, part.name)
        except PasswordRequired:
            return self._refuse(company_id, part.name, sha, f"{part.name}: the file is protected by a password, so "
                                "it cannot be kept as evidence (an auditor could not open it): ask the sender for a "
                                "copy without a password, or remove the password and import it again.", part)
        except DocumentError as exc:
            return self._refuse(company_id, part.name, sha, str(exc), part)
        except EcmsError as exc:
            return self._refuse(company_id, part.name, sha, f"{part.name}: {exc}", part)
        if isinstance(read, _Unread):
            read = self._read_fields(part) if checked.media_type == "application/pdf" else None
        if isinstance(read, DocumentError):
            # The probe passed but the form's fields or text could not be read within the worker's
            # limits: such a file is not kept as a returned form (it may be hostile).
            return self._refuse(company_id, part.name, sha, str(read), part)
        readback = read if checked.media_type == "application/pdf" else None
        token = (readback.token if readback else None) or part.subject_token
        reading = read_arriving_document(part.data, part.name, self.rules)
        extraction = reading.to_json()
        received_at = utcnow()
        with self.db.transaction() as s:
            request, matched_by = self._match(s, company_id, token, part.sender,
                                              readback.form_code if readback else None)
            if (request is not None and readback is not None and readback.form_code is None
                    and readback.fields is not None):
                readback = form_readback(readback.fields, self.rules, request.form_code)
            values = dict(readback.values) if readback else {}
            if request is not None and request.id in made:
                cert_id = made[request.id]
                doc = store_checked(s, checked, received_via=DocumentSource.RENEWAL_RETURN.value,
                                    certificate_id=cert_id, received_at=received_at, sent_at=part.sent_at,
                                    company_id=company_id)
                doc.extraction = extraction
                self._record(s, company_id, part, sha, received_at, matched_by, request.id, doc.id, cert_id,
                             values, "attached")
                return ReturnedItem(part.name, "attached", f"{part.name}: added to certificate {cert_id}.",
                                    request.token, matched_by, request.id, cert_id, doc.id, values,
                                    extraction=extraction)
            if request is None:
                doc = store_checked(s, checked, received_via=part.via,
                                    received_at=received_at, sent_at=part.sent_at, company_id=company_id)
                doc.company_id = company_id  # it waits in the company's intake inbox
                doc.extraction = extraction
                s.flush()
                self._record(s, company_id, part, sha, received_at, "none", None, doc.id, None, values, "inbox")
                why = f"token {token} is unknown" if token else (
                    f"no open request for {part.sender}" if part.sender else "it carries no request token")
                return ReturnedItem(part.name, "inbox", f"{part.name}: stored as document {doc.id} in the intake "
                                    f"inbox: it matches no renewal request ({why}); {reading.summary()}; assign it "
                                    "to a customer there (the desk's Inbox pane; ecms inbox).", token, "none", None,
                                    None, doc.id, values,
                                    extraction=extraction)
            cert = self._pending_certificate(s, request, values, readback, part)
            doc = store_checked(s, checked, received_via=DocumentSource.RENEWAL_RETURN.value,
                                certificate_id=cert.id, received_at=received_at, sent_at=part.sent_at,
                                company_id=company_id)
            doc.extraction = extraction
            was_open = request.status == "open"
            if was_open:
                request.status, request.closed_at = "answered", received_at
                request.closed_reason = f"returned form {part.name}"
                request.result_certificate_id = cert.id
            self._record(s, company_id, part, sha, received_at, matched_by, request.id, doc.id, cert.id, values,
                         "answered")
            # A first request has no certificate of its own: its answer belongs to the certificate it made.
            audit.record(s, "renewal.answered", "renewal_request", request.id, company_id=company_id,
                         certificate_id=request.certificate_id if request.certificate_id is not None else cert.id,
                         details={"token": request.token, "matched_by": matched_by, "new_certificate_id": cert.id,
                                  "document_id": doc.id, "sha256": sha, "sent_at": part.sent_at,
                                  "received_at": received_at, "request_was_open": was_open,
                                  "fields_read": sorted(values)})
            made[request.id] = cert.id
            item = ReturnedItem(part.name, "answered",
                                f"{part.name}: pending certificate {cert.id} created for request {request.token} "
                                f"(matched by {matched_by}); {len(values)} fields read.",
                                request.token, matched_by, request.id, cert.id, doc.id, values,
                                extraction=extraction)
        validation = self._validate(item.certificate_id, as_of)
        return ReturnedItem(**{**item.__dict__, "validation": validation})

    def _refuse(self, company_id: int, name: str, sha: str, reason: str, part: _Part | None = None) -> ReturnedItem:
        """Record that a returned file was refused, and why (nothing of the file is stored)."""
        with self.db.transaction() as s:
            s.add(IntakeRecord(company_id=company_id, sha256=sha, source_name=name[:255], received_at=utcnow(),
                               sent_at=part.sent_at if part else None, sender=(part.sender if part else "")[:320],
                               matched_by="none", values={"reason": reason[:2000]}, outcome="refused"))
        return ReturnedItem(name, "refused", reason)

    def refused_before(self, company_id: int, data: bytes) -> str | None:
        """The reason a file with these bytes was refused before (None if it never was): a watched
        folder that cannot move a refused file aside does not read it again."""
        sha = sha256_of(data)
        with self.db.reader() as s:
            row = s.execute(select(IntakeRecord).where(IntakeRecord.company_id == company_id,
                                                       IntakeRecord.sha256 == sha, IntakeRecord.outcome == "refused")
                            .order_by(IntakeRecord.id.desc()).limit(1)).scalar_one_or_none()
            if row is None:
                return None
            return f"refused on {row.received_at:%Y-%m-%d %H:%M} UTC: {row.values.get('reason', '')}"

    def _match(self, s: Session, company_id: int, token: str | None, sender: str,
               form_code: str | None) -> tuple[RenewalRequest | None, str]:
        if token:
            req = s.execute(select(RenewalRequest).where(RenewalRequest.company_id == company_id,
                                                         RenewalRequest.token == token)).scalar_one_or_none()
            if req is not None:
                return req, "token"
        if sender:
            customers = s.execute(select(Customer.id).where(
                Customer.company_id == company_id, func.lower(Customer.email) == sender.lower())).scalars().all()
            if customers:
                open_reqs = s.execute(select(RenewalRequest).where(
                    RenewalRequest.customer_id.in_(customers), RenewalRequest.status == "open")
                    .order_by(RenewalRequest.requested_on, RenewalRequest.id)).scalars().all()
                if form_code:
                    same_form = [r for r in open_reqs if r.form_code == form_code]
                    open_reqs = same_form or open_reqs
                if open_reqs:
                    return open_reqs[0], "sender"
        return None, "none"

    def _pending_certificate(self, s: Session, request: RenewalRequest, values: dict[str, str],
                             readback: FormReadback | None, part: _Part) -> Certificate:
        # A first request (the state had no certificate) has no old certificate to take values from.
        old = s.get(Certificate, request.certificate_id) if request.certificate_id is not None else None
        reason = values.get("exempt_reason", "").strip().lower()
        if reason not in {r.value for r in ExemptReason}:
            reason = old.exempt_reason if old else reason_for_form(
                self.rules, request.state, request.form_code, customer_reasons(s, request.customer_id))
        signed_date = parse_form_date(values.get("signed_date", ""))
        notes = [f"Returned for renewal request {request.token} as {part.name}."]
        if values.get("signed_date") and signed_date is None:
            notes.append(f"Date signed on the form: {values['signed_date']!r} (not a date; check it).")
        form_code = (readback.form_code if readback and readback.form_code else request.form_code)
        try:
            form_code = self.rules.form(form_code).code
        except Exception:
            form_code = request.form_code
        text: dict[str, Any] = {name: values.get(name, "").strip() for name in _TEXT_FIELDS}
        if not text["purchaser_name"] and old is not None:
            text["purchaser_name"] = old.purchaser_name
        data = CertificateInput(
            company_id=request.company_id, customer_id=request.customer_id, form_code=form_code,
            lines=(LineInput(request.state, state_tax_id=text["purchaser_tax_id"]),), exempt_reason=reason,
            signed=bool(values.get("signature", "").strip()), signed_date=signed_date,
            effective_date=parse_form_date(values.get("effective_date", "")),
            owner_email=old.owner_email if old else "", notes=" ".join(notes), **text,
        )
        return create_certificate(s, self.rules, data, origin="renewal")

    @staticmethod
    def _record(s: Session, company_id: int, part: _Part, sha: str, received_at: dt.datetime, matched_by: str,
                request_id: int | None, document_id: int | None, cert_id: int | None, values: dict[str, str],
                outcome: str) -> None:
        s.add(IntakeRecord(company_id=company_id, sha256=sha, source_name=part.name[:255], received_at=received_at,
                           sent_at=part.sent_at, sender=part.sender[:320], matched_by=matched_by,
                           request_id=request_id, document_id=document_id, certificate_id=cert_id,
                           values=values, outcome=outcome))
        s.flush()

    def _validate(self, cert_id: int | None, as_of: dt.date | None) -> str:
        """Validate the new certificate and store the run; a failure is told, never undoes the intake."""
        if cert_id is None:
            return ""
        try:
            service = validation_service.ValidationService(self.db, self.rules)
            service.validate(cert_id, as_of=as_of or dt.date.today(), trigger="intake")
        except Exception as exc:
            log.exception("validation of certificate %s after intake failed", cert_id)
            return f"validation failed: {exc}"
        return "validated"


__all__ = ["CheckedFile", "ReturnedFormsService", "ReturnedItem"]
