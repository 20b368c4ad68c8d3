"""pgflow_revision_style = block (the default): one DO block per new flow."""

from __future__ import annotations

import psycopg
import pytest

from alembic_pgflow import Flow, read_catalog, shape_of
from tests.alembic_project import AlembicProject, function_body
from tests.database_helpers import definition_rows, run_psql, run_sql

pytestmark = [pytest.mark.alembic_cli, pytest.mark.needs_step_conditions]

FLOWS = """
    from alembic_pgflow import Flow

    small = Flow("small", timeout=5).step("a").map("b", array="a", required_input_pattern={"$pgflow$": 1})
"""
SMALL = (
    Flow("small", timeout=5).step("a").map("b", array="a", required_input_pattern={"$pgflow$": 1})
)


@pytest.fixture
def block_project(alembic_project: AlembicProject) -> AlembicProject:
    alembic_project.set_option("pgflow_revision_style", "block")
    alembic_project.write_flows(FLOWS)
    return alembic_project


def test_one_block_per_flow(block_project: AlembicProject, postgresql: psycopg.Connection) -> None:
    upgrade = function_body(block_project.autogenerate(), "upgrade")
    flow_part = upgrade.split("# pgflow flow 'small'", 1)[1]
    assert flow_part.split("\n", 1)[1] == (
        'op.execute(r"""DO $pgflow1$\n'
        "BEGIN\n"
        "  IF pg_temp.alembic_pgflow_guard('small', '[\n"
        '  {"slug": "a"},\n'
        '  {"slug": "b", "step_type": "map", "dependencies": ["a"], "required_input_pattern": {"$pgflow$": 1}}\n'
        "]', 'small_v2') THEN\n"
        "    PERFORM pgflow.create_flow('small', timeout => 5);\n"
        "    PERFORM pgflow.add_step('small', 'a');\n"
        "    PERFORM pgflow.add_step('small', 'b', ARRAY['a'], required_input_pattern => "
        "'{\"$pgflow$\"\\:1}', step_type => 'map');\n"
        "  END IF;\n"
        "END\n"
        '$pgflow1$""")\n'
        "# ### end Alembic commands ###\n"
    )
    block_project.alembic("upgrade", "head")
    assert read_catalog(postgresql).flows["small"].shape == shape_of(SMALL)
    block_project.alembic("check")
    block_project.alembic("downgrade", "base")
    assert definition_rows(postgresql) == {"flows": [], "steps": [], "deps": []}


def test_block_offline_and_guarded(
    block_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    block_project.autogenerate()
    offline = block_project.alembic("upgrade", "head", "--sql").stdout
    run_sql(postgresql, ["DROP TABLE IF EXISTS alembic_version"])
    run_psql(postgresql, offline)
    assert read_catalog(postgresql).flows["small"].shape == shape_of(SMALL)

    block_project.alembic("downgrade", "base")
    run_sql(
        postgresql,
        ["SELECT pgflow.create_flow('small')", "SELECT pgflow.add_step('small', 'other')"],
    )
    result = block_project.alembic("upgrade", "head", check=False)
    assert result.returncode != 0
    assert "pgflow flow 'small' already exists with another structure" in result.stderr


def test_bad_style_setting(alembic_project: AlembicProject) -> None:
    alembic_project.set_option("pgflow_revision_style", "fast")
    alembic_project.write_flows("from alembic_pgflow import Flow\n")
    result = alembic_project.alembic("revision", "--autogenerate", check=False)
    assert (
        result.stdout
        == "FAILED: pgflow_revision_style must be 'block' or 'statements', got 'fast'\n"
    )
