"""What PostgreSQL itself enforces for a team (installed by ``ecms init``; no Qt).

Each person logs in with their own database role and is a member of one of three group roles,
created here once per server: ``ecms_reviewer``, ``ecms_approver`` (a member of ``ecms_reviewer``) and
``ecms_admin`` (a member of ``ecms_approver``). The database, not the program, then decides:

- **The actor of every audit event** is the person whose ``person.login`` is the session's login: an
  insert into ``audit_event`` naming anyone else is refused (``ecms_audit_events`` trigger), and no login
  but the owner may change an event's actor afterwards (only ``state_sha256`` and ``hash`` may be updated,
  when a unit of work seals its last event). A disabled person's login can write nothing audited.
- **What each role may do:** an event whose action only an approver (or an admin) may write is refused
  from a reviewer (or a non-admin), whatever program wrote it; a certificate's review state can only be
  set to approved, rejected or archived, or brought back from archived, by an approver
  (``ecms_certificate_review`` triggers); people, settings, expiry policies, e-mail templates and servers,
  filing periods and rules packs can only be written by ``ecms_admin`` members (table grants).
- **Roles are given** by the ``SECURITY DEFINER`` function ``ecms_set_group(login, role)``, which only an
  admin person can call (it checks, then grants that one group and revokes the others).

Until the first person is registered nothing is checked (single-desk mode, see ``people``), and the
database's owner (who ran ``ecms init``) can of course change anything: they are the one trusted role.

The group roles are shared by every ECMS database on the server; the grants, functions and triggers
belong to one database schema. Everything here is idempotent and runs again on every ``ecms init``.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ecms_desktop.services.core.errors import DatabaseError
from ecms_desktop.services.core.people import ADMIN_ACTIONS, APPROVER_ACTIONS, Role

#: The group role of each ECMS role.
GROUPS = {Role.REVIEWER: "ecms_reviewer", Role.APPROVER: "ecms_approver", Role.ADMIN: "ecms_admin"}

#: Tables only admins write (people, settings, policies, templates, mail servers, filing periods, rules packs).
ADMIN_TABLES = ("person", "setting", "expiry_policy_override", "email_template", "smtp_profile",
                "filing_period_config", "filed_period", "rules_pack")


def _array(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]::text[]"


def _functions(schema: str) -> list[str]:
    q = '"' + schema.replace('"', '""') + '"'
    return [
        # The person this session's login is (NULL when it is none, or disabled).
        f"""CREATE OR REPLACE FUNCTION {q}.ecms_person_role(OUT person_name text, OUT person_role text)
            LANGUAGE sql STABLE SET search_path = {q}, pg_temp AS $$
              SELECT name::text, role::text FROM person WHERE login = session_user AND active $$""",
        f"""CREATE OR REPLACE FUNCTION {q}.ecms_team_mode() RETURNS boolean
            LANGUAGE sql STABLE SET search_path = {q}, pg_temp AS $$ SELECT EXISTS (SELECT 1 FROM person) $$""",
        f"""CREATE OR REPLACE FUNCTION {q}.ecms_rank(role text) RETURNS int LANGUAGE sql IMMUTABLE AS $$
              SELECT CASE role WHEN 'reviewer' THEN 1 WHEN 'approver' THEN 2 WHEN 'admin' THEN 3 ELSE 0 END $$""",
        # Every statement inserting audit events: the actor is this login's person, and the actions are
        # ones their role may write.
        f"""CREATE OR REPLACE FUNCTION {q}.ecms_audit_events() RETURNS trigger
            LANGUAGE plpgsql SET search_path = {q}, pg_temp AS $$
            DECLARE who text; what text; bad record;
            BEGIN
              IF NOT ecms_team_mode() THEN RETURN NULL; END IF;
              SELECT person_name, person_role INTO who, what FROM ecms_person_role();
              IF who IS NULL THEN
                RAISE EXCEPTION 'ECMS: the database login % is not an active person in ECMS', session_user
                  USING ERRCODE = 'insufficient_privilege';
              END IF;
              SELECT seq, actor INTO bad FROM new_events WHERE actor IS DISTINCT FROM who LIMIT 1;
              IF FOUND THEN
                RAISE EXCEPTION 'ECMS: audit event % names % as its actor, but this login is %', bad.seq,
                  bad.actor, who USING ERRCODE = 'insufficient_privilege';
              END IF;
              IF ecms_rank(what) < 2 THEN
                SELECT seq, action INTO bad FROM new_events
                  WHERE action = ANY({_array(APPROVER_ACTIONS)}) LIMIT 1;
                IF FOUND THEN
                  RAISE EXCEPTION 'ECMS: % is a reviewer and may not write % (approvers only)', who, bad.action
                    USING ERRCODE = 'insufficient_privilege';
                END IF;
              END IF;
              IF ecms_rank(what) < 3 THEN
                SELECT seq, action INTO bad FROM new_events WHERE action = ANY({_array(ADMIN_ACTIONS)}) LIMIT 1;
                IF FOUND THEN
                  RAISE EXCEPTION 'ECMS: % (%) may not write % (admins only)', who, what, bad.action
                    USING ERRCODE = 'insufficient_privilege';
                END IF;
              END IF;
              RETURN NULL;
            END $$""",
        # An event's identity never changes once written (sealing sets only its state hash and hash).
        f"""CREATE OR REPLACE FUNCTION {q}.ecms_audit_sealed() RETURNS trigger
            LANGUAGE plpgsql SET search_path = {q}, pg_temp AS $$
            BEGIN
              IF (NEW.seq, NEW.occurred_at, NEW.actor, NEW.action, NEW.entity_type, NEW.entity_id)
                 IS DISTINCT FROM (OLD.seq, OLD.occurred_at, OLD.actor, OLD.action, OLD.entity_type, OLD.entity_id)
              THEN
                RAISE EXCEPTION 'ECMS: audit event % cannot be rewritten', OLD.seq
                  USING ERRCODE = 'insufficient_privilege';
              END IF;
              RETURN NEW;
            END $$""",
        # Review decisions on certificates: only approvers (new rows, and changed rows of a statement).
        f"""CREATE OR REPLACE FUNCTION {q}.ecms_certificate_review() RETURNS trigger
            LANGUAGE plpgsql SET search_path = {q}, pg_temp AS $$
            DECLARE who text; what text; bad record;
            BEGIN
              IF NOT ecms_team_mode() THEN RETURN NULL; END IF;
              IF TG_OP = 'INSERT' THEN
                SELECT n.id, NULL::text AS was, n.review_state AS now INTO bad FROM new_rows n
                  WHERE n.review_state <> 'pending' LIMIT 1;
              ELSE
                SELECT n.id, o.review_state AS was, n.review_state AS now INTO bad
                  FROM new_rows n JOIN old_rows o ON o.id = n.id
                  WHERE n.review_state IS DISTINCT FROM o.review_state
                    AND (n.review_state IN ('approved', 'rejected', 'archived') OR o.review_state = 'archived')
                  LIMIT 1;
              END IF;
              IF NOT FOUND THEN RETURN NULL; END IF;
              SELECT person_name, person_role INTO who, what FROM ecms_person_role();
              IF ecms_rank(what) < 2 THEN
                RAISE EXCEPTION 'ECMS: % may not set certificate % to % (approvers only)',
                  coalesce(who, session_user::text), bad.id, bad.now USING ERRCODE = 'insufficient_privilege';
              END IF;
              RETURN NULL;
            END $$""",
        # Giving a login its group (admins only; run with the installer's rights to grant the groups).
        f"""CREATE OR REPLACE FUNCTION {q}.ecms_set_group(target text, wanted text) RETURNS void
            LANGUAGE plpgsql SECURITY DEFINER SET search_path = {q}, pg_temp AS $$
            DECLARE who text; what text; g text;
            BEGIN
              IF ecms_team_mode() THEN
                SELECT person_name, person_role INTO who, what FROM ecms_person_role();
                IF ecms_rank(what) < 3 THEN
                  RAISE EXCEPTION 'ECMS: only an admin may change what a login may do'
                    USING ERRCODE = 'insufficient_privilege';
                END IF;
              END IF;
              IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = target) THEN
                RAISE EXCEPTION 'ECMS: there is no database login %', target USING ERRCODE = 'undefined_object';
              END IF;
              FOREACH g IN ARRAY ARRAY['ecms_reviewer', 'ecms_approver', 'ecms_admin'] LOOP
                IF g <> coalesce('ecms_' || wanted, '') AND pg_has_role(target, g, 'MEMBER')
                   AND EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
                               JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = g AND u.rolname = target) THEN
                  EXECUTE format('REVOKE %I FROM %I', g, target);
                END IF;
              END LOOP;
              IF wanted IS NOT NULL THEN
                EXECUTE format('GRANT %I TO %I', 'ecms_' || wanted, target);
              END IF;
            END $$""",
    ]


def _triggers() -> list[str]:
    return [
        "DROP TRIGGER IF EXISTS ecms_audit_events ON audit_event",
        "CREATE TRIGGER ecms_audit_events AFTER INSERT ON audit_event REFERENCING NEW TABLE AS new_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION ecms_audit_events()",
        "DROP TRIGGER IF EXISTS ecms_audit_sealed ON audit_event",
        "CREATE TRIGGER ecms_audit_sealed BEFORE UPDATE ON audit_event FOR EACH ROW "
        "EXECUTE FUNCTION ecms_audit_sealed()",
        "DROP TRIGGER IF EXISTS ecms_certificate_review_insert ON certificate",
        "CREATE TRIGGER ecms_certificate_review_insert AFTER INSERT ON certificate REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION ecms_certificate_review()",
        "DROP TRIGGER IF EXISTS ecms_certificate_review_update ON certificate",
        "CREATE TRIGGER ecms_certificate_review_update AFTER UPDATE ON certificate "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION ecms_certificate_review()",
    ]


def _grants(schema: str) -> list[str]:
    q = '"' + schema.replace('"', '""') + '"'
    admin_tables = ", ".join(ADMIN_TABLES)
    return [
        # Any login may find out who it is in ECMS (and so be told it is disabled or unknown).
        f"GRANT USAGE ON SCHEMA {q} TO PUBLIC",
        "GRANT SELECT (id, name, role, login, active) ON person TO PUBLIC",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {q} TO ecms_reviewer",
        f"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {q} TO ecms_reviewer",
        f"REVOKE INSERT, UPDATE, DELETE ON {admin_tables} FROM ecms_reviewer",
        f"GRANT INSERT, UPDATE, DELETE ON {admin_tables} TO ecms_admin",
        "REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM ecms_reviewer",
        # The trail: append only (a unit of work seals its last event's state hash and hash).
        "REVOKE UPDATE, DELETE ON audit_event, audit_digest FROM ecms_reviewer",
        "GRANT UPDATE (state_sha256, hash) ON audit_event TO ecms_reviewer",
        "REVOKE DELETE ON audit_head FROM ecms_reviewer",
        f"REVOKE ALL ON FUNCTION {q}.ecms_set_group(text, text) FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {q}.ecms_set_group(text, text) TO ecms_admin",
    ]


_CREATE_GROUPS = """
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ecms_reviewer') THEN CREATE ROLE ecms_reviewer NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ecms_approver') THEN CREATE ROLE ecms_approver NOLOGIN; END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ecms_admin') THEN CREATE ROLE ecms_admin NOLOGIN; END IF;
  IF NOT pg_has_role('ecms_approver', 'ecms_reviewer', 'MEMBER') THEN GRANT ecms_reviewer TO ecms_approver; END IF;
  IF NOT pg_has_role('ecms_admin', 'ecms_approver', 'MEMBER') THEN GRANT ecms_approver TO ecms_admin; END IF;
END $$
"""


def install(connection: Connection) -> None:
    """Create (or bring up to date) the group roles, grants, functions and triggers in the connection's
    current schema, in the caller's transaction. Needs a login that may create roles (the first time)
    and owns the schema's tables: the one that runs ``ecms init``."""
    schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    # Several installs at once (parallel tests, two admins) must not race on the server-wide roles.
    connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('ecms team roles'))"))
    missing = connection.execute(text(
        "SELECT count(*) FROM unnest(ARRAY['ecms_reviewer', 'ecms_approver', 'ecms_admin']) g "
        "WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = g)")).scalar_one()
    if missing:
        may = connection.execute(text(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user")).scalar_one()
        if not may:
            raise DatabaseError("ecms init must create the group roles ecms_reviewer, ecms_approver and ecms_admin "
                                "once on this server, and this login may not create roles: run it once as a "
                                "login with CREATEROLE (or ask the server's administrator to create them).")
    connection.exec_driver_sql(_CREATE_GROUPS)
    for statement in [*_functions(schema), *_triggers(), *_grants(schema)]:
        connection.exec_driver_sql(statement.replace("%", "%%"))  # the driver's parameter style
