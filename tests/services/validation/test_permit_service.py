"""Permit verification: registry snapshots (Texas built-in layout and custom maps), checks recorded and
audited, manual checks with evidence stored by hash, an online verifier against a local HTTP server,
and re-verification by age."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from sqlalchemy import select

from ecms_desktop.models import AuditEvent, DocumentFile
from ecms_desktop.models.validation import PermitCheck
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core import audit
from ecms_desktop.services.core.errors import DocumentError, ValidationError
from ecms_desktop.services.documents.storage import sha256_of
from ecms_desktop.services.validation.permit_service import (
    TEXAS_ACTIVE_PERMITS_COLUMNS,
    HttpVerifier,
    PermitService,
)
from ecms_desktop.services.validation.service import ValidationService
from tests.factories import TEXAS_REGISTRY_HEADERS, make_desk_certificate, write_image, write_texas_registry
from tests.helpers.permit_registry import PermitRegistryHandler

AS_OF = dt.date(2026, 11, 20)


@pytest.fixture
def cert_id(db, company_id) -> int:
    return make_desk_certificate(db, company_id, as_of=AS_OF, customer="C-1", name="Lone Star Retail LLC",
                                 purchaser_name="Lone Star Retail LLC", purchaser_tax_id="32012345678", signed=True,
                                 signed_date=dt.date(2026, 3, 1)).id


def test_texas_layout_matches_the_published_header():
    from ecms_desktop.services.core.tabular import header_key

    assert tuple(header_key(h) for h in TEXAS_REGISTRY_HEADERS) == TEXAS_ACTIVE_PERMITS_COLUMNS


def test_texas_registry_import_and_checks(db, cert_id, tmp_path):
    service = PermitService(db)
    path = write_texas_registry(tmp_path, [("32012345678", "LONE STAR RETAIL LLC", "01/15/2019"),
                                           ("32012345678", "LONE STAR RETAIL LLC", "03/02/2021"),  # second outlet
                                           ("17412345678", "OTHER CO", "2020-05-01T00:00:00.000")])
    snap = service.import_registry(path, "tx", data_date=dt.date(2026, 11, 1))
    assert (snap.state, snap.row_count, snap.layout) == ("TX", 2, "texas_active_permits")
    (check,) = service.verify(cert_id, as_of=AS_OF)
    assert (check.result, check.method, check.state, check.number_checked) == ("active", "registry", "TX",
                                                                               "32012345678")
    assert "2026-11-01" in check.source and check.as_of == dt.date(2026, 11, 1)
    assert check.name_on_record == "LONE STAR RETAIL LLC" and check.checked_by == "tester"
    with db.reader() as s:
        events = [e.action for e in s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()]
        assert "permit_registry.imported" in events and events[-1] == "permit.checked"
        assert audit.verify_chain(s).ok


def test_not_found_and_no_registry(db, company_id, cert_id, tmp_path):
    service = PermitService(db)
    (none_yet,) = service.verify(cert_id, as_of=AS_OF)
    assert none_yet.result == "unavailable" and "mycpa.cpa.state.tx.us" in none_yet.message
    service.import_registry(write_texas_registry(tmp_path, [("17412345678", "OTHER CO", "01/15/2019")]), "TX",
                            data_date=dt.date(2026, 10, 1))
    (missing,) = service.verify(cert_id, as_of=AS_OF)
    assert missing.result == "not_found" and "2026-10-01" in missing.message
    # The validation picks up the latest real result.
    result = ValidationService(db).validate(cert_id, as_of=AS_OF)
    assert ("permit.not_found", "warning") in {(f.rule, f.severity) for f in result.findings}


def test_custom_map_with_status_and_dates(db, company_id, cert_id, tmp_path):
    path = tmp_path / "registry.csv"
    path.write_text("Permit No,Holder,State Status,Closed On,Ignored\n"
                    "320-1234-5678,Lone Star Retail LLC,Revoked,2026-06-30,x\n"
                    "11111111111,Open Co,Active,,y\n", encoding="utf-8")
    service = PermitService(db)
    snap = service.import_registry(path, "TX", data_date=dt.date(2026, 11, 1), column_map={
        "Permit No": "permit_number", "Holder": "legal_name", "State Status": "status", "Closed On": "end_date"})
    assert snap.layout == "custom" and snap.row_count == 2
    (check,) = service.verify(cert_id, as_of=AS_OF)
    assert check.result == "inactive" and "2026-06-30" in check.message
    result = ValidationService(db).validate(cert_id, as_of=AS_OF)
    assert [f.rule for f in result.errors if f.rule.startswith("permit.")] == ["permit.inactive"]


def test_bad_registry_rows_refuse_the_whole_file(db, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("num,status,issued\n123,active,2020-01-01\n,active,2020-01-01\n456,maybe,2020-13-45\n",
                    encoding="utf-8")
    service = PermitService(db)
    with pytest.raises(ValidationError) as err:
        service.import_registry(path, "TX", data_date=AS_OF,
                                column_map={"num": "permit_number", "status": "status", "issued": "issue_date"})
    problems = [(p.row, p.column) for p in err.value.problems]
    assert problems == [(3, "num"), (4, "status")]
    assert service.snapshots() == []
    with pytest.raises(ValidationError, match="built-in"):
        service.import_registry(path, "CA", data_date=AS_OF)
    with pytest.raises(ValidationError, match="Unknown registry field"):
        service.import_registry(path, "TX", data_date=AS_OF, column_map={"num": "number"})
    with pytest.raises(ValidationError, match="lacks required columns"):
        service.import_registry(path, "TX", data_date=AS_OF, column_map={"permit": "permit_number"})


def test_manual_check_with_evidence_stored_by_hash(db, cert_id, tmp_path):
    service = PermitService(db)
    link = service.lookup_link(cert_id)
    assert link.url == "https://mycpa.cpa.state.tx.us/staxpayersearch/" and link.number == "32012345678"
    evidence = write_image(tmp_path / "lookup.png", 40, 20)
    check = service.record_manual_check(cert_id, state=None, result="active", evidence=evidence,
                                        source_url=link.url, as_of=AS_OF, note="Comptroller search shows active")
    assert check.method == "manual" and check.result == "active" and check.source == link.url
    assert check.evidence_sha256 == sha256_of(evidence.read_bytes())
    with db.reader() as s:
        stored = s.get(DocumentFile, check.evidence_sha256)
        assert stored is not None and stored.media_type == "image/png"
        row = s.get(PermitCheck, check.id)
        assert row.evidence_document_id is not None and row.message == "Comptroller search shows active"
    assert service.latest_checks(cert_id)["TX"].id == check.id
    with pytest.raises(ValidationError, match="active, inactive or not_found"):
        service.record_manual_check(cert_id, state="TX", result="ok", evidence=evidence, source_url="x", as_of=AS_OF)
    with pytest.raises(ValidationError, match="does not cover NY"):
        service.record_manual_check(cert_id, state="NY", result="active", evidence=evidence, source_url="x",
                                    as_of=AS_OF)
    text = tmp_path / "note.txt"
    text.write_text("not evidence")
    with pytest.raises(DocumentError):
        service.record_manual_check(cert_id, state="TX", result="active", evidence=text, source_url="x",
                                    as_of=AS_OF)


def test_online_verifier_against_a_local_server(db, company_id, cert_id, registry_server):
    PermitRegistryHandler.answers = {"32012345678": {"status": "active", "name": "LONE STAR RETAIL LLC",
                                                     "as_of": "2026-11-19"}}
    service = PermitService(db)
    service.register_verifier("TX", HttpVerifier(registry_server, timeout=5, name="test registry"))
    (check,) = service.verify(cert_id, as_of=AS_OF)
    assert (check.method, check.result, check.as_of) == ("online", "active", dt.date(2026, 11, 19))
    assert check.name_on_record == "LONE STAR RETAIL LLC" and "test registry" in check.source
    PermitRegistryHandler.answers = {}
    (gone,) = service.verify(cert_id, as_of=AS_OF)
    assert gone.result == "not_found"
    # A failing service is recorded as unavailable, with the reason, not as a result.
    detail = CertificateService(db).get(cert_id, AS_OF)
    CertificateService(db).save(cert_id, dataclasses.replace(detail.data, purchaser_tax_id="500"),
                                expected_version=detail.version, as_of=AS_OF)
    (failed,) = service.verify(cert_id, as_of=AS_OF)
    assert failed.result == "unavailable" and "HTTP 500" in failed.message
    dead = PermitService(db)
    dead.register_verifier("TX", HttpVerifier("http://127.0.0.1:9/x?n={number}", timeout=2))
    (unreachable,) = dead.verify(cert_id, as_of=AS_OF)
    assert unreachable.result == "unavailable" and "could not be reached" in unreachable.message
    assert len(service.checks(cert_id)) == 4


def test_reverification_by_company_max_age(db, company_id, cert_id, tmp_path):
    service = PermitService(db)
    registry = write_texas_registry(tmp_path, [("32012345678", "LONE STAR RETAIL LLC", "01/15/2019")])
    service.import_registry(registry, "TX", data_date=dt.date(2026, 1, 1))
    assert service.stale_checks(AS_OF) == []
    assert [(x.certificate_id, x.state) for x in service.stale_checks(AS_OF, include_unchecked=True)] == [
        (cert_id, "TX")]
    service.verify(cert_id, as_of=AS_OF)  # speaks for the snapshot's date, 2026-01-01
    assert service.stale_checks(AS_OF) == []  # 323 days <= 365
    CompanyService(db).set_setting("permit_check_max_age_days", 90, company_id=company_id)
    (stale,) = service.stale_checks(AS_OF)
    assert (stale.state, stale.last_checked_on, stale.max_age_days) == ("TX", dt.date(2026, 1, 1), 90)
    registry = write_texas_registry(tmp_path, [("32012345678", "LONE STAR RETAIL LLC", "01/15/2019")])
    service.import_registry(registry, "TX", data_date=dt.date(2026, 11, 15))
    redone = service.reverify_stale(AS_OF)
    assert [(c.result, c.as_of) for c in redone] == [("active", dt.date(2026, 11, 15))]
    assert service.stale_checks(AS_OF) == []
