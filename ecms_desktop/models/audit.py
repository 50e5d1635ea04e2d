"""The tamper-evident audit trail: append-only, hash-chained events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, JsonType


class AuditEvent(Base):
    """One thing that happened, written in the same transaction as the change it records.

    ``seq`` numbers events 1, 2, 3 ... without gaps; ``hash`` is SHA-256 over the previous event's
    hash and this event's content, so altering, removing or reordering any event breaks the chain
    from that point on (``ecms audit verify``).
    """

    __tablename__ = "audit_event"

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=False)
    occurred_at: Mapped[dt.datetime]
    #: The person who acted (``services/core/people.py``); on PostgreSQL checked by the database.
    actor: Mapped[str] = mapped_column(String(100))
    #: What happened, e.g. ``certificate.created``, ``certificate.approved``, ``document.received``.
    action: Mapped[str] = mapped_column(String(60), index=True)
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str] = mapped_column(String(64))
    company_id: Mapped[int | None] = mapped_column(index=True)
    #: The certificate concerned, for a certificate's history tab.
    certificate_id: Mapped[int | None] = mapped_column(index=True)
    before: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    details: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    #: SHA-256 over the :class:`AuditDigest` rows of this event (the state every record changed by
    #: its unit of work was left in); part of the hashed content. Empty when it changed no record.
    state_sha256: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditHead(Base):
    """A single row holding the chain's head; locked while an event is appended so that concurrent
    writers on a shared database cannot fork the chain, and compared by ``verify`` to detect a
    removed last event."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    last_hash: Mapped[str] = mapped_column(String(64))


class AuditDigest(Base):
    """The state a record was left in by a unit of work: the SHA-256 of its canonical form as
    committed (``services/core/state_digest.py`` defines the forms), attached to the last audit event of
    that unit of work and covered by that event's hash through ``state_sha256``.

    ``ecms check`` recomputes every tracked record's digest and compares it with the latest one the
    audit trail holds, so a record changed, added or removed outside the program is named. An empty
    ``digest`` means the unit of work deleted the record.
    """

    __tablename__ = "audit_digest"
    __table_args__ = (Index("ix_audit_digest_entity", "entity_type", "entity_key", "seq"),)

    #: The audit event carrying this digest.
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
                                     autoincrement=False)
    #: Position within the event's digests (the order ``state_sha256`` is computed in).
    n: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: ``certificate``, ``customer``, ``document``, ... (see ``state_digest.KINDS``).
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_key: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str | None] = mapped_column(String(64))
