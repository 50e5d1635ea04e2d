"""Attaching files to a certificate at the desk: files dropped on the document or form side of the desk
(or chosen with File > Attach documents to selected) become evidence of the selected certificate, with
their intake timestamp and what was read from them.

Files that arrive without a chosen certificate are not handled here: they wait in the company's intake
inbox (:mod:`ecms_desktop.services.renewals.returned_forms` stores them there, or matches a returned
renewal form to its request), and :mod:`ecms_desktop.services.intake.inbox` gives them a home.

For every file the intake either

- **stores** it and attaches it to the certificate, as of the version the accountant saw (each attached
  file raises it), with its reading (:func:`~ecms_desktop.services.intake.reading.read_document`, in the
  document sandbox) stored beside it;
- reports it as a **duplicate** of a document already stored (same SHA-256), saying where that one is:
  nothing new is stored;
- **refuses** it with the reason (damaged, empty, password-protected, not a PDF or image ...): nothing is
  stored for it.

Each file is one transaction: a refused or cancelled file never rolls back the files before it, and
nothing is half-written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from ecms_desktop.models import Certificate, DocumentSource, utcnow
from ecms_desktop.rules import RulesPack, load_rules_pack
from ecms_desktop.services.certificates.service import certificate_for_change
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import Cancelled, DocumentError, NotFoundError, ValidationError
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.documents.storage import check_file, store_checked
from ecms_desktop.services.intake.inbox import stored_copy
from ecms_desktop.services.intake.reading import read_arriving_document


class IntakeOutcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


@dataclass(frozen=True)
class IntakeItem:
    """What happened to one file."""

    path: Path
    outcome: IntakeOutcome
    message: str
    document_id: int | None = None
    certificate_id: int | None = None
    sha256: str = ""

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class IntakeResult:
    """What an intake did, file by file, in the order given."""

    items: list[IntakeItem] = field(default_factory=list)

    def of(self, outcome: IntakeOutcome) -> list[IntakeItem]:
        return [i for i in self.items if i.outcome is outcome]

    @property
    def stored(self) -> list[IntakeItem]:
        return self.of(IntakeOutcome.STORED)

    @property
    def duplicates(self) -> list[IntakeItem]:
        return self.of(IntakeOutcome.DUPLICATE)

    @property
    def refused(self) -> list[IntakeItem]:
        return self.of(IntakeOutcome.REFUSED)

    def summary(self) -> str:
        """One line for a status bar: "2 stored, 1 duplicate, 1 refused"."""
        parts = [f"{len(self.stored)} stored"]
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} duplicate{'s' if len(self.duplicates) > 1 else ''}")
        if self.refused:
            parts.append(f"{len(self.refused)} refused")
        return ", ".join(parts)


class IntakeService:
    """Attach certificate files to a chosen certificate of one company (the desk's document and form side)."""

    def __init__(self, db: Database, rules: RulesPack | None = None) -> None:
        self.db = db
        self.rules = rules or load_rules_pack()

    def attach_files(self, paths: Sequence[Path | str], company_id: int, certificate_id: int, *,
                     expected_version: int, received_via: str = DocumentSource.UPLOAD.value,
                     progress: Progress | None = None, cancel: CancelCheck | None = None) -> IntakeResult:
        """Probe, read and store each file, attached to certificate ``certificate_id`` as the user saw it
        (``expected_version``: attaching changes the certificate, so it is refused with
        :class:`ConflictError` when someone else changed the certificate meanwhile; each attached file
        raises the version). Returns what happened to each file. Raises :class:`Cancelled` (files already
        handled stay stored) and :class:`NotFoundError` / :class:`ValidationError` when the certificate
        cannot take files."""
        files = [Path(p) for p in paths]
        result = IntakeResult()
        version = expected_version
        self._check_target(certificate_id, company_id)
        for n, path in enumerate(files):
            if cancel and cancel():
                raise Cancelled(f"Intake cancelled after {n} of {len(files)} files; "
                                f"{len(result.stored)} stored.")
            if progress:
                progress(n, len(files), f"Reading {path.name}")
            item, version = self._attach_one(path, company_id, certificate_id, version, received_via)
            result.items.append(item)
        if progress:
            progress(len(files), len(files), result.summary())
        return result

    # -- one file

    def _attach_one(self, path: Path, company_id: int, cert_id: int, version: int,
                    received_via: str) -> tuple[IntakeItem, int]:
        """What happened to one file, and the certificate's version afterwards."""
        try:
            checked = check_file(path)
        except DocumentError as exc:
            return IntakeItem(path, IntakeOutcome.REFUSED, str(exc)), version
        with self.db.reader() as s:
            dup = stored_copy(s, checked.sha256)
        if dup is not None:
            return IntakeItem(path, IntakeOutcome.DUPLICATE, dup.message(path.name), document_id=dup.document_id,
                              certificate_id=dup.certificate_id, sha256=checked.sha256), version
        extraction = read_arriving_document(checked.data, checked.name, self.rules).to_json()
        with self.db.transaction() as s:
            target = certificate_for_change(s, cert_id, version)
            dup = stored_copy(s, checked.sha256)  # arrived meanwhile, while it was read
            if dup is not None:
                return IntakeItem(path, IntakeOutcome.DUPLICATE, dup.message(path.name),
                                  document_id=dup.document_id, certificate_id=dup.certificate_id,
                                  sha256=checked.sha256), version
            doc = store_checked(s, checked, received_via=received_via, certificate_id=cert_id,
                                received_at=utcnow(), company_id=company_id)
            doc.extraction = extraction
            s.flush()
            return IntakeItem(path, IntakeOutcome.STORED, f"{path.name}: stored and attached to certificate {cert_id}.",
                              document_id=doc.id, certificate_id=cert_id, sha256=checked.sha256), target.version

    def _check_target(self, cert_id: int, company_id: int) -> None:
        with self.db.reader() as s:
            cert = s.get(Certificate, cert_id)
            if cert is None:
                raise NotFoundError(f"There is no certificate {cert_id} to attach the files to.")
            if cert.company_id != company_id:
                raise ValidationError(f"Certificate {cert_id} belongs to another company; "
                                      "switch company before attaching files to it.")


__all__ = ["IntakeItem", "IntakeOutcome", "IntakeResult", "IntakeService"]
