"""Alembic environment: runs on the connection learnhours hands it (see warehouse/db.py)."""

from alembic import context

from learnhours.warehouse.schema import compared, metadata

connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` run by hand: use the configured URL
    from learnhours.warehouse.db import create_engine_for

    connection = create_engine_for(context.config.get_main_option("sqlalchemy.url") or "").connect()

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=True,
    include_object=compared(connection.dialect.name),
)
with context.begin_transaction():
    context.run_migrations()
