"""What the database holds decides the verdict: corrupt rows, a release lacking a feature, and
stored data Python cannot read plainly are reported by flow, never as "in sync" or a traceback.
"""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from alembic_pgflow import Flow, FlowDefinitionError
from tests.alembic_project import AlembicProject
from tests.conftest import PgflowTemplate
from tests.database_helpers import run_sql, strip_step_conditions

pytestmark = [pytest.mark.alembic_cli]

JOIN = """\
from alembic_pgflow import Flow
join = Flow('joined').step('a').step('b').step('c', depends_on=['a', 'b'])
"""


def cli(project: AlembicProject, *args: str) -> subprocess.CompletedProcess[str]:
    return project.cli(*args)


def test_a_corrupt_flow_fails_status_diff_and_check(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(JOIN)
    alembic_project.autogenerate()
    alembic_project.alembic("upgrade", "head")
    run_sql(
        postgresql,
        ["UPDATE pgflow.steps SET deps_count = 3 WHERE flow_slug = 'joined' AND step_slug = 'c'"],
    )
    status = cli(alembic_project, "status")
    assert status.returncode == 1
    assert "joined  corrupt in database" in status.stdout

    diff = cli(alembic_project, "diff", "joined")
    assert diff.returncode == 1
    assert diff.stdout.splitlines()[:3] == [
        "joined: corrupt in database",
        "  the stored rows break pgflow's invariants; pgflow would run this flow wrongly:",
        "  - step 'c' has deps_count 3 but 2 dependency rows",
    ]

    check = alembic_project.alembic("check", check=False)
    assert check.returncode != 0
    assert (
        "FAILED: pgflow flow 'joined' in the database is corrupt: step 'c' has deps_count 3 but "
        "2 dependency rows" in check.stdout
    )
    before = alembic_project.revisions()
    assert alembic_project.alembic("revision", "--autogenerate", check=False).returncode != 0
    assert alembic_project.revisions() == before


def test_a_missing_feature_is_named_before_a_structure_change(
    alembic_project: AlembicProject,
    postgresql: psycopg.Connection,
    pgflow_template: PgflowTemplate,
) -> None:
    from alembic_pgflow import Feature

    if Feature.STEP_CONDITIONS in pgflow_template.features:
        if pgflow_template.real_pgflow:
            pytest.skip("needs a pgflow without step conditions (0.7 to 0.13)")
        strip_step_conditions(postgresql)
    alembic_project.write_flows(JOIN)
    alembic_project.autogenerate()
    alembic_project.alembic("upgrade", "head")
    alembic_project.write_flows(JOIN.replace("step('b')", "step('b', when_unmet='fail')"))

    result = alembic_project.alembic("revision", "--autogenerate", check=False)
    assert result.returncode != 0
    assert "structure" not in result.stdout
    assert result.stdout.startswith(
        "FAILED: flow 'joined', step 'b', field 'when_unmet': uses step conditions"
    )
    status = cli(alembic_project, "status")
    assert status.returncode == 1
    assert "joined  needs newer pgflow" in status.stdout
    diff = cli(alembic_project, "diff", "joined")
    assert "which pgflow 0.14.0 introduced" in diff.stdout


def test_a_new_flow_the_release_cannot_hold_is_not_reported_as_new(
    alembic_project: AlembicProject,
    postgresql: psycopg.Connection,
    pgflow_template: PgflowTemplate,
) -> None:
    from alembic_pgflow import Feature

    if Feature.STEP_CONDITIONS in pgflow_template.features:
        if pgflow_template.real_pgflow:
            pytest.skip("needs a pgflow without step conditions (0.7 to 0.13)")
        strip_step_conditions(postgresql)
    alembic_project.write_flows(
        "from alembic_pgflow import Flow\nf = Flow('f').step('a', when_exhausted='skip')\n"
    )
    status = cli(alembic_project, "status")
    assert status.returncode == 1
    assert "f     needs newer pgflow" in status.stdout


def test_a_huge_number_in_a_pattern_is_a_definition_error() -> None:
    with pytest.raises(FlowDefinitionError) as caught:
        Flow("big").step("a", required_input_pattern={"n": 10**5000})
    assert str(caught.value) == (
        "flow 'big', step 'a', field 'required_input_pattern': has an integer of more than 4000 "
        "digits at $.n, which cannot be written as JSON text here"
    )


@pytest.mark.needs_step_conditions
def test_a_stored_pattern_with_a_huge_number_is_read(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    run_sql(
        postgresql,
        [
            "SELECT pgflow.create_flow('stored_big')",
            """SELECT pgflow.add_step('stored_big', 'a', required_input_pattern => '{"n": 1e5000}')""",
        ],
    )
    alembic_project.write_flows("from alembic_pgflow import Flow\nf = Flow('in_code').step('a')\n")
    alembic_project.autogenerate()  # no traceback: the stored flow is simply not in code
    status = cli(alembic_project, "status")
    assert "stored_big  only in database" in status.stdout
    diff = cli(alembic_project, "diff", "stored_big")
    assert diff.returncode == 1
