"""The audit trail read by people: a certificate's history for the History tab and ``ecms audit log``,
every recorded event told in plain sentences ("Purchaser name changed from … to … by … on …"), oldest
first (Qt-free).

The field names in the sentences are the labels of the rules pack's field vocabulary (the same labels
the form shows), with the record's own fields (certificate number, form, states...) named here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ecms_desktop.rules import RulesPack
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
    "certificate.validated": "Validated",
    "certificate.warnings_acknowledged": "Warnings acknowledged",
    "certificate.findings_accepted": "Findings accepted",
    "certificate.reprocessed": "Applied to sales again",
    "coverage.suspended": "Exempt status suspended",
    "document.received": "Document received",
    "document.rotation_saved": "Document rotation saved",
    "document.assigned": "Document assigned from the intake inbox",
    "document.split": "Document split",
    "document.discarded": "Document discarded",
    "permit.checked": "Permit checked",
    "renewal.requested": "Renewal requested",
    "renewal.reminded": "Renewal reminder sent",
    "renewal.escalated": "Renewal escalated",
    "renewal.cancelled": "Renewal request cancelled",
    "renewal.answered": "Renewal form returned",
    "claim.claimed": "Claimed",
    "claim.released": "Claim released",
    "claim.taken_over": "Claim taken over",
}

#: Names of the certificate record's values that are not in the rules pack's field vocabulary.
RECORD_LABELS: dict[str, str] = {
    "customer_number": "Customer number",
    "customer_id": "Customer",
    "form_code": "Form",
    "certificate_number": "Certificate number",
    "certificate_type": "Certificate type",
    "signed": "Signed",
    "expiry_override": "Expiration date set by hand",
    "expiry_override_reason": "Reason for the hand-set expiration date",
    "product_codes": "Product codes",
    "commodity_codes": "Commodity codes",
    "exempt_percent": "Exempt percentage",
    "exempt_amount": "Exempt amount",
    "currency": "Currency",
    "notes": "Notes",
    "owner_email": "Owner's e-mail",
    "review_state": "Review state",
    "review_reason": "Review reason",
    "document_sha256": "Document",
}

#: Names of a state line's values ("TX permit number changed from … to …").
LINE_LABELS: dict[str, str] = {
    "state_tax_id": "permit number",
    "local_jurisdictions": "local jurisdictions",
    "expiry_date": "expiration date",
    "expiry_origin": "expiration rule",
}


@dataclass(frozen=True)
class HistoryEntry:
    """One event in a certificate's audit trail, told in sentences."""

    seq: int
    occurred_at: dt.datetime
    actor: str
    action: str
    action_label: str
    #: What happened, one sentence per change, each naming who and when.
    sentences: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)


def field_labels(rules: RulesPack) -> dict[str, str]:
    """The name shown for each certificate value: the rules pack's labels, then the record's own."""
    return {**RECORD_LABELS, **{f.name: f.label for f in rules.fields}}


def _value(value: Any, *, key: str = "", reasons: Mapping[str, str] | None = None) -> str:
    if value in (None, "", [], {}, ()):
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "exempt_reason" and reasons and str(value) in reasons:
        return f"“{reasons[str(value)]}”"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if key == "document_sha256":
        return f"file {str(value)[:12]}…"
    text = str(value).replace("\n", " ")
    return f"“{text if len(text) <= 80 else text[:79] + '…'}”"


def _change(label: str, old: Any, new: Any, *, key: str = "", reasons: Mapping[str, str] | None = None) -> str:
    if old in (None, "", [], {}, ()):
        return f"{label} set to {_value(new, key=key, reasons=reasons)}"
    if new in (None, "", [], {}, ()):
        return f"{label} cleared (was {_value(old, key=key, reasons=reasons)})"
    return f"{label} changed from {_value(old, key=key, reasons=reasons)} to {_value(new, key=key, reasons=reasons)}"


def _lines(value: Any) -> dict[str, dict[str, Any]]:
    """State lines by state, from an event's ``lines`` (dicts, or [state, expiry] pairs in bulk imports)."""
    out: dict[str, dict[str, Any]] = {}
    for line in value or ():
        if isinstance(line, Mapping):
            out[str(line.get("state"))] = dict(line)
        elif isinstance(line, list | tuple) and line:
            out[str(line[0])] = {"state": line[0], "expiry_date": line[1] if len(line) > 1 else None}
    return out


def _line_changes(before: Any, after: Any) -> list[str]:
    old, new = _lines(before), _lines(after)
    out: list[str] = []
    for state in sorted(set(old) | set(new)):
        if state not in old:
            expiry = new[state].get("expiry_date")
            out.append(f"State {state} added" + (f" (expires {expiry})" if expiry else " (no expiration)"))
        elif state not in new:
            out.append(f"State {state} removed")
        else:
            for key, label in LINE_LABELS.items():
                if key in old[state] and key in new[state] and old[state][key] != new[state][key]:
                    out.append(_change(f"{state} {label}", old[state][key], new[state][key]))
    return out


def _reason(after: Mapping[str, Any]) -> str:
    reason = after.get("review_reason") or ""
    return f" Reason: {reason}." if reason else ""


