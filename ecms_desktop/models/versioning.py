"""A certificate's version covers everything the certificate is, and rises once per change.

``Certificate.version`` is the optimistic-locking column: the ORM writes every UPDATE of a certificate
row as "... WHERE id = ? AND version = the version read", so a change made from a copy that someone
else has changed meanwhile fails instead of overwriting theirs. A certificate is more than its row,
though: its coverage lines (states, per-state purchaser numbers, local limits, expiries, suspensions)
and the documents attached to it are rows of their own, and a change to only those would never touch
the certificate row (the lost update of two desks editing state lines).

This module raises the version in one place, for every code path that writes through the ORM: before
each flush, every persistent certificate whose own fields change, or whose lines or attached documents
are added, changed, removed or moved, gets ``version + 1`` (once per transaction, however many
flushes the transaction makes), so its row is updated with the version check and a concurrent change of
the same certificate is refused. A certificate inserted in the current transaction keeps version 1
(nobody can hold an older copy of it). How a document is viewed (its rotation) is a preference, not part
of the certificate, and does not count.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import event, inspect
from sqlalchemy.orm import InstanceState, Session, UOWTransaction

from .certificate import Certificate, CoverageLine
from .document import Document

#: ``Session.info`` key: ids of certificates inserted in the session's current transaction.
_INSERTED = "ecms_certificates_inserted"
#: ``Session.info`` key: certificate id -> its version when the current transaction first changed it.
_VERSION_AT_START = "ecms_certificate_versions_at_start"
#: The attributes of a line or a document that say which certificate it belongs to.
_OWNER_KEYS = ("certificate_id", "certificate")


def _owner_ids(obj: CoverageLine | Document) -> set[int]:
    """The certificate ids ``obj`` belonged to and belongs to (before and after this flush)."""
    ids: set[int] = set()
    state = cast(InstanceState[Any], inspect(obj))
    for key in _OWNER_KEYS:
        history = state.attrs[key].history
        for value in (*history.deleted, *history.added, *history.unchanged):
            if isinstance(value, Certificate):
                if value.id is not None:
                    ids.add(value.id)
            elif isinstance(value, int):
                ids.add(value)
    return ids


def _owner_moved(obj: CoverageLine | Document) -> bool:
    state = cast(InstanceState[Any], inspect(obj))
    return any(state.attrs[key].history.has_changes() for key in _OWNER_KEYS)


def certificates_changed(session: Session) -> set[Certificate]:
    """The persistent certificates that this flush changes: their own fields, or their lines or
    attached documents (added, changed, removed or moved)."""
    owners: set[Certificate] = set()
    ids: set[int] = set()
    for obj in session.dirty:
        if isinstance(obj, Certificate):
            attrs = inspect(obj).attrs
            if (session.is_modified(obj, include_collections=False) or attrs.lines.history.has_changes()
                    or attrs.documents.history.has_changes()):
                owners.add(obj)
        elif isinstance(obj, CoverageLine):
            if session.is_modified(obj, include_collections=False):
                ids |= _owner_ids(obj)
        elif isinstance(obj, Document) and _owner_moved(obj):
            ids |= _owner_ids(obj)
    for obj in session.new:
        if isinstance(obj, CoverageLine | Document):
            if obj.certificate is not None:
                owners.add(obj.certificate)
            elif obj.certificate_id is not None:
                ids.add(obj.certificate_id)
    for obj in session.deleted:
        if isinstance(obj, CoverageLine | Document) and obj.certificate_id is not None:
            ids.add(obj.certificate_id)
    for cert_id in ids:
        cert = session.get(Certificate, cert_id)
        if cert is not None:
            owners.add(cert)
    inserted = session.info.get(_INSERTED, ())
    return {c for c in owners if c not in session.new and c not in session.deleted and c.id not in inserted}


@event.listens_for(Session, "before_flush")
def _raise_versions(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    at_start: dict[int, int] = session.info.setdefault(_VERSION_AT_START, {})
    for cert in certificates_changed(session):
        first = at_start.setdefault(cert.id, cert.version)
        if cert.version == first:  # not raised yet in this transaction (or its savepoint was rolled back)
            # The row is updated "SET version = first + 1 ... WHERE version = first": refused (StaleDataError)
            # when another transaction changed the certificate since it was read.
            cert.version = first + 1


@event.listens_for(Session, "after_flush")
def _remember_inserted(session: Session, _context: UOWTransaction) -> None:
    new = [obj.id for obj in session.new if isinstance(obj, Certificate)]
    if new:
        session.info.setdefault(_INSERTED, set()).update(new)


@event.listens_for(Session, "after_transaction_end")
def _forget_transaction(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_INSERTED, None)
        session.info.pop(_VERSION_AT_START, None)
