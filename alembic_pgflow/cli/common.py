"""What every ``alembic-pgflow`` command shares: one-line errors, exit codes, the project's
config and database."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click
import sqlalchemy
from alembic.config import Config
from alembic.util import CommandError

from alembic_pgflow.errors import FlowDefinitionError, PgflowSchemaMissingError
from alembic_pgflow.migration.project import load_config, with_project_connection

P = ParamSpec("P")
R = TypeVar("R")

EXIT_DIFFERENT = 1
"""``status`` and ``diff`` exit with this when code and database differ (errors exit 2)."""


class UserError(click.ClickException):
    """A mistake the user can fix: one line, exit code 2."""

    exit_code = 2


_DRIVERS = {"psycopg2", "asyncpg", "pg8000", "psycopg2cffi"}


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn the errors a user can act on into one line and exit code 2, never a traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (CommandError, FlowDefinitionError, PgflowSchemaMissingError, ValueError) as error:
            raise UserError(str(error).split("\n")[0] + _more(error)) from error
        except ModuleNotFoundError as error:
            if error.name not in _DRIVERS:
                raise
            raise UserError(
                f"the database URL needs the {error.name} driver, which is not installed: "
                "write postgresql+psycopg://... (psycopg 3 comes with alembic-pgflow), or "
                f"install {error.name}"
            ) from error
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


def config_of(context: click.Context) -> Config:
    """The Alembic config the command was pointed at (``-c``)."""
    return load_config(context.find_root().obj)


def shown_url(connection: sqlalchemy.Connection) -> str:
    return connection.engine.url.render_as_string(hide_password=True)


def project_url(config: Config) -> sqlalchemy.URL:
    """The URL of the database the project's env.py connects to (said on stderr), for
    commands that write with a connection of their own."""

    def locate(connection: sqlalchemy.Connection) -> sqlalchemy.URL:
        click.echo(f"database: {shown_url(connection)}", err=True)
        return connection.engine.url

    return with_project_connection(config, locate)
