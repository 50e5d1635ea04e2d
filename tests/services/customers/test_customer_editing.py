"""Adding, finding and editing customers: every field stored and audited, bad input refused field by field,
an edit over someone else's refused, a new number taking the customer's sales with it."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import select

from ecms_desktop.models import AuditEvent, Customer
from ecms_desktop.models.transactions import TransactionLine
from ecms_desktop.services.core.errors import ConflictError, ValidationError
from ecms_desktop.services.customers.editing import CustomerEditService, CustomerRecord
from ecms_desktop.services.integrity.check import check_database
from tests.factories import import_sales, make_company, make_customer


def _new(company_id: int, **values: object) -> CustomerRecord:
    base: dict[str, object] = dict(number=" c-200 ", legal_name="Gulf Coast Marine LLC", email="ap@gulf.example",
                                   bill_to_line1="1 Dock St", bill_to_city="Houston", bill_to_state="tx",
                                   bill_to_zip="77001", ship_to_line1="9 Pier Rd", ship_to_city="Mobile",
                                   ship_to_state="AL", ship_to_zip="36602", owner_email="rep@acme.example",
                                   notes="Net 30")
    base.update(values)
    return CustomerRecord(company_id=company_id, **base)  # type: ignore[arg-type]


def test_a_new_customer_is_stored_with_every_field_and_audited(db, company_id) -> None:
    service = CustomerEditService(db)
    saved = service.save(_new(company_id))
    assert saved.id is not None and saved.number == "c-200" and saved.bill_to_state == "TX"
    assert service.get(saved.id) == saved
    assert (saved.ship_to_city, saved.ship_to_state, saved.owner_email) == ("Mobile", "AL", "rep@acme.example")
    with db.reader() as s:
        assert s.execute(select(Customer.number_key).where(Customer.id == saved.id)).scalar_one() == "c-200"
        after = s.execute(select(AuditEvent.after).where(AuditEvent.action == "customer.created",
                                                         AuditEvent.entity_id == str(saved.id))).scalar_one()
    assert after["ship_to_state"] == "AL"
    assert check_database(db).ok


def test_search_finds_by_number_name_email_and_city(db, company_id) -> None:
    service = CustomerEditService(db)
    service.save(_new(company_id))
    make_customer(db, company_id, "C-1", "Lone Star Retail LLC")
    assert [r.number for r in service.search(company_id)] == ["c-200", "C-1"]
    for text in ("C-200", "gulf", "AP@GULF", "mobile"):
        assert [r.number for r in service.search(company_id, text)] == ["c-200"], text
    assert service.search(company_id, "nobody") == []


def test_bad_input_is_refused_field_by_field_and_nothing_is_stored(db, company_id) -> None:
    service = CustomerEditService(db)
    make_customer(db, company_id, "C-1", "Lone Star Retail LLC")
    bad = _new(company_id, number="c-1", legal_name=" ", email="not an address", ship_to_state="Texas",
               ship_to_city="x" * 101)
    with pytest.raises(ValidationError) as caught:
        service.save(bad)
    columns = {p.column: p.message for p in caught.value.problems}
    assert set(columns) == {"number", "legal_name", "email", "ship_to_state", "ship_to_city"}
    assert "already the number of Lone Star Retail LLC" in columns["number"]
    assert "e-mail: 'not an address' is not an e-mail address" in str(caught.value)
    assert [r.number for r in service.search(company_id)] == ["C-1"]


def test_an_edit_is_saved_once_and_an_edit_over_someone_elses_is_refused(db, company_id) -> None:
    service = CustomerEditService(db)
    opened = service.save(_new(company_id))
    theirs = service.save(dataclasses.replace(opened, email="billing@gulf.example"), original=opened)
    assert theirs.email == "billing@gulf.example"
    with pytest.raises(ConflictError, match="changed by someone else"):
        service.save(dataclasses.replace(opened, legal_name="Gulf Coast Marine Inc"), original=opened)
    assert service.get(opened.id).legal_name == "Gulf Coast Marine LLC"  # type: ignore[arg-type]
    with db.reader() as s:
        [edit] = s.execute(select(AuditEvent.before, AuditEvent.after).where(
            AuditEvent.action == "customer.edited")).all()
    assert tuple(edit) == ({"email": "ap@gulf.example"}, {"email": "billing@gulf.example"})


def test_a_parent_is_of_the_same_company_and_never_the_customer_itself(db, company_id) -> None:
    service = CustomerEditService(db)
    parent = service.save(_new(company_id, number="P-1", legal_name="Gulf Holdings"))
    child = service.save(_new(company_id, parent_id=parent.id))
    assert child.parent_label == "P-1 Gulf Holdings"
    assert [r.parent_label for r in service.search(company_id, "c-200")] == ["P-1 Gulf Holdings"]
    with pytest.raises(ValidationError, match="cannot be its own parent"):
        service.save(dataclasses.replace(parent, parent_id=child.id), original=parent)
    other = make_company(db, "Other Co", legal_name="Other Co LLC")
    stranger = make_customer(db, other, "X-1", "Elsewhere Inc")
    with pytest.raises(ValidationError, match="not a customer of this company"):
        service.save(dataclasses.replace(child, parent_id=stranger), original=child)


def test_a_new_number_takes_the_customers_sales_with_it(db, company_id, tmp_path) -> None:
    service = CustomerEditService(db)
    opened = service.save(_new(company_id, number="C-7"))
    import_sales(db, company_id, tmp_path, "I1,1,2026-03-01,C-7,TX,100,0,yes")
    service.save(dataclasses.replace(opened, number="C-0007"), original=opened)
    with db.reader() as s:
        assert s.execute(select(TransactionLine.customer_number, TransactionLine.customer_key)).one() == ("C-7",
                                                                                                         "c-0007")
    assert check_database(db).ok
