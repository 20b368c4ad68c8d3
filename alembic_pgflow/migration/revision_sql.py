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


def expected_structure_json(structure: FlowStructure) -> str:
    """The structure the guard must find, one step a line, each with only what differs from
    pgflow's defaults (a single step, no dependencies, ``skip``/``fail``, no patterns)."""
    steps = ",\n".join("  " + _step_json(step) for step in structure.steps)
    return f"[\n{steps}\n]" if steps else "[]"


def _step_json(step: StepStructure) -> str:
    fields: dict[str, Any] = {"slug": step.slug}
    if step.step_type != "single":
        fields["step_type"] = step.step_type
    if step.dependencies:
        fields["dependencies"] = sorted(step.dependencies)
    if step.when_unmet != DEFAULT_WHEN_UNMET:
        fields["when_unmet"] = step.when_unmet
    if step.when_exhausted != DEFAULT_WHEN_EXHAUSTED:
        fields["when_exhausted"] = step.when_exhausted
    for name in ("required_input_pattern", "forbidden_input_pattern"):
        pattern = getattr(step, name)
        if pattern is not None:
            fields[name] = json.loads(pattern, parse_float=Decimal, parse_int=Decimal)
    # Spaced, so that no ":" is followed by a word (SQLAlchemy's text() would see a bind).
    items = (
        f"{json.dumps(key)}: {canonical_json(value, spaced=True)}" for key, value in fields.items()
    )
    return "{" + ", ".join(items) + "}"


GUARD_FUNCTION = "pg_temp.alembic_pgflow_guard"
"""A temporary function: created by the revision, gone when its session ends."""

REMOVER_FUNCTION = "pg_temp.alembic_pgflow_remove"
"""A temporary function: created by the downgrade that removes flows, gone with its session."""

CLAIMS_TABLE = "alembic_pgflow.flow_claims"
"""Which revisions created or found each flow: what a downgrade may remove."""

LOCKS_PER_FLOW = 25
"""Lock-table entries one new or removed flow holds until commit with real pgflow and pgmq
(measured: 25 for a 10-step flow on PostgreSQL 18.6, 21 on 15.18; mostly the queue's table,
indexes and sequence)."""

LOCK_CAPACITY_FACTOR = 2
"""Revisions refuse to run once one transaction would hold more than this many times the
server's nominal lock table. PostgreSQL lends the table spare shared memory, so one
transaction failed with "out of shared memory" only at about 3.9 times (991 new flows, 24,775
entries, against 6,400 on default settings); twice leaves a margin for every other session."""

# The keys pgflow's own compile path takes: pg_advisory_xact_lock(1, hashtext(flow_slug)) in
# 0.10-0.16, and (1, hashtext(lower(flow_slug))) from 0.17 (also in create_flow, add_step and
# delete_flow_and_data there). Taking both serializes with a worker of any release.
_PGFLOW_LOCKS = """\
  PERFORM pg_advisory_xact_lock(1, hashtext(p_slug));
  PERFORM pg_advisory_xact_lock(1, hashtext(lower(p_slug)));"""


