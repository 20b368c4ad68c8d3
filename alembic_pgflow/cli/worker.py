"""``alembic-pgflow worker`` and ``alembic-pgflow run``: run flows without TypeScript."""

from __future__ import annotations

import json
import logging
import signal
import sys
from types import FrameType

import click
import sqlalchemy

from alembic_pgflow.cli.common import EXIT_DIFFERENT, UserError, config_of, project_url, user_errors
from alembic_pgflow.migration.project import project_flows
from alembic_pgflow.worker import Worker, start_run, wait_for_run
from alembic_pgflow.worker.worker import flows_to_serve


def _log_tasks() -> None:
    """One line per task outcome on stderr (env.py's logging config, read while finding the
    database, may have silenced other loggers)."""
    logger = logging.getLogger("alembic_pgflow.worker")
    logger.disabled = False
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)


def _conninfo(url: sqlalchemy.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@click.command()
@click.argument("slugs", nargs=-1)
@click.option(
    "--concurrency",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Tasks in flight at once, for each flow.",
)
@click.option(
    "--poll-interval-ms",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="How often a waiting worker looks at a flow's queue (lower: less latency between "
    "steps, more queries while idle).",
)
@click.option(
    "--shutdown-timeout",
    default=30.0,
    show_default=True,
    help="Seconds in-flight tasks get to finish after SIGTERM or Ctrl+C.",
)
@click.pass_context
@user_errors
def worker(
    context: click.Context,
    slugs: tuple[str, ...],
    concurrency: int,
    poll_interval_ms: int,
    shutdown_timeout: float,
) -> None:
    """Run the handlers of the flows in code (all with handlers, or the SLUGS given).

    Before polling, each flow must be in the database with the structure it has in code (run
    your migrations first); the worker never creates or changes definitions.
    """
    config = config_of(context)
    flows = flows_to_serve(project_flows(config), slugs)
    runner = Worker(
        _conninfo(project_url(config)),
        flows,
        concurrency=concurrency,
        poll_interval_ms=poll_interval_ms,
    )
    _log_tasks()

    def stop(signum: int, frame: FrameType | None) -> None:
        runner.stop(shutdown_timeout)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    summary = runner.run()
    click.echo(f"stopped: {summary.completed} task(s) completed, {summary.failed} failed")


@click.command("run")
@click.argument("slug")
@click.option("--input", "run_input", default="{}", show_default=True, help="The run's JSON input.")
@click.option("--wait", is_flag=True, help="Wait for the run to end and print its output.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds --wait waits.")
@click.pass_context
@user_errors
def run_command(
    context: click.Context, slug: str, run_input: str, wait: bool, timeout: float
) -> None:
    """Start a run of the flow SLUG (pgflow.start_flow) and print its id, or with --wait its
    final status and output (exit 1 unless it completed)."""
    try:
        value = json.loads(run_input)
    except json.JSONDecodeError as error:
        raise UserError(f"--input is not JSON: {error}") from error
    conninfo = _conninfo(project_url(config_of(context)))
    run_id = start_run(conninfo, slug, value)
    if not wait:
        click.echo(run_id)
        return
    result = wait_for_run(conninfo, run_id, timeout)
    click.echo(f"run {run_id}: {result.status}")
    if result.output is not None:
        click.echo(json.dumps(result.output, indent=2))
    if result.status != "completed":
        sys.exit(EXIT_DIFFERENT)
