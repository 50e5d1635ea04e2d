"""a renewal request may have no certificate: a first request asks a customer for a certificate for a state
where it buys but no certificate covers it (the exemption matrix's "Request" on a missing state)

``renewal_request.certificate_id`` and ``renewal_step.certificate_id`` may be empty; no row is touched. On
SQLite the NOT NULL is dropped by editing the tables' stored definitions as SQLite documents for loosening a
constraint (as 0010 does: rebuilding the tables would fire their foreign keys' ON DELETE actions); on
PostgreSQL the columns are altered. Going back refuses while a request or step has no certificate.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""
from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TABLES = ("renewal_request", "renewal_step")
#: How SQLAlchemy wrote the column in each table's definition (migration 0003).
_STRICT, _LOOSE = "\tcertificate_id INTEGER NOT NULL, \n", "\tcertificate_id INTEGER, \n"


def _sqlite_edit(table: str, old: str, new: str) -> None:
    bind = op.get_bind()
    sql = bind.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
                       {"name": table}).scalar_one()
    if sql.count(old) != 1:
        raise RuntimeError(f"the {table} table's definition has no {old.strip()!r}: it was not made by ECMS")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    bind.execute(text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = :name"),
                 {"sql": sql.replace(old, new), "name": table})
    bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")


def _change(nullable: bool) -> None:
    bind = op.get_bind()
    for table in _TABLES:
        if bind.dialect.name == "sqlite":
            old, new = (_STRICT, _LOOSE) if nullable else (_LOOSE, _STRICT)
            _sqlite_edit(table, old, new)
        else:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN certificate_id "
                       + ("DROP NOT NULL" if nullable else "SET NOT NULL"))


def upgrade() -> None:
    _change(nullable=True)


def downgrade() -> None:
    bind = op.get_bind()
    first = bind.execute(text("SELECT token FROM renewal_request WHERE certificate_id IS NULL ORDER BY id LIMIT 20")
                         ).scalars().all()
    steps = bind.execute(text("SELECT count(*) FROM renewal_step WHERE certificate_id IS NULL")).scalar_one()
    if first or steps:
        raise RuntimeError("renewal requests " + (", ".join(first) or "(deleted, with their steps kept)")
                           + " ask for a first certificate (they have none), which the older schema cannot "
                           "hold: cancel and delete them before going back")
    _change(nullable=False)
