"""The Alembic integration: settings, the autogenerate comparator, operations, renderers, and
the SQL that revisions run."""
