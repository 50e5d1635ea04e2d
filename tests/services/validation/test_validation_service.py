"""The validation service: stored runs with their audit event, severities, approval gate,
acknowledgements, batch validation, and re-validation when the rules pack changes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from ecms_desktop.models import AuditEvent
from ecms_desktop.models.validation import Finding as FindingRow
from ecms_desktop.models.validation import ValidationRun, WarningAcknowledgement
from ecms_desktop.rules import load_rules_pack
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.core import audit
from ecms_desktop.services.core.certificate_records import CertificateInput, LineInput
from ecms_desktop.services.core.errors import Cancelled, ConflictError, ValidationError
from ecms_desktop.services.validation.engine import RULES, ValidationEngine, mask_number, subject_of
from ecms_desktop.services.validation.name_match import name_similarity, normalize_name
from ecms_desktop.services.validation.service import ValidationService
from tests.factories import make_customer

AS_OF = dt.date(2026, 11, 20)


def tx_input(company_id: int, customer_id: int, **changes) -> CertificateInput:
    """A complete, valid Texas resale certificate (Form 01-339 front)."""
    base = CertificateInput(
        company_id=company_id, customer_id=customer_id, form_code="TX-01-339",
        lines=(LineInput("TX"),), exempt_reason="resale", certificate_number="TX-1001",
        purchaser_name="Lone Star Retail, L.L.C.", purchaser_address="1 Elm St, Austin TX 78701",
        purchaser_tax_id="32012345678",
        property_description="Hardware for resale", business_description="Hardware store",
        signed=True, signer_name="Pat Doe", signer_title="Owner", signed_date=dt.date(2026, 3, 1),
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture
def customer_id(db, company_id) -> int:
    return make_customer(db, company_id)


def create(db, data: CertificateInput) -> int:
    return CertificateService(db).create(data, as_of=AS_OF).id


def create_unvalidated(db, data: CertificateInput) -> int:
    """A certificate stored without a validation run (as bulk demo data or older records are)."""
    from ecms_desktop.services.certificates.service import create_certificate

    with db.transaction() as s:
        return create_certificate(s, load_rules_pack(), data, origin="demo").id


def rules_of(result) -> set[str]:
    return {f.rule for f in result.findings}


def test_valid_certificate_has_no_findings_and_the_run_is_stored_with_its_audit_event(db, company_id, customer_id):
    cert_id = create(db, tx_input(company_id, customer_id))
    service = ValidationService(db)
    result = service.validate(cert_id, as_of=AS_OF)
    assert result.findings == ()
    assert result.can_approve
    assert result.rules_version == load_rules_pack().version
    with db.reader() as s:
        run = s.get(ValidationRun, result.run_id)
        assert run is not None and run.trigger == "on_demand" and run.as_of == AS_OF
        # validated once when created (trigger "save") and once now, each with its audit event
        events = s.execute(select(AuditEvent).where(AuditEvent.action == "certificate.validated")
                           .order_by(AuditEvent.seq)).scalars().all()
        assert len(events) == 2
        event = events[-1]
        assert event.certificate_id == cert_id
        assert event.after["run_id"] == run.id
        assert event.after["rules_version"] == result.rules_version
        assert audit.verify_chain(s).ok


def test_error_warning_and_info_paths(db, company_id, customer_id):
    # error: a Texas permit number not 11 digits (TX format known with high confidence)
    bad = create(db, tx_input(company_id, customer_id, purchaser_tax_id="TX 1234", certificate_number="A"))
    # warning: purchaser name does not match the customer
    weak = create(db, tx_input(company_id, customer_id, purchaser_name="Gulf Coast Traders",
                               certificate_number="B"))
    service = ValidationService(db)
    r_bad = service.validate(bad, as_of=AS_OF)
    assert [(f.rule, f.severity, f.state, f.field) for f in r_bad.errors] == [
        ("permit.format", "error", "TX", "purchaser_tax_id")]
    assert "11 digits" in r_bad.errors[0].message
    assert r_bad.errors[0].confidence == "high" and r_bad.errors[0].source
    r_weak = service.validate(weak, as_of=AS_OF)
    assert not r_weak.errors
    assert [f.rule for f in r_weak.warnings] == ["purchaser.name_mismatch"]
    # info: a permit check older than the company's maximum age
    from ecms_desktop.models.validation import PermitCheck

    with db.transaction() as s:
        s.add(PermitCheck(certificate_id=weak, company_id=company_id, state="TX", number_checked="32012345678",
                          method="registry", source="snapshot", result="active",
                          as_of=AS_OF - dt.timedelta(days=400)))
    r_info = service.validate(weak, as_of=AS_OF)
    assert [f.rule for f in r_info.infos] == ["permit.check_stale"]
    assert "400" not in r_info.infos[0].message and "365 days" in r_info.infos[0].message


def test_findings_are_stored_per_run_and_history_is_kept(db, company_id, customer_id):
    cert_id = create(db, tx_input(company_id, customer_id, signed=False, signed_date=None))
    service = ValidationService(db)
    first = service.validate(cert_id, as_of=AS_OF, trigger="save")
    assert {(f.rule, f.field) for f in first.errors} == {("field.required", "signature"),
                                                         ("field.required", "signed_date")}
    second = service.validate(cert_id, as_of=AS_OF)
    assert second.run_id > first.run_id and second.fingerprint == first.fingerprint
    history = service.history(cert_id)  # newest first; the oldest is the run made when it was created
    assert [h.run_id for h in history[:2]] == [second.run_id, first.run_id]
    assert [h.trigger for h in history] == ["on_demand", "save", "save"]
    latest = service.latest(cert_id)
    assert latest is not None and latest.run_id == second.run_id and len(latest.errors) == 2
    with db.reader() as s:
        assert s.execute(select(func.count()).select_from(FindingRow)).scalar_one() == 6


def test_dates_and_override(db, company_id, customer_id):
    future = create(db, tx_input(company_id, customer_id, signed_date=dt.date(2027, 1, 5), certificate_number="F"))
    service = ValidationService(db)
    r = service.validate(future, as_of=AS_OF)
    assert [f.rule for f in r.errors] == ["date.signed_future"]
    assert "2027-01-05" in r.errors[0].message
    # The same certificate is fine as of a later date.
    assert not service.validate(future, as_of=dt.date(2027, 2, 1)).errors

    over = create(db, tx_input(company_id, customer_id, certificate_number="O", effective_date=dt.date(2026, 3, 1),
                               expiry_override=dt.date(2027, 2, 28),
                               expiry_override_reason="customer asked for annual renewal"))
    r = service.validate(over, as_of=AS_OF)
    assert [f.rule for f in r.warnings] == ["expiry.override"]
    assert "customer asked for annual renewal" in r.warnings[0].message
    assert not r.errors
    # Expired by the as-of date: a warning that it only covers earlier sales.
    r = service.validate(over, as_of=dt.date(2027, 3, 1))
    assert {f.rule for f in r.warnings} == {"expiry.override", "expiry.expired"}


def test_effective_after_expiry_is_an_error(db, company_id, customer_id):
    engine = ValidationEngine(load_rules_pack())
    data = tx_input(company_id, customer_id, effective_date=dt.date(2026, 6, 1),
                    expiry_override=dt.date(2026, 5, 1), expiry_override_reason="typo")
    findings = engine.evaluate(subject_of(data), AS_OF)
    assert ("date.effective_after_expiry", "error") in {(f.rule, f.severity) for f in findings}


def test_single_use_and_partial(db, company_id, customer_id):
    engine = ValidationEngine(load_rules_pack())
    single = tx_input(company_id, customer_id, certificate_type="single_use")
    assert [(f.rule, f.severity, f.field) for f in engine.evaluate(subject_of(single), AS_OF)] == [
        ("single_use.po_missing", "error", "po_number")]
    assert engine.evaluate(subject_of(dataclasses.replace(single, po_number="PO-77")), AS_OF) == []
    partial = tx_input(company_id, customer_id, exemption_detail="Partial exemption: manufacturing equipment")
    assert [f.rule for f in engine.evaluate(subject_of(partial), AS_OF)] == ["partial.amount_missing"]
    ok = dataclasses.replace(partial, exempt_percent=Decimal("50"))
    assert engine.evaluate(subject_of(ok), AS_OF) == []
    both = dataclasses.replace(ok, exempt_amount=Decimal("100"))
    assert [f.rule for f in engine.evaluate(subject_of(both), AS_OF)] == ["partial.both_given"]


def test_ein_and_ssn_checks(company_id=1, customer_id=1):
    engine = ValidationEngine(load_rules_pack())
    good = tx_input(company_id, customer_id, purchaser_ein="12-3456789")
    assert engine.evaluate(subject_of(good), AS_OF) == []
    bad = tx_input(company_id, customer_id, purchaser_ein="12-34567")
    (f,) = engine.evaluate(subject_of(bad), AS_OF)
    assert (f.rule, f.severity, f.field) == ("ein.invalid", "error", "purchaser_ein")
    unknown_prefix = tx_input(company_id, customer_id, purchaser_ein="07-1234567")
    (f,) = engine.evaluate(subject_of(unknown_prefix), AS_OF)
    assert (f.rule, f.severity) == ("ein.invalid", "warning")
    ssn = tx_input(company_id, customer_id, purchaser_tax_id="536-22-1234")
    found = engine.evaluate(subject_of(ssn), AS_OF)
    # Not a Texas permit, and 01-339 also takes out-of-state numbers: whose it is must be said.
    assert {(f.rule, f.severity) for f in found} == {("permit.ssn_like", "warning"),
                                                     ("permit.issuer_unstated", "warning")}
    for f in found:
        assert "536" not in f.message and "***-**-1234" in f.message
    ssn_as_ein = tx_input(company_id, customer_id, purchaser_ein="536-22-1234")
    (f,) = engine.evaluate(subject_of(ssn_as_ein), AS_OF)
    assert (f.rule, f.field) == ("permit.ssn_like", "purchaser_ein")
    assert "536" not in f.message and "***-**-1234" in f.message


def test_name_normalisation():
    assert normalize_name("The Lone Star Retail, L.L.C.") == "lone star retail"
    assert normalize_name("Acme Supply Co., Inc.") == "acme supply"
    assert name_similarity("ACME SUPPLY COMPANY", "Acme Supply Co") == 1.0
    assert name_similarity("Smith & Sons Hardware Inc", "Smith and Sons Hardware") == 1.0
    assert name_similarity("Pat Doe dba Doe Hardware", "Doe Hardware LLC") == 1.0
    assert 0.6 <= name_similarity("Lone Star Retailers", "Lone Star Retail LLC") < 1.0
    assert name_similarity("Gulf Coast Traders", "Lone Star Retail LLC") < 0.6
    assert mask_number("536221234") == "***-**-1234"


def test_evaluate_is_pure_and_accepts_input_and_detail(db, company_id, customer_id):
    service = ValidationService(db)
    data = tx_input(company_id, customer_id, purchaser_name="Gulf Coast Traders")
    assert service.evaluate(data, AS_OF) == []  # no customer name given: no comparison
    assert [f.rule for f in service.evaluate(data, AS_OF, customer_name="Lone Star Retail LLC")] == [
        "purchaser.name_mismatch"]
    cert_id = create(db, data)
    detail = CertificateService(db).get(cert_id, AS_OF)

    def runs() -> int:
        with db.reader() as s:
            return s.execute(select(func.count()).select_from(ValidationRun)).scalar_one()

    stored = runs()  # the run made when the certificate was created
    assert [f.rule for f in service.evaluate(detail, AS_OF)] == ["purchaser.name_mismatch"]
    assert runs() == stored == 1


def test_approval_blocked_by_errors_then_needs_acknowledgement(db, company_id, customer_id):
    cert_id = create(db, tx_input(company_id, customer_id, purchaser_tax_id="TX 12", purchaser_name="Gulf Coast"))
    service = ValidationService(db)
    certs = CertificateService(db)
    version = certs.get(cert_id, AS_OF).version
    with pytest.raises(ValidationError) as err:
        certs.approve_with_validation(cert_id, expected_version=version, as_of=AS_OF, acknowledge_warnings=True)
    assert "1 error remains." in str(err.value) and "11 digits" in str(err.value)
    assert certs.get(cert_id, AS_OF).review_state == "pending"
    # The refused attempt is on file as an approval-triggered run.
    assert service.latest(cert_id).trigger == "approval"

    detail = certs.get(cert_id, AS_OF)
    certs.save(cert_id, dataclasses.replace(detail.data, purchaser_tax_id="32012345678"),
               expected_version=detail.version, as_of=AS_OF)
    version = certs.get(cert_id, AS_OF).version
    with pytest.raises(ConflictError):
        certs.approve_with_validation(cert_id, expected_version=version - 1, as_of=AS_OF,
                                      acknowledge_warnings=True)
    with pytest.raises(ValidationError, match="acknowledge"):
        certs.approve_with_validation(cert_id, expected_version=version, as_of=AS_OF, acknowledge_warnings=False)
    assert certs.get(cert_id, AS_OF).review_state == "pending"
    outcome = certs.approve_with_validation(cert_id, expected_version=version, as_of=AS_OF,
                                            acknowledge_warnings=True, note="same business, trade name")
    assert outcome.acknowledgement_id is not None
    assert outcome.validation.acknowledged is not None and outcome.validation.acknowledged[0] == "tester"
    assert certs.get(cert_id, AS_OF).review_state == "approved"
    with db.reader() as s:
        ack = s.get(WarningAcknowledgement, outcome.acknowledgement_id)
        assert ack.acknowledged_by == "tester" and ack.note == "same business, trade name"
        assert [w["rule"] for w in ack.warnings] == ["purchaser.name_mismatch"]
        approved = s.execute(select(AuditEvent).where(AuditEvent.action == "certificate.approved")).scalar_one()
        assert approved.details["acknowledgement_id"] == ack.id
        assert approved.details["validation_run_id"] == outcome.validation.run_id
        assert s.execute(select(AuditEvent).where(
            AuditEvent.action == "certificate.warnings_acknowledged")).scalar_one().after["note"]


def test_validate_many_progress_cancel_and_counts(db, company_id, customer_id):
    ids = [create(db, tx_input(company_id, customer_id, certificate_number=f"N{i}",
                               purchaser_tax_id="32012345678" if i % 2 else "TX 9")) for i in range(7)]
    service = ValidationService(db)
    seen: list[tuple[int, int]] = []
    result = service.validate_many(None, as_of=AS_OF, progress=lambda d, t, _: seen.append((d, t)), batch_size=3)
    assert result.validated == 7 and result.with_errors == 4 and result.errors == 4
    assert seen[-1] == (7, 7) and [d for d, _ in seen[:-1]] == [0, 3, 6]
    assert [r.certificate_id for r in result.results] == ids
    calls = iter([False, True])
    with pytest.raises(Cancelled):
        service.validate_many(ids, as_of=AS_OF, cancel=lambda: next(calls), batch_size=3)
    with db.reader() as s:
        # 7 made at creation + 7 from the first call + one finished batch of 3 before the cancel
        assert s.execute(select(func.count()).select_from(ValidationRun)).scalar_one() == 17
        assert audit.verify_chain(s).ok


def test_stale_certificates_after_a_rules_pack_change(db, company_id, customer_id):
    cert_ok = create(db, tx_input(company_id, customer_id, certificate_number="S1"))
    cert_sst = create(db, tx_input(company_id, customer_id, certificate_number="S2", form_code="SST-F0003",
                                   business_type="retailer"))
    never = create_unvalidated(db, tx_input(company_id, customer_id, certificate_number="S3"))
    rules = load_rules_pack()
    service = ValidationService(db, rules)
    service.validate_many([cert_ok, cert_sst], as_of=AS_OF)
    assert [s.certificate_id for s in service.stale_certificates(AS_OF)] == [never]

    # A new rules pack in which Texas no longer refuses the SST form for resale.
    tx = rules.state("TX")
    sst_member = dataclasses.replace(tx.sst, membership="full")
    new_states = dict(rules.states)
    new_states["TX"] = dataclasses.replace(tx, refused_forms=(), sst=sst_member)
    newer = dataclasses.replace(rules, version="2027.1.1", states=new_states)
    assert "sst.refused" in rules_of(service.latest(cert_sst))
    stale = {s.certificate_id: s for s in ValidationService(db, newer).stale_certificates(AS_OF)}
    assert set(stale) == {cert_ok, cert_sst, never}
    assert stale[cert_sst].rules_changed and stale[cert_sst].result_changes
    assert stale[cert_ok].rules_changed and not stale[cert_ok].result_changes
    assert "2027.1.1" in stale[cert_ok].reason
    done = ValidationService(db, newer).revalidate_stale(AS_OF, only_changed=True)
    assert done.validated == 2  # the SST one and the never-validated one
    latest = ValidationService(db, newer).latest(cert_sst)
    assert latest.trigger == "revalidation" and latest.rules_version == "2027.1.1"
    assert "sst.refused" not in rules_of(latest)


def test_rule_catalogue_severities_are_known():
    for rule, (severity, title) in RULES.items():
        assert severity in ("error", "warning", "info"), rule
        assert title
