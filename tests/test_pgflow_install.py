"""Real pgflow installed from its published packages: ``alembic-pgflow dev install-pgflow``."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql.executors import NoopExecutor

from alembic_pgflow.database.pgflow_install import (
    folder_migrations,
    install_pgflow,
    npm_available,
    npm_migrations,
)
from alembic_pgflow.errors import PgflowInstallError
from tests.alembic_project import AlembicProject

RELEASE = os.environ.get("ALEMBIC_PGFLOW_TEST_NPM_RELEASE", "0.8.1")

pytestmark = pytest.mark.skipif(not npm_available(), reason="npm is not installed")


@pytest.fixture
def empty_database(pgflow_process: NoopExecutor) -> Iterator[str]:
    """A database without pgflow on the test server; its conninfo."""
    name = f"install_{uuid.uuid4().hex[:8]}"
    server = psycopg.conninfo.make_conninfo(
        host=pgflow_process.host,
        port=pgflow_process.port,
        user=pgflow_process.user,
        password=pgflow_process.password,
    )
    with psycopg.connect(server, dbname="postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield psycopg.conninfo.make_conninfo(server, dbname=name)
    finally:
        with psycopg.connect(server, dbname="postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_installs_a_working_pgflow(empty_database: str) -> None:
    with psycopg.connect(empty_database) as connection:
        installed = install_pgflow(connection, npm_migrations(RELEASE))
        assert installed.release == RELEASE
        connection.execute("SELECT pgflow.create_flow('smoke')")
        connection.execute("SELECT pgflow.add_step('smoke', 'a')")
        connection.execute("SELECT pgflow.start_flow('smoke', '{\"n\": 1}'::jsonb)")
        row = connection.execute("SELECT message FROM pgmq.read('smoke', 30, 1)").fetchone()
    assert row is not None
    assert row[0]["step_slug"] == "a"


def test_refuses_a_database_that_has_pgflow(empty_database: str) -> None:
    migrations = npm_migrations(RELEASE)
    with psycopg.connect(empty_database) as connection:
        install_pgflow(connection, migrations)
        with pytest.raises(PgflowInstallError, match="already has a pgflow schema"):
            install_pgflow(connection, migrations)


def test_a_failing_migration_leaves_nothing(empty_database: str, tmp_path: Path) -> None:
    good = npm_migrations(RELEASE).files
    folder = tmp_path / "migrations"
    folder.mkdir()
    for path in good[:2]:
        (folder / path.name).write_text(path.read_text())
    (folder / "99999999999999_broken.sql").write_text("SELECT no_such_function();")
    with psycopg.connect(empty_database) as connection:
        with pytest.raises(
            PgflowInstallError, match=r"migration 99999999999999_broken\.sql failed"
        ):
            install_pgflow(connection, folder_migrations(folder))
        row = connection.execute(
            "SELECT to_regnamespace('pgflow'), to_regnamespace('realtime'),"
            " (SELECT count(*) FROM pg_extension WHERE extname = 'pgmq')"
        ).fetchone()
    assert row == (None, None, 0)


def test_the_command_installs_then_refuses(empty_database: str, tmp_path: Path) -> None:
    info = psycopg.conninfo.conninfo_to_dict(empty_database)
    url = (
        f"postgresql+psycopg://{info['user']}@/{info['dbname']}"
        f"?host={info['host']}&port={info['port']}"
    )
    project = AlembicProject.create(tmp_path / "project", url)

    def command() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "alembic_pgflow", "dev", "install-pgflow", "--version", RELEASE],
            cwd=project.root,
            capture_output=True,
            text=True,
            check=False,
        )

    first = command()
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"installed pgflow {RELEASE} (")
    second = command()
    assert second.returncode == 2
    assert second.stderr.endswith(
        "Error: the database already has a pgflow schema; install real pgflow only into a "
        "database without one\n"
    )
    assert second.stderr.startswith(
        f"database: postgresql+psycopg://{info['user']}@/{info['dbname']}?"
    )
