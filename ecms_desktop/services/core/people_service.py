"""Managing the people who work in ECMS: ``ecms users ...``, ``ecms whoami`` and Settings > People (no Qt).

People are added, given another role, disabled and enabled again, never deleted: the audit trail keeps
naming them. Only an admin manages people, except for the very first one, who registers themselves as
an admin (on PostgreSQL with their own login) and so ends single-desk mode. On PostgreSQL a person's
``login`` is made a member of the group role of their role (``team_sql.ecms_set_group``), in the same
transaction as the change of the person, so the database's rights always follow the ``person`` table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ecms_desktop.models import Person
from ecms_desktop.services.core import audit, people
from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.errors import ConflictError, NotFoundError, Problem, ValidationError
from ecms_desktop.services.core.people import Actor, Permission, Role

_LOGIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_$.-]{0,62}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class PersonInfo:
    id: int
    name: str
    role: Role
    login: str | None
    email: str
    active: bool


@dataclass(frozen=True)
class WhoAmI:
    actor: Actor
    #: ``team`` (PostgreSQL: the database checks the login), ``profile`` (SQLite: a chosen local profile)
    #: or ``single`` (nobody registered yet).
    mode: str
    database: str

    def describe(self) -> str:
        a = self.actor
        if self.mode == "single":
            return (f"{a.name} (no one is registered in this database yet: single-desk mode, every permission; "
                    "register yourself with `ecms users add NAME --role admin`)")
        how = (f"database login {a.login}, checked by the database" if self.mode == "team"
               else "a local profile of this SQLite file; anyone who can open the file can choose any profile")
        return f"{a.name}, {a.role.value} ({how})"


def _info(p: Person) -> PersonInfo:
    return PersonInfo(p.id, p.name, Role(p.role), p.login, p.email, p.active)


def _snapshot(p: Person) -> dict[str, object]:
    return {"name": p.name, "role": p.role, "login": p.login, "email": p.email, "active": p.active}


class PeopleService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reading ----------------------------------------------------------------------------------

    def list(self) -> list[PersonInfo]:
        with self.db.reader() as s:
            return [_info(p) for p in s.execute(select(Person).order_by(func.lower(Person.name))).scalars()]

    def whoami(self) -> WhoAmI:
        actor = self.db.actor()
        mode = "single" if not actor.registered else "team" if self.db.dialect == "postgresql" else "profile"
        return WhoAmI(actor, mode, self.db.display_url)

    # -- changing ---------------------------------------------------------------------------------

    def add(self, name: str, *, role: Role | str, login: str | None = None, email: str = "") -> PersonInfo:
        """Register a person. The first one must be an admin (and, on PostgreSQL, the login doing it)."""
        name, email = " ".join(name.split()), email.strip()
        role = _role(role)
        login = (login or "").strip() or None
        problems = []
        if not name or len(name) > 100:
            problems.append(Problem("a name of 1 to 100 characters is needed", column="name"))
        if email and (len(email) > 320 or not _EMAIL.match(email)):
            problems.append(Problem(f"{email!r} is not an e-mail address", column="email"))
        if login is not None and not _LOGIN.match(login):
            problems.append(Problem(f"{login!r} is not a database login name", column="login"))
        if self.db.dialect == "postgresql" and login is None:
            problems.append(Problem("on a shared PostgreSQL database each person logs in with their own database "
                                    "role: give it with --login (create it first, see the README's Team mode)",
                                    column="login"))
        if problems:
            raise ValidationError(f"The person {name or '(no name)'} cannot be added:", problems)
        with self.db.transaction() as s:
            first = not s.execute(select(func.count()).select_from(Person)).scalar_one()
            if first:
                self._check_first(s, name, role, login)
            else:
                people.require(s, Permission.ADMINISTER, f"add {name}")
            clash = s.execute(select(Person).where(
                (func.lower(Person.name) == name.lower()) | ((Person.login == login) & (Person.login.is_not(None)))
            )).scalars().first()
            if clash is not None:
                what = "name" if clash.name.lower() == name.lower() else f"login {login!r}"
                raise ConflictError(f"{clash.name} already has that {what}; people are never deleted, so a name "
                                    "or login stays theirs (enable them again if they come back).")
            person = Person(name=name, role=role.value, login=login, email=email, active=True)
            s.add(person)
            s.flush()
            if login is not None and self.db.dialect == "postgresql":
                _set_group(s, login, role.value)
            audit.record(s, "person.added", "person", person.id, after=_snapshot(person),
                         details={"first": True} if first else None, actor=name if first else None)
            result = _info(person)
        if first and self.db.dialect == "sqlite":
            people.remember_profile(self.db.actor_box.database_key, name)
            self.db.actor_box.choose(name)
        self.db.actor_box.forget()
        return result

    def set_role(self, name: str, role: Role | str) -> PersonInfo:
        role = _role(role)
        return self._change(name, f"change the role of {name}", lambda p: setattr(p, "role", role.value),
                            "person.changed")

    def disable(self, name: str) -> PersonInfo:
        return self._change(name, f"disable {name}", lambda p: setattr(p, "active", False), "person.disabled")

    def enable(self, name: str) -> PersonInfo:
        return self._change(name, f"enable {name}", lambda p: setattr(p, "active", True), "person.enabled")

    def set_email(self, name: str, email: str) -> PersonInfo:
        email = email.strip()
        if email and (len(email) > 320 or not _EMAIL.match(email)):
            raise ValidationError(f"{email!r} is not an e-mail address.")
        return self._change(name, f"change the e-mail of {name}", lambda p: setattr(p, "email", email),
                            "person.changed")

    def _change(self, name: str, doing: str, apply: object, action: str) -> PersonInfo:
        with self.db.transaction() as s:
            people.require(s, Permission.ADMINISTER, doing)
            person = _find(s, name)
            before = _snapshot(person)
            apply(person)  # type: ignore[operator]
            after = _snapshot(person)
            if after == before:
                return _info(person)
            s.flush()
            admins = s.execute(select(func.count()).select_from(Person).where(
                Person.active.is_(True), Person.role == Role.ADMIN.value)).scalar_one()
            if not admins:
                raise ValidationError(f"{person.name} is the last active admin: make someone else an admin first, "
                                      "so that someone can still manage people and settings.")
            if person.login is not None and self.db.dialect == "postgresql":
                _set_group(s, person.login, person.role if person.active else None)
            changed_before, changed_after = audit.diff(before, after)
            audit.record(s, action, "person", person.id, before=changed_before, after=changed_after,
                         details={"name": person.name})
            result = _info(person)
        self.db.actor_box.forget()
        return result

    def _check_first(self, s: Session, name: str, role: Role, login: str | None) -> None:
        if role is not Role.ADMIN:
            raise ValidationError(f"No one is registered yet: the first person must be an admin (so that someone "
                                  f"can manage people), not {role.label}. Register yourself first: "
                                  f"ecms users add \"{name}\" --role admin"
                                  + (" --login YOUR_LOGIN" if self.db.dialect == "postgresql" else ""))
        if self.db.dialect == "postgresql":
            me = s.execute(text("SELECT session_user")).scalar_one()
            if login != me:
                raise ValidationError(f"No one is registered yet: the first admin is the login doing this ({me}), "
                                      f"not {login!r}: ecms users add \"{name}\" --role admin --login {me}")


def _role(role: Role | str) -> Role:
    try:
        return Role(str(role).strip().lower())
    except ValueError:
        raise ValidationError(f"{role!r} is not a role: use reviewer, approver or admin.") from None


def _find(s: Session, name: str) -> Person:
    person = s.execute(select(Person).where(func.lower(Person.name) == " ".join(name.split()).lower())
                       .with_for_update()).scalar_one_or_none()
    if person is None:
        names = ", ".join(s.execute(select(Person.name).order_by(Person.name)).scalars()) or "no one yet"
        raise NotFoundError(f"There is no person named {name!r} (registered: {names}).")
    return person


def _set_group(s: Session, login: str, role: str | None) -> None:
    """Make ``login`` a member of the group role of ``role`` only (None: of none), through the database's
    own admin-only function."""
    exists = s.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :login"), {"login": login}).first()
    if exists is None:
        raise NotFoundError(f"There is no database login {login!r} on this server: the server's administrator "
                            f"creates it first (CREATE ROLE \"{login}\" LOGIN PASSWORD '...'), see the README's "
                            "Team mode.")
    s.execute(text("SELECT ecms_set_group(:login, :role)"), {"login": login, "role": role})
