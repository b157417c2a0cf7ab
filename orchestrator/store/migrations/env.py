"""Alembic environment: runs on the connection the store hands it, under a lock."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from orchestrator.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")

with context.begin_transaction():
    # Processes starting together must not migrate together. SQLite's BEGIN IMMEDIATE
    # (see store.engine) already serialises them; PostgreSQL needs an explicit lock.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(727465)"))
    context.run_migrations()
