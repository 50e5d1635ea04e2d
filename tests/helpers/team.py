"""A team on one test database: people with their own PostgreSQL logins (created for the test and
dropped after it), or local profiles on SQLite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.people import Role
from ecms_desktop.services.core.people_service import PeopleService


@dataclass
class Team:
    """The admin who set the database up (``tester``) and a reviewer, an approver and a second admin, each
    with an open :class:`Database` acting as them (``dbs[name]``) and, on PostgreSQL, their login."""

    url: str
    admin: Database
    dbs: dict[str, Database] = field(default_factory=dict)
    logins: dict[str, str] = field(default_factory=dict)

    def url_as(self, name: str) -> str:
        """The database URL logging in as ``name``'s own login (PostgreSQL)."""
        return make_url(self.url).set(username=self.logins[name]).render_as_string(hide_password=False)


PEOPLE = (("Riley Reviewer", Role.REVIEWER), ("Alex Approver", Role.APPROVER), ("Dana Admin", Role.ADMIN))


@contextmanager
def team_on(db: Database, url: str) -> Iterator[Team]:
    """Register ``tester`` (the login that created the database) as admin, then the three people of
    :data:`PEOPLE`, each with a login of their own on PostgreSQL."""
    service = PeopleService(db)
    postgres = db.dialect == "postgresql"
    server = create_engine(url) if postgres else None
    me = "postgres"
    if server is not None:
        with server.connect() as conn:
            me = conn.execute(text("SELECT session_user")).scalar_one()
    service.add("tester", role=Role.ADMIN, login=me if postgres else None)
    team = Team(url, db)
    suffix = uuid.uuid4().hex[:8]
    try:
        for name, role in PEOPLE:
            login = None
            if server is not None:
                login = f"ecms_t_{role.value}_{suffix}"
                with server.begin() as conn:
                    conn.execute(text(f'CREATE ROLE "{login}" LOGIN'))
                team.logins[name] = login
            service.add(name, role=role, login=login)
        for name, _role in PEOPLE:
            if postgres:
                team.dbs[name] = Database(team.url_as(name))
            else:
                team.dbs[name] = Database(url)
                team.dbs[name].act_as(name)
        yield team
    finally:
        for other in team.dbs.values():
            other.dispose()
        if server is not None:
            with server.begin() as conn:
                for login in team.logins.values():
                    conn.execute(text(f'DROP ROLE IF EXISTS "{login}"'))
            server.dispose()
