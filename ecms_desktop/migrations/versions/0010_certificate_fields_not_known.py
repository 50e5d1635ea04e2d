"""a certificate's exempt reason and type may be empty: not known yet (a certificate made from an inbox
document before anyone read it says so instead of holding a guessed value)

Only the two CHECK constraints change; no row is touched. On SQLite a CHECK constraint cannot be altered and
rebuilding the certificate table would fire its foreign keys' ON DELETE actions (the connection has them on
and cannot turn them off inside the migration's transaction), so the table's stored definition is edited as
SQLite documents for loosening a constraint ("Making Other Kinds Of Table Schema Changes": writable_schema,
then a new schema_version); on PostgreSQL the constraints are dropped and added again.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""
from __future__ import annotations

from alembic import op
from sqlalchemy import text

from ecms_desktop.models.enums import CertificateType, ExemptReason, check_in

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_COLUMNS = (("exempt_reason", ExemptReason), ("certificate_type", CertificateType))


def _sqlite_edit(old: str, new: str) -> None:
    bind = op.get_bind()
    sql = bind.execute(text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'certificate'")).scalar_one()
    if old not in sql:
        raise RuntimeError(f"the certificate table's definition has no {old!r}: it was not made by ECMS")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar_one()
    bind.exec_driver_sql("PRAGMA writable_schema=ON")
    bind.execute(text("UPDATE sqlite_master SET sql = :sql WHERE type = 'table' AND name = 'certificate'"),
                 {"sql": sql.replace(old, new)})
    bind.exec_driver_sql(f"PRAGMA schema_version={int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema=OFF")


def _change(empty: bool) -> None:
    bind = op.get_bind()
    for column, enum in _COLUMNS:
        before, after = check_in(column, enum, empty=not empty), check_in(column, enum, empty=empty)
        if bind.dialect.name == "sqlite":
            _sqlite_edit(before, after)
        else:
            name = op.f(f"ck_certificate_{column}")
            op.drop_constraint(name, "certificate", type_="check")
            op.create_check_constraint(name, "certificate", after)


def upgrade() -> None:
    _change(empty=True)


def downgrade() -> None:
    bind = op.get_bind()
    unknown = bind.execute(text("SELECT id FROM certificate WHERE exempt_reason = '' OR certificate_type = '' "
                                "ORDER BY id LIMIT 20")).scalars().all()
    if unknown:
        raise RuntimeError("certificates " + ", ".join(map(str, unknown)) + " have no exempt reason or type yet, "
                           "which the older schema cannot hold: fill them in before going back")
    _change(empty=False)
