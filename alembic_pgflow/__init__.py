"""alembic-pgflow: pgflow flows as typed Python, compiled to pgflow's SQL, migrated by Alembic."""

from typing import TYPE_CHECKING, Any

# Importing these registers the autogenerate comparator and the renderers with Alembic.
from alembic_pgflow.database.catalog import PgflowCatalog, StoredFlow, read_catalog
from alembic_pgflow.definition.compiler import compile_flow
from alembic_pgflow.definition.dsl import Flow, FlowOptions, StepDefinition, StepOptions
from alembic_pgflow.definition.releases import Feature, PgflowRelease
from alembic_pgflow.definition.retired import RetiredFlow
from alembic_pgflow.definition.shape import (
    FlowShape,
    options_checksum,
    shape_of,
    structure_checksum,
)
from alembic_pgflow.errors import (
    FlowDefinitionError,
    FlowDiscoveryError,
    FlowMigrationError,
    FlowStructureChangedError,
    PgflowCommandError,
    PgflowSchemaMissingError,
    UnsupportedFeatureError,
)
from alembic_pgflow.migration import render as _render
from alembic_pgflow.migration.autogenerate import OBJECT_TYPE

if TYPE_CHECKING:
    from alembic_pgflow.definition.context import TaskContext

_LAZY = {"TaskContext": "alembic_pgflow.definition.context"}
"""Names read from their module on first use: an Alembic command needs none of them."""

__version__: str
"""The installed distribution's version (read on first use: it costs a look through sys.path
that an Alembic command does not need)."""

if not TYPE_CHECKING:  # mypy sees the declaration above, and no module-level __getattr__

    def __getattr__(name: str) -> Any:
        if name in _LAZY:
            from importlib import import_module

            value = getattr(import_module(_LAZY[name]), name)
            globals()[name] = value
            return value
        if name != "__version__":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("alembic-pgflow")
        except PackageNotFoundError:  # a source tree that was never installed
            found = "0+unknown"
        globals()["__version__"] = found
        return found


__all__ = [
    "OBJECT_TYPE",
    "Feature",
    "Flow",
    "FlowDefinitionError",
    "FlowDiscoveryError",
    "FlowMigrationError",
    "FlowOptions",
    "FlowShape",
    "FlowStructureChangedError",
    "PgflowCatalog",
    "PgflowCommandError",
    "PgflowRelease",
    "PgflowSchemaMissingError",
    "RetiredFlow",
    "StepDefinition",
    "StepOptions",
    "StoredFlow",
    "TaskContext",
    "UnsupportedFeatureError",
    "compile_flow",
    "options_checksum",
    "read_catalog",
    "shape_of",
    "structure_checksum",
]

del _render
