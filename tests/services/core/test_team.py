"""Team mode: who acts, what each role may do, and what the database itself refuses.

The PostgreSQL runs log in as each person's own database role; the SQL tests go around the program
entirely (as someone with ``psql`` would) and show that the database refuses what the role may not do.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.exc import DBAPIError

from ecms_desktop.models import AuditEvent, Certificate, Person
from ecms_desktop.services.certificates.service import CertificateService
from ecms_desktop.services.companies.service import CompanyService
from ecms_desktop.services.core import audit
from ecms_desktop.services.core.errors import ValidationError
from ecms_desktop.services.core.people import PermissionDeniedError, Role
from ecms_desktop.services.core.people_service import PeopleService
from tests.factories import make_certificate, make_company
from tests.helpers.team import Team, team_on

AS_OF = dt.date(2026, 12, 6)


@pytest.fixture
def team(db, db_url):  # type: ignore[no-untyped-def]
    with team_on(db, db_url) as t:
        yield t


def _pending(db, company: str = "Acme Supply Co") -> tuple[int, int]:  # type: ignore[no-untyped-def]
    detail = make_certificate(db, make_company(db, company), approve=False)
    return detail.id, detail.version


def test_single_desk_until_someone_is_registered(db) -> None:  # type: ignore[no-untyped-def]
    me = PeopleService(db).whoami()
    assert (me.mode, me.actor.name, me.actor.role, me.actor.registered) == ("single", "tester", Role.ADMIN, False)
    with pytest.raises(ValidationError, match="first person must be an admin"):
        PeopleService(db).add("Pat Lee", role="reviewer", login="postgres" if db.dialect == "postgresql" else None)


def test_every_event_names_the_person_who_acted(team: Team) -> None:
    riley, alex = team.dbs["Riley Reviewer"], team.dbs["Alex Approver"]
    cert_id, version = _pending(riley)
    CertificateService(alex).approve(cert_id, expected_version=version, as_of=AS_OF, acknowledge_warnings=True)
    with team.admin.reader() as s:
        actors = {(a, b) for a, b in s.execute(select(AuditEvent.action, AuditEvent.actor)
                                                               .where(AuditEvent.certificate_id == cert_id))}
        reviewed_by = s.get(Certificate, cert_id).reviewed_by
    assert ("certificate.created", "Riley Reviewer") in actors
    assert ("certificate.approved", "Alex Approver") in actors
    assert reviewed_by == "Alex Approver"
    assert PeopleService(riley).whoami().actor.name == "Riley Reviewer"


@pytest.mark.parametrize(("person", "allowed"), [("Riley Reviewer", False), ("Alex Approver", True),
                                                 ("Dana Admin", True)])
def test_approving_needs_an_approver(team: Team, person: str, allowed: bool) -> None:
    cert_id, version = _pending(team.dbs["Riley Reviewer"])
    service = CertificateService(team.dbs[person])
    if allowed:
        detail = service.approve(cert_id, expected_version=version, as_of=AS_OF, acknowledge_warnings=True)
        assert detail.review_state == "approved"
        return
    for act in (lambda: service.approve(cert_id, expected_version=version, as_of=AS_OF, acknowledge_warnings=True),
                lambda: service.reject(cert_id, "no", expected_version=version, as_of=AS_OF),
                lambda: service.archive(cert_id, "no", expected_version=version, as_of=AS_OF)):
        with pytest.raises(PermissionDeniedError, match=r"Riley Reviewer may not .* needs the approver role"):
            act()
    with team.admin.reader() as s:
        assert s.get(Certificate, cert_id).review_state == "pending"


@pytest.mark.parametrize(("person", "allowed"), [("Riley Reviewer", False), ("Alex Approver", False),
                                                 ("Dana Admin", True)])
def test_settings_and_people_need_an_admin(team: Team, person: str, allowed: bool) -> None:
    company = make_company(team.admin)
    acting = team.dbs[person]
    if allowed:
        CompanyService(acting).set_setting("expiring_soon_days", 45, company)
        PeopleService(acting).set_role("Riley Reviewer", Role.APPROVER)
        assert {p.name: p.role for p in PeopleService(acting).list()}["Riley Reviewer"] is Role.APPROVER
        return
    with pytest.raises(PermissionDeniedError, match="needs the admin role"):
        CompanyService(acting).set_setting("expiring_soon_days", 45, company)
    with pytest.raises(PermissionDeniedError, match="needs the admin role"):
        PeopleService(acting).set_role("Riley Reviewer", Role.ADMIN)
    with pytest.raises(PermissionDeniedError, match="needs the admin role"):
        PeopleService(acting).add("Eve", role="admin", login=None if acting.dialect == "sqlite" else "postgres")


def test_a_disabled_person_can_change_nothing(team: Team) -> None:
    PeopleService(team.dbs["Dana Admin"]).disable("Riley Reviewer")
    riley = team.dbs["Riley Reviewer"]
    riley.actor_box.forget()
    with pytest.raises(PermissionDeniedError, match="disabled"):
        make_company(riley, "Riley's")
    PeopleService(team.dbs["Dana Admin"]).enable("Riley Reviewer")
    riley.actor_box.forget()
    make_company(riley, "Riley's")


def test_people_are_checked_against_the_trail(team: Team) -> None:
    from ecms_desktop.services.integrity.check import check_database

    PeopleService(team.dbs["Dana Admin"]).set_role("Riley Reviewer", Role.APPROVER)
    assert check_database(team.admin).ok
    with team.admin.write_connection() as conn, conn.begin():  # outside the program: no audit event
        conn.execute(text("UPDATE person SET role = 'admin' WHERE name = 'Riley Reviewer'"))
    report = check_database(team.admin)
    assert not report.ok and any(str(p).startswith("person ") for p in report.problems), report.problems


def test_the_last_admin_stays(team: Team) -> None:
    dana = PeopleService(team.dbs["Dana Admin"])
    dana.disable("tester")
    with pytest.raises(ValidationError, match="last active admin"):
        dana.set_role("Dana Admin", Role.REVIEWER)
    assert {p.name: p.active for p in dana.list()}["Dana Admin"] is True


def test_sqlite_profiles_are_chosen_and_refused_when_unknown(db, db_url) -> None:  # type: ignore[no-untyped-def]
    if db.dialect != "sqlite":
        pytest.skip("local profiles are the SQLite way; PostgreSQL is checked by login (tests below)")
    with team_on(db, db_url):
        with pytest.raises(PermissionDeniedError, match=r"no profile 'Nobody'.*Alex Approver"):
            db.act_as("Nobody")
        assert db.act_as("alex approver").name == "Alex Approver"
        assert PeopleService(db).whoami().mode == "profile"


# -- PostgreSQL itself ---------------------------------------------------------------------------------

def _psql(team: Team, person: str, sql: str, **params: object) -> None:
    """Run ``sql`` as ``person``'s login, going around the program."""
    engine = create_engine(team.url_as(person))
    try:
        with engine.begin() as conn:
            conn.execute(text(sql), params)
    finally:
        engine.dispose()


