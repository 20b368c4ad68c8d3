"""alembic-pgflow: pgflow flows as typed Python, compiled to pgflow's SQL, migrated by Alembic."""

# Importing these registers the autogenerate comparator and the renderers with Alembic.
from alembic_pgflow import render as _render
from alembic_pgflow.autogenerate import OBJECT_TYPE
from alembic_pgflow.compiler import compile_flow
from alembic_pgflow.database import PgflowCatalog, StoredFlow, read_catalog
from alembic_pgflow.dsl import Flow, FlowOptions, StepDefinition, StepOptions
from alembic_pgflow.errors import (
    FlowDefinitionError,
    FlowDiscoveryError,
    FlowMigrationError,
    FlowStructureChangedError,
    PgflowCommandError,
    PgflowSchemaMissingError,
    UnsupportedFeatureError,
)
from alembic_pgflow.releases import Feature, PgflowRelease
from alembic_pgflow.shape import FlowShape, options_checksum, shape_of, structure_checksum

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
    "StepDefinition",
    "StepOptions",
    "StoredFlow",
    "UnsupportedFeatureError",
    "compile_flow",
    "options_checksum",
    "read_catalog",
    "shape_of",
    "structure_checksum",
]

del _render
