"""The exceptions alembic-pgflow raises, each naming what a user must fix."""

from __future__ import annotations

from alembic.util import CommandError


def describe_location(flow: str | None, step: str | None = None, field: str | None = None) -> str:
    """Return ``flow 'x', step 'y', field 'z'`` for the parts that are known."""
    parts = []
    if flow is not None:
        parts.append(f"flow {flow!r}")
    if step is not None:
        parts.append(f"step {step!r}")
    if field is not None:
        parts.append(f"field {field!r}")
    return ", ".join(parts)


class FlowDefinitionError(ValueError):
    """A flow definition that pgflow would refuse or that could not be compiled.

    The message names the flow, the step and the field; they are also kept as attributes.
    """

    def __init__(
        self,
        problem: str,
        *,
        flow: str | None = None,
        step: str | None = None,
        field: str | None = None,
    ) -> None:
        self.problem = problem
        self.flow = flow
        self.step = step
        self.field = field
        where = describe_location(flow, step, field)
        super().__init__(f"{where}: {problem}" if where else problem)


class UnsupportedFeatureError(FlowDefinitionError):
    """A flow uses a pgflow feature that the target release does not have."""


class PgflowSchemaMissingError(RuntimeError):
    """The database has no pgflow definition schema to read or write."""


class PgflowCommandError(CommandError):
    """An error the Alembic command line reports as ``FAILED: ...`` with exit code 1."""


class FlowDiscoveryError(PgflowCommandError):
    """A configured flow module could not be imported, or two flows share a slug."""


class PgflowConfigurationError(PgflowCommandError):
    """A ``pgflow_*`` setting has a value alembic-pgflow cannot use."""


class FlowStructureChangedError(PgflowCommandError):
    """Flows in code have another structure than the same slugs in the database."""


class FlowMigrationError(PgflowCommandError):
    """A flow cannot be migrated to the connected database (missing feature or schema)."""


class PgflowInstallError(PgflowCommandError):
    """Real pgflow could not be installed into a development database."""


class StoredFlowError(PgflowCommandError):
    """A flow stored in the database breaks pgflow's invariants or cannot be read."""


class DevSyncRefusedError(PgflowCommandError):
    """``dev sync`` must not touch this database or this flow; the message says why."""
