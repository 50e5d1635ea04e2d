"""Customers, matched by their normalised customer number."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ecms_desktop.errors import NotFoundError, ValidationError
from ecms_desktop.models import Customer, customer_number_key
from ecms_desktop.services import audit
from ecms_desktop.services.database import Database


@dataclass(frozen=True)
class CustomerInfo:
    id: int
    company_id: int
    number: str
    legal_name: str
    email: str
    owner_email: str
    ship_to_state: str


def _info(c: Customer) -> CustomerInfo:
    return CustomerInfo(c.id, c.company_id, c.number, c.legal_name, c.email, c.owner_email, c.ship_to_state)


def find_customer(session: Session, company_id: int | None, number_or_name: str) -> Customer:
    """A customer by number (normalised) or exact legal name (case-insensitive)."""
    key = customer_number_key(number_or_name)
    stmt = select(Customer).where(or_(Customer.number_key == key, Customer.legal_name.ilike(number_or_name.strip())))
    if company_id is not None:
        stmt = stmt.where(Customer.company_id == company_id)
    found = session.execute(stmt.limit(2)).scalars().all()
    if not found:
        raise NotFoundError(f"No customer with number or name {number_or_name!r}.")
    if len(found) > 1 and found[0].number_key != key:
        raise ValidationError(f"Several customers match {number_or_name!r}: give the customer number.")
    return next((c for c in found if c.number_key == key), found[0])


def upsert_customer(session: Session, company_id: int, number: str, *, legal_name: str = "", email: str = "",
                    cache: dict[str, Customer] | None = None) -> tuple[Customer, bool]:
    """The customer with this number (normalised), created if new. Existing details are filled in
    where empty but never overwritten. Returns (customer, created)."""
    key = customer_number_key(number)
    if not key:
        raise ValidationError("A customer number is required.")
    customer = cache.get(key) if cache is not None else None
    if customer is None:
        customer = session.execute(select(Customer).where(Customer.company_id == company_id,
                                                          Customer.number_key == key)).scalar_one_or_none()
    created = False
    if customer is None:
        if not legal_name.strip():
            raise ValidationError(f"Customer {number.strip()!r} is new and needs a name.")
        customer = Customer(company_id=company_id, number=number.strip(), number_key=key,
                            legal_name=legal_name.strip(), email=email.strip())
        session.add(customer)
        session.flush()
        audit.record(session, "customer.created", "customer", customer.id, company_id=company_id,
                     after={"number": customer.number, "legal_name": customer.legal_name, "email": customer.email})
        created = True
    elif email.strip() and not customer.email:
        customer.email = email.strip()
        audit.record(session, "customer.edited", "customer", customer.id, company_id=company_id,
                     before={"email": ""}, after={"email": customer.email})
    if cache is not None:
        cache[key] = customer
    return customer, created


class CustomerService:
    """Customer use cases for the GUI and the CLI."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get_or_create(self, company_id: int, number: str, legal_name: str = "", email: str = "") -> CustomerInfo:
        with self.db.transaction() as s:
            customer, _ = upsert_customer(s, company_id, number, legal_name=legal_name, email=email)
            return _info(customer)

    def find(self, company_id: int | None, number_or_name: str) -> CustomerInfo:
        with self.db.reader() as s:
            return _info(find_customer(s, company_id, number_or_name))

    def list(self, company_id: int | None = None) -> list[CustomerInfo]:
        with self.db.reader() as s:
            stmt = select(Customer).order_by(Customer.legal_name)
            if company_id is not None:
                stmt = stmt.where(Customer.company_id == company_id)
            return [_info(c) for c in s.execute(stmt).scalars()]
