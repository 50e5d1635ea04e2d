"""who sent each renewal or first request (team mode: every request names the person)

``renewal_request.requested_by`` is added, empty for the requests already sent (their ``renewal.requested``
audit event names who sent them). Going back drops it (the audit trail keeps the names).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("renewal_request") as batch_op:
        batch_op.add_column(sa.Column("requested_by", sa.String(length=100), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("renewal_request") as batch_op:
        batch_op.drop_column("requested_by")
