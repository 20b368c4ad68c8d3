"""Migration operations for flows, as autogenerate produces them.

They are only ever rendered: a revision holds plain ``op.execute(...)`` calls, so it still runs
if alembic-pgflow changes or is removed. Each operation carries its finished SQL.
"""

from __future__ import annotations

from alembic.operations.ops import MigrateOperation

from alembic_pgflow.comparison.differences import OptionChange
from alembic_pgflow.migration.revision_sql import options_update_statements, removal_sql


class PgflowOps(MigrateOperation):
    """The flow operations of one revision side, in order, and what they need first.

    New flows call a guard before ``create_flow``; removed flows call a remover. Each side of
    the revision creates the function it needs (both live in ``pg_temp`` and disappear with
    the session), after a prologue that serializes flow migrations and checks the lock budget.
    Both functions record or release the revision's claims on flows, so they carry the
    revision id, which Alembic settles only after comparison (:attr:`revision`).
    ``alembic check`` lists the operations inside.
    """

    def __init__(self, ops: list[MigrateOperation], revision: str | None = None) -> None:
        self.ops = ops
        self.revision = revision

    @property
    def created(self) -> list[CreateFlowOp]:
        """The operations that create flows."""
        return [op for op in self.ops if isinstance(op, CreateFlowOp)]

    @property
    def removed(self) -> list[DropFlowOp | RemoveRetiredFlowOp]:
        """The operations that remove flows."""
        return [op for op in self.ops if isinstance(op, DropFlowOp | RemoveRetiredFlowOp)]

    def reverse(self) -> PgflowOps:
        """Each operation reversed, in reverse order."""
        return PgflowOps([op.reverse() for op in reversed(self.ops)], self.revision)


class CreateFlowOp(MigrateOperation):
    """Create a new flow: the guard's call, ``create_flow`` and each ``add_step``, in order
    (as separate statements, or as one block)."""

    def __init__(self, slug: str, structure_checksum: str, statements: tuple[str, ...]) -> None:
        self.slug = slug
        self.structure_checksum = structure_checksum
        self.statements = statements

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
    def statement(self) -> str:
        """The remover's call."""
        return removal_sql(self.slug)

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


class RemoveRetiredFlowOp(MigrateOperation):
    """Delete the definition of a flow declared ``RetiredFlow(slug, remove=True)``; its
    reverse recreates the flow as the database held it."""

    def __init__(self, slug: str, restore_statements: tuple[str, ...]) -> None:
        self.slug = slug
        self.restore_statements = restore_statements

    @property
    def statement(self) -> str:
        """The remover's call, in retirement mode."""
        return removal_sql(self.slug, retire=True)

    def reverse(self) -> RestoreRetiredFlowOp:
        """Recreating the flow as it was."""
        return RestoreRetiredFlowOp(self)

    def to_diff_tuple(self) -> tuple[str, str]:
        """What ``alembic check`` lists."""
        return ("remove_retired_pgflow_flow", self.slug)


class RestoreRetiredFlowOp(CreateFlowOp):
    """Recreate a removed retired flow (the downgrade of its removal), through the guard."""

    def __init__(self, removal: RemoveRetiredFlowOp) -> None:
        super().__init__(removal.slug, "", removal.restore_statements)
        self.removal = removal

    def reverse(self) -> RemoveRetiredFlowOp:  # type: ignore[override]
        """Removing it again."""
        return self.removal

    def to_diff_tuple(self) -> tuple[str, str, str]:
        """What ``alembic check`` lists."""
        return ("restore_retired_pgflow_flow", self.slug, "")
