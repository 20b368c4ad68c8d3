"""The pgflow-compatible definition schema for tests and local development.

Production databases run a real pgflow installation. For an empty local or embedded database,
this stand-in reproduces pgflow 0.14's definition layer (tables, constraints, ``create_flow``,
``add_step``) so that migrations can be tried; it is only ever installed on explicit request.
"""

from __future__ import annotations

from importlib.resources import files

DEV_SCHEMA_RELEASE = "0.14"


def dev_schema_sql() -> str:
    """The SQL script that creates the stand-in ``pgflow`` schema."""
    return (
        files("alembic_pgflow.database")
        .joinpath("sql/pgflow_definition_0_14.sql")
        .read_text("utf-8")
    )
