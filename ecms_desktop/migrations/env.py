"""Alembic environment: runs migrations on the connection ECMS hands it (see services/core/database.py)."""

from __future__ import annotations

import warnings

from alembic import context
from sqlalchemy.exc import SAWarning

from ecms_desktop.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:  # pragma: no cover - ECMS always passes its own connection
        raise RuntimeError("run migrations through `ecms init`, which supplies the connection")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction(), warnings.catch_warnings():
        # A batch operation on SQLite reflects the tables its table refers to; SQLAlchemy cannot reflect
        # their expression indexes (lower(...)) and says so, but those tables are not rebuilt and keep
        # their indexes, so the warning would only alarm whoever runs ``ecms init``.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index",
                                SAWarning)
        context.run_migrations()


run_migrations_online()
