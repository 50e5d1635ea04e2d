"""the amount the ERP charged tax on, per sales line (optional): it tells tax on the exempt portion of a
partly exempt sale (over-collection) from correct tax on its taxable portion

``transaction_line.taxed_amount`` is added, empty for every existing line (not given). Going back refuses
while a line has one (the older schema cannot keep it).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("transaction_line", sa.Column("taxed_amount", sa.Numeric(precision=18, scale=4), nullable=True))


def downgrade() -> None:
    bind = op.get_bind()
    given = bind.execute(sa.text("SELECT invoice_number FROM transaction_line WHERE taxed_amount IS NOT NULL "
                                 "ORDER BY id LIMIT 20")).scalars().all()
    if given:
        raise RuntimeError("sales lines of invoices " + ", ".join(given) + " give the amount tax was charged on, "
                           "which the older schema cannot keep: going back would lose it")
    op.drop_column("transaction_line", "taxed_amount")
