"""Read every flow definition from ``pgflow.flows``, ``pgflow.steps`` and ``pgflow.deps``.

A few queries, whatever the number of flows: one reads the schema's catalog (which tables,
columns, functions and function arguments exist, and so which release it is), one the server
facts that bound a migration (pgmq and its queue tables, the lock table's size), one the stored
definitions as a single JSON document. Columns an older release lacks read as pgflow's defaults.

Given the flows in code, the server first digests every stored flow's rows as
:mod:`~alembic_pgflow.definition.row_digest` digests the code: a flow whose digests agree holds
exactly what its code stores, so its shape is the code's, and only the other flows are read in
full (in a no-op run, none: no definitions query at all). The queries that need no code run in
a thread, begun before the flows in code are imported (:func:`begin_catalog_read`).

The SQL is built only from this module's constants and, to leave out the flows already known,
the code's slugs (which the DSL restricts to ASCII letters, digits and ``_``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, Protocol

import sqlalchemy

from alembic_pgflow.definition.dsl import Flow
from alembic_pgflow.definition.gc_pause import paused_gc
from alembic_pgflow.definition.input_patterns import canonical_json
from alembic_pgflow.definition.releases import DEFAULT_TARGET, Feature, PgflowRelease
from alembic_pgflow.definition.row_digest import DIGEST_PREFIX, rows_digest
from alembic_pgflow.definition.shape import (
    DEFAULT_WHEN_EXHAUSTED,
    DEFAULT_WHEN_UNMET,
    FlowOptionValues,
    FlowShape,
    FlowStructure,
    StepOptionValues,
    StepStructure,
    shape_of,
)
from alembic_pgflow.errors import PgflowSchemaMissingError, StoredFlowError

DEFINITION_TABLES = ("flows", "steps", "deps")

# The catalog query reads the columns of these tables only (pg_class holds every pgmq queue's
# tables and indexes too): the definition tables, and worker_functions for start_mode.
_CATALOG_SQL = """\
SELECT 'column', c.relname || '.' || a.attname
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'pgflow' AND c.relname IN ('flows', 'steps', 'deps', 'worker_functions')
  AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'function', p.proname
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'pgflow'
UNION ALL
SELECT p.proname, arg.name
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
CROSS JOIN LATERAL unnest(p.proargnames) AS arg(name)
WHERE n.nspname = 'pgflow' AND p.proname IN ('add_step', 'ensure_flow_compiled')
UNION ALL
SELECT 'server', 'digests'
WHERE current_setting('server_encoding') = 'UTF8'
  AND current_setting('server_version_num')::int >= 110000"""

# The server can digest rows as Python does: its text is UTF-8 and it has sha256() (11+).
_DIGESTS_EVIDENCE = ("server", "digests")

# pgmq names a queue's table q_<name in lower case>, whatever the case of the name it was given.
_SERVER_SQL = """\
SELECT to_regnamespace('pgmq') IS NOT NULL,
  current_setting('max_locks_per_transaction')::int
    * (current_setting('max_connections')::int
       + current_setting('max_prepared_transactions')::int),
  (SELECT coalesce(json_agg(substr(c.relname, 3) ORDER BY c.relname), '[]'::json)
   FROM pg_catalog.pg_class c
   JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = 'pgmq' AND c.relkind IN ('r', 'p') AND starts_with(c.relname, 'q_'))::text"""

# Which column or add_step argument shows that the schema has a feature.
_FEATURE_EVIDENCE: Mapping[Feature, tuple[str, str]] = {
    Feature.START_DELAY: ("add_step", "start_delay"),
    Feature.MAP_STEPS: ("add_step", "step_type"),
    Feature.STEP_CONDITIONS: ("add_step", "required_input_pattern"),
    Feature.COMPILE_PATH: ("function", "ensure_flow_compiled"),
    Feature.WORKER_START_MODE: ("column", "worker_functions.start_mode"),
    Feature.QUEUE_MODE: ("column", "flows.queue_mode"),
}

# ensure_flow_compiled took allow_data_loss from 0.11.0 until 0.16.0 removed it.
_DATA_LOSS_ARGUMENT = ("ensure_flow_compiled", "allow_data_loss")

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
    release: PgflowRelease = DEFAULT_TARGET
    """The oldest pgflow release with everything the schema has (:func:`detect_release`)."""
    queue_tables: frozenset[str] = frozenset()
    """pgmq queues by table name (``q_<name>`` less the prefix, so in lower case)."""

    def foreign_queue(self, flow_slug: str) -> str | None:
        """The pgmq queue a new flow ``flow_slug`` would share although no flow owns it."""
        folded = flow_slug.lower()
        if folded not in self.queue_tables:
            return None
        if any(slug.lower() == folded for slug in self.flows):
            return None
        return folded


def read_catalog(
    connection: sqlalchemy.Connection | Any, code: Mapping[str, Flow] | None = None
) -> PgflowCatalog:
    """Read all flows from a SQLAlchemy ``Connection`` or a psycopg connection.

    ``code``: the flows in code, by slug. A stored flow whose rows are exactly what its flow's
    SQL stores (their digests agree) is not read: its shape is the flow's own
    (:func:`~alembic_pgflow.definition.shape.shape_of`), which is what reading it would give.
    Every other flow is read and checked in full, so the result is the same either way.

    Raises :class:`~alembic_pgflow.errors.PgflowSchemaMissingError` when the database has no
    pgflow definition tables.
    """
    with begin_catalog_read(connection, digests=bool(code)) as pending:
        return pending.result(code)


@contextmanager
def begin_catalog_read(
    connection: sqlalchemy.Connection | Any, *, digests: bool = True
) -> Iterator[PendingCatalog]:
    """Start reading the database's flows in a thread, so that the server works while the
    caller imports the flows in code; :meth:`PendingCatalog.result` gives the catalog.

    The connection is the thread's until ``result`` returns or the block ends (which waits for
    the thread): the caller must not use it meanwhile. ``digests``: have the server digest
    every flow's rows, for a ``result`` given the flows in code.
    """
    pending = PendingCatalog(_row_reader(connection), digests=digests)
    try:
        yield pending
    finally:
        pending.join()


class PendingCatalog(threading.Thread):
    """The queries that need no code, run in a thread of their own (started at once): which
    tables, columns and functions the schema has, the server digest of every stored flow's
    rows, and the server's limits."""

    def __init__(self, rows: _Rows, *, digests: bool) -> None:
        super().__init__(name="alembic_pgflow catalog", daemon=True)
        self._rows = rows
        self._digests = digests
        self._found: set[tuple[str, str]] = set()
        self._columns: set[str] = set()
        self._stored_digests: dict[str, str] | None = None
        """By slug; ``None`` when the server cannot digest rows as Python does."""
        self._server: tuple[Any, ...] = ()
        self._error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self._read()
        except BaseException as error:  # raised again by result()
            self._error = error

    def _read(self) -> None:
        self._found = {(kind, name) for kind, name in self._rows(_CATALOG_SQL)}
        self._columns = {name for kind, name in self._found if kind == "column"}
        missing = [
            table
            for table in DEFINITION_TABLES
            if not any(column.startswith(f"{table}.") for column in self._columns)
        ]
        if missing:
            raise PgflowSchemaMissingError(
                "the database has no pgflow definition schema (missing "
                + ", ".join(f"pgflow.{table}" for table in missing)
                + "): install pgflow in this database before managing flows"
            )
        if self._digests and _DIGESTS_EVIDENCE in self._found:
            self._stored_digests = dict(self._rows(_digests_sql(self._columns)))
        (self._server,) = self._rows(_SERVER_SQL)

    def result(self, code: Mapping[str, Flow] | None = None) -> PgflowCatalog:
        """The catalog, reading in full only the stored flows whose rows are not exactly what
        their flow in ``code`` stores (see :func:`read_catalog`)."""
        # Only slugs that can go into the SQL text as they are: ASCII letters, digits and "_"
        # (the DSL allows no others).
        digested = {
            slug: flow
            for slug, flow in (code or {}).items()
            if flow.slug == slug and slug.isidentifier() and slug.isascii()
        }
        code_digests = {slug: rows_digest(flow) for slug, flow in digested.items()}
        self.join()
        if self._error is not None:
            raise self._error
        found, columns, stored_digests = self._found, self._columns, self._stored_digests
        features = frozenset(
            feature for feature, evidence in _FEATURE_EVIDENCE.items() if evidence in found
        )
        same: list[str] = []
        document: str | None = None
        if stored_digests is None or not digested:
            ((document,),) = self._rows(_definitions_sql(columns))
        else:
            same = [
                slug for slug, digest in stored_digests.items() if code_digests.get(slug) == digest
            ]
            if len(same) < len(stored_digests):
                ((document,),) = self._rows(_definitions_sql(columns, known=same))
        flows = {}
        with paused_gc():
            for slug in same:
                flows[slug] = StoredFlow(shape=shape_of(digested[slug]))
            # Big numbers stay Decimal: Python refuses to read integers of over 4300 digits.
            for slug, *flow_row, step_rows in json.loads(document or "[]", parse_int=Decimal):
                flows[slug] = _stored_flow(slug, flow_row, step_rows)
        if same:
            flows = dict(sorted(flows.items()))  # code points order as "C" does
        has_pgmq, lock_table_size, queues = self._server
        return PgflowCatalog(
            features=features,
            flows=flows,
            has_pgmq=has_pgmq,
            lock_table_size=lock_table_size,
            release=detect_release(features, _DATA_LOSS_ARGUMENT in found),
            queue_tables=frozenset(json.loads(queues)),
        )


