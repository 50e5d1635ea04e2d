"""The intake inbox (no Qt): documents that arrive without a certificate wait there, and are assigned to a
customer (a new pending certificate or an existing one), discarded with a reason, or split into page
ranges; every step audited, the audit chain and the record digests intact, two desks never both win."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select

from ecms_desktop.models import AuditEvent, Certificate, Customer, Document
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.core.database import Database, _alembic_config
from ecms_desktop.services.core.database_setup import initialize_database
from ecms_desktop.services.core.errors import ConflictError, NotFoundError, ValidationError
from ecms_desktop.services.core.state_digest import KINDS, RecordKind
from ecms_desktop.services.intake.inbox import InboxService
from ecms_desktop.services.intake.service import IntakeService
from ecms_desktop.services.integrity.check import check_database
from ecms_desktop.services.renewals.returned_forms import ReturnedFormsService
from tests.factories import make_certificate, make_customer, paged_pdf, write_text_pdf

AS_OF = dt.date(2026, 5, 1)
PAPER = {"states": ["TX"], "form_code": "TX-01-339", "exempt_reason": "resale", "certificate_type": "blanket"}


def arrive(db, company_id: int, path: Path, pages: int = 1, text: str = "Scanned certificate") -> int:  # type: ignore[no-untyped-def]
    """A file that comes through ``ecms intake`` / the watched folder and matches no request: its document id."""
    path.write_bytes(paged_pdf(text, pages=pages))
    [item] = ReturnedFormsService(db).intake([path], company_id, as_of=AS_OF)
    assert item.outcome == "inbox", item.message
    assert item.document_id is not None
    return item.document_id


def actions(db) -> list[str]:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        return [e.action for e in s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()]


def assert_intact(db) -> None:  # type: ignore[no-untyped-def]
    report = check_database(db)
    assert report.ok, report.problems


def test_an_unmatched_arrival_waits_in_the_inbox_and_a_second_arrival_says_where(db, company_id, tmp_path) -> None:
    doc_id = arrive(db, company_id, tmp_path / "scan.pdf", pages=3)
    inbox = InboxService(db)
    [item] = inbox.list(company_id)
    assert (item.id, item.company_id, item.name, item.media_type) == (doc_id, company_id, "scan.pdf", "application/pdf")
    assert (item.pages, item.file_pages, item.page_range, item.first_page) == (3, 3, "", None)
    assert item.received_via == "renewal_return" and item.received_by and item.size > 0
    assert inbox.list() == [item] and inbox.list(company_id + 99) == []
    assert inbox.get(doc_id) == item
    assert item.to_json()["received_at"].startswith(str(item.received_at.year))
    [again] = ReturnedFormsService(db).intake([tmp_path / "scan.pdf"], company_id, as_of=AS_OF)
    assert again.outcome == "duplicate" and "intake inbox" in again.message and again.document_id == doc_id
    assert len(inbox.list()) == 1
    assert_intact(db)


def test_assign_to_a_new_customer_makes_a_pending_certificate_without_placeholders(db, company_id, tmp_path) -> None:
    doc_id = arrive(db, company_id, tmp_path / "scan.pdf")
    done = InboxService(db).assign(doc_id, customer="C-77", create_customer_name="Seventy Seven LLC", as_of=AS_OF,
                                   **PAPER)
    assert done.created_certificate and done.created_customer and done.customer_number == "C-77"
    assert f"pending certificate {done.certificate_id}" in done.message
    detail = CertificateService(db).get(done.certificate_id, AS_OF)
    assert detail.review_state == "pending" and detail.origin == "intake"
    assert detail.customer_number == "C-77" and detail.customer_name == "Seventy Seven LLC"
    assert (detail.data.states, detail.data.form_code, detail.data.exempt_reason,
            detail.data.certificate_type) == (("TX",), "TX-01-339", "resale", "blanket")
    # nothing that the paper was not said to show is filled in
    assert (detail.data.purchaser_name, detail.data.purchaser_tax_id, detail.data.signer_name,
            detail.data.signed_date, detail.data.signed) == ("", "", "", None, False)
    assert [d.id for d in detail.documents] == [doc_id]
    assert InboxService(db).list() == []
    assert actions(db)[-4:] == ["customer.created", "certificate.created", "validation.run", "document.assigned"] or \
        {"customer.created", "certificate.created", "document.assigned"} <= set(actions(db))
    with db.reader() as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "document.assigned")).scalar_one()
        assert event.certificate_id == done.certificate_id and event.company_id == company_id
        assert event.after["customer_number"] == "C-77" and event.details["new_certificate"] is True
    assert_intact(db)


def test_a_new_certificate_refuses_a_wrong_form_or_customer(db, company_id, tmp_path) -> None:
    doc_id = arrive(db, company_id, tmp_path / "scan.pdf")
    make_customer(db, company_id, "C-1", "Lone Star Retail LLC")
    with pytest.raises(ValidationError, match="form"):
        InboxService(db).assign(doc_id, customer="C-1", **{**PAPER, "form_code": "NO-SUCH-FORM"})
    with pytest.raises(NotFoundError, match="no customer with number or name 'C-404'"):
        InboxService(db).assign(doc_id, customer="C-404", **PAPER)
    with pytest.raises(ValidationError, match="customer's number or name"):
        InboxService(db).assign(doc_id, customer="  ", **PAPER)
    # found by its name too
    done = InboxService(db).assign(doc_id, customer="lone star retail llc", **PAPER)
    assert done.customer_number == "C-1" and not done.created_customer
    with db.reader() as s:
        assert s.get(Customer, done.customer_id).legal_name == "Lone Star Retail LLC"  # type: ignore[union-attr]


def test_attach_to_an_existing_certificate_of_the_customer(db, company_id, tmp_path) -> None:
    cert = make_certificate(db, company_id, customer="C-1", name="Buyer Inc")
    other = make_certificate(db, company_id, customer="C-2", name="Other Inc")
    doc_id = arrive(db, company_id, tmp_path / "scan.pdf")
    inbox = InboxService(db)
    with pytest.raises(ValidationError, match=f"Certificate {other.id} is customer C-2"):
        inbox.assign(doc_id, customer="C-1", certificate_id=other.id)
    with pytest.raises(NotFoundError, match="no certificate 999"):
        inbox.assign(doc_id, customer="C-1", certificate_id=999)
    with pytest.raises(ConflictError, match="changed by someone else"):
        inbox.assign(doc_id, customer="C-1", certificate_id=cert.id, expected_version=cert.version - 1)
    done = inbox.assign(doc_id, customer="C-1", certificate_id=cert.id, expected_version=cert.version)
    assert not done.created_certificate and done.certificate_id == cert.id
    detail = CertificateService(db).get(cert.id, AS_OF)
    assert detail.version == cert.version + 1  # attaching a document changes the certificate
    assert doc_id in [d.id for d in detail.documents]
    with pytest.raises(ConflictError, match=f"already attached to certificate {cert.id} by .* on "):
        inbox.assign(doc_id, customer="C-1", certificate_id=cert.id)
    with pytest.raises(ConflictError, match="already attached"):
        inbox.discard(doc_id, "wrong")
    assert_intact(db)


def test_discard_needs_a_reason_and_is_final(db, company_id, tmp_path) -> None:
    doc_id = arrive(db, company_id, tmp_path / "junk.pdf")
    inbox = InboxService(db)
    with pytest.raises(ValidationError, match=f"Say why document {doc_id} is discarded"):
        inbox.discard(doc_id, "  ")
    with pytest.raises(ValidationError, match="NUL"):
        inbox.discard(doc_id, "bad\x00reason")
    item = inbox.discard(doc_id, "a fax cover sheet, not a certificate")
    assert item.id == doc_id and inbox.list() == []
    with db.reader() as s:
        doc = s.get(Document, doc_id)
        assert doc is not None and doc.discard_reason == "a fax cover sheet, not a certificate"
        assert doc.discarded_by and doc.discarded_at is not None
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "document.discarded")).scalar_one()
        assert event.entity_id == str(doc_id) and event.after["discard_reason"] == doc.discard_reason
    with pytest.raises(ConflictError, match=r"was discarded by .* \(a fax cover sheet"):
        inbox.discard(doc_id, "again")
    with pytest.raises(ConflictError, match="discarded"):
        inbox.assign(doc_id, customer="C-1", **PAPER)
    with pytest.raises(NotFoundError, match="no document 9999"):
        inbox.discard(9999, "gone")
    assert_intact(db)


def test_split_makes_one_inbox_document_per_page_range_of_the_same_file(db, company_id, tmp_path) -> None:
    doc_id = arrive(db, company_id, tmp_path / "batch.pdf", pages=5)
    inbox = InboxService(db)
    for ranges, message in (([(1, 2), (2, 3)], "pages 1-2 and pages 2-3 overlap"),
                            ([(1, 2), (4, 6)], "pages 4-6 is outside the document .pages 1-5"),
                            ([(3, 2)], "3-2 is not a page range"),
                            ([(1, 5)], "is the whole document"),
                            ([], "Give the page ranges")):
        with pytest.raises(ValidationError, match=message):
            inbox.split(doc_id, ranges)
    parts = inbox.split(doc_id, [(3, 5), (1, 2)])
    assert [(p.first_page, p.last_page, p.pages, p.page_range) for p in parts] == [(1, 2, 2, "1-2"), (3, 5, 3, "3-5")]
    assert [p.name for p in parts] == ["batch (pages 1-2).pdf", "batch (pages 3-5).pdf"]
    assert {p.sha256 for p in parts} == {inbox.list()[0].sha256} and {p.split_from_id for p in parts} == {doc_id}
    assert {p.file_pages for p in parts} == {5}
    assert [i.id for i in inbox.list(company_id)] == [p.id for p in parts]  # the split document left the inbox
    with pytest.raises(ConflictError, match=f"was split into documents {parts[0].id}, {parts[1].id}"):
        inbox.split(doc_id, [(1, 1), (2, 2)])
    # a view can be split again, within its own pages
    with pytest.raises(ValidationError, match=r"page 4 is outside the document \(pages 1-2"):
        inbox.split(parts[0].id, [(1, 1), (4, 4)])
    singles = inbox.split(parts[0].id, [(1, 1), (2, 2)])
    assert [(p.name, p.pages) for p in singles] == [("batch (pages 1-2) (page 1).pdf", 1),
                                                   ("batch (pages 1-2) (page 2).pdf", 1)]
    with pytest.raises(ValidationError, match="has one page"):
        inbox.split(singles[0].id, [(1, 1)])
    done = inbox.assign(parts[1].id, customer="C-5", create_customer_name="Five Co", **PAPER)
    with db.reader() as s:
        cert = s.get(Certificate, done.certificate_id)
        assert cert is not None and [(d.first_page, d.last_page) for d in cert.documents] == [(3, 5)]
    with db.reader() as s:
        event = s.execute(select(AuditEvent).where(AuditEvent.action == "document.split",
                                                   AuditEvent.entity_id == str(doc_id))).scalar_one()
        assert [d["id"] for d in event.after["documents"]] == [p.id for p in parts]
    assert_intact(db)


def test_documents_that_are_not_intake_documents_are_not_in_the_inbox(db, company_id, tmp_path) -> None:
    cert = make_certificate(db, company_id)
    dropped = IntakeService(db).attach_files([write_text_pdf(tmp_path / "desk.pdf", "desk")], company_id, cert.id,
                                             expected_version=cert.version)
    [item] = dropped.items
    assert InboxService(db).list() == []
    with pytest.raises(ConflictError, match="already attached to certificate"):
        InboxService(db).discard(item.document_id, "no")  # type: ignore[arg-type]


@pytest.mark.parametrize("second", ["assign", "discard", "split"])
def test_two_desks_at_once_one_wins_the_other_is_told(db, db_url, company_id, tmp_path, second) -> None:
    doc_id = arrive(db, company_id, tmp_path / "scan.pdf", pages=2)
    make_customer(db, company_id, "C-1", "Lone Star Retail LLC")
    desks = [Database(db_url), Database(db_url)]
    for desk in desks:
        desk.ensure_ready()
    start = threading.Barrier(2)
    results: list[object] = [None, None]

    def act(n: int, what: str) -> None:
        inbox = InboxService(desks[n])
        start.wait()
        try:
            if what == "assign":
                results[n] = inbox.assign(doc_id, customer="C-1", **PAPER)
            elif what == "discard":
                results[n] = inbox.discard(doc_id, f"desk {n}")
            else:
                results[n] = inbox.split(doc_id, [(1, 1), (2, 2)])
        except ConflictError as exc:
            results[n] = exc

    threads = [threading.Thread(target=act, args=(0, "assign")), threading.Thread(target=act, args=(1, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for desk in desks:
        desk.dispose()
    conflicts = [r for r in results if isinstance(r, ConflictError)]
    assert len(conflicts) == 1, results
    assert "is not in the inbox" in str(conflicts[0]) or "no longer in the inbox" in str(conflicts[0])
    with db.reader() as s:
        doc = s.get(Document, doc_id)
        assert doc is not None
        done = [doc.certificate_id is not None, doc.discarded_at is not None,
                bool(s.execute(select(Document.id).where(Document.split_from_id == doc_id)).first())]
        assert sum(done) == 1
        assert len(s.execute(select(Certificate)).scalars().all()) == (1 if doc.certificate_id else 0)
    assert_intact(db)


def test_new_document_columns_left_empty_keep_the_digests_made_before_them() -> None:
    kind = KINDS["document"]
    assert isinstance(kind, RecordKind)
    row = {c.name: None for c in kind.table.columns}
    row.update({"id": 1, "sha256": "a" * 64, "original_name": "x.pdf", "received_via": "upload",
                "received_by": "me", "view_rotation": 0, "received_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)})
    old_table = RecordKind("document", kind.table)
    without_new = {k: v for k, v in row.items() if k not in kind.added_later}
    # the form before 0008 had exactly the other columns
    assert kind.digest(row) != old_table.digest(row)
    from ecms_desktop.services.core import state_digest

    expected = state_digest._sha({"document": {k: state_digest._canon_of(kind.table.c[k].type)(v)
                                               for k, v in without_new.items()}})
    assert kind.digest(row) == expected
    assert kind.digest({**row, "company_id": 3}) != expected


def test_upgrade_from_0007_puts_unmatched_documents_in_the_inbox_and_keeps_the_digests(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'up.sqlite'}"
    db = Database(url)
    initialize_database(db)
    from tests.factories import make_company

    company_id = make_company(db)
    doc_id = arrive(db, company_id, tmp_path / "scan.pdf")
    cert = make_certificate(db, company_id)
    IntakeService(db).attach_files([write_text_pdf(tmp_path / "desk.pdf", "desk")], company_id, cert.id,
                                   expected_version=cert.version)
    assert_intact(db)
    with db.engine.connect() as conn:
        command.downgrade(_alembic_config(conn), "0007")
        conn.commit()
    db.dispose()
    db = Database(url)
    assert initialize_database(db).action == "upgraded"
    assert [i.id for i in InboxService(db).list(company_id)] == [doc_id]
    assert_intact(db)
    db.dispose()


def test_a_file_attached_at_the_desk_keeps_the_check_intact(db, company_id, tmp_path) -> None:
    """Attaching raises the certificate's version; the certificate is digested again with it."""
    cert = make_certificate(db, company_id, customer="C-1", name="Buyer Inc")
    IntakeService(db).attach_files([write_text_pdf(tmp_path / "page2.pdf", "page two")], company_id, cert.id,
                                   expected_version=cert.version)
    assert CertificateService(db).get(cert.id, AS_OF).version == cert.version + 1
    assert_intact(db)


