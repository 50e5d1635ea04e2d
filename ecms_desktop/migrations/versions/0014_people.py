"""the people who work in ECMS (their role and database login) and the certificates they have claimed

``person`` names everyone who acts; on PostgreSQL the database maps each session's login to a person to
stamp audit events and to decide what the login may do (installed by ``ecms init``, see
``services/core/team_sql.py``). ``certificate_claim`` says which reviewer works a pending certificate.
Both start empty: the person who upgrades is registered by ``ecms init``. Going back refuses while any
certificate is claimed or a person other than the first admin exists (the older schema cannot keep them).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from ecms_desktop.models.base import UtcDateTime

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "person",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("login", sa.String(length=63), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person")),
        sa.UniqueConstraint("name", name=op.f("uq_person_name")),
        sa.UniqueConstraint("login", name=op.f("uq_person_login")),
    )
    op.create_table(
        "certificate_claim",
        sa.Column("certificate_id", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=False),
        sa.Column("claimed_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["certificate_id"], ["certificate.id"], ondelete="CASCADE",
                                name=op.f("fk_certificate_claim_certificate_id_certificate")),
        sa.PrimaryKeyConstraint("certificate_id", name=op.f("pk_certificate_claim")),
    )
    op.create_index(op.f("ix_certificate_claim_claimed_by"), "certificate_claim", ["claimed_by"])


def downgrade() -> None:
    bind = op.get_bind()
    claimed = bind.execute(sa.text("SELECT count(*) FROM certificate_claim")).scalar()
    people = bind.execute(sa.text("SELECT count(*) FROM person")).scalar()
    if claimed or (people or 0) > 1:
        raise RuntimeError(f"{claimed} certificate(s) are claimed and {people} people are registered, which the "
                           "older schema cannot keep: going back would lose who they are")
    op.drop_index(op.f("ix_certificate_claim_claimed_by"), table_name="certificate_claim")
    op.drop_table("certificate_claim")
    op.drop_table("person")
