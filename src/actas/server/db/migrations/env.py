"""Alembic environment: run with the engine actas hands over in ``config.attributes``."""

from __future__ import annotations

from alembic import context

from actas.server.db.engine import hold_startup_lock
from actas.server.db.schema import Base

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        hold_startup_lock(connection)
        context.run_migrations()
    connection.commit()