def detect_release(features: frozenset[Feature], has_data_loss_argument: bool) -> PgflowRelease:
    """The oldest release with these features: 0.16 has worker start modes (0.15) and an
    ``ensure_flow_compiled`` without ``allow_data_loss`` (which 0.11 added)."""
    release = max((feature.since for feature in features), default=PgflowRelease(0, 2, 0))
    if has_data_loss_argument:
        release = max(release, PgflowRelease(0, 11, 0))
    elif Feature.WORKER_START_MODE in features and Feature.COMPILE_PATH in features:
        release = max(release, PgflowRelease(0, 16, 0))
    return release


def _stored_flow(slug: str, flow_row: list[Any], step_rows: list[list[Any]]) -> StoredFlow:
    max_attempts, base_delay, timeout, queue_mode = flow_row
    try:
        steps = [_StepRow(*row) for row in step_rows]
        shape = _shape(slug, int(max_attempts), int(base_delay), int(timeout), queue_mode, steps)
    except (ValueError, TypeError, ArithmeticError) as error:
        raise StoredFlowError(
            f"pgflow flow {slug!r} in the database cannot be read: {error}"
        ) from error
    return StoredFlow(shape=shape, problems=tuple(_problems(steps)))


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


def _slugs_sql(name: str, slugs: Sequence[str]) -> str:
    """A CTE ``name`` of the flow slugs ``slugs`` (plain slugs only)."""
    literal = json.dumps(list(slugs), separators=(",", ":"))
    if "'" in literal or "\\" in literal:  # plain slugs only
        raise ValueError(f"not a plain slug in {literal!r}")
    return f"""{name} AS (
  SELECT e.value COLLATE "C" AS flow_slug
  FROM json_array_elements_text('{literal}'::json) AS e
)"""


