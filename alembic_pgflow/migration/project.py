"""An Alembic project as the CLI and env.py see it: config, sys.path, database URL, flows.

Everything is read from the same places Alembic reads: ``alembic.ini`` (``-c``), ``[tool.alembic]``
in ``pyproject.toml`` and the ``DATABASE_URL`` environment variable.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from alembic.config import Config
from sqlalchemy.engine import make_url

from alembic_pgflow.definition.discovery import DiscoveredFlow, discover_flows
from alembic_pgflow.errors import PgflowConfigurationError
from alembic_pgflow.migration.settings import PgflowSettings, read_config_settings

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
    """Do what the ``alembic`` command does with ``prepend_sys_path``."""
    value = config.get_main_option("prepend_sys_path")
    if value:
        paths = [p for p in re.split(rf"[\s,{re.escape(os.pathsep)}]+", value) if p]
        sys.path[:0] = [os.path.abspath(p) for p in paths]


def project_settings(config: Config) -> PgflowSettings:
    """The project's settings; an error if ``pgflow_modules`` is not set."""
    settings = read_config_settings(config)
    if settings is None:
        raise PgflowConfigurationError(
            "pgflow_modules is not set: add 'pgflow_modules = myapp.flows' to the [alembic] "
            "section of alembic.ini (or [tool.alembic] in pyproject.toml)"
        )
    return settings


def project_flows(config: Config) -> dict[str, DiscoveredFlow]:
    """The flows of the configured modules, by slug."""
    settings = project_settings(config)
    prepend_sys_path(config)
    return discover_flows(settings.modules)


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
