"""Customers, matched by their normalised customer number (or a number merged into theirs).

Every lookup of a customer by number goes through :func:`customer_by_key` (one customer) or
:func:`customer_keys` (all of a company's numbers, for imports), so that a number merged into another
customer (:class:`~ecms_desktop.models.CustomerNumberAlias`) keeps meaning the surviving customer.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ecms_desktop.models import Customer, CustomerNumberAlias, customer_number_key
from ecms_desktop.models.transactions import TransactionLine
from ecms_desktop.services.core import audit, state_digest
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import NotFoundError, Problem, ValidationError
from ecms_desktop.services.core.field_limits import limits_of


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


def customer_by_key(session: Session, company_id: int, key: str) -> Customer | None:
    """The customer a normalised customer number means today: the customer with that number, or the
    customer another one with that number was merged into; None when the number is unknown."""
    found = session.execute(select(Customer).where(Customer.company_id == company_id,
                                                   Customer.number_key == key)).scalar_one_or_none()
    if found is None:
        found = session.execute(
            select(Customer).join(CustomerNumberAlias, CustomerNumberAlias.customer_id == Customer.id)
            .where(CustomerNumberAlias.company_id == company_id, CustomerNumberAlias.number_key == key)
        ).scalar_one_or_none()
    return found


def customer_keys(session: Session, company_id: int) -> dict[str, Customer]:
    """Every customer number of the company (normalised) with the customer it means: each customer's own
    number and the numbers merged into it."""
    customers = {c.number_key: c for c in session.execute(
        select(Customer).where(Customer.company_id == company_id)).scalars()}
    by_id = {c.id: c for c in customers.values()}
    for key, customer_id in session.execute(select(CustomerNumberAlias.number_key, CustomerNumberAlias.customer_id)
                                            .where(CustomerNumberAlias.company_id == company_id)):
        customers.setdefault(key, by_id[customer_id])
    return customers


def rekey_sales(session: Session, company_id: int, old_key: str, new_key: str) -> int:
    """Sales lines matched on customer number ``old_key`` are matched on ``new_key`` from now on (the
    ERP's number as written is kept). Returns how many lines changed."""
    ids = session.execute(
        update(TransactionLine).where(TransactionLine.company_id == company_id, TransactionLine.customer_key == old_key)
        .values(customer_key=new_key).returning(TransactionLine.id)
        .execution_options(synchronize_session=False)).scalars().all()
    if ids:
        state_digest.touch_transaction_lines(session, ids)
    return len(ids)


def match_sales_to_merged_numbers(session: Session, company_id: int) -> int:
    """Sales lines whose customer number was merged into another customer are matched on the surviving
    customer's number (the ERP's number as written is kept). Returns how many lines were changed."""
    aliases = session.execute(
        select(CustomerNumberAlias.number_key, Customer.number_key)
        .join(Customer, Customer.id == CustomerNumberAlias.customer_id)
        .where(CustomerNumberAlias.company_id == company_id)).all()
    return sum(rekey_sales(session, company_id, old_key, new_key) for old_key, new_key in aliases)


def find_customer(session: Session, company_id: int | None, number_or_name: str) -> Customer:
    """A customer by number (normalised, a merged number meaning the customer it was merged into) or
    exact legal name (case-insensitive)."""
    key = customer_number_key(number_or_name)
    if company_id is not None:
        by_number = customer_by_key(session, company_id, key)
        if by_number is not None:
            return by_number
    stmt = select(Customer).where(or_(Customer.number_key == key, Customer.legal_name.ilike(number_or_name.strip())))
    if company_id is not None:
        stmt = stmt.where(Customer.company_id == company_id)
    found = session.execute(stmt.limit(2)).scalars().all()
    if not found and company_id is None:
        found = session.execute(
            select(Customer).join(CustomerNumberAlias, CustomerNumberAlias.customer_id == Customer.id)
            .where(CustomerNumberAlias.number_key == key).limit(2)).scalars().all()
        if len(found) > 1:
            raise ValidationError(f"Customer number {number_or_name!r} is known in several companies: "
                                  "choose the company.")
        if found:
            return found[0]
    if not found:
        raise NotFoundError(f"No customer with number or name {number_or_name!r}.")
    if len(found) > 1 and found[0].number_key != key:
        raise ValidationError(f"Several customers match {number_or_name!r}: give the customer number.")
    return next((c for c in found if c.number_key == key), found[0])


def customer_problems(number: str, legal_name: str = "", email: str = "") -> list[Problem]:
    """What keeps a customer's number, name or e-mail from being stored (length, NUL characters), by
    field; the same on every database (see field_limits)."""
    limits = limits_of(Customer)
    problems: list[Problem] = []
    for column, attribute, value in (("customer_number", "number", number.strip()),
                                     ("customer_number", "number_key", customer_number_key(number)),
                                     ("customer_name", "legal_name", legal_name.strip()),
                                     ("customer_email", "email", email.strip())):
        found = limits[attribute].text_problem(value)
        if found is not None and not any(p.column == column for p in problems):
            problems.append(Problem(found, column=column))
    return problems


def _insert_if_absent(session: Session, values: dict[str, object]) -> int | None:
    """``INSERT ... ON CONFLICT DO NOTHING`` of a customer: its new id, or None when another writer
    already stored this number (the statement then waits for that writer's transaction, and the row
    is read afterwards) - never a unique-key error."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = (insert(Customer).values(**values)
            .on_conflict_do_nothing(index_elements=[Customer.company_id, Customer.number_key])
            .returning(Customer.id))
    return session.execute(stmt).scalar_one_or_none()


def upsert_customer(session: Session, company_id: int, number: str, *, legal_name: str = "", email: str = "",
                    cache: dict[str, Customer] | None = None) -> tuple[Customer, bool]:
    """The customer with this number (normalised), created if new. Existing details are filled in
    where empty but never overwritten. Returns (customer, created).

    Race-free (insert-or-get): two desks or imports that create the same new customer at once get one
    customer; the one that comes second uses it."""
    key = customer_number_key(number)
    if not key:
        raise ValidationError("A customer number is required.")
    customer = cache.get(key) if cache is not None else None
    if customer is None:
        customer = customer_by_key(session, company_id, key)
    created = False
    if customer is None:
        if not legal_name.strip():
            raise ValidationError(f"Customer {number.strip()!r} is new and needs a name.")
        problems = customer_problems(number, legal_name, email)
        if problems:
            raise ValidationError(f"Customer {number.strip()[:64]!r} cannot be stored.", problems)
        # The chain first (every writer takes it before its first audited write, so that none waits
        # for another while holding what that one needs), then the insert-or-get.
        audit.head_seq(session, lock=True)
        new_id = _insert_if_absent(session, {"company_id": company_id, "number": number.strip(), "number_key": key,
                                             "legal_name": legal_name.strip(), "email": email.strip()})
        customer = session.execute(select(Customer).where(Customer.company_id == company_id,
                                                          Customer.number_key == key)).scalar_one()
        if new_id is not None:
            state_digest.touch(session, "customer", [customer.id])  # inserted with a Core statement
            audit.record(session, "customer.created", "customer", customer.id, company_id=company_id,
                         after={"number": customer.number, "legal_name": customer.legal_name,
                                "email": customer.email})
            created = True
    elif email.strip() and not customer.email:
        problems = [p for p in customer_problems(number, email=email) if p.column == "customer_email"]
        if problems:
            raise ValidationError(f"The e-mail of customer {customer.number!r} cannot be stored.", problems)
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
