"""People in a test database: register a person (as ``ecms users add`` will) and act as them on either backend.

On SQLite a person is a local profile chosen with ``Database.act_as``. On PostgreSQL the session's login
decides who acts, and every test connects as the same login: acting as someone here gives that person the
test's login (and takes it from whoever had it), as if they had logged in.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text, update

from ecms_desktop.models import Person
from ecms_desktop.services.core import audit, people


def register(db: Any, *members: tuple[str, str]) -> None:
    """Add the ``(name, role)`` people (role: reviewer, approver, admin), each with its audit event, as the
    person acting now (in single-desk mode: the operating-system user, an admin)."""
    with db.transaction() as s:
        who = people.actor_name(s)
        for name, role in members:
            person = Person(name=name, role=role, email="", active=True)
            s.add(person)
            s.flush()
            audit.record(s, "person.added", "person", person.id, after={"name": name, "role": role}, actor=who)
    db.actor_box.forget()


def act_as(db: Any, name: str) -> None:
    """Act as ``name`` from now on."""
    if db.dialect == "postgresql":
        with db.transaction() as s:
            login = s.execute(text("SELECT session_user")).scalar_one()
            s.execute(update(Person).values(login=None))
            assert s.execute(select(Person.id).where(Person.name == name)).scalar_one_or_none() is not None
            s.execute(update(Person).where(Person.name == name).values(login=login))
        db.actor_box.forget()
    db.act_as(name)


def team(db: Any, *members: tuple[str, str]) -> None:
    """Register the ``(name, role)`` people, then act as the first."""
    register(db, *members)
    act_as(db, members[0][0])
