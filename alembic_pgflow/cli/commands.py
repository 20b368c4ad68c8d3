"""The ``alembic-pgflow`` command: compile, show, status, diff, and local development helpers.

It reads the same configuration as Alembic (``-c alembic.ini``, ``[tool.alembic]``,
``DATABASE_URL``). User mistakes end in one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
import psycopg
import sqlalchemy
from alembic.config import Config
from alembic.util import CommandError

from alembic_pgflow.cli.doctor import Level, examine
from alembic_pgflow.comparison.status import FlowComparison, FlowStatus, compare
from alembic_pgflow.database.catalog import PgflowCatalog, read_catalog
from alembic_pgflow.database.dev_schema import DEV_SCHEMA_RELEASE, dev_schema_sql
from alembic_pgflow.database.pgflow_install import (
    folder_migrations,
    install_pgflow,
    npm_migrations,
)
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
from alembic_pgflow.errors import FlowDefinitionError, PgflowSchemaMissingError
from alembic_pgflow.migration.project import (
    load_config,
    project_discovery,
    project_flows,
    with_project_connection,
)

P = ParamSpec("P")
R = TypeVar("R")

EXIT_DIFFERENT = 1
"""``status`` and ``diff`` exit with this when code and database differ (errors exit 2)."""


class UserError(click.ClickException):
    """A mistake the user can fix: one line, exit code 2."""

    exit_code = 2


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors a user can act on into one line and exit code 2, never a traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (CommandError, FlowDefinitionError, PgflowSchemaMissingError, ValueError) as error:
            raise UserError(str(error).split("\n")[0] + _more(error)) from error
        except sqlalchemy.exc.OperationalError as error:
            raise UserError(f"cannot connect to the database: {_reason(error)}") from error
        except sqlalchemy.exc.DBAPIError as error:
            raise UserError(f"the database refused a statement: {_reason(error)}") from error

    return run


def _reason(error: sqlalchemy.exc.DBAPIError) -> str:
    text = str(error.orig if error.orig is not None else error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _more(error: Exception) -> str:
    lines = str(error).split("\n")
    return (
        ""
        if len(lines) == 1
        else " (" + "; ".join(line.strip() for line in lines[1:] if line.strip()) + ")"
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


def _config(context: click.Context) -> Config:
    return load_config(context.obj)


@main.command("compile")
@click.argument("slugs", nargs=-1)
@click.option("--target", default=str(DEFAULT_TARGET), show_default=True, help="pgflow release.")
@click.pass_context
@user_errors
def compile_command(context: click.Context, slugs: tuple[str, ...], target: str) -> None:
    """Print the SQL of the flows in code (all, or the SLUGS given)."""
    flows = _selected(project_flows(_config(context)), slugs)
    # Every flow is compiled before anything is printed: an error leaves no partial output.
    blocks = [
        f"-- {found.flow.slug} ({found.location})\n"
        + "\n".join(compile_flow(found.flow, target=target))
        for found in flows
    ]
    click.echo("\n\n".join(blocks))


VIEWS: dict[str, Callable[[dict[str, Any]], str]] = {
    "text": flow_text,
    "json": flow_json,
    "mermaid": flow_mermaid,
    "dot": flow_dot,
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
@click.pass_context
@user_errors
def show(context: click.Context, slug: str | None, output_format: str) -> None:
    """Show a flow: steps, dependencies, options, checksums, or its DAG. Without SLUG, list the
    flows in code. A flow only in the database is read from there."""
    config = _config(context)
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
    click.echo(VIEWS[output_format](data))


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
    for finding in examine(_config(context)):
        click.echo(f"{finding.level.value:<4}  {finding.text}")
        failed = failed or finding.level is Level.FAIL
    if failed:
        sys.exit(EXIT_DIFFERENT)


@main.group()
def dev() -> None:
    """Local development helpers (never for production databases)."""


@dev.command("install-schema")
@click.pass_context
@user_errors
def install_schema(context: click.Context) -> None:
    """Install a pgflow-compatible definition schema into an empty development database.

    It reproduces pgflow's definition layer (tables, create_flow, add_step) so migrations can be
    tried locally; it has no workers or queues. Production runs on a real pgflow installation.
    """
    url = _project_url(_config(context))
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.NullPool)
    try:
        with engine.connect() as connection:
            exists = connection.exec_driver_sql("SELECT to_regnamespace('pgflow') IS NOT NULL")
            if exists.scalar():
                click.echo("the database already has a pgflow schema; nothing installed")
                return
            # Through the driver's cursor without parameters, so "%" stays literal.
            cursor = connection.connection.cursor()
            cursor.execute(dev_schema_sql())
            cursor.close()
            connection.commit()
    finally:
        engine.dispose()
    click.echo(
        f"installed the pgflow {DEV_SCHEMA_RELEASE} definition schema stand-in "
        "(for development only: production databases run real pgflow)"
    )


@dev.command("install-pgflow")
@click.option(
    "--version",
    "release",
    default="latest",
    show_default=True,
    help="The @pgflow/core release on the npm registry.",
)
@click.option(
    "--migrations",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A folder of pgflow migrations to install instead (for releases not on the registry).",
)
@click.option(
    "--if-missing",
    is_flag=True,
    help="Succeed without installing when the database already has pgflow (for scripts).",
)
@click.pass_context
@user_errors
def install_pgflow_command(
    context: click.Context, release: str, migrations: Path | None, if_missing: bool
) -> None:
    """Install real pgflow (runtime functions included) into a development database.

    pgflow's migrations come from the @pgflow/core package on the npm registry (or a folder),
    pgmq from the pgmq package on PyPI; Supabase-only pieces get do-nothing stand-ins. All in
    one transaction. A database that already has pgflow is refused.
    """
    url = _project_url(_config(context)).set(drivername="postgresql")
    conninfo = url.render_as_string(hide_password=False)
    try:
        with psycopg.connect(conninfo) as raw:
            row = raw.execute("SELECT to_regnamespace('pgflow') IS NOT NULL").fetchone()
            if if_missing and row and row[0]:
                click.echo("the database already has pgflow; nothing installed")
                return
            source = folder_migrations(migrations) if migrations else npm_migrations(release)
            installed = install_pgflow(raw, source)
    except psycopg.OperationalError as error:
        raise UserError(f"cannot connect to the database: {str(error).strip()}") from error
    stand_ins = ", ".join(installed.stand_ins) or "none"
    click.echo(
        f"installed pgflow {installed.release} ({installed.migrations} migrations) with pgmq "
        f"{installed.pgmq_version}; stand-ins: {stand_ins}"
    )


def _selected(flows: dict[str, DiscoveredFlow], slugs: tuple[str, ...]) -> list[DiscoveredFlow]:
    if not slugs:
        return list(flows.values())
    unknown = [slug for slug in slugs if slug not in flows]
    if unknown:
        known = ", ".join(flows) or "none"
        raise UserError(f"no flow {unknown[0]!r} in pgflow_modules (flows in code: {known})")
    return [flows[slug] for slug in slugs]


def _comparisons(context: click.Context) -> list[FlowComparison]:
    config = _config(context)
    found = project_discovery(config)
    return compare(found.flows, _catalog(config), found.retired)


def _catalog(config: Config) -> PgflowCatalog:
    """The database's flows, from the connection the project's env.py makes; says on stderr
    which database and pgflow release that is."""

    def read(connection: sqlalchemy.Connection) -> tuple[str, PgflowCatalog]:
        return _shown_url(connection), read_catalog(connection)

    url, catalog = with_project_connection(config, read)
    click.echo(f"database: {url} (pgflow {catalog.release} or later)", err=True)
    return catalog


def _shown_url(connection: sqlalchemy.Connection) -> str:
    return connection.engine.url.render_as_string(hide_password=True)


def _project_url(config: Config) -> sqlalchemy.URL:
    """The URL of the database the project's env.py connects to (said on stderr), for
    commands that write with a connection of their own."""

    def locate(connection: sqlalchemy.Connection) -> sqlalchemy.URL:
        click.echo(f"database: {_shown_url(connection)}", err=True)
        return connection.engine.url

    return with_project_connection(config, locate)


def run(argv: list[str] | None = None) -> Any:
    """Entry point for ``python -m alembic_pgflow``."""
    return main.main(args=argv, prog_name="alembic-pgflow")