def event_sentences(action: str, actor: str, occurred_at: dt.datetime, before: Mapping[str, Any] | None,
                    after: Mapping[str, Any] | None, details: Mapping[str, Any] | None,
                    labels: Mapping[str, str], reasons: Mapping[str, str] | None = None) -> list[str]:
    """One audit event in plain sentences, each saying who did it and when (local time), e.g.
    "Purchaser name changed from “Old LLC” to “New LLC” by ann on 2026-11-22 14:03."."""
    before, after, details = before or {}, after or {}, details or {}
    by = f"by {actor} on {occurred_at.astimezone():%Y-%m-%d %H:%M}"

    def said(text: str, tail: str = "") -> list[str]:
        return [f"{text} {by}.{tail}"]

    if action == "certificate.edited":
        changes: list[str] = []
        for key in after:
            if key == "lines":
                changes.extend(_line_changes(before.get("lines"), after.get("lines")))
            else:
                label = labels.get(key, key.replace("_", " ").capitalize())
                changes.append(_change(label, before.get(key), after.get(key), key=key, reasons=reasons))
        return [f"{c} {by}." for c in changes] or said("Edited")
    if action == "certificate.created":
        origin = details.get("origin")
        held = details.get("held_for_review")
        return said("Certificate created" + (f" (from {origin})" if origin else ""),
                    f" Held for review: {held}." if held else "")
    if action == "certificate.approved":
        warnings = details.get("acknowledged_warnings")
        tail = f" {warnings} warning(s) acknowledged." if warnings else ""
        if details.get("note"):
            tail += f" Note: {details['note']}."
        claim = details.get("claim") or {}
        if claim and not claim.get("by_claimant"):  # an approver decided a certificate another person claimed
            tail += f" It was claimed by {claim.get('claimed_by')}."
        return said("Approved", tail)
    if action in ("certificate.rejected", "certificate.archived", "certificate.unarchived"):
        return said(ACTION_LABELS[action], _reason(after))
    if action == "certificate.validated":
        counts = (f"{after.get('errors', 0)} error(s), {after.get('warnings', 0)} warning(s)")
        rules = after.get("rules_version")
        return said(f"Validated ({counts}" + (f", rules pack {rules}" if rules else "") + ")")
    if action in ("certificate.warnings_acknowledged", "certificate.findings_accepted"):
        listed = after.get("warnings") or after.get("findings") or []
        what = "warning(s) acknowledged" if action.endswith("acknowledged") else "finding(s) accepted"
        note = after.get("note")
        return said(f"{len(listed)} {what}", f" Note: {note}." if note else "")
    if action == "certificate.expiry_recomputed":
        changes = _line_changes(before.get("lines"), after.get("lines"))
        reason = details.get("reason")
        return [f"{c} {by}" + (f" ({reason})." if reason else ".") for c in changes] or said(
            f"Expiry of the {details.get('state', '?')} line recomputed")
    if action == "coverage.suspended":
        state, expiry = details.get("state", "?"), details.get("expiry_date")
        return said(f"Exempt status in {state} suspended" + (f" (expired {expiry})" if expiry else ""))
    if action == "claim.taken_over":
        return said(f"Claim taken over from {before.get('claimed_by', '?')}")
    if action == "claim.released" and details.get("released_for"):
        return said(f"Claim of {details['released_for']} released")
    if action == "document.received":
        name, pages = after.get("original_name", "a document"), after.get("pages")
        return said(f"Document “{name}” received" + (f" ({pages} page(s))" if pages else ""))
    if action == "document.assigned":
        new = " as a new certificate" if details.get("new_certificate") else ""
        return said(f"Document “{after.get('original_name', '')}” assigned from the intake inbox to customer "
                    f"{after.get('customer_number', '?')}{new}")
    return said(ACTION_LABELS.get(action, action.replace(".", " ").replace("_", " ").capitalize()))


def _entries(events: Sequence[audit.AuditEntry], rules: RulesPack) -> list[HistoryEntry]:
    labels = field_labels(rules)
    reasons = {r.code: r.label for r in rules.exempt_reasons}

    def tell(e: audit.AuditEntry) -> list[str]:
        return event_sentences(e.action, e.actor, e.occurred_at, e.before, e.after, e.details, labels, reasons)

    return [HistoryEntry(e.seq, e.occurred_at, e.actor, e.action, ACTION_LABELS.get(e.action, e.action),
                         tuple(tell(e))) for e in events]


def certificate_history(db: Database, rules: RulesPack, certificate_id: int) -> list[HistoryEntry]:
    """Every audit event recorded for a certificate (and its documents), oldest first, in sentences."""
    with db.reader() as s:
        events = audit.list_events(s, certificate_id=certificate_id)
    return _entries(events, rules)


def audit_log(db: Database, *, certificate_id: int | None = None, limit: int | None = None) -> list[audit.AuditEntry]:
    """The audit trail's events, oldest first: all of them, or one certificate's (and its documents');
    with ``limit``, only the last ``limit`` events."""
    with db.reader() as s:
        return audit.list_events(s, certificate_id=certificate_id, limit=limit)


def audit_log_in_words(db: Database, rules: RulesPack, *, certificate_id: int | None = None,
                       limit: int | None = None) -> list[HistoryEntry]:
    """:func:`audit_log` told in sentences (``ecms audit log``)."""
    return _entries(audit_log(db, certificate_id=certificate_id, limit=limit), rules)
