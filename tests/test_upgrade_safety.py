"""Upgrades that meet an existing slug, and the same revision as offline SQL."""

from __future__ import annotations

import psycopg
import pytest

from alembic_pgflow import Flow, compile_flow, read_catalog, shape_of
from tests.alembic_project import AlembicProject
from tests.database_helpers import definition_rows, flows_in_source, run_psql, run_sql

pytestmark = pytest.mark.alembic_cli

FLOWS = """
    from alembic_pgflow import Flow

    first = Flow("first_flow").step("a").step("b", depends_on=["a"])
    second = Flow("second_flow", timeout=20).step("x").map("y", array="x")
"""
FIRST = Flow("first_flow").step("a").step("b", depends_on=["a"])


def test_identical_existing_slug_is_skipped(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(FLOWS)
    alembic_project.autogenerate()
    # A worker (or another branch) created the same structure meanwhile, with other options.
    run_sql(
        postgresql,
        compile_flow(Flow("first_flow", max_attempts=7).step("a").step("b", depends_on=["a"])),
    )

    alembic_project.alembic("upgrade", "head")

    rows = definition_rows(postgresql)
    assert rows["flows"] == [("first_flow", 7, 5, 60), ("second_flow", 3, 5, 20)]
    assert [row[:5] for row in rows["steps"]] == [
        ("first_flow", "a", "single", 0, 0),
        ("first_flow", "b", "single", 1, 1),
        ("second_flow", "x", "single", 0, 0),
        ("second_flow", "y", "map", 1, 1),
    ]
    assert read_catalog(postgresql).flows["first_flow"].problems == ()
    # The kept options now differ from the code: autogenerate proposes the tuning.
    check = alembic_project.alembic("check", check=False)
    assert "modify_pgflow_flow_options" in check.stdout


def test_different_existing_slug_fails_and_changes_nothing(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(FLOWS)
    alembic_project.autogenerate()
    run_sql(postgresql, compile_flow(Flow("second_flow").step("x").step("z")))
    before = definition_rows(postgresql)

    result = alembic_project.alembic("upgrade", "head", check=False)

    assert result.returncode != 0
    assert (
        "pgflow flow 'second_flow' already exists with another structure; this migration "
        "cannot create it, and create_flow/add_step would corrupt it" in result.stderr
    )
    assert "HINT:  Give the flow in code a new slug (for example second_flow_v2)" in result.stderr
    # Atomic: first_flow, created earlier in the same revision, is gone too.
    assert definition_rows(postgresql) == before
    assert alembic_project.alembic("current").stdout.strip() == ""


PATTERN_FLOWS = """
    from alembic_pgflow import Flow

    tricky = Flow("tricky").step(
        "a",
        required_input_pattern={"n": 1, "t": "50% :off", "q": "it's", "bs": "a\\\\:b", "u": "Zürich"},
        forbidden_input_pattern={"x": [1.5, None, True], "y": ":name"},
        when_unmet="skip-cascade",
    ).map("b", array="a", start_delay=5)
"""


@pytest.mark.needs_step_conditions
def test_offline_sql_gives_the_same_rows(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(PATTERN_FLOWS + FLOWS.split("\n", 2)[2])
    alembic_project.autogenerate()
    offline = alembic_project.alembic("upgrade", "head", "--sql").stdout
    # The offline script starts from an empty database: it creates alembic_version itself.
    run_sql(postgresql, ["DROP TABLE IF EXISTS alembic_version"])
    run_psql(postgresql, offline)
    offline_rows = definition_rows(postgresql)
    assert [row[0] for row in offline_rows["flows"]] == ["first_flow", "second_flow", "tricky"]

    alembic_project.alembic("downgrade", "base")
    assert definition_rows(postgresql) == {"flows": [], "steps": [], "deps": []}
    alembic_project.alembic("upgrade", "head")
    assert definition_rows(postgresql) == offline_rows

    tricky = flows_in_source(PATTERN_FLOWS)["tricky"]
    assert read_catalog(postgresql).flows["tricky"].shape == shape_of(tricky)


@pytest.mark.parametrize("direction", ["online", "offline"])
def test_identical_existing_slug_is_skipped_offline_too(
    alembic_project: AlembicProject, postgresql: psycopg.Connection, direction: str
) -> None:
    alembic_project.write_flows(FLOWS)
    alembic_project.autogenerate()
    run_sql(postgresql, compile_flow(FIRST))
    if direction == "online":
        alembic_project.alembic("upgrade", "head")
    else:
        offline = alembic_project.alembic("upgrade", "head", "--sql").stdout
        run_sql(postgresql, ["DROP TABLE IF EXISTS alembic_version"])
        run_psql(postgresql, offline)
    catalog = read_catalog(postgresql)
    assert catalog.flows["first_flow"].shape == shape_of(FIRST)
    assert catalog.flows["first_flow"].problems == ()
