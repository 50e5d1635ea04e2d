"""what was read from a document when it arrived: a table of its own beside the document

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import ecms_desktop.models.base

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A table of its own: the document's row (and its digest) is not touched, documents that arrived before
    # were not read and have no row here.
    op.create_table(
        "document_extraction",
        sa.Column("document_id", sa.Integer(), sa.ForeignKey("document.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("extraction", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("read_at", ecms_desktop.models.base.UtcDateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("document_extraction")
