"""``alembic-pgflow playground``: the flows of the project as a local web page."""

from __future__ import annotations

import click

from alembic_pgflow.cli.common import UserError, config_of, project_url, user_errors
from alembic_pgflow.migration.project import prepend_sys_path, project_settings


@click.command()
@click.option("--port", default=8765, show_default=True, help="Port on 127.0.0.1.")
@click.option("--snapshot", "print_snapshot", is_flag=True, hidden=True)
@click.pass_context
@user_errors
def playground(context: click.Context, port: int, print_snapshot: bool) -> None:
    """Serve a read-only page of every flow: its DAG, steps, SQL, status and runs.

    It binds to 127.0.0.1 only, and reloads by itself when a flow module changes.
    """
    config = config_of(context)
    try:
        from alembic_pgflow.devtools import playground as page
        from alembic_pgflow.devtools.watch import module_folders
    except ImportError as error:
        raise UserError(
            f"the playground needs {error.name}: pip install starlette uvicorn watchfiles "
            "(they come with alembic-pgflow's devtools extra)"
        ) from error
    if print_snapshot:
        page.run_snapshot(config)
        return
    settings = project_settings(config)
    prepend_sys_path(config)
    folders = module_folders(settings.modules)
    try:
        url = project_url(config)
    except Exception as error:  # the page still shows the code, and says why
        click.echo(f"no database: {error}", err=True)
        url = None
    server = page.Playground(page.snapshot_command(str(context.find_root().obj)), folders, url)
    page.serve(server, port, click.echo)
