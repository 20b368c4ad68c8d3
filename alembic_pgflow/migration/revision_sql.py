"""The SQL that generated revisions run, besides the compiler's own statements.

Revisions must still run if alembic-pgflow is later removed, so everything here is plain SQL
(``DO`` blocks where a decision is needed) and works in offline mode. No statement contains
``%``, and every value is a validated slug, a number, or JSON re-serialized by us.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from alembic_pgflow.comparison.differences import OptionChange
from alembic_pgflow.definition.input_patterns import canonical_json
from alembic_pgflow.definition.releases import Feature
from alembic_pgflow.definition.shape import (
    DEFAULT_WHEN_EXHAUSTED,
    DEFAULT_WHEN_UNMET,
    FlowStructure,
    StepStructure,
)
from alembic_pgflow.definition.sql_text import do_block, quote_text, sql_value

# The key of pg_advisory_xact_lock(bigint) that serializes flow migrations: b"pgflow". One key
# for all slugs, so a revision of thousands of flows takes one lock-table entry, not thousands.
ADVISORY_LOCK_KEY = int.from_bytes(b"pgflow", "big")

_OPTION_COLUMNS = {
    "max_attempts": "opt_max_attempts",
    "base_delay": "opt_base_delay",
    "timeout": "opt_timeout",
    "start_delay": "opt_start_delay",
}


def expected_structure_json(structure: FlowStructure, features: frozenset[Feature]) -> str:
    """The structure the guard must find, one step a line, each with only what differs from
    pgflow's defaults (a single step, no dependencies, ``skip``/``fail``, no patterns)."""
    steps = ",\n".join("  " + _step_json(step, features) for step in structure.steps)
    return f"[\n{steps}\n]" if steps else "[]"


def _step_json(step: StepStructure, features: frozenset[Feature]) -> str:
    fields: dict[str, Any] = {"slug": step.slug}
    if step.step_type != "single":
        fields["step_type"] = step.step_type
    if step.dependencies:
        fields["dependencies"] = sorted(step.dependencies)
    if Feature.STEP_CONDITIONS in features:
        if step.when_unmet != DEFAULT_WHEN_UNMET:
            fields["when_unmet"] = step.when_unmet
        if step.when_exhausted != DEFAULT_WHEN_EXHAUSTED:
            fields["when_exhausted"] = step.when_exhausted
        for name in ("required_input_pattern", "forbidden_input_pattern"):
            pattern = getattr(step, name)
            if pattern is not None:
                fields[name] = json.loads(pattern, parse_float=Decimal)
    # Spaced, so that no ":" is followed by a word (SQLAlchemy's text() would see a bind).
    items = (
        f"{json.dumps(key)}: {canonical_json(value, spaced=True)}" for key, value in fields.items()
    )
    return "{" + ", ".join(items) + "}"


GUARD_FUNCTION = "pg_temp.alembic_pgflow_guard"
"""A temporary function: created by the revision, gone when its session ends."""


def guard_function_sql(features: frozenset[Feature]) -> str:
    """Create the guard that each new flow of a revision calls before ``create_flow``.

    The guard serializes flow migrations until the transaction ends, lets the statements after
    it run when the slug is new or already holds the expected structure (they change nothing
    then), and fails when the slug holds another structure. It reads only the step columns
    the database's pgflow has.
    """
    parts = [
        "jsonb_build_object('slug', s.step_slug)",
        _unless("s.step_type = 'single'", "step_type", "s.step_type"),
        """coalesce((
        SELECT jsonb_build_object(
          'dependencies', jsonb_agg(d.dep_slug ORDER BY d.dep_slug COLLATE "C"))
        FROM pgflow.deps d WHERE d.flow_slug = s.flow_slug AND d.step_slug = s.step_slug
        HAVING count(*) > 0
      ), '{}')""",
    ]
    if Feature.STEP_CONDITIONS in features:
        parts += [
            _unless(f"s.when_unmet = '{DEFAULT_WHEN_UNMET}'", "when_unmet", "s.when_unmet"),
            _unless(
                f"s.when_exhausted = '{DEFAULT_WHEN_EXHAUSTED}'",
                "when_exhausted",
                "s.when_exhausted",
            ),
            *(
                _unless(f"s.{name} IS NULL", name, f"s.{name}")
                for name in ("required_input_pattern", "forbidden_input_pattern")
            ),
        ]
    step_object = "\n      || ".join(parts)
    return f"""\
CREATE OR REPLACE FUNCTION {GUARD_FUNCTION}(p_slug text, p_expected jsonb, p_new_slug text)
RETURNS void LANGUAGE plpgsql AS $pgflow$
DECLARE
  stored jsonb;
BEGIN
  PERFORM pg_advisory_xact_lock({ADVISORY_LOCK_KEY});
  IF NOT EXISTS (SELECT FROM pgflow.flows f WHERE f.flow_slug = p_slug) THEN
    RETURN;
  END IF;
  SELECT coalesce(jsonb_agg(
      {step_object}
    ORDER BY s.step_index), '[]'::jsonb)
  INTO stored
  FROM pgflow.steps s WHERE s.flow_slug = p_slug;
  IF stored IS DISTINCT FROM p_expected THEN
    RAISE EXCEPTION USING
      MESSAGE = 'pgflow flow ' || quote_literal(p_slug) || ' already exists with another '
        || 'structure; this migration cannot create it, and create_flow/add_step would '
        || 'corrupt it',
      DETAIL = 'in the database ' || stored::text || ', in this migration ' || p_expected::text,
      HINT = 'Give the flow in code a new slug (for example ' || p_new_slug
        || ') and generate the migration again.';
  END IF;
END
$pgflow$"""


