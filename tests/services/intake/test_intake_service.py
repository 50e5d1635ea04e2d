"""Files received at the desk (no Qt): without a chosen certificate each is read, stored once by hash and
waits in the company's intake inbox (no placeholder certificate, no placeholder customer); files attached to
the selected certificate are read and stored with it; duplicates say where the first copy is."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ecms_desktop.models import AuditEvent, Certificate, Customer, Document, DocumentFile
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core.errors import Cancelled, NotFoundError, ValidationError
from ecms_desktop.services.intake.inbox import InboxService
from ecms_desktop.services.intake.service import IntakeOutcome, IntakeService
from ecms_desktop.services.renewals.returned_forms import ReturnedFormsService
from tests.factories import make_certificate, write_text_pdf

AS_OF = dt.date(2026, 5, 1)


def count(db, model) -> int:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


def arrive_at_desk(db, company_id: int, paths: list[Path]) -> list:  # type: ignore[no-untyped-def]
    """What a drop on the certificate list or File > Import documents does (views/operations/intake)."""
    return ReturnedFormsService(db).intake(paths, company_id, as_of=AS_OF, received_via="upload")


def test_files_without_a_certificate_wait_in_the_inbox_with_their_reading(db, company_id, tmp_path: Path) -> None:
    a = write_text_pdf(tmp_path / "acme-resale.pdf", "Texas Sales and Use Tax Resale Certificate", paper="letter",
                       font_size=14)
    b = write_text_pdf(tmp_path / "bolt-exempt.pdf", "Certificate B", paper="letter", font_size=14)
    items = arrive_at_desk(db, company_id, [a, b])
    assert [i.outcome for i in items] == ["inbox", "inbox"], [i.message for i in items]
    assert all(i.certificate_id is None and "intake inbox" in i.message for i in items)
    assert count(db, Certificate) == 0 and count(db, Customer) == 0  # no placeholder of any kind
    listed = InboxService(db).list(company_id)
    assert [i.id for i in listed] == [i.document_id for i in items]
    assert [i.received_via for i in listed] == ["upload", "upload"]
    for item in listed:
        assert item.extraction is not None and item.extraction["method"] in ("text_layer", "ocr", "none")
        assert item.extraction == next(i.extraction for i in items if i.document_id == item.id)
    with db.reader() as s:
        actions = [e.action for e in s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()]
        docs = s.execute(select(Document)).unique().scalars().all()
        assert {d.company_id for d in docs} == {company_id} and {d.certificate_id for d in docs} == {None}
    assert actions.count("document.received") == 2
    assert "certificate.created" not in actions and "customer.created" not in actions


def test_a_company_without_a_home_state_receives_files_too(db, tmp_path: Path) -> None:
    """The placeholder certificate needed the company's home state; the inbox needs nothing."""
    company = CompanyService(db).create("No Address Inc")
    [item] = arrive_at_desk(db, company.id, [write_text_pdf(tmp_path / "x.pdf", "x", paper="letter", font_size=14)])
    assert item.outcome == "inbox"
    assert [i.id for i in InboxService(db).list(company.id)] == [item.document_id]


def test_a_duplicate_says_it_waits_in_the_inbox_or_where_it_went(db, company_id, tmp_path: Path) -> None:
    pdf = write_text_pdf(tmp_path / "scan.pdf", "Certificate", paper="letter", font_size=14)
    [first] = arrive_at_desk(db, company_id, [pdf])
    copy = tmp_path / "same-content.pdf"
    copy.write_bytes(pdf.read_bytes())
    [again] = arrive_at_desk(db, company_id, [copy])
    assert again.outcome == "duplicate" and again.document_id == first.document_id
    assert f"already received as document {first.document_id}, waiting in the intake inbox" in again.message
    assert "same-content.pdf" in again.message
    assert again.extraction == first.extraction
    # Dropped on the selected certificate: it is not stored again, and the message says where it is.
    cert = make_certificate(db, company_id)
    result = IntakeService(db).attach_files([copy], company_id, cert.id, expected_version=cert.version)
    [dup] = result.items
    assert dup.outcome is IntakeOutcome.DUPLICATE and "waiting in the intake inbox" in dup.message
    assert count(db, Document) == 1
    # Once assigned, the message says which certificate it went to.
    done = InboxService(db).assign(first.document_id, customer="C-1", certificate_id=cert.id)  # type: ignore[arg-type]
    [later] = arrive_at_desk(db, company_id, [copy])
    assert f"with certificate {done.certificate_id}" in later.message


