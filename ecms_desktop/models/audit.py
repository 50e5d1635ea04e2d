"""The tamper-evident audit trail: append-only, hash-chained events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, Integer, String
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
    #: The operating-system user (or ``ECMS_USER``) who acted.
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
