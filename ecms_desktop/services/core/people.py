"""Who is acting and what they may do: people, roles and permissions (no Qt).

Every unit of work acts as one :class:`Actor`, whose name every audit event, validation run,
acknowledgement, approval, permit check, request and audit pack carries.

- **PostgreSQL** (a shared database): each person logs in with their own database role; the actor is
  the person whose ``login`` is the session's login, and the database itself checks it: an audit event
  naming anyone else is refused, and so is a state transition the person's role does not allow
  (``services/core/team_sql.py``, installed by ``ecms init``).
- **SQLite** (one desk, one file): the actor is a local profile chosen when the program starts
  (``ECMS_USER``, the CLI's ``--user``, or the choice remembered for this operating-system user). Anyone
  who can write the file can pick any profile: a weaker guarantee, and the README says so.

Until the first person is registered a database is in single-desk mode: the actor is the
operating-system user (or ``ECMS_USER``) with every permission, as before people existed.

Roles build on each other: reviewers edit, request, acknowledge and prepare; approvers also approve,
reject, archive and reprocess; admins also change settings, policies, users and filing periods.
"""

from __future__ import annotations

import getpass
import json
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ecms_desktop import paths
from ecms_desktop.models import Person
from ecms_desktop.services.core.errors import EcmsError
from ecms_desktop.vocabulary import Role as Role  # defined with the other vocabularies, used from here too


class Permission(StrEnum):
    """What an action needs; :data:`NEEDS` says which role grants it."""

    #: Edit certificates and customers, take in documents, send requests, acknowledge warnings,
    #: prepare audit packs, import sales, claim certificates.
    EDIT = "edit"
    #: Approve, reject, archive and unarchive certificates; take over another reviewer's claim.
    APPROVE = "approve"
    #: Reprocess sales after certificates changed.
    REPROCESS = "reprocess"
    #: Change settings, expiry policies, e-mail templates and servers, people, filing periods and rules packs.
    ADMINISTER = "administer"


NEEDS = {Permission.EDIT: Role.REVIEWER, Permission.APPROVE: Role.APPROVER,
         Permission.REPROCESS: Role.APPROVER, Permission.ADMINISTER: Role.ADMIN}

#: Audit actions only an approver (or admin) may write, and those only an admin may write: the
#: database refuses them from anyone else on PostgreSQL (team_sql), the services everywhere.
APPROVER_ACTIONS = ("certificate.approved", "certificate.rejected", "certificate.archived",
                    "certificate.unarchived", "certificate.reprocessed", "certificate.findings_accepted",
                    "claim.taken_over")
ADMIN_ACTIONS = ("setting.changed", "expiry_policy.changed", "period.filed", "period.frequency_set",
                 "email_template.changed", "email_template.reset", "smtp.settings_changed",
                 "person.added", "person.changed", "person.disabled", "person.enabled",
                 "exemption_feed.folder_added", "exemption_feed.webhook_added", "rules.installed",
                 "rules.rolled_back")


class PermissionDeniedError(EcmsError):
    """The person acting may not do this (their role, a disabled profile, an unknown login)."""


@dataclass(frozen=True)
class Actor:
    """The person a unit of work acts as."""

    name: str
    role: Role
    #: The database login (PostgreSQL), else None.
    login: str | None = None
    #: False in single-desk mode (no person registered yet): the operating-system user, every permission.
    registered: bool = True

    def may(self, permission: Permission) -> bool:
        return self.role.rank >= NEEDS[permission].rank

    def refusal(self, permission: Permission, doing: str) -> str:
        """Why this person may not do ``doing`` ("approve certificate 12")."""
        needed = NEEDS[permission]
        return (f"{self.name} may not {doing}: that needs the {needed.value} role, and {self.name} is "
                f"{self.role.label}. An admin can change roles in Settings > People or with `ecms users set-role`.")


def os_user() -> str:
    """``ECMS_USER`` if set, else the operating-system user name."""
    name = os.environ.get("ECMS_USER")
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


