"""The life of a slug after its replacement: retired and kept, then removed by a revision."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from alembic_pgflow import Flow, FlowDefinitionError, RetiredFlow, read_catalog, shape_of
from tests.alembic_project import AlembicProject, function_body
from tests.database_helpers import run_sql

pytestmark = [pytest.mark.alembic_cli]

ORDERS = (
    "from alembic_pgflow import Flow\n"
    "orders = Flow('orders', timeout=9).step('a').map('b', array='a', max_attempts=2)\n"
)
RETIRED = (
    "from alembic_pgflow import Flow, RetiredFlow\n"
    "orders = RetiredFlow('orders')\n"
    "orders_v2 = Flow('orders_v2').step('a')\n"
)
SHAPE = shape_of(Flow("orders", timeout=9).step("a").map("b", array="a", max_attempts=2))


def status(project: AlembicProject) -> subprocess.CompletedProcess[str]:
    return project.cli("status")


@pytest.fixture
def migrated(alembic_project: AlembicProject) -> AlembicProject:
    alembic_project.write_flows(ORDERS)
    alembic_project.autogenerate("orders")
    alembic_project.alembic("upgrade", "head")
    return alembic_project


def test_a_retired_flow_is_kept_and_everything_stays_green(
    migrated: AlembicProject, postgresql: psycopg.Connection
) -> None:
    migrated.write_flows(RETIRED)
    migrated.autogenerate("v2")
    migrated.alembic("upgrade", "head")
    result = status(migrated)
    assert result.returncode == 0, result.stdout
    assert "orders     retired" in result.stdout
    assert "orders_v2  in sync" in result.stdout
    migrated.alembic("check")
    assert read_catalog(postgresql).flows["orders"].shape == SHAPE


def test_removing_a_retired_flow_goes_through_a_revision(
    migrated: AlembicProject, postgresql: psycopg.Connection
) -> None:
    migrated.write_flows(
        RETIRED.replace("RetiredFlow('orders')", "RetiredFlow('orders', remove=True)")
    )
    pending = status(migrated)
    assert pending.returncode == 1
    assert "orders     retired, to remove" in pending.stdout
    assert migrated.alembic("check", check=False).returncode != 0

    revision = migrated.autogenerate("retire orders", rev_id="retire1")
    upgrade = function_body(revision, "upgrade")
    assert "op.execute(\"SELECT pg_temp.alembic_pgflow_remove('orders', true)\")" in upgrade
    downgrade = function_body(revision, "downgrade")
    assert (
        "PERFORM pgflow.create_flow('orders', max_attempts => 3, base_delay => 5, timeout => 9)"
        in downgrade
    )
    assert (
        "PERFORM pgflow.add_step('orders', 'b', ARRAY['a'], max_attempts => 2, step_type => 'map')"
        in downgrade
    )

    migrated.alembic("upgrade", "head")
    assert "orders" not in read_catalog(postgresql).flows
    assert status(migrated).returncode == 0
    migrated.alembic("check")

    migrated.alembic("downgrade", "-1")  # the definition comes back exactly as it was
    assert read_catalog(postgresql).flows["orders"].shape == SHAPE


@pytest.mark.needs("runtime")
def test_a_retired_flow_with_runs_is_not_removed(
    migrated: AlembicProject, postgresql: psycopg.Connection
) -> None:
    run_sql(postgresql, ["SELECT pgflow.start_flow('orders', '[1, 2]'::jsonb)"])
    migrated.write_flows(
        RETIRED.replace("RetiredFlow('orders')", "RetiredFlow('orders', remove=True)")
    )
    migrated.autogenerate("retire orders")
    result = migrated.alembic("upgrade", "head", check=False)
    assert result.returncode != 0
    assert "pgflow flow 'orders' has runs" in result.stderr
    assert read_catalog(postgresql).flows["orders"].shape == SHAPE


def test_a_slug_cannot_be_defined_and_retired(alembic_project: AlembicProject) -> None:
    alembic_project.write_flows(
        ORDERS + "from alembic_pgflow import RetiredFlow\nold = RetiredFlow('Orders')\n"
    )
    result = alembic_project.alembic("revision", "--autogenerate", check=False)
    assert result.returncode != 0
    assert (
        "flow 'orders' is defined (flows_app.flows:orders) and retired (flows_app.flows:old); "
        "keep one of them" in result.stdout
    )


def test_a_retired_slug_is_validated() -> None:
    with pytest.raises(FlowDefinitionError, match="flow 'bad-slug', field 'slug'"):
        RetiredFlow("bad-slug")