def _need_postgres(team: Team) -> None:
    if team.admin.dialect != "postgresql":
        pytest.skip("what the database itself enforces is PostgreSQL's (SQLite has no logins)")


def test_a_reviewers_login_cannot_approve_even_from_psql(team: Team) -> None:
    _need_postgres(team)
    cert_id, _version = _pending(team.dbs["Riley Reviewer"])
    with pytest.raises(DBAPIError, match=r"may not set certificate .* to approved"):
        _psql(team, "Riley Reviewer", "UPDATE certificate SET review_state = 'approved' WHERE id = :id", id=cert_id)
    # Editing a field is a reviewer's work (the program would audit it; `ecms check` names it when not).
    _psql(team, "Riley Reviewer", "UPDATE certificate SET purchaser_name = 'X' WHERE id = :id", id=cert_id)
    _psql(team, "Alex Approver", "UPDATE certificate SET review_state = 'approved' WHERE id = :id", id=cert_id)
    with pytest.raises(DBAPIError, match=r"may not set certificate .* to archived"):
        _psql(team, "Riley Reviewer", "UPDATE certificate SET review_state = 'archived' WHERE id = :id", id=cert_id)


@pytest.mark.parametrize("sql", [
    "UPDATE person SET role = 'admin'",
    "INSERT INTO person (name, role, email, active, created_at) VALUES ('Mallory', 'admin', '', true, now())",
    "UPDATE setting SET value = '1'",
    "DELETE FROM audit_event",
    "UPDATE audit_event SET actor = 'Alex Approver'",
    "DELETE FROM audit_head",
    "SELECT ecms_set_group(session_user, 'admin')",
])
def test_what_a_reviewers_login_may_not_touch(team: Team, sql: str) -> None:
    _need_postgres(team)
    with pytest.raises(DBAPIError, match="permission denied"):
        _psql(team, "Riley Reviewer", sql)


