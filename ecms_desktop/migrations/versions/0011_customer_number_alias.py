"""customer numbers that now mean another customer: after two customers that are the same business are merged,
the merged customer's number keeps matching the surviving one (imports, intake, sales)

A new table only; no row is touched.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ecms_desktop.models.base

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_number_alias",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=False),
        sa.Column("number_key", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("merged_name", sa.String(length=300), nullable=False),
        sa.Column("created_at", ecms_desktop.models.base.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["company_id"], ["company.id"], ondelete="RESTRICT",
                                name=op.f("fk_customer_number_alias_company_id_company")),
        sa.ForeignKeyConstraint(["customer_id"], ["customer.id"], ondelete="CASCADE",
                                name=op.f("fk_customer_number_alias_customer_id_customer")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_number_alias")),
        sa.UniqueConstraint("company_id", "number_key", name=op.f("uq_customer_number_alias_company_id_number_key")),
    )
    with op.batch_alter_table("customer_number_alias", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_number_alias_company_id"), ["company_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_customer_number_alias_customer_id"), ["customer_id"], unique=False)


def downgrade() -> None:
    bind = op.get_bind()
    merged = bind.execute(sa.text("SELECT number FROM customer_number_alias ORDER BY id LIMIT 20")).scalars().all()
    if merged:
        raise RuntimeError("customer numbers " + ", ".join(merged) + " were merged into other customers, which the "
                           "older schema cannot remember: going back would make them unknown numbers")
    op.drop_table("customer_number_alias")
