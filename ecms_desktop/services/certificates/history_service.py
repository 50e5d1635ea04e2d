"""The audit trail read by people: a certificate's history for the History tab, every recorded change
oldest first, and the log of ``ecms audit log`` (Qt-free)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from ecms_desktop.services.core import audit
from ecms_desktop.services.core.database import Database

#: Plain words for the audit actions an accountant meets on a certificate.
ACTION_LABELS: dict[str, str] = {
    "certificate.created": "Created",
    "certificate.edited": "Edited",
    "certificate.approved": "Approved",
    "certificate.rejected": "Rejected",
    "certificate.archived": "Archived",
    "certificate.unarchived": "Brought back from the archive",
    "certificate.expiry_recomputed": "Expiry recomputed",
    "coverage.suspended": "Exempt status suspended",
    "document.received": "Document received",
    "document.rotation_saved": "Document rotation saved",
    "document.assigned": "Document assigned from the intake inbox",
}


@dataclass(frozen=True)
class HistoryEntry:
    """One event in a certificate's audit trail, with a one-line summary of what changed."""

    seq: int
    occurred_at: dt.datetime
    actor: str
    action: str
    action_label: str
    summary: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    details: dict[str, Any] | None


def _short(value: Any, limit: int = 40) -> str:
    text = "(empty)" if value in (None, "", [], {}) else str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summarize(action: str, before: dict[str, Any] | None, after: dict[str, Any] | None,
              details: dict[str, Any] | None = None) -> str:
    """What changed, in one line: ``purchaser_name: 'Old' -> 'New'; …`` or the reason given."""
    before, after = before or {}, after or {}
    if action in ("certificate.rejected", "certificate.archived", "certificate.unarchived"):
        reason = after.get("review_reason") or ""
        return f"Reason: {reason}" if reason else ""
    if action == "certificate.created":
        return f"Origin: {(details or {}).get('origin', '')}".strip()
    if action == "document.received":
        return f"{after.get('original_name', '')} ({after.get('pages', '?')} page(s))"
    if action == "document.assigned":
        new = " (new certificate)" if (details or {}).get("new_certificate") else ""
        return f"{after.get('original_name', '')} for customer {after.get('customer_number', '?')}{new}"
    parts = []
    for key in sorted(set(before) | set(after)):
        if before.get(key) != after.get(key):
            parts.append(f"{key}: {_short(before.get(key))} -> {_short(after.get(key))}")
    return "; ".join(parts)


def certificate_history(db: Database, certificate_id: int) -> list[HistoryEntry]:
    """Every audit event recorded for a certificate (and its documents), oldest first."""
    with db.reader() as s:
        events = audit.list_events(s, certificate_id=certificate_id)
    return [
        HistoryEntry(e.seq, e.occurred_at, e.actor, e.action, ACTION_LABELS.get(e.action, e.action),
                     summarize(e.action, e.before, e.after, e.details), e.before, e.after, e.details)
        for e in events
    ]


def audit_log(db: Database, *, certificate_id: int | None = None, limit: int | None = None) -> list[audit.AuditEntry]:
    """The audit trail's events, oldest first: all of them, or one certificate's (and its documents');
    with ``limit``, only the last ``limit`` events."""
    with db.reader() as s:
        return audit.list_events(s, certificate_id=certificate_id, limit=limit)
