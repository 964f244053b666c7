"""Alembic's environment: run by ``store.migrate`` (and so by every start and by
``inquiry-router db upgrade``) on a connection it is handed; no alembic.ini, no logging set-up."""

from __future__ import annotations

from alembic import context

from inquiry_router.store.tables import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
)
with context.begin_transaction():
    context.run_migrations()
