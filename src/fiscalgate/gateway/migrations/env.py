"""Alembic environment: always run with a connection handed over by `fiscalgate.gateway.db`."""

from alembic import context

from fiscalgate.gateway.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through fiscalgate.gateway.db.migrate(database_url)")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
