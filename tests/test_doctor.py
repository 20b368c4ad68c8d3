"""``alembic-pgflow doctor`` on a healthy project and on each mistake it must name."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from tests.alembic_project import AlembicProject

pytestmark = [pytest.mark.alembic_cli]

FLOWS = "from alembic_pgflow import Flow\norders = Flow('orders').step('a')\n"


def doctor(project: AlembicProject) -> subprocess.CompletedProcess[str]:
    return project.cli("doctor")


def lines(result: subprocess.CompletedProcess[str], level: str) -> list[str]:
    return [line[6:] for line in result.stdout.splitlines() if line.startswith(level)]


def test_a_healthy_project(alembic_project: AlembicProject) -> None:
    alembic_project.write_flows(FLOWS)
    env = alembic_project.root / "migrations" / "env.py"
    env.write_text(
        env.read_text().replace(
            "target_metadata=target_metadata\n",
            "target_metadata=target_metadata, transaction_per_migration=True\n",
        )
    )
    result = doctor(alembic_project)
    assert result.returncode == 0, result.stdout
    assert lines(result, "FAIL") == []
    assert lines(result, "warn") == []
    found = "\n".join(lines(result, "ok"))
    assert "imports alembic_pgflow" in found
    assert "pgflow_modules = flows_app.flows: 1 flow(s)" in found
    assert "is reachable" in found
    assert "pgflow 0." in found
    assert "the role may create temporary functions" in found
    assert "1 new flow(s) to migrate" in found


def test_each_mistake_is_named(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(FLOWS)
    env = alembic_project.root / "migrations" / "env.py"
    env.write_text(env.read_text().replace("import alembic_pgflow  # noqa: F401\n", ""))
    alembic_project.set_option("pgflow_revison_style", "block")
    alembic_project.set_option("sqlalchemy.url", "postgresql://postgres@/db?host=/nowhere")
    result = doctor(alembic_project)
    assert result.returncode == 1
    failures = lines(result, "FAIL")
    assert any("does not import alembic_pgflow" in line for line in failures)
    assert any(
        "unknown setting 'pgflow_revison_style'" in line
        and "did you mean 'pgflow_revision_style'?" in line
        for line in failures
    )
    assert any("postgresql+psycopg://" in line or "not reachable" in line for line in failures)
    assert any("transaction_per_migration=True" in line for line in lines(result, "warn"))


def test_a_database_without_pgflow(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(FLOWS)
    postgresql.execute("DROP SCHEMA pgflow CASCADE")
    postgresql.commit()
    result = doctor(alembic_project)
    assert result.returncode == 1
    assert any("dev install-pgflow" in line for line in lines(result, "FAIL"))
