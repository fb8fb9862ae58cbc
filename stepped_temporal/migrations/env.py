"""Alembic environment for running Stepped's migrations on their own."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, engine_from_config, pool

from stepped_temporal.store import SteppedBase


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=SteppedBase.metadata)
    with context.begin_transaction():
        context.run_migrations()


config = context.config
handed_in: Connection | None = config.attributes.get("connection")
if handed_in is not None:
    _run(handed_in)
else:
    engine = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with engine.connect() as connection:
        _run(connection)
