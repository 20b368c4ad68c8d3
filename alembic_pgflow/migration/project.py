"""An Alembic project as the CLI and env.py see it: config, sys.path, database, flows.

Everything is read from the same places Alembic reads: ``alembic.ini`` (``-c``) and
``[tool.alembic]`` in ``pyproject.toml``. The database is the one the project's own ``env.py``
connects to (:func:`with_project_connection`), so the CLI and ``alembic`` never disagree.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url

from alembic_pgflow.definition.discovery import DiscoveredFlow, Discovery, discover
from alembic_pgflow.errors import PgflowConfigurationError
from alembic_pgflow.migration.settings import PgflowSettings, read_config_settings

T = TypeVar("T")

DATABASE_URL_VARIABLE = "DATABASE_URL"
EMBEDDED_SETTING = "pgflow_embedded_pgdata"
_PLACEHOLDER_URL = "driver://user:pass@localhost/dbname"


def load_config(path: str | Path) -> Config:
    """The Alembic config in ``path``, with ``pyproject.toml`` beside it where Alembic reads one."""
    ini = Path(path)
    if not ini.is_file():
        raise PgflowConfigurationError(
            f"no Alembic config at {str(ini)!r}: run from the project folder or pass -c alembic.ini"
        )
    toml = ini.resolve().parent / "pyproject.toml"
    if toml.is_file():
        try:
            return Config(str(ini), toml_file=str(toml))  # type: ignore[call-arg, unused-ignore]
        except TypeError:  # Alembic before 1.16 reads no pyproject.toml
            pass
    return Config(str(ini))


def prepend_sys_path(config: Config) -> None:
    """Do what the ``alembic`` command does with ``prepend_sys_path`` (from alembic.ini, or
    ``[tool.alembic]`` in pyproject.toml)."""
    value = config.get_main_option("prepend_sys_path") or _toml_option(config, "prepend_sys_path")
    if value:
        paths = [p for p in re.split(rf"[\s,{re.escape(os.pathsep)}]+", value) if p]
        sys.path[:0] = [os.path.abspath(p) for p in paths]


def project_settings(config: Config, *, strict: bool = True) -> PgflowSettings:
    """The project's settings; an error if ``pgflow_modules`` is not set (and, when
    ``strict``, if a ``pgflow_*`` setting is unknown)."""
    settings = read_config_settings(config, strict=strict)
    if settings is None:
        raise PgflowConfigurationError(
            "pgflow_modules is not set: add 'pgflow_modules = myapp.flows' to the [alembic] "
            "section of alembic.ini (or [tool.alembic] in pyproject.toml)"
        )
    return settings


def project_flows(config: Config) -> dict[str, DiscoveredFlow]:
    """The flows of the configured modules, by slug."""
    return project_discovery(config).flows


def project_discovery(config: Config, *, strict: bool = True) -> Discovery:
    """The flows and retired slugs of the configured modules."""
    settings = project_settings(config, strict=strict)
    prepend_sys_path(config)
    return discover(settings.modules)


def database_url(config: Config) -> str:
    """``DATABASE_URL``, else ``sqlalchemy.url``, else an embedded server when the project
    sets ``pgflow_embedded_pgdata``. ``postgresql://`` URLs are given the psycopg driver."""
    url = os.environ.get(DATABASE_URL_VARIABLE) or config.get_main_option("sqlalchemy.url")
    if url and url != _PLACEHOLDER_URL:
        return with_psycopg_driver(url)
    pgdata = config.get_main_option(EMBEDDED_SETTING)
    if pgdata:
        from alembic_pgflow.database.embedded import embedded_database_url

        return embedded_database_url(pgdata)
    raise PgflowConfigurationError(
        "no database to connect to: set DATABASE_URL or sqlalchemy.url in alembic.ini "
        f"(or {EMBEDDED_SETTING} for a local embedded PostgreSQL)"
    )


def with_psycopg_driver(url: str) -> str:
    """``postgres://`` and ``postgresql://`` URLs use psycopg 3, the driver installed with us."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _toml_option(config: Config, name: str) -> str | None:
    read = getattr(config, "get_alembic_option", None)  # Alembic 1.16+
    if read is None:
        return None
    value = read(name)
    if isinstance(value, list):
        return os.pathsep.join(str(item) for item in value)
    return None if value is None else str(value)


def with_project_connection(config: Config, reader: Callable[[sqlalchemy.Connection], T]) -> T:
    """Run the project's ``env.py`` as ``alembic`` would, and call ``reader`` with the
    connection it configures, inside its transaction; nothing is migrated.

    This is how the CLI reaches exactly the database of the project's Alembic commands, however
    env.py finds it (``sqlalchemy.url``, ``DATABASE_URL``, a secret store...). Alembic's INFO
    log lines are kept quiet meanwhile.
    """
    script = ScriptDirectory.from_config(config)
    result: list[T] = []

    def read(revision: Any, context: Any) -> list[Any]:
        connection = context.connection
        if connection is None:
            raise PgflowConfigurationError(
                "the project's env.py configured no database connection (offline only?): "
                "alembic-pgflow needs one to read the flows in the database"
            )
        result.append(reader(connection))
        return []

    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        with EnvironmentContext(config, script, fn=read, dont_mutate=True):
            script.run_env()
    finally:
        logging.disable(previous)
    if not result:
        raise PgflowConfigurationError(
            "the project's env.py did not run migrations (context.run_migrations()), so "
            "alembic-pgflow found no database connection in it"
        )
    return result[0]
