"""Creating and upgrading a database (``ecms init``, File > New database): the only way one comes to be.

Creating records ``database.created`` as the first audit event, so every ECMS database has a trail
from its first moment (an empty trail is never "intact"). Upgrading a database from before record
digests were kept records ``database.upgraded`` with the *integrity baseline*: the digests of every
record present, so that changes made outside the program from then on are detected.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, text

from ecms_desktop.models import Person
from ecms_desktop.services.core import anchors, audit, people, state_digest
from ecms_desktop.services.core.database import Database, SchemaInfo, SchemaState, revisions_include
from ecms_desktop.services.core.people import Role
from ecms_desktop.services.core.people_service import PeopleService

#: The schema revision from which record digests are kept.
DIGESTS_REVISION = "0005"


@dataclass(frozen=True)
class InitResult:
    """What ``ecms init`` did: ``created``, ``upgraded`` or ``current`` (nothing to do)."""

    action: str
    before: SchemaInfo
    after: SchemaInfo
    #: Records digested by the integrity baseline of an upgrade (0 when none was needed).
    baseline_records: int = 0


def initialize_database(db: Database, *, admin_name: str | None = None) -> InitResult:
    """Create the ECMS schema in a new or empty database, or upgrade an older one (refusing a foreign
    or newer one), and audit it.

    On PostgreSQL the login doing it is registered as the first admin person (``admin_name``, else the
    operating-system user or ``ECMS_USER``) when no one is registered yet: a shared database starts in
    team mode, with the database checking who acts (``team_sql``)."""
    before = db.schema_info()
    after = db.upgrade()
    if db.dialect == "postgresql":
        register_installer(db, admin_name)
    if before.state is SchemaState.CURRENT:
        return InitResult("current", before, after)
    created = before.state in (SchemaState.MISSING, SchemaState.EMPTY)
    if created and db.anchor_key is not None:
        # A new database in the place of an old one: the old one's anchors no longer apply here.
        anchors.AnchorBook().supersede(db.anchor_key, "a new database was created here (ecms init)")
    baseline = not created and not revisions_include(before.database_revisions, DIGESTS_REVISION)
    with db.transaction() as s:
        audit.record(s, "database.created" if created else "database.upgraded", "database", "schema",
                     before={"revisions": list(before.database_revisions)},
                     after={"revisions": list(after.database_revisions)},
                     details={"integrity_baseline": True} if baseline else None)
        if baseline:
            state_digest.touch_all(s)
    records = 0
    if baseline:
        with db.reader() as s:
            seq = audit.head_of(s)[0]
            records = audit.count_digests(s, seq)
    return InitResult("created" if created else "upgraded", before, after, records)


def register_installer(db: Database, name: str | None) -> None:
    """Register the login running ``ecms init`` on PostgreSQL as the first admin, if no one is registered."""
    with db.reader() as s:
        if s.execute(select(func.count()).select_from(Person)).scalar_one():
            return
        login = s.execute(text("SELECT session_user")).scalar_one()
    PeopleService(db).add(name or people.os_user(), role=Role.ADMIN, login=login)
