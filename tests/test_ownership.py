"""A revision removes only what its own upgrade created, and never adopts or drops a queue or
flow that belongs to something else: hand-made flows, other branches, the application's queues.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from tests.alembic_project import AlembicProject
from tests.database_helpers import run_sql

pytestmark = [pytest.mark.alembic_cli]

ORDERS = "from alembic_pgflow import Flow\norders = Flow('orders').step('a').step('b', depends_on=['a'])\n"


def flow_slugs(connection: psycopg.Connection) -> list[str]:
    connection.rollback()
    return [row[0] for row in connection.execute("SELECT flow_slug FROM pgflow.flows ORDER BY 1")]


def queues(connection: psycopg.Connection) -> list[str]:
    connection.rollback()
    return [row[0] for row in connection.execute("SELECT queue_name FROM pgmq.meta ORDER BY 1")]


def queued(connection: psycopg.Connection, queue: str) -> int:
    connection.rollback()
    row = connection.execute("SELECT count(*) FROM pgmq.read(%s, 0, 100)", (queue,)).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.needs("pgmq", "runtime")
def test_a_flow_differing_only_in_case_is_refused_at_upgrade(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(ORDERS)
    alembic_project.autogenerate()
    run_sql(
        postgresql,
        [
            "SELECT pgflow.create_flow('Orders')",
            "SELECT pgflow.add_step('Orders', 'x')",
            "SELECT pgflow.start_flow('Orders', '{}'::jsonb)",
        ],
    )
    result = alembic_project.alembic("upgrade", "head", check=False)
    assert result.returncode != 0
    assert (
        "pgflow flow 'orders' cannot be created: flow 'Orders' differs from it only in case"
        in result.stderr
    )
    assert flow_slugs(postgresql) == ["Orders"]
    assert queued(postgresql, "Orders") == 1  # its task is still there for its own workers
    run_sql(postgresql, ["SELECT pgflow.start_flow('Orders', '{}'::jsonb)"])


@pytest.mark.needs("pgmq")
def test_an_application_queue_is_never_adopted(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    notify = "from alembic_pgflow import Flow\nnotify = Flow('notify').step('send')\n"
    alembic_project.write_flows(notify)
    alembic_project.autogenerate()  # written while the queue does not exist yet
    run_sql(
        postgresql,
        ["SELECT pgmq.create('notify')", """SELECT pgmq.send('notify', '{"to": "ann"}')"""],
    )
    result = alembic_project.alembic("upgrade", "head", check=False)
    assert result.returncode != 0
    assert (
        "pgflow flow 'notify' cannot be created: the pgmq queue 'notify' already exists and no "
        "pgflow flow owns it" in result.stderr
    )
    assert flow_slugs(postgresql) == []
    assert queued(postgresql, "notify") == 1

    # Autogenerate refuses it too, and writes no file.
    for path in alembic_project.revisions():
        path.unlink()
    before = alembic_project.revisions()
    result = alembic_project.alembic("revision", "--autogenerate", check=False)
    assert result.returncode != 0
    assert "the pgmq queue 'notify' already exists and no pgflow flow owns it" in result.stdout
    assert alembic_project.revisions() == before


@pytest.mark.needs("pgmq")
def test_an_application_queue_in_another_case_is_never_adopted(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    run_sql(postgresql, ["SELECT pgmq.create('Mailer')"])
    alembic_project.write_flows("from alembic_pgflow import Flow\nm = Flow('mailer').step('a')\n")
    result = alembic_project.alembic("revision", "--autogenerate", check=False)
    assert result.returncode != 0
    assert "the pgmq queue 'mailer' already exists and no pgflow flow owns it" in result.stdout


def test_a_flow_that_existed_before_the_upgrade_survives_its_downgrade(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(ORDERS)
    alembic_project.autogenerate()
    # Made by hand (or by a worker's start-up) between autogenerate and upgrade, same structure.
    run_sql(
        postgresql,
        [
            "SELECT pgflow.create_flow('orders')",
            "SELECT pgflow.add_step('orders', 'a')",
            "SELECT pgflow.add_step('orders', 'b', ARRAY['a'])",
        ],
    )
    alembic_project.alembic("upgrade", "head")
    alembic_project.alembic("downgrade", "base")
    assert flow_slugs(postgresql) == ["orders"]


@pytest.mark.needs("pgmq")
def test_a_flow_that_existed_before_keeps_its_queue(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(ORDERS)
    alembic_project.autogenerate()
    run_sql(
        postgresql,
        [
            "SELECT pgflow.create_flow('orders')",
            "SELECT pgflow.add_step('orders', 'a')",
            "SELECT pgflow.add_step('orders', 'b', ARRAY['a'])",
        ],
    )
    alembic_project.alembic("upgrade", "head")
    alembic_project.alembic("downgrade", "base")
    assert "orders" in queues(postgresql)


def two_branches_creating_one_flow(project: AlembicProject) -> tuple[str, str]:
    """Two real autogenerated revisions, each the base of its own branch, both creating
    'orders' (as two developers' branches would)."""
    project.write_flows(ORDERS)
    first = project.autogenerate("branch one", rev_id="branch1")
    parked = first.with_suffix(".parked")
    shutil.move(first, parked)
    project.autogenerate("branch two", rev_id="branch2")
    shutil.move(parked, first)
    return "branch1", "branch2"


def test_two_branches_creating_one_flow_share_it(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    one, two = two_branches_creating_one_flow(alembic_project)
    alembic_project.alembic("upgrade", "heads")
    assert flow_slugs(postgresql) == ["orders"]

    alembic_project.alembic("downgrade", f"{one}@base")
    assert flow_slugs(postgresql) == ["orders"]  # branch two's revision still creates it
    status = alembic_project_status(alembic_project)
    assert "orders  in sync" in status

    alembic_project.alembic("downgrade", f"{two}@base")
    assert flow_slugs(postgresql) == []


def test_either_branch_may_be_downgraded_first(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    one, two = two_branches_creating_one_flow(alembic_project)
    alembic_project.alembic("upgrade", "heads")
    alembic_project.alembic("downgrade", f"{two}@base")
    assert flow_slugs(postgresql) == ["orders"]
    alembic_project.alembic("downgrade", f"{one}@base")
    assert flow_slugs(postgresql) == []


@pytest.mark.needs("pgmq", "runtime")
def test_a_downgrade_refuses_a_flow_with_queued_messages(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(ORDERS)
    alembic_project.autogenerate()
    alembic_project.alembic("upgrade", "head")
    run_sql(postgresql, ["""SELECT pgmq.send('orders', '{"stray": true}')"""])
    result = alembic_project.alembic("downgrade", "base", check=False)
    assert result.returncode != 0
    assert (
        "pgflow flow 'orders' has messages in its pgmq queue 'orders', so this downgrade is "
        "refused" in result.stderr
    )
    assert flow_slugs(postgresql) == ["orders"]
    assert queued(postgresql, "orders") == 1


@pytest.mark.needs("pgmq")
def test_downgrade_removes_a_mixed_case_flow_and_its_queue(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(
        "from alembic_pgflow import Flow\nf = Flow('analyzeWebsite').step('fetch')\n"
    )
    alembic_project.autogenerate()
    alembic_project.alembic("upgrade", "head")
    assert [q.lower() for q in queues(postgresql)] == ["analyzewebsite"]
    alembic_project.alembic("downgrade", "base")
    assert flow_slugs(postgresql) == []
    assert queues(postgresql) == []
    alembic_project.alembic("upgrade", "head")  # nothing was left behind to collide with
    assert flow_slugs(postgresql) == ["analyzeWebsite"]


def test_offline_revisions_record_claims_too(
    alembic_project: AlembicProject, postgresql: psycopg.Connection, tmp_path: Path
) -> None:
    from tests.database_helpers import run_psql

    alembic_project.write_flows(ORDERS)
    revision = alembic_project.autogenerate(rev_id="offline1")
    upgrade = alembic_project.alembic("upgrade", "head", "--sql").stdout
    run_psql(postgresql, upgrade.replace("alembic_version", "alembic_version_offline"))
    rows = postgresql.execute(
        "SELECT flow_slug, revision, created FROM alembic_pgflow.flow_claims"
    ).fetchall()
    assert rows == [("orders", "offline1", True)]
    downgrade = alembic_project.alembic("downgrade", "offline1:base", "--sql").stdout
    run_psql(postgresql, downgrade.replace("alembic_version", "alembic_version_offline"))
    assert flow_slugs(postgresql) == []
    assert revision.exists()


def alembic_project_status(project: AlembicProject) -> str:
    return project.cli("status").stdout
