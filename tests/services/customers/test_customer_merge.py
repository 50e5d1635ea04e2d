"""Merging two customers that are the same business: certificates, requests, sales and child accounts move,
one audit event says what moved, ``ecms check`` still passes, and the old number keeps meaning the
surviving customer for lookups, intake, certificate imports and sales imports."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from alembic import command
from sqlalchemy import func, select, text

from ecms_desktop.models import AuditEvent, Certificate, Customer, CustomerNumberAlias
from ecms_desktop.models.renewal import RenewalRequest
from ecms_desktop.models.transactions import TransactionLine
from ecms_desktop.services.certificates.import_service import CertificateImporter
from ecms_desktop.services.certificates.query import CertificateQuery, CertificateQueryService
from ecms_desktop.services.core.database import Database, _alembic_config
from ecms_desktop.services.core.database_setup import initialize_database
from ecms_desktop.services.core.errors import NotFoundError, ValidationError
from ecms_desktop.services.customers.editing import CustomerEditService
from ecms_desktop.services.customers.merge import CustomerMergeService
from ecms_desktop.services.customers.service import CustomerService, find_customer
from ecms_desktop.services.intake.inbox import InboxService
from ecms_desktop.services.integrity.check import check_database
from ecms_desktop.services.renewals.returned_forms import ReturnedFormsService
from ecms_desktop.services.sales.determination_service import DeterminationService
from ecms_desktop.services.sales.exemption_feed import customer_status
from tests.factories import (
    DAY0,
    GOOD_IMPORT_ROW,
    import_sales,
    make_company,
    make_customer,
    make_expiring_certificate,
    make_signed_certificate,
    paged_pdf,
    write_import_csv,
)

AS_OF = dt.date(2026, 5, 1)


def _two(db, company_id):  # type: ignore[no-untyped-def]
    """C-1 (kept) with a certificate; C-1B (the same business entered again) with a certificate, an open
    renewal request, sales and a child account."""
    make_signed_certificate(db, company_id, "C-1", as_of=AS_OF, review="approved", customer_name="Lone Star Retail LLC")
    make_signed_certificate(db, company_id, "C-1B", as_of=AS_OF, states=("OK",), form="SST-F0003", review="approved",
                            customer_name="Lone Star Retail")
    keep, dup = make_customer(db, company_id, "C-1"), make_customer(db, company_id, "C-1B")
    with db.transaction() as s:
        cert_id = s.execute(select(Certificate.id).where(Certificate.customer_id == dup)).scalar_one()
        s.add(RenewalRequest(company_id=company_id, customer_id=dup, certificate_id=cert_id, state="OK",
                             form_code="SST-F0003", token="RQ-TESTMERGE1", requested_on=AS_OF))
        dup_row = s.get(Customer, dup)
        dup_row.email, dup_row.ship_to_state = "ap@lonestar.example", "OK"  # type: ignore[union-attr]
    child = make_customer(db, company_id, "C-1-DAL", "Lone Star Retail Dallas")
    editor = CustomerEditService(db)
    record = editor.get(child)
    editor.save(record.__class__(**{**record.__dict__, "parent_id": dup}), original=record)
    return keep, dup, child, cert_id


def test_merge_moves_everything_audits_once_and_the_check_still_passes(db, company_id, tmp_path) -> None:
    keep, dup, child, cert_id = _two(db, company_id)
    import_sales(db, company_id, tmp_path, "I1,1,2026-03-01,C-1B,OK,100,0,yes", "I2,1,2026-03-02,C-1,TX,50,0,yes")
    service = CustomerMergeService(db)
    plan = service.plan(dup, keep)
    assert (plan.certificates, plan.renewal_requests, plan.sales_lines, plan.child_customers) == (1, 1, 1, 1)
    assert set(plan.filled_in) == {"email", "ship_to_state"}
    assert "C-1B Lone Star Retail is merged into C-1 Lone Star Retail LLC" in plan.summary()
    service.merge(dup, keep)
    with db.reader() as s:
        assert s.get(Customer, dup) is None
        assert s.get(Certificate, cert_id).customer_id == keep  # type: ignore[union-attr]
        assert s.execute(select(RenewalRequest.customer_id)).scalar_one() == keep
        assert s.get(Customer, child).parent_id == keep  # type: ignore[union-attr]
        survivor = s.get(Customer, keep)
        assert (survivor.email, survivor.ship_to_state) == ("ap@lonestar.example", "OK")  # type: ignore[union-attr]
        assert set(s.execute(select(TransactionLine.customer_key)).scalars()) == {"c-1"}
        [event] = s.execute(select(AuditEvent.details).where(AuditEvent.action == "customer.merged")).all()
        assert event.details["certificates_moved"] == [cert_id]
    report = check_database(db)
    assert report.ok, report.problems
    assert [st.state for st in customer_status(db, company_id, "C-1B", as_of=AS_OF)] == ["OK", "TX"]
    summary = DeterminationService(db).run(company_id)
    assert (summary.lines, summary.exempt) == (2, 2)


def test_the_old_number_keeps_meaning_the_survivor(db, company_id, tmp_path) -> None:
    keep, dup, _child, _cert = _two(db, company_id)
    CustomerMergeService(db).merge(dup, keep)
    with db.reader() as s:
        assert find_customer(s, company_id, " c-1b ").id == keep
        assert find_customer(s, None, "C-1B").id == keep
    assert CustomerService(db).get_or_create(company_id, "C-1B").id == keep
    import_sales(db, company_id, tmp_path, "I9,1,2026-04-01,C-1B,OK,70,0,yes")
    with db.reader() as s:
        assert s.execute(select(TransactionLine.customer_number, TransactionLine.customer_key)).one() == ("C-1B", "c-1")
    row = {**GOOD_IMPORT_ROW, "customer_number": "c-1b ", "customer_name": "", "review_status": "pending"}
    path = write_import_csv(tmp_path / "certs.csv", [row])
    assert CertificateImporter(db).import_file(path, company_id=company_id, as_of=AS_OF).customers_created == 0
    with db.reader() as s:
        assert s.execute(select(func.count()).select_from(Customer)).scalar_one() == 2  # C-1 and its child
        assert s.execute(select(func.count()).where(Certificate.customer_id == keep)).scalar_one() == 3
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(paged_pdf("A certificate under the old number"))
    [item] = ReturnedFormsService(db).intake([scan], company_id, as_of=AS_OF, received_via="upload")
    assert item.document_id is not None
    assert InboxService(db).assign(item.document_id, customer="C-1B", as_of=AS_OF).customer_id == keep
    found = CertificateQueryService(db).matching_ids(CertificateQuery(company_id=company_id, as_of=AS_OF, text="c-1b"))
    assert len(found) == 4  # the grid's search finds the survivor's certificates by the merged number
    with pytest.raises(ValidationError, match="was merged into Lone Star Retail LLC"):
        CustomerEditService(db).save(CustomerEditService(db).get(_child).__class__(
            company_id=company_id, number="C-1B", legal_name="Someone New"))
    assert check_database(db).ok


def test_a_merge_of_a_customer_into_itself_or_across_companies_is_refused(db, company_id) -> None:
    keep = make_customer(db, company_id, "C-1", "Lone Star Retail LLC")
    other = make_customer(db, make_company(db, "Other Co", legal_name="Other Co LLC"), "C-1", "Lone Star Retail LLC")
    service = CustomerMergeService(db)
    with pytest.raises(ValidationError, match="cannot be merged into itself"):
        service.merge(keep, keep)
    with pytest.raises(ValidationError, match="belong to different companies"):
        service.merge(other, keep)
    with pytest.raises(NotFoundError):
        service.plan(keep, 999_999)
    with db.reader() as s:
        assert s.execute(select(func.count()).select_from(Customer)).scalar_one() == 2


def test_a_number_merged_twice_follows_to_the_last_survivor(db, company_id) -> None:
    expiry = DAY0 + dt.timedelta(days=40)
    a, b, c = (make_expiring_certificate(db, company_id, n, expiry) for n in ("A-1", "B-1", "C-1"))
    with db.reader() as s:
        ids = [s.get(Certificate, x).customer_id for x in (a, b, c)]  # type: ignore[union-attr]
    service = CustomerMergeService(db)
    service.merge(ids[0], ids[1])
    plan = service.merge(ids[1], ids[2])
    assert plan.earlier_numbers == ("A-1",)
    with db.reader() as s:
        assert {k: v for k, v in s.execute(select(CustomerNumberAlias.number, CustomerNumberAlias.customer_id))} == {
            "A-1": ids[2], "B-1": ids[2]}
        assert find_customer(s, company_id, "a-1").id == ids[2]
    assert check_database(db).ok
    # The survivor takes a merged number back as its own: it is its number, no longer a merged one.
    editor = CustomerEditService(db)
    record = editor.get(ids[2])
    editor.save(dataclasses.replace(record, number="B-1"), original=record)
    with db.reader() as s:
        assert list(s.execute(select(CustomerNumberAlias.number))) == [("A-1",)]
    assert CustomerService(db).find(company_id, "B-1").id == ids[2]
    assert check_database(db).ok


def test_migration_0011_adds_the_merged_numbers_and_going_back_refuses_while_one_is_kept(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'up.sqlite'}"
    db = Database(url)
    initialize_database(db)
    company_id = make_company(db)
    keep, dup = make_customer(db, company_id, "C-1"), make_customer(db, company_id, "C-2", "Twice Entered LLC")
    CustomerMergeService(db).merge(dup, keep)
    with db.engine.connect() as conn, pytest.raises(RuntimeError, match="customer numbers C-2 were merged"):
        command.downgrade(_alembic_config(conn), "0010")
    with db.transaction() as s:
        s.execute(text("DELETE FROM customer_number_alias"))
    with db.engine.connect() as conn:
        command.downgrade(_alembic_config(conn), "0010")
        conn.commit()
        assert conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'customer_number_alias'")
                            ).scalar_one() == 0
    db.dispose()
    db = Database(url)
    assert initialize_database(db).action == "upgraded"
    db.dispose()


def test_a_merged_number_changed_behind_the_programs_back_is_found_by_the_check(db, company_id) -> None:
    keep, dup = make_customer(db, company_id, "C-1"), make_customer(db, company_id, "C-2", "Twice Entered LLC")
    other = make_customer(db, company_id, "C-3", "Someone Else Inc")
    CustomerMergeService(db).merge(dup, keep)
    assert check_database(db).ok
    with db.engine.begin() as conn:  # someone points the merged number at another customer with SQL
        conn.execute(text("UPDATE customer_number_alias SET customer_id = :other"), {"other": other})
    report = check_database(db)
    assert not report.ok and any("customer_alias" in str(p) for p in report.problems), report.problems
