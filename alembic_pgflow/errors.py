"""The exceptions alembic-pgflow raises, each naming what a user must fix."""

from __future__ import annotations


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