def prologue_sql(flows: int, *, creates: bool, new_slugs: Sequence[str] = ()) -> str:
    """The first statement of each side of a revision that creates or removes flows.

    It stops with a clear error where pgflow is not installed, serializes flow migrations (one
    advisory lock for all of them), refuses to go on when this transaction would run the
    server out of lock-table entries (naming the fix), and, on the side that creates flows,
    creates the claims table where it is missing.

    With ``new_slugs`` (the flows this side creates, in order) it then takes pgflow's
    compile-path locks for each of them and refuses a slug that differs only in case from a
    stored flow or from an earlier one of the list, all in one statement each: a lookup that
    ignores case has no index in pgflow, so the guard doing it for each flow would scan every
    stored flow once a flow (quadratic in the flows of a revision). The locks are held from
    here on, so no creator that takes them (a pgflow worker compiling one of these flows,
    another revision) can slip a flow in between this check and the flow's creation.
    """
    claims = (
        f"""
  CREATE SCHEMA IF NOT EXISTS alembic_pgflow;
  CREATE TABLE IF NOT EXISTS {CLAIMS_TABLE} (
    flow_slug text NOT NULL,
    revision text NOT NULL,
    created boolean NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (flow_slug, revision)
  );
  COMMENT ON TABLE {CLAIMS_TABLE} IS 'Alembic revisions that created (created) or found '
    'each pgflow flow; a downgrade removes a flow only when no other revision claims it and '
    'one of them created it. Written by alembic-pgflow revisions.';"""
        if creates
        else ""
    )
    new_flows, check = ("", "")
    if creates and new_slugs:
        new_flows = (
            f"\n  new_flows CONSTANT text[] := {_text_array(new_slugs)};"
            "\n  slug text;\n  other text;"
        )
        check = _NEW_FLOWS_CHECK
    return do_block(
        f"""\
DECLARE
  held bigint;
  capacity bigint;
  needed bigint := {flows * LOCKS_PER_FLOW};{new_flows}
BEGIN
  IF to_regclass('pgflow.flows') IS NULL THEN
    RAISE EXCEPTION USING
      MESSAGE = 'pgflow is not installed in database ' || quote_ident(current_database())
        || ', and this revision {"creates" if creates else "removes"} pgflow flows',
      HINT = 'Install pgflow in this database first (its own migrations; for development, '
        || 'alembic-pgflow dev install-pgflow), then run the migration again.';
  END IF;
  PERFORM pg_advisory_xact_lock({ADVISORY_LOCK_KEY});{claims}
  IF to_regnamespace('pgmq') IS NOT NULL THEN
    SELECT count(*) INTO held FROM pg_catalog.pg_locks l WHERE l.pid = pg_backend_pid();
    capacity := {LOCK_CAPACITY_FACTOR} * current_setting('max_locks_per_transaction')::bigint
      * (current_setting('max_connections')::bigint
         + current_setting('max_prepared_transactions')::bigint);
    IF held + needed > capacity THEN
      RAISE EXCEPTION USING
        MESSAGE = 'alembic-pgflow: this transaction already holds ' || held || ' locks and '
          || 'its next revision needs about ' || needed || ' more for {flows} pgflow flow(s), '
          || 'past the ' || capacity || ' this server can hold safely; PostgreSQL would fail '
          || 'with "out of shared memory"',
        HINT = 'Run each revision in its own transaction: transaction_per_migration=True in '
          || 'context.configure(...) of env.py; or raise max_locks_per_transaction.';
    END IF;
  END IF;{check}
END"""
    )


# The prologue's locks and case check for the flows a revision creates (see prologue_sql).
_NEW_FLOWS_CHECK = """
  -- pgflow's compile-path locks for each new flow, held until commit; then no new slug may
  -- differ only in case from a stored flow or an earlier new one (one pgmq queue for both):
  -- grouped, so that it costs the same whatever the planner guesses of the array's size.
  PERFORM pg_advisory_xact_lock(1, hashtext(n.slug)),
    pg_advisory_xact_lock(1, hashtext(lower(n.slug)))
  FROM unnest(new_flows) n(slug);
  IF EXISTS (
    SELECT FROM (SELECT f.flow_slug, 0 FROM pgflow.flows f
                 UNION ALL SELECT * FROM unnest(new_flows) WITH ORDINALITY) a(slug, position)
    GROUP BY lower(a.slug)
    HAVING count(DISTINCT a.slug) > 1 AND max(a.position) > 0
  ) THEN
    SELECT n.slug, o.slug INTO slug, other
    FROM unnest(new_flows) WITH ORDINALITY n(slug, position)
    JOIN (SELECT f.flow_slug, 0 FROM pgflow.flows f
          UNION ALL SELECT * FROM unnest(new_flows) WITH ORDINALITY) o(slug, position)
      ON lower(o.slug) = lower(n.slug) AND o.slug <> n.slug AND o.position < n.position
    ORDER BY n.position
    LIMIT 1;
    RAISE EXCEPTION USING
      MESSAGE = 'pgflow flow ' || quote_literal(slug) || ' cannot be created: flow '
        || quote_literal(other) || ' differs from it only in case, and pgflow gives both one '
        || 'pgmq queue (0.17 treats them as one flow)',
      HINT = 'Give the flow in code another slug and generate the migration again.';
  END IF;"""


def _text_array(values: Sequence[str]) -> str:
    """``ARRAY[...]`` of string literals, several a line, lines of at most 100 characters."""
    lines: list[str] = []
    for literal in map(quote_text, values):
        if lines and len(lines[-1]) + len(literal) + 2 <= 100:
            lines[-1] += f" {literal},"
        else:
            lines.append(f"    {literal},")
    lines[-1] = lines[-1].removesuffix(",")
    return "ARRAY[\n" + "\n".join(lines) + "\n  ]"