def test_each_part_of_a_split_is_read_from_its_own_pages(db, company_id, tmp_path) -> None:
    import pymupdf

    doc = pymupdf.open()
    for who in ("Alpha Supply LLC", "Alpha Supply LLC", "Beta Foods Inc", "Beta Foods Inc"):
        page = doc.new_page(width=612, height=792)
        page.insert_text((72, 72), "Texas Sales and Use Tax Resale Certificate", fontsize=14)
        for n, line in enumerate(("Name of purchaser, firm or agency", who, "Address (Street & number)",
                                  "1200 Main Street, Austin, TX 78701")):
            page.insert_text((72, 110 + 22 * n), line, fontsize=10)
    path = tmp_path / "two-certificates.pdf"
    path.write_bytes(doc.tobytes())
    [item] = ReturnedFormsService(db).intake([path], company_id, as_of=AS_OF)
    assert item.document_id is not None
    parts = InboxService(db).split(item.document_id, [(1, 2), (3, 4)])
    readings = [p.extraction for p in parts]
    assert all(r is not None and r["method"] == "text_layer" for r in readings)
    names = [r["fields"]["purchaser_name"] for r in readings]  # type: ignore[index]
    assert [n["value"] for n in names] == ["Alpha Supply LLC", "Beta Foods Inc"]
    assert names[0]["page"] in (1, 2) and names[1]["page"] in (3, 4)  # the file's page numbers
    assert [i.extraction for i in InboxService(db).list(company_id)] == readings
