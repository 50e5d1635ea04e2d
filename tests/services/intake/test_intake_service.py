"""Intake of dropped / imported certificate files (no Qt)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ecms_desktop.models import AuditEvent, Certificate, Company, Customer, Document, DocumentFile
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core.errors import Cancelled, NotFoundError, ValidationError
from ecms_desktop.services.intake.service import (
    INTAKE_CUSTOMER_NAME,
    IntakeOutcome,
    IntakeService,
)
from tests.factories import write_text_pdf

AS_OF = dt.date(2026, 5, 1)


def count(db, model) -> int:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


def test_each_new_file_becomes_a_pending_certificate(db, company_id, tmp_path: Path) -> None:
    a = write_text_pdf(tmp_path / "acme-resale.pdf", "Certificate A", paper="letter", font_size=14)
    b = write_text_pdf(tmp_path / "bolt-exempt.pdf", "Certificate B", paper="letter", font_size=14)
    seen: list[tuple[int, int, str]] = []
    result = IntakeService(db).receive_files([a, b], company_id,
                                             progress=lambda d, t, m: seen.append((d, t, m)))
    assert [i.outcome for i in result.items] == [IntakeOutcome.STORED, IntakeOutcome.STORED]
    assert len(set(result.certificate_ids)) == 2
    assert seen[-1][:2] == (2, 2)
    svc = CertificateService(db)
    for item in result.items:
        detail = svc.get(item.certificate_id, AS_OF)  # type: ignore[arg-type]
        assert detail.review_state == "pending"
        assert detail.origin == "intake"
        assert detail.customer_name == INTAKE_CUSTOMER_NAME
        assert detail.data.states == ("TX",)  # the company's home state
        assert detail.data.form_code == "TX-01-339"  # the state's own form
        assert [d.original_name for d in detail.documents] == [item.name]
        assert detail.documents[0].received_via == "upload"
    with db.reader() as s:
        # one placeholder customer, however many files
        assert s.execute(select(func.count()).select_from(Customer).where(
            Customer.legal_name == INTAKE_CUSTOMER_NAME)).scalar_one() == 1
        actions = [e.action for e in s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()]
    assert actions.count("document.received") == 2
    assert actions.count("certificate.created") == 2


def test_attach_to_selected_certificate(db, company_id, tmp_path: Path) -> None:
    p1 = write_text_pdf(tmp_path / "p1.pdf", "page one", paper="letter", font_size=14)
    first = IntakeService(db).receive_files([p1], company_id)
    cert_id = first.certificate_ids[0]
    before = count(db, Certificate)
    p2 = write_text_pdf(tmp_path / "p2.pdf", "page two", paper="letter", font_size=14)
    result = IntakeService(db).receive_files([p2], company_id, attach_to=cert_id, expected_version=1,
                                             received_via="scan")
    assert result.items[0].outcome is IntakeOutcome.STORED
    assert result.items[0].certificate_id == cert_id
    assert count(db, Certificate) == before
    detail = CertificateService(db).get(cert_id, AS_OF)
    assert [d.original_name for d in detail.documents] == ["p1.pdf", "p2.pdf"]
    assert detail.documents[1].received_via == "scan"


def test_duplicate_and_refused_files_store_nothing(db, company_id, tmp_path: Path) -> None:
    good = write_text_pdf(tmp_path / "good.pdf", "Certificate", paper="letter", font_size=14)
    copy = tmp_path / "same-content.pdf"
    copy.write_bytes(good.read_bytes())
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"this is not a pdf at all" * 10)
    result = IntakeService(db).receive_files([good, copy, empty, junk, tmp_path / "missing.pdf"], company_id)
    outcomes = [i.outcome for i in result.items]
    assert outcomes == [IntakeOutcome.STORED, IntakeOutcome.DUPLICATE, IntakeOutcome.REFUSED,
                        IntakeOutcome.REFUSED, IntakeOutcome.REFUSED]
    dup = result.items[1]
    assert dup.document_id == result.items[0].document_id
    assert f"document {dup.document_id}" in dup.message
    assert "empty" in result.items[2].message and "empty.pdf" in result.items[2].message
    assert "junk.pdf" in result.items[3].message
    assert "not found" in result.items[4].message
    assert count(db, Document) == 1
    assert count(db, DocumentFile) == 1
    assert count(db, Certificate) == 1
    assert result.summary() == "1 stored, 1 duplicate, 3 refused"


def test_cancel_keeps_files_already_stored(db, company_id, tmp_path: Path) -> None:
    files = [write_text_pdf(tmp_path / f"f{i}.pdf", f"Certificate {i}", paper="letter", font_size=14) for i in range(3)]
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 1  # let the first file through, then stop

    with pytest.raises(Cancelled, match="1 stored"):
        IntakeService(db).receive_files(files, company_id, cancel=cancel)
    assert count(db, Document) == 1
    assert count(db, Certificate) == 1


def test_company_without_home_state_is_told_what_to_do(db, tmp_path: Path) -> None:
    company = CompanyService(db).create("No Address Inc")
    with pytest.raises(ValidationError, match="home state"):
        IntakeService(db).receive_files([write_text_pdf(tmp_path / "x.pdf", "x", paper="letter", font_size=14)],
                                        company.id)
    assert count(db, Document) == 0


def test_attach_to_unknown_or_foreign_certificate(db, company_id, tmp_path: Path) -> None:
    pdf = write_text_pdf(tmp_path / "x.pdf", "x", paper="letter", font_size=14)
    with pytest.raises(NotFoundError, match="certificate 999"):
        IntakeService(db).receive_files([pdf], company_id, attach_to=999, expected_version=1)
    other = CompanyService(db).create("Other Co", state="CA")
    cert = IntakeService(db).receive_files([pdf], other.id).certificate_ids[0]
    with db.reader() as s:
        assert s.get(Company, other.id).state == "CA"  # type: ignore[union-attr]
    assert CertificateService(db).get(cert, AS_OF).data.form_code == "CA-CDTFA-230"
    with pytest.raises(ValidationError, match="another company"):
        IntakeService(db).receive_files([write_text_pdf(tmp_path / "y.pdf", "y", paper="letter", font_size=14)],
                                        company_id, attach_to=cert, expected_version=1)