#: ``session.info`` key of the :class:`ActorBox` of the database the session belongs to.
ACTOR_KEY = "ecms_actor"


class ActorBox:
    """The actor of one :class:`~ecms_desktop.services.core.database.Database`, resolved on first use from
    the database itself (who is registered; on PostgreSQL the session's login) and kept until
    :meth:`forget` (after the people changed) or :meth:`choose` (another SQLite profile)."""

    def __init__(self, dialect: str, database_key: str | None) -> None:
        self.dialect = dialect
        self.database_key = database_key
        self.chosen: str | None = None
        self._actor: Actor | None = None

    def choose(self, name: str | None) -> None:
        """Act as the profile ``name`` from now on (SQLite); None: the default choice."""
        self.chosen = name
        self._actor = None

    def forget(self) -> None:
        self._actor = None

    @property
    def known(self) -> Actor | None:
        """The actor if already resolved (no database access), else None."""
        return self._actor

    def get(self, connection: Connection) -> Actor:
        if self._actor is None:
            self._actor = resolve(connection, chosen=self.chosen, database_key=self.database_key)
        return self._actor


def actor_of(session: Session) -> Actor:
    """The person ``session`` acts as."""
    box: ActorBox = session.info[ACTOR_KEY]
    return box.get(session.connection())


def actor_name(session: Session) -> str:
    """The name recorded as having done what ``session`` does."""
    return actor_of(session).name


def require(session: Session, permission: Permission, doing: str) -> Actor:
    """The actor, when they may do ``doing``; else :class:`PermissionDeniedError` saying why."""
    actor = actor_of(session)
    if not actor.may(permission):
        raise PermissionDeniedError(actor.refusal(permission, doing))
    return actor


def _row_actor(row: Any) -> Actor:
    return Actor(row.name, Role(row.role), row.login, True)


def resolve(connection: Connection, *, chosen: str | None = None, database_key: str | None = None) -> Actor:
    """Who acts on this connection: see the module's description."""
    rows = connection.execute(select(Person.name, Person.role, Person.login, Person.active)).all()
    if not rows:
        return Actor(chosen or os_user(), Role.ADMIN, None, registered=False)
    if connection.dialect.name == "postgresql":
        login = connection.execute(text("SELECT session_user")).scalar_one()
        match = [r for r in rows if r.login == login]
        if not match:
            raise PermissionDeniedError(
                f"The database login {login!r} is not a person in ECMS. An admin adds it with "
                f"`ecms users add NAME --role reviewer --login {login}` (or in Settings > People).")
        person = match[0]
    else:
        name = chosen or os.environ.get("ECMS_USER") or remembered_profile(database_key) or os_user()
        match = [r for r in rows if r.name.casefold() == name.casefold()]
        if not match:
            names = ", ".join(sorted(r.name for r in rows if r.active))
            raise PermissionDeniedError(
                f"There is no profile {name!r} in this database. Choose one of: {names} "
                "(the CLI's --user NAME or ECMS_USER; the desktop asks when it starts).")
        person = match[0]
    if not person.active:
        raise PermissionDeniedError(f"{person.name} is disabled in ECMS and can no longer make changes; an admin "
                                    "can enable them again in Settings > People.")
    return _row_actor(person)


# -- the profile remembered per operating-system user (SQLite) ---------------------------------------

def _profiles_file() -> Path:
    return paths.data_dir() / "profiles.json"


def remembered_profile(database_key: str | None) -> str | None:
    """The profile this operating-system user chose last time for the database (SQLite)."""
    if database_key is None:
        return None
    try:
        data = json.loads(_profiles_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get(database_key) if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def remember_profile(database_key: str | None, name: str) -> None:
    """Remember ``name`` as this operating-system user's profile for the database."""
    if database_key is None:
        return
    target = _profiles_file()
    try:
        data = json.loads(target.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[database_key] = name
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, target)
