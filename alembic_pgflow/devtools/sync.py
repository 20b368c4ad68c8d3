"""``alembic-pgflow dev sync``: bring a development database in line with the code at once.

No revision is written. New flows are created, changed options updated, and a flow whose
structure changed (or whose rows are corrupt) is deleted with its runs and queues and created
again, after the user agreed. Production stays strict: :func:`refusal` keeps this away from any
database that is not the embedded one or a local server, unless the user says explicitly that
it is a development database, and from flows that an Alembic revision created, unless forced.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy

from alembic_pgflow.comparison.status import FlowComparison, FlowStatus
from alembic_pgflow.database.catalog import PgflowCatalog
from alembic_pgflow.definition.compiler import compile_flow
from alembic_pgflow.definition.sql_text import quote_text
from alembic_pgflow.errors import DevSyncRefusedError
from alembic_pgflow.migration.revision_sql import CLAIMS_TABLE, options_update_statements


@dataclass(frozen=True)
class SyncStep:
    """One change ``dev sync`` makes, and the SQL that makes it."""

    slug: str
    action: str
    """``create``, ``update options``, ``recreate`` or ``drop``."""
    statements: tuple[str, ...]
    destroys: bool = False
    """Whether it deletes a flow, with its runs and queued tasks."""

    def describe(self) -> str:
        """One line for the terminal."""
        return f"{self.action:<15} {self.slug}"


def is_local_host(host: str | None) -> bool:
    """A Unix socket (``/...`` or none: libpq's default socket), ``localhost`` or a loopback
    address: the only places a development database can be without being declared one."""
    if not host or host.startswith("/") or host.startswith("@"):
        return True
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal(hosts: Sequence[str | None], declared_dev: bool) -> str | None:
    """Why ``dev sync`` must not touch a database reached through ``hosts``, or ``None``."""
    remote = [host for host in hosts if not is_local_host(host)]
    if remote and not declared_dev:
        return (
            f"dev sync changes flows without a revision, so it only runs on the embedded "
            f"database or a local server, and this one is at {remote[0]!r}; if it really is a "
            "development database, say so with --i-know-this-is-dev"
        )
    return None


def plan(
    comparisons: Sequence[FlowComparison],
    catalog: PgflowCatalog,
    *,
    prune: bool = False,
) -> list[SyncStep]:
    """The changes that make the database hold the flows in code, in slug order."""
    target = str(catalog.release)
    steps: list[SyncStep] = []
    for comparison in comparisons:
        found, status = comparison.code, comparison.status
        if status is FlowStatus.UNSUPPORTED:
            raise DevSyncRefusedError("; ".join(comparison.problems))
        if status is FlowStatus.NEW and found is not None:
            steps.append(
                SyncStep(comparison.slug, "create", tuple(compile_flow(found.flow, target)))
            )
        elif status is FlowStatus.OPTIONS_CHANGED:
            statements = tuple(
                options_update_statements(comparison.slug, comparison.option_changes)
            )
            steps.append(SyncStep(comparison.slug, "update options", statements))
        elif status in {FlowStatus.STRUCTURE_CHANGED, FlowStatus.CORRUPT} and found is not None:
            statements = (drop_sql(comparison.slug), *compile_flow(found.flow, target))
            steps.append(SyncStep(comparison.slug, "recreate", statements, destroys=True))
        elif (status is FlowStatus.ONLY_IN_DATABASE and prune) or (status is FlowStatus.TO_REMOVE):
            steps.append(
                SyncStep(comparison.slug, "drop", (drop_sql(comparison.slug),), destroys=True)
            )
    return steps


def claimed(connection: sqlalchemy.Connection, slugs: Sequence[str]) -> list[str]:
    """The slugs that an Alembic revision of this database created or found."""
    if not slugs:
        return []
    exists = connection.exec_driver_sql(f"SELECT to_regclass('{CLAIMS_TABLE}') IS NOT NULL")
    if not exists.scalar():
        return []
    names = ", ".join(quote_text(slug) for slug in slugs)
    rows = connection.exec_driver_sql(
        f"SELECT DISTINCT flow_slug FROM {CLAIMS_TABLE} WHERE flow_slug IN ({names})"
    )
    return sorted(row[0] for row in rows)


def apply(
    connection: sqlalchemy.Connection,
    steps: Sequence[SyncStep],
    report: Callable[[str], Any],
) -> None:
    """Run every step in the connection's transaction (the caller commits), saying each."""
    cursor = connection.connection.cursor()
    try:
        for step in steps:
            for statement in step.statements:
                # The driver's cursor without parameters: patterns may contain "%" or ":".
                cursor.execute(statement)
            report(step.describe())
    finally:
        cursor.close()


def drop_sql(slug: str) -> str:
    """Delete a flow with its runs, tasks and queues (a development database only).

    pgflow's own ``delete_flow_and_data`` (0.10+) fails where the queue is already gone before
    0.17, so the rows and the queue are removed here, under pgflow's compile-path locks; a
    queue that a flow differing only in case shares is kept.
    """
    name = quote_text(slug)
    return f"""\
DO $pgflow$
DECLARE
  queue text;
  listed text;
  queues text[] := ARRAY[lower({name})];
  more text[];
BEGIN
  PERFORM pg_advisory_xact_lock(1, hashtext({name}));
  PERFORM pg_advisory_xact_lock(1, hashtext(lower({name})));
  IF EXISTS (SELECT FROM information_schema.columns c WHERE c.table_schema = 'pgflow'
             AND c.table_name = 'steps' AND c.column_name = 'queue_name') THEN
    EXECUTE 'SELECT array_agg(DISTINCT lower(s.queue_name)) FROM pgflow.steps s '
      || 'WHERE s.flow_slug = $1 AND s.queue_name IS NOT NULL' INTO more USING {name};
    queues := queues || coalesce(more, ARRAY[]::text[]);
  END IF;
  IF to_regclass('pgflow.step_tasks') IS NOT NULL THEN
    DELETE FROM pgflow.step_tasks t WHERE t.flow_slug = {name};
    DELETE FROM pgflow.step_states s WHERE s.flow_slug = {name};
    DELETE FROM pgflow.runs r WHERE r.flow_slug = {name};
  END IF;
  DELETE FROM pgflow.deps d WHERE d.flow_slug = {name};
  DELETE FROM pgflow.steps s WHERE s.flow_slug = {name};
  DELETE FROM pgflow.flows f WHERE f.flow_slug = {name};
  IF to_regclass('pgmq.meta') IS NULL OR EXISTS (
      SELECT FROM pgflow.flows f WHERE lower(f.flow_slug) = lower({name})) THEN
    RETURN;  -- no queues, or a flow differing only in case still uses the queue
  END IF;
  FOREACH queue IN ARRAY queues LOOP
    FOR listed IN SELECT m.queue_name FROM pgmq.meta m WHERE lower(m.queue_name) = queue LOOP
      IF to_regclass('pgmq.' || quote_ident('q_' || queue)) IS NOT NULL THEN
        PERFORM pgmq.drop_queue(listed);
      ELSE
        DELETE FROM pgmq.meta m WHERE m.queue_name = listed;
      END IF;
    END LOOP;
  END LOOP;
END
$pgflow$"""
