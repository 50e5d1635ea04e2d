"""Who the desk acts as, and managing people (Settings > People): the work of
``services/core/people_service.py``, the same ``ecms whoami`` and ``ecms users`` use."""

from __future__ import annotations

from dataclasses import dataclass

from ecms_desktop.services.core.database import Database
from ecms_desktop.services.core.people import Actor, PermissionDeniedError, Role
from ecms_desktop.services.core.people_service import PeopleService, PersonInfo
from ecms_desktop.services.core.progress import CancelCheck, Progress
from ecms_desktop.views.operations import Operation


@dataclass(frozen=True)
class WhoAtStart:
    """Who the desk acts as (None when the login or profile is not an active person: ``problem`` says
    why), and the active profiles to choose from (SQLite)."""

    actor: Actor | None
    problem: str
    profiles: list[PersonInfo]


def who_acts(db: Database) -> Operation[WhoAtStart]:
    def work(_p: Progress, _c: CancelCheck) -> WhoAtStart:
        db.actor_box.forget()
        profiles = [p for p in PeopleService(db).list() if p.active] if db.dialect == "sqlite" else []
        try:
            return WhoAtStart(db.actor(), "", profiles)
        except PermissionDeniedError as exc:
            return WhoAtStart(None, str(exc), profiles)

    return Operation(work)


def act_as(db: Database, name: str) -> Operation[Actor]:
    return Operation(lambda _p, _c: db.act_as(name))


def list_people(db: Database) -> Operation[list[PersonInfo]]:
    return Operation(lambda _p, _c: PeopleService(db).list())


def add_person(db: Database, name: str, role: Role, login: str | None, email: str) -> Operation[PersonInfo]:
    return Operation(lambda _p, _c: PeopleService(db).add(name, role=role, login=login, email=email),
                     title=f"Adding {name}")


def set_role(db: Database, name: str, role: Role) -> Operation[PersonInfo]:
    return Operation(lambda _p, _c: PeopleService(db).set_role(name, role), title=f"Changing {name}'s role")


def set_active(db: Database, name: str, active: bool) -> Operation[PersonInfo]:
    service = PeopleService(db)
    return Operation(lambda _p, _c: service.enable(name) if active else service.disable(name),
                     title=f"{'Enabling' if active else 'Disabling'} {name}")
