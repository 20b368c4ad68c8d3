"""``python -m alembic_pgflow`` runs the ``alembic-pgflow`` command."""

from alembic_pgflow.cli import run

run()
