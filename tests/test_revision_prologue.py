"""The prologue of a revision that creates flows locks every new slug the way pgflow's compile
path does, then refuses, once for all of them, a slug that differs only in case from a stored
flow or from another new flow of the revision."""

from __future__ import annotations

import psycopg
import pytest

from alembic_pgflow.migration.revision_sql import prologue_sql
from tests.alembic_project import AlembicProject
from tests.database_helpers import run_sql

ORDERS = "from alembic_pgflow import Flow\norders = Flow('orders').step('a').step('b', depends_on=['a'])\n"


def flow_slugs(connection: psycopg.Connection) -> list[str]:
    connection.rollback()
    return [row[0] for row in connection.execute("SELECT flow_slug FROM pgflow.flows ORDER BY 1")]


@pytest.mark.alembic_cli
def test_a_stored_flow_differing_only_in_case_stops_the_upgrade(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(ORDERS)
    alembic_project.autogenerate()
    run_sql(postgresql, ["INSERT INTO pgflow.flows (flow_slug) VALUES ('Orders')"])
    result = alembic_project.alembic("upgrade", "head", check=False)
    assert result.returncode != 0
    assert (
        "pgflow flow 'orders' cannot be created: flow 'Orders' differs from it only in case"
        in result.stderr
    )
    assert flow_slugs(postgresql) == ["Orders"]


def test_new_flows_differing_only_in_case_are_refused_in_revision_order(
    postgresql: psycopg.Connection,
) -> None:
    # Autogenerate never writes such a revision; one edited by hand could hold it.
    with pytest.raises(psycopg.errors.RaiseException) as refused:
        postgresql.execute(prologue_sql(3, creates=True, new_slugs=["Orders", "billing", "orders"]))
    assert str(refused.value).startswith(
        "pgflow flow 'orders' cannot be created: flow 'Orders' differs from it only in case"
    )
    postgresql.rollback()


def test_a_new_flow_that_is_already_stored_under_its_own_slug_passes(
    postgresql: psycopg.Connection,
) -> None:
    run_sql(postgresql, ["INSERT INTO pgflow.flows (flow_slug) VALUES ('Orders')"])
    postgresql.execute(prologue_sql(2, creates=True, new_slugs=["billing", "Orders"]))
    postgresql.rollback()
    with pytest.raises(psycopg.errors.RaiseException, match="flow 'Orders' differs from it"):
        postgresql.execute(prologue_sql(2, creates=True, new_slugs=["billing", "ORDERS"]))
    postgresql.rollback()


def test_the_new_slugs_stay_locked_for_pgflow_workers_until_commit(
    postgresql: psycopg.Connection,
) -> None:
    postgresql.execute(prologue_sql(2, creates=True, new_slugs=["Orders", "billing"]))
    # pgflow's compile path: (1, hashtext(slug)) up to 0.16, (1, hashtext(lower(slug))) from 0.17.
    probe = (
        "SELECT pg_try_advisory_xact_lock(1, hashtext('Orders')), "
        "pg_try_advisory_xact_lock(1, hashtext('orders')), "
        "pg_try_advisory_xact_lock(1, hashtext('billing'))"
    )
    with psycopg.connect(postgresql.info.dsn, password=postgresql.info.password) as worker:
        assert worker.execute(probe).fetchone() == (False, False, False)
        worker.rollback()
        postgresql.rollback()
        assert worker.execute(probe).fetchone() == (True, True, True)