def test_the_actor_of_an_event_cannot_be_forged(team: Team) -> None:
    _need_postgres(team)
    riley = team.dbs["Riley Reviewer"]
    forged = "names Alex Approver as its actor, but this login is Riley"
    with pytest.raises(PermissionDeniedError, match=forged), riley.transaction() as s:
        audit.record(s, "note.added", "note", 1, actor="Alex Approver")
    # Choosing another profile means nothing on PostgreSQL: the login decides.
    assert riley.act_as("Alex Approver").name == "Riley Reviewer"
    # From psql, naming oneself is all one can do; naming another person is refused by the database.
    with pytest.raises(DBAPIError, match="names Dana Admin as its actor"):
        _psql(team, "Riley Reviewer",
              "INSERT INTO audit_event (seq, occurred_at, actor, action, entity_type, entity_id, prev_hash, hash) "
              "VALUES (99999, now(), 'Dana Admin', 'x', 'x', '1', '', 'forged')")
    # An approver's action written in a reviewer's own name is refused too.
    with pytest.raises(PermissionDeniedError, match=r"may not write certificate.approved"), \
            riley.transaction() as s:
        audit.record(s, "certificate.approved", "certificate", 1)
    with team.admin.reader() as s:
        assert not s.execute(select(AuditEvent).where(AuditEvent.actor != AuditEvent.actor)).first()
        assert audit.verify_chain(s).ok


def test_an_unregistered_login_is_told_how_to_be_added(team: Team) -> None:
    _need_postgres(team)
    from ecms_desktop.services.core.database import Database

    with team.admin.transaction() as s:
        login = s.execute(select(Person.login).where(Person.name == "Riley Reviewer")).scalar_one()
        s.execute(text("UPDATE person SET login = NULL WHERE login = :l"), {"l": login})
        audit.record(s, "person.changed", "person", 0, details={"login": None})
    stranger = Database(team.url_as("Riley Reviewer"))
    try:
        with pytest.raises(PermissionDeniedError, match=f"login '{login}' is not a person in ECMS.*ecms users add"):
            stranger.actor()
    finally:
        stranger.dispose()


def test_a_persons_large_import_on_postgresql_keeps_the_indexes(team: Team, monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A first load drops and rebuilds the lines' indexes, which only the table's owner may do: a person's own
    login imports the same lines with the indexes kept up to date ("must be owner of index" before)."""
    _need_postgres(team)
    from ecms_desktop.models.transactions import TransactionLine
    from ecms_desktop.services.sales import transaction_import
    from tests.factories import import_sales

    monkeypatch.setattr(transaction_import, "_REBUILD_MIN", 5)  # a "large" import of a few lines
    company = make_company(team.admin)
    rows = [f"INV-{i},1,2026-11-0{1 + i % 9},C-{i},TX,100.00,0.00,Y" for i in range(20)]
    import_sales(team.dbs["Riley Reviewer"], company, tmp_path, *rows)
    with team.admin.reader() as s:
        assert s.execute(select(func.count()).select_from(TransactionLine)).scalar_one() == 20
        indexes = s.execute(text("SELECT count(*) FROM pg_indexes WHERE tablename = 'transaction_line' "
                                 "AND schemaname = current_schema()")).scalar_one()
    assert indexes >= 3  # the primary key, the unique key and the secondary indexes are all there
