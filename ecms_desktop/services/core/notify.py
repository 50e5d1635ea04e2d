"""PostgreSQL tells every listening desk when audit events are committed (see
:mod:`~ecms_desktop.services.core.changes`): a trigger on ``audit_event`` notifies :data:`CHANNEL`."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

#: The PostgreSQL notification channel (the payload is the schema of the ``audit_event`` written to).
CHANNEL = "ecms_changes"
TRIGGER = "ecms_audit_event_notify"
_FUNCTION = "ecms_notify_audit_event"


def install_notify(connection: Connection) -> None:
    """Make every commit that writes audit events notify :data:`CHANNEL` (PostgreSQL; idempotent).
    The trigger runs once per statement, so an import of 200,000 events notifies once; the
    notification is delivered at commit, never for a unit of work that was rolled back."""
    if connection.dialect.name != "postgresql":
        return
    connection.execute(text(
        f"CREATE OR REPLACE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        f"BEGIN\n  PERFORM pg_notify('{CHANNEL}', TG_TABLE_SCHEMA);\n  RETURN NULL;\nEND\n$$"))
    connection.execute(text(f"DROP TRIGGER IF EXISTS {TRIGGER} ON audit_event"))
    connection.execute(text(f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON audit_event "
                            f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()"))
