"""Certificates through the service: expiry from the rules pack, review, locking, audit."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from ecms_desktop.models import Status
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core import audit
from ecms_desktop.services.core.certificate_records import LineInput
from ecms_desktop.services.core.errors import ConflictError, ValidationError
from tests.factories import AS_OF, make_certificate

D = dt.date


@pytest.mark.parametrize(
    ("state", "form", "signed", "expected_expiry"),
    [
        ("CA", "CA-CDTFA-230", D(2020, 1, 10), None),          # no set expiry: renew if circumstances change
        ("NY", "NY-ST-120", D(2026, 3, 15), D(2031, 3, 14)),   # 5 years
        ("FL", "FL-DR-13", D(2026, 2, 1), D(2026, 12, 31)),    # annual, through 31 December
        ("KY", "KY-51A105", D(2024, 2, 29), D(2028, 2, 28)),   # 4 years from a 29 February
        ("CT", "CT-RESALE", D(2026, 3, 15), D(2029, 3, 14)),   # 3 years
        ("DC", "DC-OTR-368", D(2026, 5, 1), D(2027, 4, 30)),   # 1 year
        ("TX", "TX-01-339", D(2001, 1, 1), None),              # Texas resale: no expiry
    ],
)
def test_seed_renewal_table_is_the_default_policy(db, company_id, state, form, signed, expected_expiry) -> None:  # type: ignore[no-untyped-def]
    detail = make_certificate(db, company_id, form=form, states=(state,), signed=signed)
    (line,) = detail.lines
    assert line.expiry_date == expected_expiry
    # FL DR-13 and DC OTR-368 carry the date their state printed (the factory prints the rule's date).
    assert line.expiry_basis and line.expiry_origin == ("printed" if state in ("FL", "DC") else "rules")
    assert line.expiry_source  # every rule keeps its source


def test_kentucky_period_is_marked_as_a_recommendation(db, company_id) -> None:  # type: ignore[no-untyped-def]
    detail = make_certificate(db, company_id, form="KY-51A105", states=("KY",))
    assert "recommendation" in detail.lines[0].expiry_basis


def test_sst_certificate_has_one_line_per_state_each_with_its_own_expiry(db, company_id) -> None:  # type: ignore[no-untyped-def]
    detail = make_certificate(db, company_id, form="sst f0003", states=("OH", "MI", "KY"), signed=D(2025, 5, 1))
    assert detail.data.form_code == "SST-F0003"
    by_state = {line.state: line for line in detail.lines}
    assert set(by_state) == {"KY", "MI", "OH"}
    assert by_state["KY"].expiry_date == D(2029, 4, 30)
    assert detail.expiry_date == min(d for d in (line.expiry_date for line in detail.lines) if d)


def test_status_as_of_follows_the_expiry_window(db, company_id) -> None:  # type: ignore[no-untyped-def]
    detail = make_certificate(db, company_id, form="FL-DR-13", states=("FL",), signed=D(2026, 2, 1))
    service = CertificateService(db)
    assert service.get(detail.id, D(2026, 11, 30)).status is Status.ACTIVE
    assert service.get(detail.id, D(2026, 12, 1)).status is Status.EXPIRING_SOON
    assert service.get(detail.id, D(2026, 12, 31)).status is Status.EXPIRING_SOON
    assert service.get(detail.id, D(2027, 1, 1)).status is Status.EXPIRED
    CompanyService(db).set_setting("expiring_soon_days", 45, company_id)
    assert service.get(detail.id, D(2026, 11, 30)).status is Status.EXPIRING_SOON


def test_save_with_a_stale_version_is_refused_and_nothing_is_overwritten(db, company_id) -> None:  # type: ignore[no-untyped-def]
    detail = make_certificate(db, company_id)
    service = CertificateService(db)
    first = service.save(detail.id, dataclasses.replace(detail.data, notes="checked by Ann"),
                         expected_version=detail.version, as_of=AS_OF)
    assert first.version == detail.version + 1
    with pytest.raises(ConflictError, match="changed by someone else"):
        service.save(detail.id, dataclasses.replace(detail.data, notes="checked by Bob"),
                     expected_version=detail.version, as_of=AS_OF)
    assert service.get(detail.id, AS_OF).data.notes == "checked by Ann"


def test_edit_is_audited_with_before_and_after(db, company_id) -> None:  # type: ignore[no-untyped-def]
    detail = make_certificate(db, company_id, form="SST-F0003", states=("OH",))
    service = CertificateService(db)
    service.save(detail.id, dataclasses.replace(detail.data, lines=(LineInput("OH"), LineInput("MI")),
                                                purchaser_tax_id="12345"),
                 expected_version=detail.version, as_of=AS_OF)
    with db.reader() as s:
        events = audit.list_events(s, certificate_id=detail.id)
    actions = [e.action for e in events]
    assert [a for a in actions if a in ("certificate.created", "certificate.approved", "certificate.edited")] == [
        "certificate.created", "certificate.approved", "certificate.edited"]
    # validated on creation, at approval and on save, each run in the same transaction as the change
    assert actions.count("certificate.validated") == 3
    edit = next(e for e in events if e.action == "certificate.edited")
    assert edit.before["purchaser_tax_id"] == detail.data.purchaser_tax_id != ""
    assert edit.after["purchaser_tax_id"] == "12345"
    assert [line["state"] for line in edit.after["lines"]] == ["MI", "OH"]


def test_expiry_override_needs_a_reason_and_is_kept(db, company_id) -> None:  # type: ignore[no-untyped-def]
    detail = make_certificate(db, company_id)
    service = CertificateService(db)
    with pytest.raises(ValidationError, match="needs a reason"):
        service.save(detail.id, dataclasses.replace(detail.data, expiry_override=D(2027, 6, 30)),
                     expected_version=detail.version, as_of=AS_OF)
    saved = service.save(detail.id, dataclasses.replace(detail.data, expiry_override=D(2027, 6, 30),
                                                        expiry_override_reason="customer closes the store"),
                         expected_version=detail.version, as_of=AS_OF)
    assert saved.lines[0].expiry_date == D(2027, 6, 30)
    assert saved.lines[0].expiry_origin == "override" and "closes the store" in saved.lines[0].expiry_basis


def test_archive_and_unarchive_with_reason(db, company_id) -> None:  # type: ignore[no-untyped-def]
    detail = make_certificate(db, company_id)
    service = CertificateService(db)
    with pytest.raises(ValidationError, match="why"):
        service.archive(detail.id, " ", expected_version=detail.version, as_of=AS_OF)
    archived = service.archive(detail.id, "customer sold the business", expected_version=detail.version, as_of=AS_OF)
    assert archived.status is Status.ARCHIVED and archived.review_reason == "customer sold the business"
    back = service.unarchive(archived.id, "archived by mistake", expected_version=archived.version, as_of=AS_OF)
    assert back.review_state == "approved" and back.status is Status.ACTIVE


def test_reject_needs_a_reason(db, company_id) -> None:  # type: ignore[no-untyped-def]
    detail = make_certificate(db, company_id, approve=False)
    assert detail.status is Status.PENDING_REVIEW
    service = CertificateService(db)
    rejected = service.reject(detail.id, "unsigned", expected_version=detail.version, as_of=AS_OF)
    assert rejected.status is Status.REJECTED and rejected.reviewed_by == "tester"


@pytest.mark.parametrize(
    ("change", "column"),
    [({"form_code": "XX-NOPE"}, "form"), ({"lines": (LineInput("ZZ"),)}, "state"), ({"lines": ()}, "state"),
     ({"exempt_reason": "because"}, "exempt_reason"), ({"currency": "dollars"}, "currency")],
)
def test_structural_problems_name_the_field(db, company_id, change, column) -> None:  # type: ignore[no-untyped-def]
    detail = make_certificate(db, company_id)
    with pytest.raises(ValidationError) as info:
        CertificateService(db).save(detail.id, dataclasses.replace(detail.data, **change),
                                    expected_version=detail.version, as_of=AS_OF)
    assert any(p.column == column for p in info.value.problems)


def test_company_policy_change_recomputes_and_is_audited(db, company_id) -> None:  # type: ignore[no-untyped-def]
    detail = make_certificate(db, company_id, form="KY-51A105", states=("KY",), signed=D(2026, 3, 15))
    assert detail.lines[0].expiry_date == D(2030, 3, 14)
    with pytest.raises(ValidationError, match="why"):
        CompanyService(db).set_expiry_policy(company_id, "KY", "resale", "years", 3, "")
    CompanyService(db).set_expiry_policy(company_id, "KY", "resale", "years", 3, "our auditor asks for 3 years")
    after = CertificateService(db).get(detail.id, AS_OF)
    assert after.lines[0].expiry_date == D(2029, 3, 14)
    assert after.lines[0].expiry_origin == "company" and "auditor" in after.lines[0].expiry_basis
    with db.reader() as s:
        (event,) = [e for e in audit.list_events(s) if e.action == "expiry_policy.changed"]
    assert event.after["years"] == 3 and event.details["certificate_lines_recomputed"] == 1


def test_review_decisions_and_edits_tell_the_erp_in_the_same_transaction(db, company_id) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from ecms_desktop.models.transactions import ExemptionStatusEvent

    def events() -> list[tuple[str, str, str, str]]:
        with db.reader() as s:
            return [(e.state, e.reason, e.old_status, e.new_status) for e in
                    s.execute(select(ExemptionStatusEvent).order_by(ExemptionStatusEvent.id)).scalars()]

    detail = make_certificate(db, company_id, form="SST-F0003", states=("OH",), signed=D(2026, 1, 1))
    assert events() == [("OH", "approval", "not_exempt", "exempt")]
    service = CertificateService(db)
    edited = service.save(detail.id, dataclasses.replace(detail.data, lines=(LineInput("MI"), LineInput("OH"))),
                          expected_version=detail.version, as_of=AS_OF)
    assert events()[-1] == ("MI", "amendment", "not_exempt", "exempt")
    service.archive(edited.id, "closed", expected_version=edited.version, as_of=AS_OF)
    assert sorted(events()[-2:]) == [("MI", "archive", "exempt", "not_exempt"),
                                     ("OH", "archive", "exempt", "not_exempt")]
    archived = service.get(edited.id, AS_OF)
    before = len(events())
    service.unarchive(archived.id, "mistake", expected_version=archived.version, as_of=AS_OF)
    assert len(events()) == before + 2  # reinstated in both states


def test_approval_is_gated_by_validation(db, company_id) -> None:  # type: ignore[no-untyped-def]
    """Errors block approval (the refused attempt's run stays on file); warnings need acknowledging."""
    from ecms_desktop.services.validation.service import ValidationService

    bare = make_certificate(db, company_id, form="CA-CDTFA-230", states=("CA",), approve=False,
                            purchaser_address="", property_description="")
    service = CertificateService(db)
    with pytest.raises(ValidationError, match="cannot be approved") as info:
        service.approve(bare.id, expected_version=bare.version, as_of=AS_OF, acknowledge_warnings=True)
    assert {p.column for p in info.value.problems} >= {"purchaser_address", "property_description"}
    assert service.get(bare.id, AS_OF).review_state == "pending"
    history = ValidationService(db).history(bare.id)
    assert history[0].trigger == "approval" and len(history[0].errors) >= 2  # newest first

    mismatched = make_certificate(db, company_id, customer="C-9", name="Quite Different Name LLC", approve=False,
                                  purchaser_name="Zenith Traders")
    with pytest.raises(ValidationError, match="acknowledge"):
        service.approve(mismatched.id, expected_version=mismatched.version, as_of=AS_OF)
    approved = service.approve(mismatched.id, expected_version=mismatched.version, as_of=AS_OF,
                               acknowledge_warnings=True, note="name changed after a merger")
    assert approved.review_state == "approved"
    with db.reader() as s:
        actions = [e.action for e in audit.list_events(s, certificate_id=mismatched.id)]
    assert "certificate.warnings_acknowledged" in actions


# 36 M.R.S. §1754-B(2-B): a first Maine resale certificate issued 1 January-30 September runs through
# 31 December of the 2nd following year; (2-C): a subsequent one is effective for the next 5 calendar years.
# A certificate is a renewal when its customer already held one on the same form for the state, effective
# earlier (not rejected). Computed dates (no printed date entered), worked out by hand from the statute.
@pytest.mark.parametrize(
    ("customer", "effective", "expected", "why"),
    [
        ("C-ME1", D(2026, 3, 15), D(2028, 12, 31), "first issue, March 2026: 2026 + 2 subsequent years"),
        ("C-ME1", D(2029, 1, 1), D(2033, 12, 31), "renewal of C-ME1's certificate: 2029-2033"),
        ("C-ME2", D(2029, 1, 1), D(2031, 12, 31), "another customer's first issue, January 2029: 2029-2031"),
        ("C-ME2", D(2028, 10, 1), D(2031, 12, 31), "first issue, October 2028: the 3rd succeeding year"),
    ],
)
def test_maine_renewal_is_known_from_the_customers_earlier_certificate(db, company_id, customer, effective,  # type: ignore[no-untyped-def]
                                                                       expected, why) -> None:
    # Each case first stores C-ME1's March 2026 certificate; a certificate effective the same day is not a
    # renewal of it (not earlier), and C-ME2 never held one.
    make_certificate(db, company_id, customer="C-ME1", form="ME-RESALE", states=("ME",), signed=D(2026, 3, 15),
                     effective=D(2026, 3, 15), expiry_override=None, approve=False)
    detail = make_certificate(db, company_id, customer=customer, form="ME-RESALE", states=("ME",), signed=effective,
                              effective=effective, expiry_override=None, approve=False)
    (line,) = detail.lines
    assert line.expiry_date == expected, why
    assert line.expiry_origin == "rules" and "1754-B" in line.expiry_source


def test_a_rejected_certificate_does_not_make_the_next_one_a_renewal(db, company_id) -> None:  # type: ignore[no-untyped-def]
    # 36 M.R.S. §1754-B(2-C) speaks of a retailer's *subsequent* certificate: a document we refused is not one
    # the customer held, so the next certificate is a first issue (2-B): January 2029 -> 31 December 2031.
    first = make_certificate(db, company_id, customer="C-ME3", form="ME-RESALE", states=("ME",),
                             signed=D(2026, 3, 15), effective=D(2026, 3, 15), expiry_override=None, approve=False)
    CertificateService(db).reject(first.id, "not a Maine resale certificate", expected_version=first.version,
                                  as_of=AS_OF)
    detail = make_certificate(db, company_id, customer="C-ME3", form="ME-RESALE", states=("ME",),
                              signed=D(2029, 1, 1), effective=D(2029, 1, 1), expiry_override=None, approve=False)
    assert detail.lines[0].expiry_date == D(2031, 12, 31)