def _step_column(columns: set[str], name: str) -> str:
    """A step column as the definitions and digests queries read it: the column, or pgflow's
    default where the release lacks it."""
    return f"s.{name}" if f"steps.{name}" in columns else _OPTIONAL_STEP_COLUMNS[name]


def _queue_mode(columns: set[str]) -> str:
    return "f.queue_mode" if "flows.queue_mode" in columns else "'flow'"


def _definitions_sql(columns: set[str], *, known: Sequence[str] = ()) -> str:
    """One JSON document: ``[[slug, max_attempts, base_delay, timeout, [[step...], ...]], ...]``,
    built with joins and grouping (no query per flow or step); ``known`` (plain slugs): flows
    to leave out."""
    prefix, flow_filter, step_filter, deps_filter = "WITH ", "", "", ""
    if known:
        flow_filter = "WHERE f.flow_slug NOT IN (SELECT flow_slug FROM known)\n"
        step_filter = "WHERE s.flow_slug NOT IN (SELECT flow_slug FROM known)\n  "
        deps_filter = "WHERE d.flow_slug NOT IN (SELECT flow_slug FROM known)\n  "
        prefix += _slugs_sql("known", known) + ", "

    def step_column(name: str) -> str:
        return _step_column(columns, name)

    return f"""\
{prefix}step_deps AS (
  SELECT d.flow_slug, d.step_slug, json_agg(d.dep_slug ORDER BY d.dep_slug COLLATE "C") AS deps
  FROM pgflow.deps d
  {deps_filter}GROUP BY d.flow_slug, d.step_slug
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
  {step_filter}GROUP BY s.flow_slug
)
SELECT coalesce(json_agg(json_build_array(
    f.flow_slug, f.opt_max_attempts, f.opt_base_delay, f.opt_timeout, {_queue_mode(columns)},
    coalesce(fs.steps, '[]'::json)
  ) ORDER BY f.flow_slug COLLATE "C"), '[]'::json)::text
FROM pgflow.flows f
LEFT JOIN flow_steps fs ON fs.flow_slug = f.flow_slug
{flow_filter}"""


