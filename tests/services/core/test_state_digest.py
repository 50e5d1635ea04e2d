"""Record digests: every change made through the program leaves the state it committed in the audit
trail, so that ``ecms check`` passes after any sequence of ordinary work and fails after a change
made outside it; bulk code can compute a certificate's digest from plain values."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, text

from ecms_desktop.models import Certificate, CoverageLine
from ecms_desktop.services.certificates.service import CertificateService, input_of
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core import audit, state_digest
from ecms_desktop.services.documents.storage import DocumentService, check_file
from ecms_desktop.services.integrity.check import check_database
from ecms_desktop.services.validation.service import ValidationService
from tests.factories import AS_OF, make_certificate, write_text_pdf


def problems(db: Any) -> list[str]:
    return [str(p) for p in check_database(db).problems]


def test_ordinary_work_at_the_desk_leaves_a_database_that_passes_the_check(db, company_id, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Create, edit (fields and lines), approve with acknowledged warnings, reject, archive, unarchive,
    validate, attach and rotate a document, change settings and a policy: each change is digested as
    committed, whatever order the service did things in."""
    service = CertificateService(db)
    first = make_certificate(db, company_id, customer="C-1", states=("TX",))
    second = make_certificate(db, company_id, customer="C-2", name="Lakes Supply", form="SST-F0003",
                              states=("OH", "MI"), approve=False)
    with db.reader() as s:
        cert = s.get(Certificate, second.id)
        data = input_of(cert)
    edited = dataclasses.replace(data, purchaser_name="Lakes Supply Company",
                                 lines=data.lines[:1], exempt_percent=Decimal("50"))
    detail = service.save(second.id, edited, expected_version=second.version, as_of=AS_OF)
    detail = service.reject(detail.id, "unsigned copy", expected_version=detail.version, as_of=AS_OF)
    one = service.get(first.id, AS_OF)
    one = service.archive(one.id, "customer closed", expected_version=one.version, as_of=AS_OF)
    service.unarchive(one.id, "reopened", expected_version=one.version, as_of=AS_OF)
    ValidationService(db).validate_many([first.id, second.id], as_of=AS_OF)
    path = write_text_pdf(tmp_path / "signed.pdf", "Signed resale certificate")
    document_id = service.attach_document(check_file(path), certificate_id=first.id,
                                          expected_version=service.get(first.id, AS_OF).version)
    DocumentService(db).set_rotation(document_id, 90)
    companies = CompanyService(db)
    companies.set_setting("expiring_soon_days", 45, None)
    companies.set_setting("expiring_soon_days", 20, company_id)
    companies.set_expiry_policy(company_id, "TX", "resale", "years", 2, "our own rule")
    assert problems(db) == []


def test_a_certificate_changed_outside_the_program_is_named(db, company_id) -> None:  # type: ignore[no-untyped-def]
    detail = make_certificate(db, company_id)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE coverage_line SET state_tax_id = '1' WHERE certificate_id = :id"), {"id": detail.id})
    assert any(f"certificate {detail.id}: differs" in p for p in problems(db))


def test_a_digest_from_plain_values_equals_the_one_recorded(db, company_id) -> None:  # type: ignore[no-untyped-def]
    """What bulk code computes from the values it inserts, before reading anything back."""
    detail = make_certificate(db, company_id, states=("TX",), exempt_percent=Decimal("50"))
    with db.engine.connect() as conn:
        row = dict(conn.execute(select(Certificate.__table__).where(Certificate.id == detail.id)).mappings().one())
        lines = [dict(r) for r in conn.execute(select(CoverageLine.__table__)
                                               .where(CoverageLine.certificate_id == detail.id)).mappings()]
        recorded = state_digest.latest_digests(conn, "certificate", [str(detail.id)])[str(detail.id)][1]
    # Plain values as bulk code holds them: a Decimal with another scale, naive UTC timestamps, tuples.
    row["exempt_percent"] = Decimal("50")
    row["created_at"] = row["created_at"].astimezone(dt.UTC).replace(tzinfo=None)
    plain_lines = [{k: v for k, v in line.items() if k not in ("id", "certificate_id")} for line in lines]
    assert state_digest.certificate_digest(row, plain_lines) == recorded
    plain_lines[0]["state_tax_id"] = "other"
    assert state_digest.certificate_digest(row, plain_lines) != recorded


def test_bulk_inserted_certificates_are_handed_over_with_touch(db, company_id) -> None:  # type: ignore[no-untyped-def]
    template = make_certificate(db, company_id)
    with db.reader() as s:
        source = s.execute(select(Certificate.__table__).where(Certificate.id == template.id)).mappings().one()
    columns = {k: v for k, v in source.items() if k != "id"}
    with db.transaction() as s:
        new_id = s.execute(insert(Certificate.__table__).returning(Certificate.__table__.c.id),
                           [{**columns, "certificate_number": "BULK-1"}]).scalar_one()
        state_digest.touch(s, "certificate", [new_id])
        audit.record(s, "import.certificates", "import", "bulk.csv", company_id=company_id)
    assert problems(db) == []
    with db.transaction() as s:  # the same without telling: the check names it
        other = s.execute(insert(Certificate.__table__).returning(Certificate.__table__.c.id),
                          [{**columns, "certificate_number": "BULK-2"}]).scalar_one()
        audit.record(s, "import.certificates", "import", "bulk2.csv", company_id=company_id)
    assert any(f"certificate {other}: is not in the audit trail" in p for p in problems(db))


def test_a_change_of_records_without_an_audit_event_gets_one(db, company_id) -> None:  # type: ignore[no-untyped-def]
    detail = make_certificate(db, company_id)
    with db.transaction() as s:
        s.get(Certificate, detail.id).notes = "written by code that forgot its audit event"  # type: ignore[union-attr]
    with db.reader() as s:
        last = audit.list_events(s)[-1]
    assert last.action == "records.changed" and last.details == {"certificate": 1}
    assert problems(db) == []


def test_an_event_carries_the_digests_of_what_its_unit_of_work_committed(db, company_id) -> None:  # type: ignore[no-untyped-def]
    """The digest is of the state at commit, not at the moment the event was recorded."""
    detail = make_certificate(db, company_id, approve=False)
    with db.transaction() as s:
        cert = s.get(Certificate, detail.id)
        assert cert is not None
        audit.record(s, "certificate.note_added", "certificate", cert.id, certificate_id=cert.id)
        cert.notes = "changed after the event was recorded"
    with db.engine.connect() as conn:
        now = state_digest.CERTIFICATE.read(conn, [str(detail.id)])[str(detail.id)]
        seq, recorded = state_digest.latest_digests(conn, "certificate", [str(detail.id)])[str(detail.id)]
    with db.reader() as s:
        assert audit.list_events(s)[-1].seq == seq
        assert audit.verify_chain(s).ok
    assert recorded == now
