"""Storing certificate files: hashed and timestamped on arrival, stored once by content.

Files are probed (type, page count, encryption) in the bounded document sandbox before anything is
stored, so a corrupt, encrypted or hostile file is reported and never stored as if it were fine.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecms_desktop.models import Document, DocumentFile, utcnow
from ecms_desktop.services.core import audit, people
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import DocumentError, NotFoundError, ValidationError
from ecms_desktop.services.core.user_files import read_user_file
from ecms_desktop.services.documents.shared_sandbox import probe_document

#: Largest file accepted (a 200-page 100 MB scan is fine; beyond this is almost surely a mistake).
MAX_FILE_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class CheckedFile:
    """A file read and probed, ready to store: its bytes, hash and what the probe found."""

    name: str
    data: bytes
    sha256: str
    media_type: str
    page_count: int
    password: str | None = None


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_file(path: Path, *, display_name: str | None = None, password: str | None = None) -> CheckedFile:
    """Read and probe a file from disk; DocumentError says what is wrong with it (never reading the
    open database's own files, a device or a pipe: see
    :func:`~ecms_desktop.services.core.user_files.read_user_file`)."""
    name = display_name or path.name
    data = read_user_file(path, max_bytes=MAX_FILE_BYTES, name=name)
    return check_bytes(data, name, password=password)


def check_bytes(data: bytes, name: str, *, password: str | None = None) -> CheckedFile:
    """Probe file bytes in the sandbox; DocumentError (or PasswordRequired) says what is wrong."""
    if not data:
        raise DocumentError(f"{name}: the file is empty (0 bytes)")
    result = probe_document(data, filename=name, password=password)
    return CheckedFile(name, data, sha256_of(data), result.media_type, result.page_count, password)


def store_checked(session: Session, checked: CheckedFile, *, received_via: str,
                  certificate_id: int | None = None, received_at: dt.datetime | None = None,
                  sent_at: dt.datetime | None = None, company_id: int | None = None) -> Document:
    """Store a probed file in the caller's transaction: the bytes once per hash, plus this arrival."""
    blob = session.get(DocumentFile, checked.sha256)
    duplicate = blob is not None
    if blob is None:
        blob = DocumentFile(sha256=checked.sha256, size=len(checked.data), media_type=checked.media_type,
                            page_count=checked.page_count, data=checked.data)
        session.add(blob)
    doc = Document(certificate_id=certificate_id, sha256=checked.sha256, original_name=checked.name[:255],
                   received_via=received_via, received_at=received_at or utcnow(), sent_at=sent_at,
                   received_by=people.actor_name(session))
    doc.file = blob
    session.add(doc)
    session.flush()
    audit.record(session, "document.received", "document", doc.id, company_id=company_id,
                 certificate_id=certificate_id,
                 after={"sha256": checked.sha256, "original_name": doc.original_name,
                        "media_type": checked.media_type, "pages": checked.page_count,
                        "size": len(checked.data), "received_via": received_via,
                        "received_at": doc.received_at, "sent_at": sent_at},
                 details={"already_stored": duplicate})
    return doc


class DocumentService:
    """Document use cases for the GUI and the CLI."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def file_bytes(self, document_id: int) -> tuple[str, bytes]:
        """The stored bytes of a document (sha256, data), byte for byte as received."""
        with self.db.reader() as s:
            doc = s.get(Document, document_id)
            if doc is None:
                raise NotFoundError(f"There is no document {document_id}.")
            data = s.execute(select(DocumentFile.data).where(DocumentFile.sha256 == doc.sha256)).scalar_one()
            return doc.sha256, data

    def set_rotation(self, document_id: int, rotation: int) -> None:
        """Remember how a document is best viewed (the file itself is never altered)."""
        if rotation % 90:
            raise ValidationError("Rotation must be a multiple of 90 degrees.")
        with self.db.transaction() as s:
            doc = s.get(Document, document_id)
            if doc is None:
                raise NotFoundError(f"There is no document {document_id}.")
            old = doc.view_rotation
            doc.view_rotation = rotation % 360
            if old != doc.view_rotation:
                audit.record(s, "document.rotation_saved", "document", doc.id, certificate_id=doc.certificate_id,
                             before={"view_rotation": old}, after={"view_rotation": doc.view_rotation})
