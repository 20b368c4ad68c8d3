"""``alembic-pgflow doctor``: check a project's set-up and say what to fix.

Each check gives findings, from the cheapest (files) to the database; a check that cannot run
because an earlier one failed is skipped. Nothing is written anywhere.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy
from alembic.config import Config
from alembic.script import ScriptDirectory

from alembic_pgflow.comparison.status import FlowStatus, compare
from alembic_pgflow.database.catalog import PgflowCatalog, read_catalog
from alembic_pgflow.definition.discovery import Discovery
from alembic_pgflow.errors import PgflowCommandError, PgflowSchemaMissingError
from alembic_pgflow.migration.autogenerate import new_flow_limit
from alembic_pgflow.migration.project import (
    project_discovery,
    project_settings,
    with_project_connection,
)
from alembic_pgflow.migration.revision_sql import LOCK_CAPACITY_FACTOR, LOCKS_PER_FLOW
from alembic_pgflow.migration.settings import PgflowSettings, unknown_settings


class Level(enum.Enum):
    """How a finding counts: only ``FAIL`` makes ``doctor`` exit non-zero."""

    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    """One line of the report."""

    level: Level
    text: str


def examine(config: Config) -> Iterator[Finding]:
    """Every finding for the project whose Alembic config is ``config``."""
    env_text = yield from _env_py(config)
    yield from _settings(config)
    found = yield from _flows(config)
    if found is None:
        return
    yield from _driver(config)
    yield from _database(config, found, env_text)


def _env_py(config: Config) -> Generator[Finding, None, str]:
    try:
        folder = Path(ScriptDirectory.from_config(config).dir)
    except Exception as error:  # Alembic says why in its own words
        yield Finding(Level.FAIL, f"the Alembic script folder cannot be read: {error}")
        return ""
    env = folder / "env.py"
    if not env.is_file():
        yield Finding(Level.FAIL, f"{env} does not exist: run alembic init first")
        return ""
    text = env.read_text("utf-8")
    if re.search(r"^\s*(import alembic_pgflow|from alembic_pgflow\b)", text, re.M):
        yield Finding(Level.OK, f"{env} imports alembic_pgflow (the plugin is registered)")
    else:
        yield Finding(
            Level.FAIL,
            f"{env} does not import alembic_pgflow, so autogenerate never compares flows: add "
            "'import alembic_pgflow' as its first line",
        )
    if re.search(r"transaction_per_migration\s*=\s*True", text):
        yield Finding(Level.OK, "env.py runs each revision in its own transaction")
    else:
        yield Finding(
            Level.WARN,
            "env.py runs all pending revisions in one transaction: flows' pgmq queues take "
            "about 25 locks each, so add transaction_per_migration=True to its "
            "context.configure(...) calls",
        )
    return text


def _settings(config: Config) -> Iterator[Finding]:
    problems = unknown_settings({}, config)
    for problem in problems:
        yield Finding(Level.FAIL, problem)
    if not problems:
        yield Finding(Level.OK, "every pgflow_* setting is one alembic-pgflow reads")


def _flows(config: Config) -> Generator[Finding, None, Discovery | None]:
    try:
        settings = project_settings(config, strict=False)  # unknown names: reported above
        found = project_discovery(config, strict=False)
    except PgflowCommandError as error:
        yield Finding(Level.FAIL, str(error))
        return None
    yield Finding(
        Level.OK,
        f"pgflow_modules = {', '.join(settings.modules)}: {len(found.flows)} flow(s)"
        + (f", {len(found.retired)} retired" if found.retired else ""),
    )
    return found


def _driver(config: Config) -> Iterator[Finding]:
    url = config.get_main_option("sqlalchemy.url")
    if not url or url.startswith("driver://"):
        return
    try:
        parsed = sqlalchemy.engine.make_url(url)
        parsed.get_dialect().import_dbapi()
    except Exception as error:
        yield Finding(
            Level.FAIL,
            f"sqlalchemy.url uses {url.split('://', 1)[0]!r}, whose driver cannot be loaded "
            f"({type(error).__name__}: {error}); write postgresql+psycopg://... (psycopg 3, "
            "installed with alembic-pgflow)",
        )
    else:
        yield Finding(Level.OK, f"the database driver of {parsed.drivername!r} is installed")


@dataclass(frozen=True)
class _Privileges:
    temporary: bool
    create: bool
    claims_schema: bool
    pgflow_functions: bool


_PRIVILEGES_SQL = """\
SELECT has_database_privilege(current_database(), 'TEMPORARY'),
  has_database_privilege(current_database(), 'CREATE'),
  to_regnamespace('alembic_pgflow') IS NOT NULL
    AND has_schema_privilege('alembic_pgflow', 'USAGE'),
  coalesce(bool_and(has_function_privilege(p.oid, 'EXECUTE')), false)
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = 'pgflow' AND p.proname IN ('create_flow', 'add_step')"""


def _database(config: Config, found: Discovery, env_text: str) -> Iterator[Finding]:
    def read(connection: sqlalchemy.Connection) -> tuple[str, PgflowCatalog | str, _Privileges]:
        shown = connection.engine.url.render_as_string(hide_password=True)
        row = connection.exec_driver_sql(_PRIVILEGES_SQL).one()
        privileges = _Privileges(*row)
        try:
            return shown, read_catalog(connection), privileges
        except PgflowSchemaMissingError as error:
            return shown, str(error), privileges

    try:
        shown, catalog, privileges = with_project_connection(config, read)
    except sqlalchemy.exc.OperationalError as error:
        reason = str(error.orig or error).strip().splitlines()[0]
        yield Finding(Level.FAIL, f"the database env.py connects to is not reachable: {reason}")
        return
    except Exception as error:
        yield Finding(Level.FAIL, f"env.py could not connect: {type(error).__name__}: {error}")
        return
    yield Finding(Level.OK, f"database {shown} is reachable")
    if isinstance(catalog, str):
        yield Finding(
            Level.FAIL,
            f"{catalog} (for development: alembic-pgflow dev install-pgflow)",
        )
        return
    features = ", ".join(sorted(f.description for f in catalog.features)) or "none"
    yield Finding(Level.OK, f"pgflow {catalog.release} or later; features: {features}")
    yield from _privilege_findings(privileges)
    comparisons = compare(found.flows, catalog, found.retired)
    for comparison in comparisons:
        if comparison.status in {FlowStatus.CORRUPT, FlowStatus.UNSUPPORTED}:
            for problem in comparison.problems:
                yield Finding(Level.FAIL, f"flow {comparison.slug!r}: {problem}")
    waiting = sum(1 for c in comparisons if c.status is FlowStatus.NEW)
    yield from _lock_budget(catalog, waiting, env_text)


def _privilege_findings(privileges: _Privileges) -> Iterator[Finding]:
    if privileges.temporary:
        yield Finding(Level.OK, "the role may create temporary functions (the guards)")
    else:
        yield Finding(
            Level.FAIL,
            "the role lacks the TEMPORARY privilege that revisions' guards need: "
            "GRANT TEMPORARY ON DATABASE ... TO ...",
        )
    if privileges.claims_schema or privileges.create:
        yield Finding(Level.OK, "the role may keep the claims table (schema alembic_pgflow)")
    else:
        yield Finding(
            Level.FAIL,
            "the role can neither use schema alembic_pgflow nor create it: GRANT CREATE ON "
            "DATABASE ... TO ..., or create the schema once as its owner",
        )
    if privileges.pgflow_functions:
        yield Finding(Level.OK, "the role may call pgflow.create_flow and pgflow.add_step")
    else:
        yield Finding(Level.FAIL, "the role may not execute pgflow.create_flow / add_step")


def _lock_budget(catalog: PgflowCatalog, waiting: int, env_text: str) -> Iterator[Finding]:
    if not catalog.has_pgmq:
        yield Finding(Level.OK, f"{waiting} new flow(s) to migrate; no pgmq, so no lock budget")
        return
    capacity = LOCK_CAPACITY_FACTOR * catalog.lock_table_size
    limit = new_flow_limit_text(catalog)
    needed = waiting * LOCKS_PER_FLOW
    per_revision = re.search(r"transaction_per_migration\s*=\s*True", env_text) is not None
    text = (
        f"{waiting} new flow(s) to migrate need about {needed} lock entries; the server holds "
        f"{catalog.lock_table_size} ({capacity} safely in one transaction), {limit}"
    )
    if needed > capacity and not per_revision:
        yield Finding(
            Level.FAIL,
            text + "; in one transaction they would not fit: set transaction_per_migration=True",
        )
    else:
        yield Finding(Level.OK, text)


def new_flow_limit_text(catalog: PgflowCatalog) -> str:
    """How many new flows one revision takes on this server, in words."""
    limit = new_flow_limit(PgflowSettings(modules=()), catalog)
    return f"{limit} new flows per revision" if limit else "no per-revision limit"
