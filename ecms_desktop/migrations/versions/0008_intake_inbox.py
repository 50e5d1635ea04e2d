"""intake inbox: a document's company, page range, the document it was split from, and its discarding

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import ecms_desktop.models.base

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


#: The references to documents kept in other tables (ON DELETE SET NULL).
_KEPT = (("intake_record", "document_id"), ("permit_check", "evidence_document_id"))


def _references() -> list[tuple[str, str, list[tuple[int, int]]]]:
    bind = op.get_bind()
    return [(table, column, [(r[0], r[1]) for r in bind.execute(sa.text(
        f"SELECT id, {column} FROM {table} WHERE {column} IS NOT NULL")).all()]) for table, column in _KEPT]


def _restore(kept: list[tuple[str, str, list[tuple[int, int]]]]) -> None:
    """Put back the references to documents that rebuilding the table emptied: on SQLite a batch
    rebuilds the table and drops the old one, and that drop's implicit delete sets them to null."""
    bind = op.get_bind()
    for table, column, rows in kept:
        for row_id, document_id in rows:
            bind.execute(sa.text(f"UPDATE {table} SET {column} = :doc WHERE id = :id"),
                         {"doc": document_id, "id": row_id})


def upgrade() -> None:
    kept = _references()
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.add_column(sa.Column("company_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("first_page", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("last_page", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("split_from_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("discarded_at", ecms_desktop.models.base.UtcDateTime(timezone=True),
                                      nullable=True))
        batch_op.add_column(sa.Column("discarded_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("discard_reason", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_document_company_id"), ["company_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_document_split_from_id"), ["split_from_id"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_document_company_id_company"), "company", ["company_id"], ["id"],
                                    ondelete="RESTRICT")
        batch_op.create_foreign_key(batch_op.f("fk_document_split_from_id_document"), "document", ["split_from_id"],
                                    ["id"], ondelete="RESTRICT")
    _restore(kept)
    # Returned files that matched no request were stored without a certificate and listed nowhere: they
    # wait in their company's intake inbox from now on (``inbox``: the records of a database brought back
    # to 0007 and upgraded again).
    op.execute(
        "UPDATE document SET company_id = (SELECT MIN(r.company_id) FROM intake_record r "
        "WHERE r.document_id = document.id) "
        "WHERE certificate_id IS NULL AND EXISTS (SELECT 1 FROM intake_record r WHERE r.document_id = document.id "
        "AND r.outcome IN ('unmatched', 'inbox'))"
    )


def downgrade() -> None:
    kept = _references()
    # The split views go with their columns; no document may still point at another while the table is
    # rebuilt (ON DELETE RESTRICT).
    op.execute("UPDATE document SET split_from_id = NULL")
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_document_split_from_id_document"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_document_company_id_company"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_document_split_from_id"))
        batch_op.drop_index(batch_op.f("ix_document_company_id"))
        batch_op.drop_column("discard_reason")
        batch_op.drop_column("discarded_by")
        batch_op.drop_column("discarded_at")
        batch_op.drop_column("split_from_id")
        batch_op.drop_column("last_page")
        batch_op.drop_column("first_page")
        batch_op.drop_column("company_id")
    _restore(kept)
