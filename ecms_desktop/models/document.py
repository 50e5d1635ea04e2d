"""Certificate files: stored once by content hash, with a record of every arrival."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, JsonType, utcnow

if TYPE_CHECKING:
    from .certificate import Certificate


class DocumentFile(Base):
    """The bytes of a file, stored once however often it arrives, keyed by its SHA-256.

    Files live in the database so that one backup holds everything and a team on a shared
    PostgreSQL database sees the same files.
    """

    __tablename__ = "document_file"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(100))
    page_count: Mapped[int] = mapped_column(Integer)
    #: The file's bytes, never altered (deferred: only loaded when the file itself is needed).
    data: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Document(Base):
    """One arrival of a file: which certificate it belongs to, its original name, how and when it came.

    The intake timestamp is evidence that a certificate was in hand at a given time.

    A document that arrived for a company without a certificate (received through ``ecms intake``, the
    watched folder, an e-mail or a returned packet that matched no request) waits in that company's
    intake inbox until it is assigned to a certificate, split or discarded. A document may also be a
    view of a page range of its stored file: the bytes are kept as they arrived, and splitting a PDF
    that holds several certificates makes one document per range, each naming the one it was split from.
    """

    __tablename__ = "document"

    id: Mapped[int] = mapped_column(primary_key=True)
    certificate_id: Mapped[int | None] = mapped_column(
        ForeignKey("certificate.id", ondelete="SET NULL"), index=True
    )
    sha256: Mapped[str] = mapped_column(ForeignKey("document_file.sha256", ondelete="RESTRICT"), index=True)
    original_name: Mapped[str] = mapped_column(String(255))
    #: ``scan``, ``email``, ``import``, ``upload``, ``renewal_return`` or ``demo``.
    received_via: Mapped[str] = mapped_column(String(20))
    #: When the file reached the program (UTC): the intake timestamp.
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: For e-mailed files, the message's Date header.
    sent_at: Mapped[dt.datetime | None]
    received_by: Mapped[str] = mapped_column(String(100), default="")
    #: Viewing rotation in degrees (0, 90, 180, 270); the stored file itself is never altered.
    view_rotation: Mapped[int] = mapped_column(Integer, default=0)
    #: The company the document arrived for when it came without a certificate (its intake inbox);
    #: empty for documents stored with a certificate (they belong to the certificate's company).
    company_id: Mapped[int | None] = mapped_column(ForeignKey("company.id", ondelete="RESTRICT"), index=True)
    #: The pages of the stored file this document is (1-based, inclusive); empty: the whole file.
    first_page: Mapped[int | None] = mapped_column(Integer)
    last_page: Mapped[int | None] = mapped_column(Integer)
    #: The document this one was split from (a page range of the same stored file).
    split_from_id: Mapped[int | None] = mapped_column(ForeignKey("document.id", ondelete="RESTRICT"), index=True)
    #: When, by whom and why the document was discarded from the intake inbox (empty: it was not).
    discarded_at: Mapped[dt.datetime | None]
    discarded_by: Mapped[str | None] = mapped_column(String(100))
    discard_reason: Mapped[str | None] = mapped_column(Text)

    file: Mapped[DocumentFile] = relationship(lazy="joined", innerjoin=True)
    reading: Mapped[DocumentExtraction | None] = relationship(lazy="selectin", cascade="all, delete-orphan",
                                                           passive_deletes=True)

    @property
    def extraction(self) -> dict[str, Any] | None:
        """What was read from the document when it arrived (see :class:`DocumentExtraction`); None: not read."""
        return self.reading.extraction if self.reading is not None else None

    @extraction.setter
    def extraction(self, value: dict[str, Any] | None) -> None:
        if value is None:
            self.reading = None
        elif self.reading is None:
            self.reading = DocumentExtraction(extraction=value)
        else:
            self.reading.extraction = value
    certificate: Mapped[Certificate | None] = relationship(back_populates="documents")


class DocumentExtraction(Base):
    """What was read from a document (method, form, fields with confidence, page and box; see
    :class:`~ecms_desktop.services.intake.reading.DocumentReading`), kept beside the document rather than in
    it: a reading is derived from the stored bytes (which the document's digest covers) and can be made
    again, by a newer reader, without touching the document's evidence record."""

    __tablename__ = "document_extraction"

    document_id: Mapped[int] = mapped_column(ForeignKey("document.id", ondelete="CASCADE"), primary_key=True)
    extraction: Mapped[dict[str, Any]] = mapped_column(JsonType)
    read_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
