"""Read every flow definition from ``pgflow.flows``, ``pgflow.steps`` and ``pgflow.deps``.

Three queries, whatever the number of flows: one reads the schema's catalog (which tables,
columns and ``add_step`` arguments exist, and so which release features it has), one all
definitions as a single JSON document, one the server facts that bound a migration (pgmq, the
lock table's size). Columns an older release lacks read as pgflow's
defaults. The SQL is built only from this module's constants.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

import sqlalchemy

from alembic_pgflow.definition.gc_pause import paused_gc
from alembic_pgflow.definition.input_patterns import canonical_json
from alembic_pgflow.definition.releases import Feature
from alembic_pgflow.definition.shape import (
    DEFAULT_WHEN_EXHAUSTED,
    DEFAULT_WHEN_UNMET,
    FlowOptionValues,
    FlowShape,
    FlowStructure,
    StepOptionValues,
    StepStructure,
)
from alembic_pgflow.errors import PgflowSchemaMissingError

DEFINITION_TABLES = ("flows", "steps", "deps")

_CATALOG_SQL = """\
SELECT 'column', c.relname || '.' || a.attname
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'pgflow' AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'add_step', arg.name
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
CROSS JOIN LATERAL unnest(p.proargnames) AS arg(name)
WHERE n.nspname = 'pgflow' AND p.proname = 'add_step'"""

_SERVER_SQL = """\
SELECT to_regnamespace('pgmq') IS NOT NULL,
  current_setting('max_locks_per_transaction')::int
    * (current_setting('max_connections')::int
       + current_setting('max_prepared_transactions')::int)"""

# Which column or add_step argument shows that the schema has a feature.
_FEATURE_EVIDENCE: Mapping[Feature, tuple[str, str]] = {
    Feature.START_DELAY: ("add_step", "start_delay"),
    Feature.MAP_STEPS: ("add_step", "step_type"),
    Feature.STEP_CONDITIONS: ("add_step", "required_input_pattern"),
    Feature.QUEUE_MODE: ("column", "flows.queue_mode"),
}

# Step columns that not every release has, and what they read as where they are missing.
_OPTIONAL_STEP_COLUMNS: Mapping[str, str] = {
    "step_type": "'single'",
    "opt_start_delay": "NULL",
    "required_input_pattern": "NULL",
    "forbidden_input_pattern": "NULL",
    "when_unmet": f"'{DEFAULT_WHEN_UNMET}'",
    "when_exhausted": f"'{DEFAULT_WHEN_EXHAUSTED}'",
}


class _Rows(Protocol):
    def __call__(self, sql: str) -> Sequence[tuple[Any, ...]]: ...


@dataclass(frozen=True)
class StoredFlow:
    """One flow as the database holds it."""

    shape: FlowShape
    problems: tuple[str, ...] = ()
    """Ways the rows break pgflow's invariants (for example a wrong ``deps_count``)."""


@dataclass(frozen=True)
class PgflowCatalog:
    """Every flow definition in a database, and what its pgflow schema supports."""

    features: frozenset[Feature]
    flows: Mapping[str, StoredFlow]
    """By flow slug, in slug order."""
    has_pgmq: bool = False
    """Whether creating a flow also creates a pgmq queue (and takes its locks)."""
    lock_table_size: int = 6400
    """Lock entries the server has for all transactions together."""


def read_catalog(connection: sqlalchemy.Connection | Any) -> PgflowCatalog:
    """Read all flows from a SQLAlchemy ``Connection`` or a psycopg connection.

    Raises :class:`~alembic_pgflow.errors.PgflowSchemaMissingError` when the database has no
    pgflow definition tables.
    """
    rows = _row_reader(connection)
    found = {(kind, name) for kind, name in rows(_CATALOG_SQL)}
    columns = {name for kind, name in found if kind == "column"}
    missing = [
        table
        for table in DEFINITION_TABLES
        if not any(column.startswith(f"{table}.") for column in columns)
    ]
    if missing:
        raise PgflowSchemaMissingError(
            "the database has no pgflow definition schema (missing "
            + ", ".join(f"pgflow.{table}" for table in missing)
            + "): install pgflow in this database before managing flows"
        )
    features = frozenset(
        feature for feature, evidence in _FEATURE_EVIDENCE.items() if evidence in found
    )
    ((document,),) = rows(_definitions_sql(columns))
    flows = {}
    with paused_gc():
        for slug, max_attempts, base_delay, timeout, step_rows in json.loads(document):
            steps = [_StepRow(*row) for row in step_rows]
            flows[slug] = StoredFlow(
                shape=_shape(slug, max_attempts, base_delay, timeout, steps),
                problems=tuple(_problems(steps)),
            )
    ((has_pgmq, lock_table_size),) = rows(_SERVER_SQL)
    return PgflowCatalog(
        features=features, flows=flows, has_pgmq=has_pgmq, lock_table_size=lock_table_size
    )


