"""A certificate's history in words: each audit event as sentences naming the field (as the form labels
it), the old and new values, who and when - the History tab and ``ecms audit log`` show them."""

from __future__ import annotations

import dataclasses
import datetime as dt

from ecms_desktop.services.certificates.history_service import certificate_history, event_sentences, field_labels
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.core.certificate_records import LineInput
from ecms_desktop.services.core.people import os_user as current_actor
from tests.factories import DESK_CASES, RULES, make_desk_certificate

AS_OF = dt.date(2026, 6, 1)


def test_a_certificates_changes_are_told_in_sentences(db, company_id) -> None:  # type: ignore[no-untyped-def]
    service = CertificateService(db, RULES)
    detail = make_desk_certificate(db, company_id, as_of=AS_OF, rules=RULES, **DESK_CASES["TX"])
    data = dataclasses.replace(detail.data, purchaser_name="Lone Star Tools LLC", exempt_reason="manufacturing",
                               po_number="PO-77", lines=(*detail.data.lines, LineInput("OK", "")))
    detail = service.save(detail.id, data, expected_version=detail.version, as_of=AS_OF)
    detail = service.reject(detail.id, "not signed", expected_version=detail.version, as_of=AS_OF)
    service.archive(detail.id, "customer closed", expected_version=detail.version, as_of=AS_OF)

    history = certificate_history(db, RULES, detail.id)
    me = current_actor()
    assert history[0].action_label == "Created" and history[0].sentences[0].startswith("Certificate created")
    edited = next(e for e in history if e.action == "certificate.edited")
    when = f" by {me} on {edited.occurred_at.astimezone():%Y-%m-%d %H:%M}."
    assert set(edited.sentences) >= {
        "Purchaser name changed from “Lone Star Hardware LLC” to “Lone Star Tools LLC”" + when,
        "Reason for exemption changed from “Resale” to “Manufacturing / industrial production”" + when,
        "Order / invoice number set to “PO-77”" + when,
    }, edited.sentences
    assert any(s.startswith("State OK added") and s.endswith(when) for s in edited.sentences), edited.sentences
    told = [e.text for e in history]
    assert any(t.startswith("Rejected by ") and t.endswith("Reason: not signed.") for t in told), told
    assert any(t.startswith("Archived by ") and t.endswith("Reason: customer closed.") for t in told), told
    assert all("{" not in t and "_" not in t.split(" by ")[0] for t in told), told  # no JSON, no field codes


def test_every_kind_of_event_reads_as_a_sentence() -> None:
    labels = field_labels(RULES)
    at = dt.datetime(2026, 11, 22, 14, 3, tzinfo=dt.UTC)
    when = f"on {at.astimezone():%Y-%m-%d %H:%M}"
    ky_before = {"lines": [{"state": "KY", "expiry_date": "2029-03-14"}]}
    ky_after = {"lines": [{"state": "KY", "expiry_date": "2030-03-14"}]}
    cases = [
        ("certificate.validated", None, {"errors": 1, "warnings": 2, "rules_version": "2026.11"}, None,
         f"Validated (1 error(s), 2 warning(s), rules pack 2026.11) by ann {when}."),
        ("certificate.approved", None, {"review_state": "approved"}, {"acknowledged_warnings": 2, "note": "ok"},
         f"Approved by ann {when}. 2 warning(s) acknowledged. Note: ok."),
        ("coverage.suspended", {"suspended_at": None}, {"suspended_at": "x"},
         {"state": "TX", "expiry_date": "2026-01-01"},
         f"Exempt status in TX suspended (expired 2026-01-01) by ann {when}."),
        ("document.received", None, {"original_name": "scan.pdf", "pages": 2}, None,
         f"Document “scan.pdf” received (2 page(s)) by ann {when}."),
        ("certificate.expiry_recomputed", ky_before, ky_after, {"state": "KY", "reason": "policy changed"},
         f"KY expiration date changed from “2029-03-14” to “2030-03-14” by ann {when} (policy changed)."),
        ("certificate.edited", {"signed_date": "2026-03-15"}, {"signed_date": None}, None,
         f"Date signed cleared (was “2026-03-15”) by ann {when}."),
        ("renewal.requested", None, None, None, f"Renewal requested by ann {when}."),
    ]
    for action, before, after, details, expected in cases:
        assert event_sentences(action, "ann", at, before, after, details, labels) == [expected], action
