"""The ``alembic-pgflow`` command."""
