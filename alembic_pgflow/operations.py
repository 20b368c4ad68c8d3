"""Migration operations for flows, as autogenerate produces them.

They are only ever rendered: a revision holds plain ``op.execute(...)`` calls, so it still runs
if alembic-pgflow changes or is removed. Each operation carries its finished SQL.
"""

from __future__ import annotations

from alembic.operations.ops import MigrateOperation

from alembic_pgflow.differences import OptionChange
from alembic_pgflow.migration_sql import options_update_statements


class FlowGuardOp(MigrateOperation):
    """Create the temporary guard function that the revision's new flows call.

    Its reverse renders nothing: the function disappears with the session.
    """

    def __init__(self, statement: str, in_upgrade: bool = True) -> None:
        self.statement = statement
        self.in_upgrade = in_upgrade

    def reverse(self) -> FlowGuardOp:
        """Nothing to undo."""
        return FlowGuardOp(self.statement, in_upgrade=not self.in_upgrade)

    def to_diff_tuple(self) -> tuple[str]:
        """What ``alembic check`` lists (only ever beside ``add_pgflow_flow``)."""
        return ("add_pgflow_guard",)


class CreateFlowOp(MigrateOperation):
    """Create a new flow: the guard's call, ``create_flow`` and each ``add_step``, in order
    (as separate statements, or as one block)."""

    def __init__(
        self,
        slug: str,
        structure_checksum: str,
        statements: tuple[str, ...],
        removal: tuple[str, ...],
    ) -> None:
        self.slug = slug
        self.structure_checksum = structure_checksum
        self.statements = statements
        self.removal = removal

    def reverse(self) -> DropFlowOp:
        """Removing the flow again."""
        return DropFlowOp(self)

    def to_diff_tuple(self) -> tuple[str, str, str]:
        """What ``alembic check`` lists."""
        return ("add_pgflow_flow", self.slug, self.structure_checksum)


class DropFlowOp(MigrateOperation):
    """Remove a flow that a ``CreateFlowOp`` created (the downgrade of a new flow)."""

    def __init__(self, created: CreateFlowOp) -> None:
        self.created = created

    @property
    def slug(self) -> str:
        """The flow's slug."""
        return self.created.slug

    @property
    def statements(self) -> tuple[str, ...]:
        """The removal statements the creation prepared."""
        return self.created.removal

    def reverse(self) -> CreateFlowOp:
        """Creating the flow again."""
        return self.created

    def to_diff_tuple(self) -> tuple[str, str]:
        """What ``alembic check`` lists."""
        return ("remove_pgflow_flow", self.slug)


class UpdateFlowOptionsOp(MigrateOperation):
    """Set a flow's and its steps' tunable options to new values."""

    def __init__(self, slug: str, changes: tuple[OptionChange, ...]) -> None:
        self.slug = slug
        self.changes = changes

    @property
    def statements(self) -> list[str]:
        """One ``UPDATE`` for the flow and one per changed step."""
        return options_update_statements(self.slug, self.changes)

    def reverse(self) -> UpdateFlowOptionsOp:
        """Restoring the old values."""
        return UpdateFlowOptionsOp(
            self.slug,
            tuple(OptionChange(c.step, c.option, c.after, c.before) for c in self.changes),
        )

    def to_diff_tuple(self) -> tuple[str, str, tuple[str, ...]]:
        """What ``alembic check`` lists."""
        return ("modify_pgflow_flow_options", self.slug, tuple(map(str, self.changes)))