def _unless(is_default: str, key: str, value: str) -> str:
    return f"CASE WHEN {is_default} THEN '{{}}' ELSE jsonb_build_object('{key}', {value}) END"


def creation_guard_sql(
    slug: str, structure: FlowStructure, features: frozenset[Feature], suggested_slug: str
) -> str:
    """The guard's call for one new flow, with the structure it must find if the slug exists."""
    expected = quote_text(expected_structure_json(structure, features))
    return f"SELECT {GUARD_FUNCTION}({quote_text(slug)}, {expected}, {quote_text(suggested_slug)})"


def creation_block_sql(statements: Sequence[str]) -> str:
    """The same statements as one ``DO`` block of ``PERFORM``s: one round trip per flow."""
    calls = "".join(
        f"  PERFORM {statement.rstrip().removesuffix(';').removeprefix('SELECT ')};\n"
        for statement in statements
    )
    return do_block(f"BEGIN\n{calls}END")


REMOVER_FUNCTION = "pg_temp.alembic_pgflow_remove"
"""A temporary function: created by the downgrade that removes flows, gone when its session ends."""


def remover_function_sql() -> str:
    """Create the function that each flow a downgrade removes calls.

    It refuses a flow that has runs, then deletes the flow's deps, steps and row, and its pgmq
    queue where pgmq exists. Tables and schemas that may be missing are looked up before any
    statement that reads them is planned.
    """
    return f"""\
CREATE OR REPLACE FUNCTION {REMOVER_FUNCTION}(p_slug text)
RETURNS void LANGUAGE plpgsql AS $pgflow$
BEGIN
  IF to_regclass('pgflow.runs') IS NOT NULL THEN
    IF EXISTS (SELECT FROM pgflow.runs r WHERE r.flow_slug = p_slug) THEN
      RAISE EXCEPTION USING
        MESSAGE = 'pgflow flow ' || quote_literal(p_slug) || ' has runs; removing its '
          || 'definition would orphan its history, so this downgrade is refused',
        HINT = 'Keep the flow (remove its call from this downgrade), or archive and delete '
          || 'its runs deliberately first.';
    END IF;
  END IF;
  DELETE FROM pgflow.deps d WHERE d.flow_slug = p_slug;
  DELETE FROM pgflow.steps s WHERE s.flow_slug = p_slug;
  DELETE FROM pgflow.flows f WHERE f.flow_slug = p_slug;
  IF to_regnamespace('pgmq') IS NOT NULL THEN
    IF EXISTS (SELECT FROM pgmq.list_queues() q WHERE q.queue_name = p_slug) THEN
      PERFORM pgmq.drop_queue(p_slug);
    END IF;
  END IF;
END
$pgflow$"""


def removal_sql(slug: str) -> str:
    """The remover's call for one flow."""
    return f"SELECT {REMOVER_FUNCTION}({quote_text(slug)})"


def options_update_statements(slug: str, changes: Sequence[OptionChange]) -> list[str]:
    """``UPDATE`` statements that set the changed options to their ``after`` values: one for
    the flow, one per step, in the order the changes come."""
    name = quote_text(slug)
    statements = []
    targets: dict[str | None, list[OptionChange]] = {}
    for change in changes:
        targets.setdefault(change.step, []).append(change)
    for step, step_changes in targets.items():
        assignments = ", ".join(
            f"{_OPTION_COLUMNS[c.option]} = {sql_value(c.after)}" for c in step_changes
        )
        if step is None:
            statements.append(f"UPDATE pgflow.flows SET {assignments} WHERE flow_slug = {name}")
        else:
            statements.append(
                f"UPDATE pgflow.steps SET {assignments} "
                f"WHERE flow_slug = {name} AND step_slug = {quote_text(step)}"
            )
    return statements
