"""Certificate files: stored once by content hash, with a record of every arrival."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import Base, utcnow

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

    file: Mapped[DocumentFile] = relationship(lazy="joined", innerjoin=True)
    certificate: Mapped[Certificate | None] = relationship(back_populates="documents")
