"""Alembic environment: runs migrations on the connection ECMS hands it (see services/core/database.py)."""

from __future__ import annotations

from alembic import context

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
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
