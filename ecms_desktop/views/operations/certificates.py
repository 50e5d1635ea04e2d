"""Reading and reviewing certificates: what the grid's selection shows, the status counts, approving,
rejecting, archiving, and turning a document for viewing."""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ecms_desktop.models import Status
from ecms_desktop.rules import RulesPack
from ecms_desktop.services.certificates.query import CertificateQuery, CertificateQueryService
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.core.certificate_records import CertificateDetail, CertificateInput
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.services.documents.media_types import sniff_media_type
from ecms_desktop.services.documents.storage import DocumentService
from ecms_desktop.views.operations import Operation


@dataclass(frozen=True)
class StoredFile:
    """A stored document's bytes, byte for byte as received, and their SHA-256."""

    sha256: str
    data: bytes


@dataclass(frozen=True)
class ShownCertificate:
    """A certificate as the desk shows it: its detail and its first document (None: no document)."""

    detail: CertificateDetail
    document: StoredFile | None


def load_certificate(db: Database, rules: RulesPack, cert_id: int, as_of: dt.date) -> Operation[ShownCertificate]:
    """The certificate and its first document, for the form and the viewer."""

    def work(_p: Progress, _c: CancelCheck) -> ShownCertificate:
        detail = CertificateService(db, rules).get(cert_id, as_of)
        if not detail.documents:
            return ShownCertificate(detail, None)
        sha256, data = DocumentService(db).file_bytes(detail.documents[0].id)
        return ShownCertificate(detail, StoredFile(sha256, data))

    return Operation(work)


def load_document(db: Database, document_id: int) -> Operation[StoredFile]:
    """A stored document's bytes (the viewer shows another of the certificate's documents)."""

    def work(_p: Progress, _c: CancelCheck) -> StoredFile:
        sha256, data = DocumentService(db).file_bytes(document_id)
        return StoredFile(sha256, data)

    return Operation(work)


def reload_certificate(db: Database, rules: RulesPack, cert_id: int, as_of: dt.date) -> Operation[CertificateDetail]:
    """The certificate as it is stored now (after a conflict, the form shows it again)."""
    return Operation(lambda _p, _c: CertificateService(db, rules).get(cert_id, as_of))


def count_statuses(db: Database, query: CertificateQuery) -> Operation[dict[Status, int]]:
    """How many certificates of each status match the filters (the status strip)."""
    return Operation(lambda _p, _c: CertificateQueryService(db).count_by_status(query))


def find_company(db: Database, cert_id: int) -> Operation[int | None]:
    """The company holding a certificate (None: there is no such certificate)."""
    return Operation(lambda _p, _c: CertificateService(db).company_of(cert_id))


def rotate_document(db: Database, document_id: int, rotation: int) -> Operation[None]:
    """Remember how a document is best viewed (the file itself is never altered)."""
    return Operation(lambda _p, _c: DocumentService(db).set_rotation(document_id, rotation))


def save_certificate(db: Database, rules: RulesPack, cert_id: int, version: int, data: CertificateInput, *,
                     as_of: dt.date) -> Operation[CertificateDetail]:
    """Store the edited copy ``data`` once, as of the version the form was loaded with (a change saved
    meanwhile by someone else is refused, never overwritten)."""
    return Operation(lambda _p, _c: CertificateService(db, rules).save(cert_id, data, expected_version=version,
                                                                       as_of=as_of))


def approve_certificate(db: Database, rules: RulesPack, cert_id: int, version: int, *, as_of: dt.date,
                        acknowledge_warnings: bool, note: str) -> Operation[CertificateDetail]:
    """Accept a certificate (refused while its validation shows errors; warnings must be acknowledged)."""
    return Operation(lambda _p, _c: CertificateService(db, rules).approve(
        cert_id, expected_version=version, as_of=as_of, acknowledge_warnings=acknowledge_warnings, note=note))


def reject_certificate(db: Database, rules: RulesPack, cert_id: int, version: int, reason: str, *,
                       as_of: dt.date) -> Operation[CertificateDetail]:
    """Refuse a certificate, with the reason kept in the audit trail."""
    return Operation(lambda _p, _c: CertificateService(db, rules).reject(cert_id, reason, expected_version=version,
                                                                         as_of=as_of))


def archive_certificate(db: Database, rules: RulesPack, cert_id: int, version: int, reason: str, *,
                        as_of: dt.date) -> Operation[CertificateDetail]:
    """Take a certificate out of use, with the reason kept in the audit trail."""
    return Operation(lambda _p, _c: CertificateService(db, rules).archive(cert_id, reason, expected_version=version,
                                                                          as_of=as_of))


def unarchive_certificate(db: Database, rules: RulesPack, cert_id: int, version: int, reason: str, *,
                          as_of: dt.date) -> Operation[CertificateDetail]:
    """Bring an archived certificate back into use, with the reason kept in the audit trail."""
    return Operation(lambda _p, _c: CertificateService(db, rules).unarchive(
        cert_id, reason, expected_version=version, as_of=as_of))


def copy_evidence(db: Database, document_id: int) -> Operation[Path]:
    """A copy of a permit check's evidence file in the temporary folder, for the system viewer."""

    def work(_p: Progress, _c: CancelCheck) -> Path:
        sha, data = DocumentService(db).file_bytes(document_id)
        suffix = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}.get(
            sniff_media_type(data) or "", ".bin")
        path = Path(tempfile.gettempdir()) / f"ecms-evidence-{sha[:16]}{suffix}"
        path.write_bytes(data)
        return path

    return Operation(work)