def _digests_sql(columns: set[str]) -> str:
    """The slug and rows' digest of every stored flow: the server writes each flow's rows as
    :mod:`~.row_digest`'s text, from ``row(...)::text``, and hashes it as the code does."""
    step = ", ".join(
        [
            "s.step_slug",
            "s.step_index",
            "s.deps_count",
            _step_column(columns, "step_type"),
            "s.opt_max_attempts",
            "s.opt_base_delay",
            "s.opt_timeout",
            _step_column(columns, "opt_start_delay"),
            _step_column(columns, "required_input_pattern"),
            _step_column(columns, "forbidden_input_pattern"),
            _step_column(columns, "when_unmet"),
            _step_column(columns, "when_exhausted"),
        ]
    )
    return f"""\
WITH digest_steps AS (
  SELECT s.flow_slug, string_agg(row({step})::text, ',' ORDER BY s.step_index) AS steps
  FROM pgflow.steps s
  GROUP BY s.flow_slug
), digest_deps AS (
  SELECT d.flow_slug, string_agg(row(d.step_slug, d.dep_slug)::text,
      ',' ORDER BY d.step_slug COLLATE "C", d.dep_slug COLLATE "C") AS deps
  FROM pgflow.deps d
  GROUP BY d.flow_slug
)
SELECT f.flow_slug, encode(sha256(convert_to('{DIGEST_PREFIX}'
    || row(f.opt_max_attempts, f.opt_base_delay, f.opt_timeout, {_queue_mode(columns)})::text
    || '[' || coalesce(ds.steps, '') || '][' || coalesce(dd.deps, '') || ']', 'UTF8')),
  'hex')
FROM pgflow.flows f
LEFT JOIN digest_steps ds ON ds.flow_slug = f.flow_slug
LEFT JOIN digest_deps dd ON dd.flow_slug = f.flow_slug"""


def _shape(  # noqa: PLR0917 (one positional argument per column read)
    slug: str,
    max_attempts: int,
    base_delay: int,
    timeout: int,
    queue_mode: str,
    steps: list[_StepRow],
) -> FlowShape:
    return FlowShape(
        slug=slug,
        structure=FlowStructure(
            queue_mode=queue_mode,
            steps=tuple(
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
            ),
        ),
        options=FlowOptionValues(
            max_attempts=max_attempts,
            base_delay=base_delay,
            timeout=timeout,
            steps=tuple(
                StepOptionValues(
                    step.slug,
                    _int_or_none(step.max_attempts),
                    _int_or_none(step.base_delay),
                    _int_or_none(step.timeout),
                    _int_or_none(step.start_delay),
                )
                for step in steps
            ),
        ),
    )


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _canonical_pattern(text: str | None) -> str | None:
    if text is None:
        return None
    return canonical_json(json.loads(text, parse_float=Decimal, parse_int=Decimal))


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
