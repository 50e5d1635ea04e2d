"""sending mail with an OAuth 2.0 sign-in (Microsoft 365, Gmail) besides the password

``smtp_profile`` gets the sign-in method (``password`` for every profile saved so far), the provider,
the customer's app registration (client id), the Microsoft tenant and an identity-provider URL override.
The tokens are in the OS keyring, never here. Going back drops the columns (an OAuth profile is then
read as a password profile without a password).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_COLUMNS = (("auth_method", 10, "password"), ("oauth_provider", 20, ""), ("oauth_client_id", 255, ""),
            ("oauth_tenant", 255, ""), ("oauth_idp_url", 500, ""))


def upgrade() -> None:
    with op.batch_alter_table("smtp_profile") as batch_op:
        for name, length, default in _COLUMNS:
            batch_op.add_column(sa.Column(name, sa.String(length=length), nullable=False, server_default=default))


def downgrade() -> None:
    with op.batch_alter_table("smtp_profile") as batch_op:
        for name, _length, _default in reversed(_COLUMNS):
            batch_op.drop_column(name)
