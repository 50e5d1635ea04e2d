"""integrity: the state digests of audited records (audit_digest) and each event's state hash

Revision ID: 0005
Revises: 0002, 0003, 0004
Create Date: 2026-12-06

The digests of the records already present are recorded by ``ecms init`` right after this upgrade
(one audited "integrity baseline"), so later changes made outside the program are detected.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = ("0002", "0003", "0004")
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("audit_event") as batch:
        batch.add_column(sa.Column("state_sha256", sa.String(length=64), nullable=True))
    op.create_table(
        "audit_digest",
        sa.Column("seq", _SEQ, autoincrement=False, nullable=False),
        sa.Column("n", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("entity_type", sa.String(length=40), nullable=False),
        sa.Column("entity_key", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("seq", "n", name=op.f("pk_audit_digest")),
    )
    op.create_index("ix_audit_digest_entity", "audit_digest", ["entity_type", "entity_key", "seq"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_digest_entity", table_name="audit_digest")
    op.drop_table("audit_digest")
    with op.batch_alter_table("audit_event") as batch:
        batch.drop_column("state_sha256")