# The stored structure in the same form as expected_structure_json, from any release: each
# step row is read through to_jsonb, so a column an older pgflow lacks reads as its default
# instead of failing (a revision written against one release may run on another).
_STORED_STEPS = """\
coalesce(jsonb_agg(
        jsonb_build_object('slug', s.step_slug)
        || CASE WHEN coalesce(r->>'step_type', 'single') = 'single' THEN '{}'
           ELSE jsonb_build_object('step_type', r->'step_type') END
        || coalesce((
          SELECT jsonb_build_object(
            'dependencies', jsonb_agg(d.dep_slug ORDER BY d.dep_slug COLLATE "C"))
          FROM pgflow.deps d WHERE d.flow_slug = s.flow_slug AND d.step_slug = s.step_slug
          HAVING count(*) > 0
        ), '{}')
        || CASE WHEN coalesce(r->>'when_unmet', 'skip') = 'skip' THEN '{}'
           ELSE jsonb_build_object('when_unmet', r->'when_unmet') END
        || CASE WHEN coalesce(r->>'when_exhausted', 'fail') = 'fail' THEN '{}'
           ELSE jsonb_build_object('when_exhausted', r->'when_exhausted') END
        || CASE WHEN jsonb_typeof(r->'required_input_pattern') IS DISTINCT FROM 'object'
           THEN '{}'
           ELSE jsonb_build_object('required_input_pattern', r->'required_input_pattern') END
        || CASE WHEN jsonb_typeof(r->'forbidden_input_pattern') IS DISTINCT FROM 'object'
           THEN '{}'
           ELSE jsonb_build_object('forbidden_input_pattern', r->'forbidden_input_pattern') END
      ORDER BY s.step_index), '[]'::jsonb)"""


def guard_function_sql(revision: str) -> str:
    """Create the guard that each new flow of a revision calls first.

    It takes pgflow's own compile-path locks for the slug (already held since the prologue,
    which also refused slugs that differ only in case from another flow), refuses a pgmq queue
    of that name that no flow owns, and records the revision's claim on the flow. It returns
    true when the flow must be created, false when the slug already holds the expected
    structure (the creating statements change nothing then), and fails when it holds another
    structure, or (pgflow 0.17) is in step mode. It runs on every release: what a release
    lacks reads as pgflow's default. Its cost does not grow with the flows stored: it looks
    the slug up by pgflow's primary key and the queue by name.
    """
    return f"""\
CREATE OR REPLACE FUNCTION {GUARD_FUNCTION}(p_slug text, p_expected jsonb, p_new_slug text)
RETURNS boolean LANGUAGE plpgsql AS $pgflow$
DECLARE
  c_revision CONSTANT text := {quote_text(revision)};
  stored jsonb;
BEGIN
{_PGFLOW_LOCKS}
  IF EXISTS (SELECT FROM pgflow.flows f WHERE f.flow_slug = p_slug) THEN
    SELECT {_STORED_STEPS}
    INTO stored
    FROM pgflow.steps s CROSS JOIN LATERAL to_jsonb(s) AS r
    WHERE s.flow_slug = p_slug;
    IF EXISTS (SELECT FROM pgflow.flows f WHERE f.flow_slug = p_slug
               AND coalesce(to_jsonb(f)->>'queue_mode', 'flow') <> 'flow') THEN
      stored := jsonb_build_array(jsonb_build_object('queue_mode', 'step')) || stored;
    END IF;
    IF stored IS DISTINCT FROM p_expected THEN
      RAISE EXCEPTION USING
        MESSAGE = 'pgflow flow ' || quote_literal(p_slug) || ' already exists with another '
          || 'structure; this migration cannot create it, and create_flow/add_step would '
          || 'corrupt it',
        DETAIL = 'in the database ' || stored::text || ', in this migration ' || p_expected::text,
        HINT = 'Give the flow in code a new slug (for example ' || p_new_slug
          || ') and generate the migration again.';
    END IF;
    INSERT INTO {CLAIMS_TABLE} (flow_slug, revision, created)
    VALUES (p_slug, c_revision, false)
    ON CONFLICT (flow_slug, revision) DO NOTHING;
    RETURN false;
  END IF;
  IF to_regclass('pgmq.q_' || lower(p_slug)) IS NOT NULL THEN
    RAISE EXCEPTION USING
      MESSAGE = 'pgflow flow ' || quote_literal(p_slug) || ' cannot be created: the pgmq queue '
        || quote_literal(lower(p_slug)) || ' already exists and no pgflow flow owns it; the '
        || 'flow would take over its messages, and removing the flow would drop it',
      HINT = 'Give the flow in code another slug, or drop that queue if nothing uses it.';
  END IF;
  INSERT INTO {CLAIMS_TABLE} (flow_slug, revision, created)
  VALUES (p_slug, c_revision, true)
  ON CONFLICT (flow_slug, revision) DO UPDATE SET created = true;
  RETURN true;
END
$pgflow$"""


