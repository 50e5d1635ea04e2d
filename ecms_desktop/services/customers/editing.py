"""Keeping the customer list: find, add and edit customers (number, legal name, e-mail, bill-to and ship-to
addresses, parent account, account owner).

An edit works on a copy: the dialog holds the :class:`CustomerRecord` it was opened with and saves once;
if someone else changed the customer meanwhile the save is refused with a :class:`ConflictError` that
says so, and nothing is written.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ecms_desktop.models import Certificate, Customer, CustomerNumberAlias, customer_number_key
from ecms_desktop.services.core import audit
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import ConflictError, NotFoundError, Problem, ValidationError
from ecms_desktop.services.core.field_limits import EMAIL_ADDRESS, limits_of
from ecms_desktop.services.customers.service import customer_by_key, rekey_sales

_STATE = re.compile(r"^[A-Z]{2}$")
#: The editable fields of a customer, in the order the dialog shows them.
FIELDS = ("number", "legal_name", "email", "bill_to_line1", "bill_to_city", "bill_to_state", "bill_to_zip",
          "ship_to_line1", "ship_to_city", "ship_to_state", "ship_to_zip", "owner_email", "parent_id", "notes")
_LABELS = {"number": "customer number", "legal_name": "legal name", "email": "e-mail",
           "bill_to_line1": "bill-to street", "bill_to_city": "bill-to city", "bill_to_state": "bill-to state",
           "bill_to_zip": "bill-to ZIP", "ship_to_line1": "ship-to street", "ship_to_city": "ship-to city",
           "ship_to_state": "ship-to state", "ship_to_zip": "ship-to ZIP", "owner_email": "account owner's e-mail",
           "parent_id": "parent customer", "notes": "notes"}


@dataclass(frozen=True)
class CustomerRecord:
    """Everything the accountant can edit about a customer (``id`` None: a customer not stored yet)."""

    company_id: int
    number: str = ""
    legal_name: str = ""
    email: str = ""
    bill_to_line1: str = ""
    bill_to_city: str = ""
    bill_to_state: str = ""
    bill_to_zip: str = ""
    ship_to_line1: str = ""
    ship_to_city: str = ""
    ship_to_state: str = ""
    ship_to_zip: str = ""
    owner_email: str = ""
    parent_id: int | None = None
    notes: str = ""
    id: int | None = None
    #: The parent's number and name, for display (not edited: ``parent_id`` is).
    parent_label: str = ""


@dataclass(frozen=True)
class CustomerRow:
    """One line of the customer list."""

    id: int
    number: str
    legal_name: str
    email: str
    ship_to_city: str
    ship_to_state: str
    parent_label: str
    certificates: int


def record_of(c: Customer) -> CustomerRecord:
    """The editable copy of a stored customer."""
    parent = c.parent
    return CustomerRecord(
        company_id=c.company_id, id=c.id, parent_label=f"{parent.number} {parent.legal_name}" if parent else "",
        **{f: getattr(c, f) for f in FIELDS})


def _values(record: CustomerRecord) -> dict[str, object]:
    out: dict[str, object] = {}
    for f in FIELDS:
        value = getattr(record, f)
        out[f] = value.strip() if isinstance(value, str) and f != "notes" else value
    for f in ("bill_to_state", "ship_to_state"):
        out[f] = str(out[f]).upper()
    return out


def record_problems(session: Session, record: CustomerRecord) -> list[Problem]:
    """What keeps this customer from being stored, field by field (an empty list: it can be saved)."""
    values = _values(record)
    problems: list[Problem] = []
    number, key = str(values["number"]), customer_number_key(str(values["number"]))
    if not key:
        problems.append(Problem("a customer number is required", column="number"))
    else:
        holder = customer_by_key(session, record.company_id, key)
        if holder is not None and holder.id != record.id:
            mine = holder.number_key == key
            problems.append(Problem(
                f"{number!r} is already the number of {holder.legal_name} ({holder.number})" if mine else
                f"{number!r} was merged into {holder.legal_name} ({holder.number}) and still means that customer",
                column="number"))
    if not str(values["legal_name"]):
        problems.append(Problem("a legal name is required", column="legal_name"))
    for f in ("email", "owner_email"):
        if values[f] and not EMAIL_ADDRESS.match(str(values[f])):
            problems.append(Problem(f"{values[f]!r} is not an e-mail address", column=f))
    for f in ("bill_to_state", "ship_to_state"):
        if values[f] and not _STATE.match(str(values[f])):
            problems.append(Problem(f"{values[f]!r} is not a two-letter state code", column=f))
    limits = limits_of(Customer)
    for f in FIELDS:
        if f == "parent_id" or any(p.column == f for p in problems):
            continue
        found = limits[f].text_problem(str(values[f]))
        if found is not None:
            problems.append(Problem(found, column=f))
    if key and limits["number_key"].text_problem(key) and not any(p.column == "number" for p in problems):
        problems.append(Problem(str(limits["number_key"].text_problem(key)), column="number"))
    parent_id = record.parent_id
    if parent_id is not None:
        parent = session.get(Customer, parent_id)
        if parent is None or parent.company_id != record.company_id:
            problems.append(Problem("the parent customer is not a customer of this company", column="parent_id"))
        else:
            seen: set[int] = set()
            while parent is not None and parent.id not in seen:
                if parent.id == record.id:
                    problems.append(Problem("a customer cannot be its own parent, directly or through others",
                                            column="parent_id"))
                    break
                seen.add(parent.id)
                parent = parent.parent
    return problems


class CustomerEditService:
    """Finding, adding and editing customers, for the Customers view and ``ecms customers``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def search(self, company_id: int, text: str = "", *, limit: int | None = None) -> list[CustomerRow]:
        """The company's customers whose number, name, e-mail or ship-to city contains ``text`` (all of
        them for an empty text), by name."""
        with self.db.reader() as s:
            parent = select(Customer.id, Customer.number, Customer.legal_name).subquery()
            counts = (select(Certificate.customer_id, func.count().label("n")).group_by(Certificate.customer_id)
                      .subquery())
            stmt = (select(Customer, parent.c.number, parent.c.legal_name, counts.c.n)
                    .outerjoin(parent, parent.c.id == Customer.parent_id)
                    .outerjoin(counts, counts.c.customer_id == Customer.id)
                    .where(Customer.company_id == company_id)
                    .order_by(func.lower(Customer.legal_name), Customer.id))
            wanted = text.strip()
            if wanted:
                like = f"%{wanted.casefold()}%"
                stmt = stmt.where(or_(Customer.number_key.like(f"%{customer_number_key(wanted)}%"),
                                      func.lower(Customer.legal_name).like(like), func.lower(Customer.email).like(like),
                                      func.lower(Customer.ship_to_city).like(like)))
            if limit is not None:
                stmt = stmt.limit(limit)
            return [CustomerRow(c.id, c.number, c.legal_name, c.email, c.ship_to_city, c.ship_to_state,
                                f"{pn} {pname}" if pn else "", int(n or 0))
                    for c, pn, pname, n in s.execute(stmt)]

    def get(self, customer_id: int) -> CustomerRecord:
        """The customer as stored, to edit."""
        with self.db.reader() as s:
            c = s.get(Customer, customer_id)
            if c is None:
                raise NotFoundError(f"There is no customer {customer_id}.")
            return record_of(c)

    def save(self, record: CustomerRecord, *, original: CustomerRecord | None = None) -> CustomerRecord:
        """Store a new customer (``record.id`` None) or the edits of one. ``original`` is the copy the
        edit started from: when the stored customer no longer matches it, someone else changed it
        meanwhile and nothing is saved. A changed number moves the customer's sales lines with it."""
        with self.db.transaction() as s:
            audit.head_seq(s, lock=True)
            problems = record_problems(s, record)
            if problems:
                who = record.number.strip() or record.legal_name.strip() or "the new customer"
                raise ValidationError(f"Customer {who!r} cannot be saved: "
                                      + "; ".join(f"{_LABELS[p.column or '']}: {p.message}" for p in problems),
                                      problems)
            values = _values(record)
            if record.id is None:
                customer = Customer(company_id=record.company_id, number_key=customer_number_key(str(values["number"])),
                                    **values)
                s.add(customer)
                s.flush()
                audit.record(s, "customer.created", "customer", customer.id, company_id=record.company_id,
                             after={f: values[f] for f in FIELDS if values[f] not in ("", None)})
                return record_of(customer)
            found = s.get(Customer, record.id, with_for_update=True)
            if found is None or found.company_id != record.company_id:
                raise NotFoundError(f"Customer {record.number!r} no longer exists (it may have been merged).")
            customer = found
            if original is not None:
                stored = record_of(customer)
                if dataclasses.replace(stored, parent_label="") != dataclasses.replace(original, parent_label=""):
                    raise ConflictError(f"Customer {customer.number} ({customer.legal_name}) was changed by someone "
                                        "else since you opened it: close the dialog and open it again to see the "
                                        "changes; your edits were not saved.")
            before = {f: getattr(customer, f) for f in FIELDS if getattr(customer, f) != values[f]}
            if not before:
                return record_of(customer)
            old_key = customer.number_key
            for f in before:
                setattr(customer, f, values[f])
            customer.number_key = customer_number_key(customer.number)
            moved = 0
            if customer.number_key != old_key:
                moved = rekey_sales(s, customer.company_id, old_key, customer.number_key)
                # A number merged into this customer that becomes its own again is no longer a merged one.
                for alias in s.execute(select(CustomerNumberAlias).where(
                        CustomerNumberAlias.customer_id == customer.id,
                        CustomerNumberAlias.number_key == customer.number_key)).scalars():
                    s.delete(alias)
            audit.record(s, "customer.edited", "customer", customer.id, company_id=customer.company_id,
                         before=before, after={f: values[f] for f in before},
                         details={"sales_lines_moved": moved} if moved else None)
            s.flush()
            s.refresh(customer)
            return record_of(customer)
