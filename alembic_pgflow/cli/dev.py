"""``alembic-pgflow dev``: helpers for development databases (never for production)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import psycopg
import sqlalchemy
from alembic.config import Config

from alembic_pgflow.cli.common import UserError, config_of, project_url, user_errors
from alembic_pgflow.comparison.status import compare
from alembic_pgflow.database.catalog import read_catalog
from alembic_pgflow.database.dev_schema import DEV_SCHEMA_RELEASE, dev_schema_sql
from alembic_pgflow.database.pgflow_install import (
    folder_migrations,
    install_pgflow,
    npm_migrations,
)
from alembic_pgflow.devtools.sync import apply, claimed, plan, refusal
from alembic_pgflow.errors import DevSyncRefusedError
from alembic_pgflow.migration.project import (
    prepend_sys_path,
    project_discovery,
    project_settings,
)


@click.group()
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
    url = project_url(config_of(context))
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
    url = project_url(config_of(context)).set(drivername="postgresql")
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


@dev.command("sync")
@click.option("--yes", is_flag=True, help="Recreate changed flows (their runs are lost) unasked.")
@click.option("--prune", is_flag=True, help="Also drop flows that are only in the database.")
@click.option(
    "--i-know-this-is-dev",
    "declared_dev",
    is_flag=True,
    help="Allow a database that is neither embedded nor on this machine.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Also drop or recreate flows that an Alembic revision of this database created.",
)
@click.option("--watch", is_flag=True, help="Sync again on every save of a flow module.")
@click.pass_context
@user_errors
def sync_command(  # noqa: PLR0917 (click passes one argument per option)
    context: click.Context, yes: bool, prune: bool, declared_dev: bool, force: bool, watch: bool
) -> None:
    """Bring a development database in line with the code at once, without a revision.

    New flows are created and changed options updated; a flow whose structure changed is
    deleted with its runs and queues and created again, after you agree (--yes). Refused on
    any database but the embedded one or a local server, and for flows that Alembic
    revisions created, unless you say otherwise.
    """
    config = config_of(context)
    if not watch:
        sync_once(config, yes=yes, prune=prune, declared_dev=declared_dev, force=force)
        return
    try:
        from alembic_pgflow.devtools.watch import module_folders, watch_and_run
    except ImportError as error:
        raise UserError(
            "--watch needs the watchfiles package: pip install watchfiles (it comes with "
            "alembic-pgflow's devtools extra)"
        ) from error
    settings = project_settings(config)
    prepend_sys_path(config)
    folders = module_folders(settings.modules)
    command = [sys.executable, "-m", "alembic_pgflow", "-c", str(context.find_root().obj)]
    command += ["dev", "sync", "--yes"] if yes else ["dev", "sync"]
    command += [flag for flag, on in (("--prune", prune), ("--force", force)) if on]
    command += ["--i-know-this-is-dev"] if declared_dev else []
    click.echo(f"watching {', '.join(map(str, folders))} (Ctrl+C stops)")

    def run_once() -> None:
        # A fresh process each time: the flow modules are imported anew.
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        )
        for line in (result.stdout + result.stderr).splitlines():
            if not line.startswith("database: "):
                click.echo(line)

    watch_and_run(folders, run_once, click.echo)


def sync_once(config: Config, *, yes: bool, prune: bool, declared_dev: bool, force: bool) -> None:
    """One sync of the project's development database, saying each change."""
    found = project_discovery(config)
    url = project_url(config)
    reason = refusal(_hosts(url), declared_dev)
    if reason:
        raise DevSyncRefusedError(reason)
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.NullPool)
    try:
        with engine.connect() as connection:
            catalog = read_catalog(connection)
            steps = plan(compare(found.flows, catalog, found.retired), catalog, prune=prune)
            destroying = [step.slug for step in steps if step.destroys]
            held = claimed(connection, destroying)
            if held and not force:
                raise DevSyncRefusedError(
                    f"Alembic revisions of this database created {', '.join(map(repr, held))}, "
                    "and dev sync would delete it with its runs; generate a revision with a new "
                    "slug instead, or pass --force on a database you may lose"
                )
            if destroying and not yes:
                _confirm(connection, destroying)
            apply(connection, steps, click.echo)
            connection.commit()
    finally:
        engine.dispose()
    if not steps:
        click.echo("in sync: nothing to do")


def _confirm(connection: sqlalchemy.Connection, slugs: list[str]) -> None:
    counts = dict.fromkeys(slugs, 0)
    if connection.exec_driver_sql("SELECT to_regclass('pgflow.runs') IS NOT NULL").scalar():
        for slug in slugs:
            counts[slug] = connection.execute(
                sqlalchemy.text("SELECT count(*) FROM pgflow.runs WHERE flow_slug = :slug"),
                {"slug": slug},
            ).scalar_one()
    lost = "; ".join(f"{slug} ({counts[slug]} run(s))" for slug in slugs)
    question = f"delete and recreate {lost}, losing their runs and queued tasks?"
    if not sys.stdin.isatty():
        raise DevSyncRefusedError(f"dev sync would {question[:-1]}; pass --yes to agree")
    if not click.confirm(question[0].upper() + question[1:], default=False):
        raise UserError("nothing changed")


def _hosts(url: sqlalchemy.URL) -> list[str | None]:
    hosts: list[str | None] = [url.host]
    query_hosts = url.query.get("host")
    if query_hosts is not None:
        values = [query_hosts] if isinstance(query_hosts, str) else list(query_hosts)
        hosts += [host for value in values for host in value.split(",")]
    return hosts
