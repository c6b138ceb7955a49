"""Alembic environment: runs migrations on the engine handed over by partnercast.core.db."""

from __future__ import annotations

from alembic import context

from partnercast.models import metadata

config = context.config


def run_migrations_online() -> None:
    engine = config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
