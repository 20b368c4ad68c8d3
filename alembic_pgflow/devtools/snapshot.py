"""Everything the playground shows about a project's flows, as one JSON-ready document.

It imports the flow modules, so the playground builds it in a fresh process each time a
module changes (``alembic-pgflow playground --snapshot``): a module that fails to import
gives a document with the error instead of a dead server.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy
from alembic.config import Config

from alembic_pgflow.comparison.status import FlowComparison, compare
from alembic_pgflow.database.catalog import PgflowCatalog, read_catalog
from alembic_pgflow.definition.compiler import compile_flow
from alembic_pgflow.definition.discovery import DiscoveredFlow
from alembic_pgflow.definition.releases import DEFAULT_TARGET, OLDEST_SUPPORTED, PgflowRelease
from alembic_pgflow.definition.views import flow_data, stored_data
from alembic_pgflow.devtools.graph import flow_svg
from alembic_pgflow.errors import PgflowCommandError, PgflowSchemaMissingError
from alembic_pgflow.migration.project import project_discovery, with_project_connection

TARGETS = tuple(f"0.{minor}" for minor in range(OLDEST_SUPPORTED.minor, 18))


def snapshot(config: Config) -> dict[str, Any]:
    """The flows in code (and those only in the database), each with its DAG, compiled SQL per
    pgflow release, checksums and status; or the error that stopped it."""
    try:
        found = project_discovery(config)
    except PgflowCommandError as error:
        return {"error": str(error), "flows": [], "database": None}
    database, catalog, problem = _database(config)
    comparisons = (
        {c.slug: c for c in compare(found.flows, catalog, found.retired)} if catalog else {}
    )
    flows = [_code_flow(item, comparisons.get(slug)) for slug, item in found.flows.items()]
    if catalog is not None:
        flows += [
            _stored_flow(stored.shape, comparisons.get(slug))
            for slug, stored in catalog.flows.items()
            if slug not in found.flows
        ]
    return {
        "error": None,
        "flows": sorted(flows, key=lambda flow: flow["slug"]),
        "database": database,
        "database_problem": problem,
        "release": None if catalog is None else str(catalog.release),
        "targets": list(TARGETS),
        "default_target": f"{DEFAULT_TARGET.major}.{DEFAULT_TARGET.minor}"
        if catalog is None
        else _target_of(catalog.release),
    }


def _target_of(release: PgflowRelease) -> str:
    return f"{release.major}.{release.minor}" if release >= OLDEST_SUPPORTED else TARGETS[0]


def _database(config: Config) -> tuple[str | None, PgflowCatalog | None, str | None]:
    def read(connection: sqlalchemy.Connection) -> tuple[str, PgflowCatalog | None, str | None]:
        shown = connection.engine.url.render_as_string(hide_password=True)
        try:
            return shown, read_catalog(connection), None
        except PgflowSchemaMissingError as error:
            return shown, None, str(error)

    try:
        return with_project_connection(config, read)
    except Exception as error:  # the page says why; the code view still works
        return None, None, f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"


def _code_flow(found: DiscoveredFlow, comparison: FlowComparison | None) -> dict[str, Any]:
    data = flow_data(found.flow, found.location)
    for step in data["steps"]:
        handler = found.flow.handlers.get(step["slug"])
        step["handler"] = (
            None if handler is None else f"{handler.__module__}.{handler.__qualname__}"
        )
        step["effective_options"] = _effective(step, data["options"])
    sql = {}
    for target in TARGETS:
        try:
            sql[target] = "\n".join(compile_flow(found.flow, target=target))
        except ValueError as error:
            sql[target] = f"-- {error}"
    return {**data, "in_code": True, "sql": sql, **_drawing(data), **_status(comparison)}


def _stored_flow(shape: Any, comparison: FlowComparison | None) -> dict[str, Any]:
    data = stored_data(shape)
    for step in data["steps"]:
        step["handler"] = None
        step["effective_options"] = _effective(step, data["options"])
    return {**data, "in_code": False, "sql": {}, **_drawing(data), **_status(comparison)}


def _effective(step: dict[str, Any], flow_options: dict[str, int]) -> dict[str, int]:
    """A step's options as pgflow applies them: its own, else the flow's (start_delay: 0)."""
    own = step["options"]
    return {
        **{name: own.get(name, value) for name, value in flow_options.items()},
        "start_delay": own.get("start_delay", 0),
    }


def _drawing(data: dict[str, Any]) -> dict[str, Any]:
    try:
        return {"svg": flow_svg(data), "svg_error": None}
    except PgflowCommandError as error:
        return {"svg": None, "svg_error": str(error)}


def _status(comparison: FlowComparison | None) -> dict[str, Any]:
    if comparison is None:
        return {"status": None, "differences": []}
    return {
        "status": comparison.status.value,
        "differences": [
            *comparison.problems,
            *comparison.structure_differences,
            *map(str, comparison.option_changes),
        ],
    }
