"""The Alembic autogenerate comparator for pgflow flows.

For each slug: a new flow becomes a :class:`~.operations.CreateFlowOp`, changed options an
:class:`~.operations.UpdateFlowOptionsOp`, and a changed structure stops autogenerate with
:class:`~alembic_pgflow.errors.FlowStructureChangedError` before any file is written. The
operations go into the revision together, in slug order, as one :class:`~.operations.PgflowOps`
after the table operations. Flows only in the database are reported, never dropped.
Registration happens once, when ``alembic_pgflow`` is imported.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from alembic.autogenerate import comparators
from alembic.autogenerate.api import AutogenContext
from alembic.operations.ops import MigrateOperation, UpgradeOps

from alembic_pgflow.comparison.differences import folded_slugs, next_free_slug
from alembic_pgflow.comparison.status import (
    FlowComparison,
    FlowStatus,
    compare,
    structure_change_report,
)
from alembic_pgflow.database.catalog import PgflowCatalog, begin_catalog_read
from alembic_pgflow.definition.compiler import add_step_sql, create_flow_sql, shape_statements
from alembic_pgflow.definition.discovery import discover
from alembic_pgflow.definition.shape import FlowShape
from alembic_pgflow.errors import (
    FlowMigrationError,
    FlowStructureChangedError,
    PgflowCommandError,
    PgflowSchemaMissingError,
    StoredFlowError,
)
from alembic_pgflow.migration.operations import (
    CreateFlowOp,
    PgflowOps,
    RemoveRetiredFlowOp,
    UpdateFlowOptionsOp,
)
from alembic_pgflow.migration.revision_sql import (
    LOCKS_PER_FLOW,
    creation_block_sql,
    creation_guard_sql,
    creation_statements_sql,
)
from alembic_pgflow.migration.settings import PgflowSettings, RevisionStyle, read_settings

log = logging.getLogger("alembic.alembic_pgflow")

OBJECT_TYPE = "pgflow_flow"
"""The ``type_`` that ``include_name`` and ``include_object`` hooks receive for flows."""


def compare_flows(
    autogen_context: AutogenContext, upgrade_ops: UpgradeOps, schemas: object
) -> None:
    """Append the operations that bring the database's flows in line with the code."""
    migration_context = autogen_context.migration_context
    if autogen_context.dialect is None or autogen_context.dialect.name != "postgresql":
        return
    settings = read_settings(migration_context.opts, migration_context.config)
    if settings is None:
        log.warning("alembic_pgflow is imported but pgflow_modules is not set: no flows compared")
        return
    operations = plan_operations(autogen_context, settings)
    if operations.ops:
        upgrade_ops.ops.append(operations)
        _stamp_revision_ids(migration_context.opts)


def _stamp_revision_ids(opts: dict[str, Any]) -> None:
    """Have every ``PgflowOps`` learn the id of the revision it lands in.

    Alembic settles revision ids after comparison (a ``process_revision_directives`` hook may
    still change them or split the operations into several scripts), so this chains a step
    after the project's own hook that walks the final scripts.
    """
    hook = opts.get("process_revision_directives")
    if getattr(hook, "_alembic_pgflow", False):
        return

    def stamp(context: Any, revision: Any, directives: list[Any]) -> None:
        if hook is not None:
            hook(context, revision, directives)
        for script in directives:
            for side in (*script.upgrade_ops_list, *script.downgrade_ops_list):
                for operation in side.ops:
                    if isinstance(operation, PgflowOps):
                        operation.revision = script.rev_id

    stamp._alembic_pgflow = True  # type: ignore[attr-defined]
    opts["process_revision_directives"] = stamp


def plan_operations(autogen_context: AutogenContext, settings: PgflowSettings) -> PgflowOps:
    """The flow operations for one autogenerate run, or an error that explains why none."""
    # The server reads its catalog while the flow modules import.
    with begin_catalog_read(autogen_context.connection) as pending:
        found = discover(settings.modules)
        code = found.flows
        try:
            catalog = pending.result({slug: item.flow for slug, item in code.items()})
        except PgflowSchemaMissingError as error:
            raise FlowMigrationError(str(error)) from error
    comparisons = [
        c for c in compare(code, catalog, found.retired) if _included(autogen_context, c)
    ]
    corrupt = [c for c in comparisons if c.status is FlowStatus.CORRUPT]
    if corrupt:
        raise StoredFlowError(_corrupt_report(corrupt))
    unsupported = [c for c in comparisons if c.status is FlowStatus.UNSUPPORTED]
    if unsupported:
        raise FlowMigrationError("\n".join(p for c in unsupported for p in c.problems))

    changed = [c for c in comparisons if c.status is FlowStatus.STRUCTURE_CHANGED]
    if changed:
        raise FlowStructureChangedError(
            structure_change_report(changed, folded_slugs([*code, *catalog.flows]))
        )
    tuned = [c for c in comparisons if c.status is FlowStatus.OPTIONS_CHANGED]
    if tuned and settings.options_changes == "error":
        details = "\n".join(f"  {c.slug}: {'; '.join(map(str, c.option_changes))}" for c in tuned)
        raise PgflowCommandError(
            "pgflow flow options changed, and pgflow_options_changes = error refuses option "
            f"changes:\n{details}\nRevert them in code, or allow them with "
            "pgflow_options_changes = update."
        )

    new = [c for c in comparisons if c.status is FlowStatus.NEW]
    limit = new_flow_limit(settings, catalog)
    if limit and len(new) > limit:
        log.warning(
            "%d new pgflow flows, but this revision creates only the first %d: each new flow "
            "takes about %d lock-table entries for its pgmq queue, and the server has %d for all "
            "transactions. Upgrade, then run autogenerate again for the next batch (alembic "
            "check fails until all are created), or raise max_locks_per_transaction and set "
            "pgflow_max_new_flows_per_revision.",
            len(new),
            limit,
            LOCKS_PER_FLOW,
            catalog.lock_table_size,
        )
        postponed = {c.slug for c in new[limit:]}
        comparisons = [c for c in comparisons if c.slug not in postponed]

    taken = folded_slugs([*code, *catalog.flows])  # what a suggested new slug must avoid
    stored_folded = {slug.lower(): slug for slug in catalog.flows}
    operations: list[MigrateOperation] = []
    for comparison in comparisons:
        if comparison.status is FlowStatus.NEW:
            operations.append(
                _create(comparison, catalog, taken, stored_folded, settings.revision_style)
            )
            log.info("Detected new pgflow flow %r", comparison.slug)
        elif comparison.status is FlowStatus.OPTIONS_CHANGED:
            operations.append(UpdateFlowOptionsOp(comparison.slug, comparison.option_changes))
            log.info(
                "Detected option change of pgflow flow %r: %s",
                comparison.slug,
                "; ".join(map(str, comparison.option_changes)),
            )
        elif comparison.status is FlowStatus.TO_REMOVE:
            assert comparison.stored is not None
            operations.append(
                RemoveRetiredFlowOp(
                    comparison.slug,
                    _restore_statements(comparison.stored.shape, taken, settings.revision_style),
                )
            )
            log.info("Detected retired pgflow flow %r to remove", comparison.slug)
        elif comparison.status is FlowStatus.ONLY_IN_DATABASE:
            log.info(
                "pgflow flow %r is in the database but in no configured module; it is left as "
                "it is (autogenerate never drops flows)",
                comparison.slug,
            )
    return PgflowOps(operations)