class _StepRow(NamedTuple):
    """One step as the definitions query returns it (a JSON array in this order)."""

    slug: str
    step_index: int
    deps_count: int
    step_type: str
    max_attempts: int | None
    base_delay: int | None
    timeout: int | None
    start_delay: int | None
    required_input_pattern: str | None
    forbidden_input_pattern: str | None
    when_unmet: str
    when_exhausted: str
    dependencies: list[str]


def _definitions_sql(columns: set[str]) -> str:
    """One JSON document: ``[[slug, max_attempts, base_delay, timeout, [[step...], ...]], ...]``,
    built with joins and grouping (no query per flow or step)."""

    def step_column(name: str) -> str:
        return f"s.{name}" if f"steps.{name}" in columns else _OPTIONAL_STEP_COLUMNS[name]

    return f"""\
WITH step_deps AS (
  SELECT d.flow_slug, d.step_slug, json_agg(d.dep_slug ORDER BY d.dep_slug COLLATE "C") AS deps
  FROM pgflow.deps d
  GROUP BY d.flow_slug, d.step_slug
), flow_steps AS (
  SELECT s.flow_slug, json_agg(json_build_array(
      s.step_slug, s.step_index, s.deps_count, {step_column("step_type")},
      s.opt_max_attempts, s.opt_base_delay, s.opt_timeout, {step_column("opt_start_delay")},
      ({step_column("required_input_pattern")})::text,
      ({step_column("forbidden_input_pattern")})::text,
      {step_column("when_unmet")}, {step_column("when_exhausted")},
      coalesce(sd.deps, '[]'::json)
    ) ORDER BY s.step_index) AS steps
  FROM pgflow.steps s
  LEFT JOIN step_deps sd ON sd.flow_slug = s.flow_slug AND sd.step_slug = s.step_slug
  GROUP BY s.flow_slug
)
SELECT coalesce(json_agg(json_build_array(
    f.flow_slug, f.opt_max_attempts, f.opt_base_delay, f.opt_timeout,
    coalesce(fs.steps, '[]'::json)
  ) ORDER BY f.flow_slug COLLATE "C"), '[]'::json)::text
FROM pgflow.flows f
LEFT JOIN flow_steps fs ON fs.flow_slug = f.flow_slug
"""


def _shape(
    slug: str, max_attempts: int, base_delay: int, timeout: int, steps: list[_StepRow]
) -> FlowShape:
    return FlowShape(
        slug=slug,
        structure=FlowStructure(
            tuple(
                StepStructure(
                    slug=step.slug,
                    step_type=step.step_type,
                    dependencies=frozenset(step.dependencies),
                    when_unmet=step.when_unmet,
                    when_exhausted=step.when_exhausted,
                    required_input_pattern=_canonical_pattern(step.required_input_pattern),
                    forbidden_input_pattern=_canonical_pattern(step.forbidden_input_pattern),
                )
                for step in steps
            )
        ),
        options=FlowOptionValues(
            max_attempts=max_attempts,
            base_delay=base_delay,
            timeout=timeout,
            steps=tuple(
                StepOptionValues(
                    step.slug, step.max_attempts, step.base_delay, step.timeout, step.start_delay
                )
                for step in steps
            ),
        ),
    )


def _canonical_pattern(text: str | None) -> str | None:
    if text is None:
        return None
    return canonical_json(json.loads(text, parse_float=Decimal))


def _problems(steps: list[_StepRow]) -> list[str]:
    problems = []
    for position, step in enumerate(steps):
        if step.step_index != position:
            problems.append(
                f"step {step.slug!r} has step_index {step.step_index}, expected {position}"
            )
        if step.deps_count != len(step.dependencies):
            problems.append(
                f"step {step.slug!r} has deps_count {step.deps_count} but "
                f"{len(step.dependencies)} dependency rows"
            )
    return problems


def _row_reader(connection: sqlalchemy.Connection | Any) -> _Rows:
    if isinstance(connection, sqlalchemy.Connection):

        def sqlalchemy_rows(sql: str) -> Sequence[tuple[Any, ...]]:
            return [tuple(row) for row in connection.exec_driver_sql(sql)]

        return sqlalchemy_rows

    def dbapi_rows(sql: str) -> Sequence[tuple[Any, ...]]:
        cursor = connection.cursor()
        try:
            cursor.execute(sql)
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    return dbapi_rows
