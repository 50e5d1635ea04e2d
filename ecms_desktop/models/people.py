"""The people who work in ECMS and the certificates they have claimed (no Qt here)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, utcnow


class Person(Base):
    """Someone who reviews, approves or administers: the name every audit event, validation run,
    acknowledgement, approval, permit check, request and audit pack carries.

    A person is never deleted (the trail keeps naming them): ``active`` false refuses their work.
    On PostgreSQL ``login`` is the database role they log in with; the database itself maps the
    session's login to this row to stamp the actor of each audit event and to decide what they may do.
    On SQLite a person is a local profile chosen when the program starts.
    """

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The name shown and recorded (``Pat Lee``); unique, never changed once used.
    name: Mapped[str] = mapped_column(String(100), unique=True)
    #: ``reviewer``, ``approver`` or ``admin`` (see ``services/core/people.py``).
    role: Mapped[str] = mapped_column(String(20))
    #: The PostgreSQL login role of this person (unique); None on SQLite or before one is given.
    login: Mapped[str | None] = mapped_column(String(63), unique=True)
    email: Mapped[str] = mapped_column(String(320), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class CertificateClaim(Base):
    """A pending certificate a reviewer has taken to work on, so that two reviewers never work the same
    certificate unknowingly. Kept apart from the certificate: claiming does not change what the
    certificate says (its version), so it never makes another desk's copy stale."""

    __tablename__ = "certificate_claim"

    certificate_id: Mapped[int] = mapped_column(ForeignKey("certificate.id", ondelete="CASCADE"),
                                                primary_key=True)
    #: The person's name (``Person.name``).
    claimed_by: Mapped[str] = mapped_column(String(100), index=True)
    claimed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
