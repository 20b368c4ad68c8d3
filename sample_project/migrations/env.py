"""Alembic environment of the sample shop, set up as alembic-pgflow's docs describe."""

from logging.config import fileConfig

from alembic import context
from shop.models import metadata
from sqlalchemy import create_engine, pool

import alembic_pgflow  # noqa: F401  (registers the pgflow autogenerate plugin)
from alembic_pgflow.migration.project import database_url

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)

target_metadata = metadata


def run_migrations_offline() -> None:
    """Write the SQL instead of running it (alembic upgrade --sql)."""
    context.configure(
        url=database_url(config),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on DATABASE_URL, sqlalchemy.url or the embedded PostgreSQL."""
    engine = create_engine(database_url(config), poolclass=pool.NullPool)
    with engine.connect() as connection:
        # One transaction per revision: flows' pgmq queues take many locks, and a fresh
        # database upgraded through every revision at once could run out of lock-table entries.
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
