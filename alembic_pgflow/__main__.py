"""``python -m alembic_pgflow`` runs the ``alembic-pgflow`` command."""

from alembic_pgflow.cli.commands import run

run()
