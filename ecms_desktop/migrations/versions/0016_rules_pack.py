"""the rules packs installed in the database (``ecms rules install``)

``rules_pack`` keeps each installed rules pack archive with its version, checksum, who installed it and
whether it is in force (``active``), the one to go back to (``previous``) or ``retired``. It starts empty:
the program's own pack is in force. Going back refuses while a pack is installed (the older program
would silently use other rules).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ecms_desktop.models.base import UtcDateTime

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rules_pack",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=40), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("archive", sa.LargeBinary(), nullable=False),
        sa.Column("installed_at", UtcDateTime(), nullable=False),
        sa.Column("installed_by", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rules_pack")),
    )
    op.create_index(op.f("ix_rules_pack_sha256"), "rules_pack", ["sha256"])
    op.create_index(op.f("ix_rules_pack_status"), "rules_pack", ["status"])


def downgrade() -> None:
    active = op.get_bind().execute(sa.text("SELECT count(*) FROM rules_pack WHERE status = 'active'")).scalar()
    if active:
        raise RuntimeError("a rules pack is installed in this database, which the older schema cannot keep: going "
                           "back would change the rules in force without a trace; go back to the program's own "
                           "pack first (`ecms rules rollback`)")
    op.drop_index(op.f("ix_rules_pack_status"), table_name="rules_pack")
    op.drop_index(op.f("ix_rules_pack_sha256"), table_name="rules_pack")
    op.drop_table("rules_pack")