def creation_guard_sql(slug: str, structure: FlowStructure, suggested_slug: str) -> str:
    """The guard's call for one new flow (an expression), with the structure it must find if
    the slug exists."""
    expected = quote_text(expected_structure_json(structure))
    return f"{GUARD_FUNCTION}({quote_text(slug)}, {expected}, {quote_text(suggested_slug)})"


def creation_statements_sql(guard_call: str, statements: Sequence[str]) -> tuple[str, ...]:
    """The guard's call, then the compiler's statements, each on its own."""
    return (f"SELECT {guard_call}", *statements)


def creation_block_sql(guard_call: str, statements: Sequence[str]) -> str:
    """One ``DO`` block: the compiler's statements as ``PERFORM``s, run only when the guard
    says the flow is new (one round trip per flow)."""
    calls = "".join(
        f"    PERFORM {statement.rstrip().removesuffix(';').removeprefix('SELECT ')};\n"
        for statement in statements
    )
    return do_block(f"BEGIN\n  IF {guard_call} THEN\n{calls}  END IF;\nEND")


def remover_function_sql(revision: str) -> str:
    """Create the function that each flow a downgrade removes calls.

    It releases this revision's claim on the flow and removes the flow only when no other
    applied revision claims it and one of them created it: a flow that existed before, or that
    another branch's revision also created, stays. It refuses a flow with runs or with messages
    in its queues and keeps a queue that a flow differing only in case shares. On pgflow 0.17+
    it calls pgflow's own ``delete_flow_and_data`` (every queue the flow routes to, per-step
    ones included); before, it deletes the rows and drops the one queue itself, as that
    function does there (which fails when the queue is gone). Tables and columns that may be
    missing are looked up before any statement that reads them is planned.
    """
    return f"""\
CREATE OR REPLACE FUNCTION {REMOVER_FUNCTION}(p_slug text, p_retire boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $pgflow$
DECLARE
  c_revision CONSTANT text := {quote_text(revision)};
  was_created boolean;
  holder text;
  queue text;
  queues text[];
  has_messages boolean;
  step_queues boolean;
BEGIN
{_PGFLOW_LOCKS}
  IF p_retire THEN
    -- A retired flow goes whoever created it: its removal was asked for in code.
    IF to_regclass('{CLAIMS_TABLE}') IS NOT NULL THEN
      DELETE FROM {CLAIMS_TABLE} c WHERE c.flow_slug = p_slug;
    END IF;
  ELSIF to_regclass('{CLAIMS_TABLE}') IS NULL THEN
    RAISE NOTICE USING MESSAGE = 'pgflow flow ' || quote_literal(p_slug) || ' left in place: '
      || 'no revision recorded creating it';
    RETURN;
  END IF;
  IF NOT p_retire THEN
    DELETE FROM {CLAIMS_TABLE} c WHERE c.flow_slug = p_slug AND c.revision = c_revision
    RETURNING c.created INTO was_created;
    IF NOT FOUND THEN
      RAISE NOTICE USING MESSAGE = 'pgflow flow ' || quote_literal(p_slug) || ' left in place: '
        || 'revision ' || c_revision || ' has no record of creating it';
      RETURN;
    END IF;
    SELECT c.revision INTO holder FROM {CLAIMS_TABLE} c
    WHERE c.flow_slug = p_slug
    ORDER BY c.claimed_at, c.revision
    LIMIT 1;
    IF holder IS NOT NULL THEN
      IF was_created THEN
        UPDATE {CLAIMS_TABLE} c SET created = true
        WHERE c.flow_slug = p_slug AND c.revision = holder;
      END IF;
      RAISE NOTICE USING MESSAGE = 'pgflow flow ' || quote_literal(p_slug) || ' left in place: '
        || 'revision ' || holder || ' still creates it';
      RETURN;
    END IF;
    IF NOT was_created THEN
      RAISE NOTICE USING MESSAGE = 'pgflow flow ' || quote_literal(p_slug) || ' left in place: '
        || 'it existed before revision ' || c_revision;
      RETURN;
    END IF;
  END IF;
  IF NOT EXISTS (SELECT FROM pgflow.flows f WHERE f.flow_slug = p_slug) THEN
    RETURN;
  END IF;
  IF to_regclass('pgflow.runs') IS NOT NULL THEN
    IF EXISTS (SELECT FROM pgflow.runs r WHERE r.flow_slug = p_slug) THEN
      RAISE EXCEPTION USING
        MESSAGE = 'pgflow flow ' || quote_literal(p_slug) || ' has runs; removing its '
          || 'definition would orphan its history, so this downgrade is refused',
        HINT = 'Keep the flow (remove its call from this downgrade), or archive and delete '
          || 'its runs deliberately first.';
    END IF;
  END IF;
  queues := ARRAY[lower(p_slug)];
  step_queues := EXISTS (SELECT FROM information_schema.columns c WHERE c.table_schema = 'pgflow'
                         AND c.table_name = 'steps' AND c.column_name = 'queue_name');
  IF step_queues THEN
    EXECUTE 'SELECT coalesce(array_agg(DISTINCT lower(s.queue_name)), ''{{}}'') '
      || 'FROM pgflow.steps s WHERE s.flow_slug = $1 AND s.queue_name IS NOT NULL'
      INTO queues USING p_slug;
    queues := array_append(queues, lower(p_slug));
  END IF;
  FOREACH queue IN ARRAY queues LOOP
    IF to_regclass('pgmq.' || quote_ident('q_' || queue)) IS NOT NULL THEN
      EXECUTE 'SELECT EXISTS (SELECT FROM pgmq.' || quote_ident('q_' || queue) || ')'
        INTO has_messages;
      IF has_messages THEN
        RAISE EXCEPTION USING
          MESSAGE = 'pgflow flow ' || quote_literal(p_slug) || ' has messages in its pgmq '
            || 'queue ' || quote_literal(queue) || ', so this downgrade is refused',
          HINT = 'Let its workers finish, or archive the messages deliberately first.';
      END IF;
    END IF;
  END LOOP;
  IF EXISTS (SELECT FROM pgflow.flows f
             WHERE lower(f.flow_slug) = lower(p_slug) AND f.flow_slug <> p_slug) THEN
    -- Another flow differing only in case shares the queue: remove the rows, keep the queue.
    DELETE FROM pgflow.deps d WHERE d.flow_slug = p_slug;
    DELETE FROM pgflow.steps s WHERE s.flow_slug = p_slug;
    DELETE FROM pgflow.flows f WHERE f.flow_slug = p_slug;
  ELSIF step_queues THEN
    -- pgflow 0.17+: its own removal drops every queue the flow routes to, in any case.
    PERFORM pgflow.delete_flow_and_data(p_slug);
  ELSE
    -- The rows, then the one queue (pgmq keeps the name as given, the table in lower case).
    DELETE FROM pgflow.deps d WHERE d.flow_slug = p_slug;
    DELETE FROM pgflow.steps s WHERE s.flow_slug = p_slug;
    DELETE FROM pgflow.flows f WHERE f.flow_slug = p_slug;
    IF to_regclass('pgmq.meta') IS NOT NULL THEN
      SELECT m.queue_name INTO queue FROM pgmq.meta m
      WHERE lower(m.queue_name) = lower(p_slug)
      ORDER BY m.queue_name = p_slug DESC
      LIMIT 1;
      IF queue IS NOT NULL THEN
        PERFORM pgmq.drop_queue(queue);
      END IF;
    END IF;
  END IF;
END
$pgflow$"""


def removal_sql(slug: str, *, retire: bool = False) -> str:
    """The remover's call for one flow (``retire``: whoever created it)."""
    suffix = ", true" if retire else ""
    return f"SELECT {REMOVER_FUNCTION}({quote_text(slug)}{suffix})"


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
