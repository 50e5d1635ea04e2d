"""what was read from a document when it arrived: the document's extraction (method, form, fields)

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


#: The references to documents kept in other tables (ON DELETE SET NULL).
_KEPT = (("intake_record", "document_id"), ("permit_check", "evidence_document_id"))


def upgrade() -> None:
    # A nullable column is added in place (no table rebuild on SQLite); documents that arrived before
    # were not read and keep null.
    op.add_column("document", sa.Column("extraction", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                                        nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    kept = [(table, column, [(r[0], r[1]) for r in bind.execute(sa.text(
        f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")).all()]) for table, column in _KEPT]
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_column("extraction")
    # On SQLite the batch rebuilds the table and drops the old one, whose implicit delete sets the
    # references to documents to null: put them back.
    for table, column, rows in kept:
        for row_id, document_id in rows:
            bind.execute(sa.text(f"UPDATE {table} SET {column} = :doc WHERE id = :id"),
                         {"doc": document_id, "id": row_id})