def test_attach_to_the_selected_certificate_stores_the_reading(db, company_id, tmp_path: Path) -> None:
    cert = make_certificate(db, company_id)
    before = count(db, Certificate)
    p1 = write_text_pdf(tmp_path / "p1.pdf", "page one", paper="letter", font_size=14)
    p2 = write_text_pdf(tmp_path / "p2.pdf", "page two", paper="letter", font_size=14)
    seen: list[tuple[int, int, str]] = []
    result = IntakeService(db).attach_files([p1, p2], company_id, cert.id, expected_version=cert.version,
                                            received_via="scan", progress=lambda d, t, m: seen.append((d, t, m)))
    assert [i.outcome for i in result.items] == [IntakeOutcome.STORED, IntakeOutcome.STORED]
    assert {i.certificate_id for i in result.items} == {cert.id}
    assert seen[-1][:2] == (2, 2)
    assert count(db, Certificate) == before
    detail = CertificateService(db).get(cert.id, AS_OF)
    assert [d.original_name for d in detail.documents] == ["p1.pdf", "p2.pdf"]
    assert detail.version == cert.version + 2
    assert {d.received_via for d in detail.documents} == {"scan"}
    assert all(d.extraction is not None and d.extraction["method"] == "text_layer" for d in detail.documents)
    assert InboxService(db).list(company_id) == []


def test_duplicate_and_refused_files_store_nothing(db, company_id, tmp_path: Path) -> None:
    cert = make_certificate(db, company_id)
    good = write_text_pdf(tmp_path / "good.pdf", "Certificate", paper="letter", font_size=14)
    copy = tmp_path / "same-content.pdf"
    copy.write_bytes(good.read_bytes())
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"this is not a pdf at all" * 10)
    result = IntakeService(db).attach_files([good, copy, empty, junk, tmp_path / "missing.pdf"], company_id, cert.id,
                                            expected_version=cert.version)
    outcomes = [i.outcome for i in result.items]
    assert outcomes == [IntakeOutcome.STORED, IntakeOutcome.DUPLICATE, IntakeOutcome.REFUSED,
                        IntakeOutcome.REFUSED, IntakeOutcome.REFUSED]
    dup = result.items[1]
    assert dup.document_id == result.items[0].document_id
    assert f"document {dup.document_id} with certificate {cert.id}" in dup.message
    assert "empty" in result.items[2].message and "empty.pdf" in result.items[2].message
    assert "junk.pdf" in result.items[3].message
    assert "not found" in result.items[4].message
    assert count(db, Document) == 1
    assert count(db, DocumentFile) == 1
    assert result.summary() == "1 stored, 1 duplicate, 3 refused"
    # The same at the desk without a certificate: refused files are not stored either.
    items = arrive_at_desk(db, company_id, [empty, junk])
    assert [i.outcome for i in items] == ["refused", "refused"]
    assert count(db, Document) == 1


def test_cancel_keeps_files_already_stored(db, company_id, tmp_path: Path) -> None:
    cert = make_certificate(db, company_id)
    files = [write_text_pdf(tmp_path / f"f{i}.pdf", f"Certificate {i}", paper="letter", font_size=14) for i in range(3)]
    calls = {"n": 0}

    def cancel() -> bool:
        calls["n"] += 1
        return calls["n"] > 1  # let the first file through, then stop

    with pytest.raises(Cancelled, match="1 stored"):
        IntakeService(db).attach_files(files, company_id, cert.id, expected_version=cert.version, cancel=cancel)
    assert count(db, Document) == 1
    calls["n"] = 0
    with pytest.raises(Cancelled):
        ReturnedFormsService(db).intake(files[1:], company_id, received_via="upload", cancel=cancel)
    assert count(db, Document) == 2


def test_attach_to_unknown_or_foreign_certificate(db, company_id, tmp_path: Path) -> None:
    pdf = write_text_pdf(tmp_path / "x.pdf", "x", paper="letter", font_size=14)
    with pytest.raises(NotFoundError, match="certificate 999"):
        IntakeService(db).attach_files([pdf], company_id, 999, expected_version=1)
    other = CompanyService(db).create("Other Co", state="CA")
    cert = make_certificate(db, other.id, form="CA-CDTFA-230", states=("CA",))
    with pytest.raises(ValidationError, match="another company"):
        IntakeService(db).attach_files([pdf], company_id, cert.id, expected_version=cert.version)
    assert count(db, Document) == 0