def _restore_statements(
    shape: FlowShape, taken: frozenset[str], style: RevisionStyle
) -> tuple[str, ...]:
    guard = creation_guard_sql(shape.slug, shape.structure, next_free_slug(shape.slug, taken))
    compiled = shape_statements(shape)
    if style == "block":
        return (creation_block_sql(guard, compiled),)
    return creation_statements_sql(guard, compiled)


def _corrupt_report(corrupt: list[FlowComparison]) -> str:
    lines = [
        f"pgflow flow {c.slug!r} in the database is corrupt: {problem}"
        for c in corrupt
        for problem in c.problems
    ]
    return "\n".join(
        [
            *lines,
            "pgflow would run it wrongly (a step whose deps_count disagrees with its "
            "dependencies never starts). Repair the rows by hand, or delete the flow (pgflow."
            "delete_flow_and_data in development) and migrate it again. No revision was "
            "generated.",
        ]
    )


def new_flow_limit(settings: PgflowSettings, catalog: PgflowCatalog) -> int | None:
    """How many new flows one revision may create (``None`` or ``0``: no limit)."""
    if settings.max_new_flows_per_revision is not None:
        return settings.max_new_flows_per_revision
    if not catalog.has_pgmq:
        return None  # without queues a new flow takes no lock-table entries of its own
    # Leave half of the lock table to the rest of the server.
    return max(1, catalog.lock_table_size // (2 * LOCKS_PER_FLOW))


def _create(
    comparison: FlowComparison,
    catalog: PgflowCatalog,
    taken: frozenset[str],
    stored_folded: dict[str, str],
    style: RevisionStyle,
) -> CreateFlowOp:
    found, shape = comparison.code, comparison.wanted
    assert found is not None
    assert shape is not None
    flow = found.flow
    stored = stored_folded.get(flow.slug.lower())
    if stored is not None:
        raise FlowMigrationError(
            f"pgflow flow {flow.slug!r} ({found.location}) differs only in case from "
            f"{stored!r} in the database; pgflow 0.17 treats them as one flow and older "
            "releases give them one queue. Choose another slug."
        )
    queue = catalog.foreign_queue(flow.slug)
    if queue is not None:
        raise FlowMigrationError(
            f"pgflow flow {flow.slug!r} ({found.location}) cannot be created: the pgmq queue "
            f"{queue!r} already exists and no pgflow flow owns it, so the flow would take over "
            "its messages and removing the flow would drop it. Choose another slug, or drop "
            "that queue if nothing uses it."
        )
    guard = creation_guard_sql(flow.slug, shape.structure, next_free_slug(flow.slug, taken))
    compiled = (create_flow_sql(flow), *(add_step_sql(flow.slug, s) for s in flow.steps))
    return CreateFlowOp(
        slug=flow.slug,
        structure_checksum=shape.structure_checksum,
        statements=(
            (creation_block_sql(guard, compiled),)
            if style == "block"
            else creation_statements_sql(guard, compiled)
        ),
    )


def _included(autogen_context: AutogenContext, comparison: FlowComparison) -> bool:
    name_filters = cast(Any, autogen_context.run_name_filters)
    if not name_filters(comparison.slug, OBJECT_TYPE, {"schema_name": "pgflow"}):
        return False
    stored = None if comparison.stored is None else comparison.stored.shape
    subject = stored if comparison.code is None else comparison.code.flow
    object_filters = cast(Any, autogen_context.run_object_filters)
    return bool(
        object_filters(subject, comparison.slug, OBJECT_TYPE, comparison.code is None, stored)
    )


def _register() -> None:
    # The "default" qualifier: before Alembic 1.18, a dialect-qualified comparator would
    # replace the built-in table comparators instead of running beside them.
    try:
        from alembic.util import DispatchPriority  # Alembic 1.18+
    except ImportError:
        comparators.dispatch_for("schema")(compare_flows)
    else:
        comparators.dispatch_for("schema", priority=DispatchPriority.LAST)(compare_flows)


# Module import runs once per process, so the comparator is registered exactly once.
_register()
