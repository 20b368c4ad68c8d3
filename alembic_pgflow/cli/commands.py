"""The ``alembic-pgflow`` command: compile, show, status, diff, and local development helpers.

It reads the same configuration as Alembic (``-c alembic.ini``, ``[tool.alembic]``,
``DATABASE_URL``). User mistakes end in one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import sqlalchemy
from alembic.config import Config

from alembic_pgflow.cli.common import (
    EXIT_DIFFERENT,
    UserError,
    config_of,
    shown_url,
    user_errors,
)
from alembic_pgflow.cli.dev import dev
from alembic_pgflow.cli.doctor import Level, examine
from alembic_pgflow.cli.playground import playground
from alembic_pgflow.cli.worker import run_command, worker
from alembic_pgflow.comparison.status import FlowComparison, FlowStatus, compare
from alembic_pgflow.database.catalog import PgflowCatalog, read_catalog
from alembic_pgflow.definition.compiler import compile_flow
from alembic_pgflow.definition.discovery import DiscoveredFlow
from alembic_pgflow.definition.releases import DEFAULT_TARGET
from alembic_pgflow.definition.views import (
    flow_data,
    flow_dot,
    flow_json,
    flow_mermaid,
    flow_text,
    stored_data,
)
from alembic_pgflow.migration.project import (
    project_discovery,
    project_flows,
    with_project_connection,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--config",
    "config_path",
    default="alembic.ini",
    envvar="ALEMBIC_CONFIG",
    show_default=True,
    help="The Alembic config file (pyproject.toml beside it is read too).",
)
@click.version_option(None, "-V", "--version", package_name="alembic-pgflow")
@click.pass_context
def main(context: click.Context, config_path: str) -> None:
    """pgflow flows in an Alembic project: compile, inspect and compare them."""
    context.obj = config_path


@main.command("compile")
@click.argument("slugs", nargs=-1)
@click.option("--target", default=str(DEFAULT_TARGET), show_default=True, help="pgflow release.")
@click.pass_context
@user_errors
def compile_command(context: click.Context, slugs: tuple[str, ...], target: str) -> None:
    """Print the SQL of the flows in code (all, or the SLUGS given)."""
    flows = _selected(project_flows(config_of(context)), slugs)
    # Every flow is compiled before anything is printed: an error leaves no partial output.
    blocks = [
        f"-- {found.flow.slug} ({found.location})\n"
        + "\n".join(compile_flow(found.flow, target=target))
        for found in flows
    ]
    click.echo("\n\n".join(blocks))


def _svg(data: dict[str, Any]) -> str:
    from alembic_pgflow.devtools.graph import flow_svg

    return flow_svg(data)


VIEWS: dict[str, Callable[[dict[str, Any]], str]] = {
    "text": flow_text,
    "json": flow_json,
    "mermaid": flow_mermaid,
    "dot": flow_dot,
    "svg": _svg,
}


@main.command()
@click.argument("slug", required=False)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(list(VIEWS)),
    default="text",
    show_default=True,
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file instead of stdout (only once the view is complete).",
)
@click.pass_context
@user_errors
def show(context: click.Context, slug: str | None, output_format: str, output: Path | None) -> None:
    """Show a flow: steps, dependencies, options, checksums, or its DAG. Without SLUG, list the
    flows in code. A flow only in the database is read from there."""
    config = config_of(context)
    flows = project_flows(config)
    if slug is None:
        for listed in flows.values():
            click.echo(f"{listed.flow.slug}  {listed.location}")
        if not flows:
            click.echo("(no flows in pgflow_modules)")
        return
    found = flows.get(slug)
    if found is not None:
        data = flow_data(found.flow, found.location)
    else:
        stored = _catalog(config).flows.get(slug)
        if stored is None:
            known = ", ".join(flows) or "none"
            raise UserError(f"no flow {slug!r} in code or in the database (flows in code: {known})")
        data = stored_data(stored.shape)
    text = VIEWS[output_format](data)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", "utf-8")


@main.command()
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object per flow, for scripts.",
)
@click.pass_context
@user_errors
def status(context: click.Context, output_format: str) -> None:
    """Every flow in code and in the database with its status; exit 0 only if all are in sync."""
    comparisons = _comparisons(context)
    if output_format == "json":
        click.echo(json.dumps([_status_data(c) for c in comparisons], indent=2))
        if not all(c.status.settled for c in comparisons):
            sys.exit(EXIT_DIFFERENT)
        return
    width = max([len(c.slug) for c in comparisons] + [4])
    click.echo(f"{'SLUG':<{width}}  {'STATUS':<17}  LOCATION")
    for comparison in comparisons:
        location = comparison.code.location if comparison.code else "-"
        click.echo(f"{comparison.slug:<{width}}  {comparison.status.value:<17}  {location}")
    if not comparisons:
        click.echo("(no flows in code or in the database)")
    if not all(c.status.settled for c in comparisons):
        sys.exit(EXIT_DIFFERENT)


@main.command()
@click.argument("slug")
@click.pass_context
@user_errors
def diff(context: click.Context, slug: str) -> None:
    """Compare one flow in code with the database, difference by difference."""
    matches = [c for c in _comparisons(context) if c.slug == slug]
    if not matches:
        raise UserError(f"no flow {slug!r} in code or in the database")
    comparison = matches[0]
    click.echo(f"{slug}: {comparison.status.value}")
    for line in _diff_lines(comparison):
        click.echo(f"  {line}")
    if not comparison.status.settled:
        sys.exit(EXIT_DIFFERENT)


def _status_data(comparison: FlowComparison) -> dict[str, Any]:
    stored = comparison.stored.shape if comparison.stored else None
    return {
        "slug": comparison.slug,
        "status": comparison.status.value,
        "location": comparison.code.location if comparison.code else None,
        "structure_checksum_in_code": (
            comparison.wanted.structure_checksum if comparison.wanted else None
        ),
        "structure_checksum_in_database": stored.structure_checksum if stored else None,
        "differences": [
            *comparison.problems,
            *comparison.structure_differences,
            *map(str, comparison.option_changes),
        ],
    }


def _diff_lines(comparison: FlowComparison) -> Iterator[str]:
    stored = comparison.stored.shape if comparison.stored else None
    wanted = comparison.wanted
    if comparison.status is FlowStatus.NEW:
        yield "in code, not in the database yet: alembic revision --autogenerate creates it"
    elif comparison.status is FlowStatus.ONLY_IN_DATABASE:
        yield "in the database, in no configured module (autogenerate never drops it)"
    elif comparison.status is FlowStatus.RETIRED:
        yield "retired in code; its definition stays in the database as it is"
    elif comparison.status is FlowStatus.TO_REMOVE:
        yield "retired with remove=True: the next autogenerated revision deletes its definition"
    elif comparison.status is FlowStatus.CORRUPT:
        yield "the stored rows break pgflow's invariants; pgflow would run this flow wrongly:"
    yield from (f"- {problem}" for problem in comparison.problems)
    if stored and wanted:
        yield f"structure checksum in the database: {stored.structure_checksum}"
        yield f"structure checksum in code:         {wanted.structure_checksum}"
        yield f"options checksum in the database:   {stored.options_checksum}"
        yield f"options checksum in code:           {wanted.options_checksum}"
    yield from (f"- {line}" for line in comparison.structure_differences)
    yield from (f"- {change}" for change in comparison.option_changes)
    if comparison.status is FlowStatus.STRUCTURE_CHANGED:
        yield "a structure cannot change under its slug: give the new structure a new slug"


@main.command()
@click.pass_context
@user_errors
def doctor(context: click.Context) -> None:
    """Check the project's set-up, from env.py to the database, and say what to fix; exit 1 if
    anything must be fixed."""
    failed = False
    for finding in examine(config_of(context)):
        click.echo(f"{finding.level.value:<4}  {finding.text}")
        failed = failed or finding.level is Level.FAIL
    if failed:
        sys.exit(EXIT_DIFFERENT)


def _selected(flows: dict[str, DiscoveredFlow], slugs: tuple[str, ...]) -> list[DiscoveredFlow]:
    if not slugs:
        return list(flows.values())
    unknown = [slug for slug in slugs if slug not in flows]
    if unknown:
        known = ", ".join(flows) or "none"
        raise UserError(f"no flow {unknown[0]!r} in pgflow_modules (flows in code: {known})")
    return [flows[slug] for slug in slugs]


def _comparisons(context: click.Context) -> list[FlowComparison]:
    config = config_of(context)
    found = project_discovery(config)
    return compare(found.flows, _catalog(config), found.retired)


def _catalog(config: Config) -> PgflowCatalog:
    """The database's flows, from the connection the project's env.py makes; says on stderr
    which database and pgflow release that is."""

    def read(connection: sqlalchemy.Connection) -> tuple[str, PgflowCatalog]:
        return shown_url(connection), read_catalog(connection)

    url, catalog = with_project_connection(config, read)
    click.echo(f"database: {url} (pgflow {catalog.release} or later)", err=True)
    return catalog


def run(argv: list[str] | None = None) -> Any:
    """Entry point for ``python -m alembic_pgflow``."""
    return main.main(args=argv, prog_name="alembic-pgflow")


main.add_command(dev)
main.add_command(playground)
main.add_command(worker)
main.add_command(run_command)
