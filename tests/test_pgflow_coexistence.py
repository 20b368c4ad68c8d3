"""Migrations next to pgflow's own compile path (workers' ensure_flow_compiled, 0.10+), its
0.17 step mode, and the server's lock table; and our verdicts against pgflow's own check.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from alembic_pgflow import Feature, Flow, compile_flow, read_catalog, shape_of
from alembic_pgflow.comparison.status import FlowStatus, compare
from alembic_pgflow.definition.discovery import DiscoveredFlow
from alembic_pgflow.definition.pgflow_shape import pgflow_shape
from tests.alembic_project import AlembicProject
from tests.conftest import PgflowTemplate

ORDERS_SOURCE = (
    "from alembic_pgflow import Flow\n"
    "orders = Flow('orders').step('a').step('b', depends_on=['a']).step('c', depends_on=['a', 'b'])\n"
)
ORDERS = Flow("orders").step("a").step("b", depends_on=["a"]).step("c", depends_on=["a", "b"])
OTHER_SHAPE = pgflow_shape(Flow("orders").step("a").step("c", depends_on=["a"]).step("z"))


def waiting_on_a_lock(observer: psycopg.Connection, pid: int, seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        row = observer.execute(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()
        observer.rollback()
        if row and row[0] == "Lock":
            return True
        time.sleep(0.05)
    return False


def transactional_script(offline_sql: str) -> str:
    """The offline upgrade without its own BEGIN/COMMIT, to run in a transaction we hold
    (autogenerate already made the version table)."""
    script = "\n".join(
        line for line in offline_sql.splitlines() if line.strip() not in {"BEGIN;", "COMMIT;"}
    )
    return script.replace(
        "CREATE TABLE alembic_version", "CREATE TABLE IF NOT EXISTS alembic_version"
    )


@pytest.mark.alembic_cli
@pytest.mark.needs("compile_path")
def test_a_worker_starting_during_an_upgrade_waits_for_it(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(ORDERS_SOURCE)
    alembic_project.autogenerate()
    script = transactional_script(alembic_project.alembic("upgrade", "head", "--sql").stdout)

    migration = psycopg.connect(postgresql.info.dsn, autocommit=False)
    migration.execute(script)  # the flow is created, not yet committed
    worker = psycopg.connect(postgresql.info.dsn, autocommit=True)
    answer: dict[str, Any] = {}

    def start_worker() -> None:
        row = worker.execute(
            "SELECT pgflow.ensure_flow_compiled('orders', %s)", (Jsonb(OTHER_SHAPE),)
        ).fetchone()
        assert row is not None
        answer.update(row[0])

    thread = threading.Thread(target=start_worker)
    thread.start()
    try:
        assert waiting_on_a_lock(postgresql, worker.info.backend_pid)
        assert not answer
        migration.commit()
        thread.join(timeout=30)
    finally:
        migration.close()
    worker.close()
    assert answer["status"] == "mismatch"  # not "compiled" over the migration's flow
    stored = read_catalog(postgresql).flows["orders"]
    assert stored.problems == ()
    assert stored.shape == shape_of(ORDERS)


@pytest.mark.alembic_cli
@pytest.mark.needs("compile_path")
@pytest.mark.parametrize("same_structure", [True, False])
def test_an_upgrade_during_a_worker_start_waits_and_sees_its_flow(
    alembic_project: AlembicProject, postgresql: psycopg.Connection, same_structure: bool
) -> None:
    alembic_project.write_flows(ORDERS_SOURCE)
    alembic_project.autogenerate()
    worker = psycopg.connect(postgresql.info.dsn, autocommit=False)
    shape = pgflow_shape(ORDERS) if same_structure else OTHER_SHAPE
    row = worker.execute(
        "SELECT pgflow.ensure_flow_compiled('orders', %s)", (Jsonb(shape),)
    ).fetchone()
    assert row is not None
    assert row[0]["status"] == "compiled"
    upgrade = subprocess.Popen(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=alembic_project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        blocked = False
        while not blocked and time.monotonic() < deadline:
            found = postgresql.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()
            postgresql.rollback()
            blocked = bool(found and found[0])
            time.sleep(0.05)
        assert blocked, "the upgrade should wait for the worker's compile lock"
        worker.commit()
        _, stderr = upgrade.communicate(timeout=60)
    finally:
        worker.close()
    if same_structure:
        assert upgrade.returncode == 0, stderr
        alembic_project.alembic("downgrade", "base")
        # The worker made it; the revision only found it, so its downgrade leaves it.
        assert "orders" in read_catalog(postgresql).flows
    else:
        assert upgrade.returncode != 0
        assert "pgflow flow 'orders' already exists with another structure" in stderr
    stored = read_catalog(postgresql).flows["orders"]
    assert stored.problems == ()


@pytest.mark.alembic_cli
@pytest.mark.needs("queue_mode")
def test_a_step_mode_flow_is_a_structure_difference(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    routes = [{"stepSlug": step.slug, "queueName": f"orders__{step.slug}"} for step in ORDERS.steps]
    row = postgresql.execute(
        "SELECT pgflow.ensure_flow_compiled('orders', %s, 'step', %s)",
        (Jsonb(pgflow_shape(ORDERS)), Jsonb(routes)),
    ).fetchone()
    postgresql.commit()
    assert row is not None
    assert row[0]["status"] == "compiled"
    catalog = read_catalog(postgresql)
    assert catalog.flows["orders"].shape.structure.queue_mode == "step"
    alembic_project.write_flows(ORDERS_SOURCE)
    result = alembic_project.alembic("revision", "--autogenerate", check=False)
    assert result.returncode != 0
    assert "queue mode 'step' in the database, 'flow' in code" in result.stdout


@pytest.mark.alembic_cli
@pytest.mark.needs("queue_mode")
def test_a_step_mode_flow_blocks_a_revision_written_before_it(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(ORDERS_SOURCE)
    alembic_project.autogenerate()
    routes = [{"stepSlug": step.slug, "queueName": f"orders__{step.slug}"} for step in ORDERS.steps]
    postgresql.execute(
        "SELECT pgflow.ensure_flow_compiled('orders', %s, 'step', %s)",
        (Jsonb(pgflow_shape(ORDERS)), Jsonb(routes)),
    )
    postgresql.commit()
    result = alembic_project.alembic("upgrade", "head", check=False)
    assert result.returncode != 0
    assert "pgflow flow 'orders' already exists with another structure" in result.stderr


@pytest.mark.alembic_cli
@pytest.mark.needs("pgmq")
def test_a_transaction_near_the_lock_budget_stops_with_the_fix(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(ORDERS_SOURCE)
    alembic_project.autogenerate()
    script = transactional_script(alembic_project.alembic("upgrade", "head", "--sql").stdout)
    row = postgresql.execute(
        "SELECT 2 * current_setting('max_locks_per_transaction')::int"
        " * (current_setting('max_connections')::int"
        " + current_setting('max_prepared_transactions')::int)"
    ).fetchone()
    assert row is not None
    capacity = int(row[0])
    # Earlier revisions of the same transaction already hold nearly all of it.
    postgresql.execute(
        "SELECT pg_advisory_xact_lock(1000000 + i) FROM generate_series(1, %s) i",
        (capacity - 10,),
    )
    with pytest.raises(psycopg.errors.RaiseException) as caught:
        postgresql.execute(script)
    postgresql.rollback()
    assert "past the" in str(caught.value)
    assert caught.value.diag.message_hint == (
        "Run each revision in its own transaction: transaction_per_migration=True in "
        "context.configure(...) of env.py; or raise max_locks_per_transaction."
    )
    assert read_catalog(postgresql).flows == {}


# Verdicts against pgflow's own check: small DAGs over few names, so that equal and unequal
# structures both come up often.
NAMES = ("a", "b", "c")


@st.composite
def small_flows(draw: st.DrawFn, conditions: bool) -> tuple[list[tuple[str, dict[str, Any]]], Flow]:
    """A flow over a few step names, and the recipe it was built from (steps and options)."""
    recipe: list[tuple[str, dict[str, Any]]] = []
    for name in NAMES[: draw(st.integers(1, len(NAMES)))]:
        earlier = [step for step, _ in recipe]
        options: dict[str, Any] = {"max_attempts": draw(st.none() | st.integers(1, 3))}
        if conditions:
            options["when_unmet"] = draw(st.none() | st.sampled_from(["skip", "fail"]))
            options["required_input_pattern"] = draw(
                st.none() | st.sampled_from([{"x": 1}, {"x": 1.0}, {"x": [1, {"y": None}]}])
            )
        as_map: bool = draw(st.booleans())
        if earlier and as_map:
            options["array"] = draw(st.sampled_from(earlier))
        elif earlier:
            options["depends_on"] = draw(st.lists(st.sampled_from(earlier), unique=True))
        recipe.append((name, options))
    return recipe, build("agree", recipe)


def build(slug: str, recipe: list[tuple[str, dict[str, Any]]], **flow_options: Any) -> Flow:
    flow = Flow(slug, **flow_options)
    for name, options in recipe:
        flow = flow.map(name, **options) if "array" in options else flow.step(name, **options)
    return flow


@pytest.mark.needs("compile_path")
@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_in_sync_exactly_when_pgflow_verifies(
    postgresql: psycopg.Connection, pgflow_template: PgflowTemplate, data: st.DataObject
) -> None:
    conditions = Feature.STEP_CONDITIONS in pgflow_template.features
    recipe, code = data.draw(small_flows(conditions), label="code")
    stored = data.draw(
        st.just(build("agree", recipe, max_attempts=9))  # the same structure, other options
        | small_flows(conditions).map(lambda drawn: drawn[1]),
        label="stored",
    )
    release = str(read_catalog(postgresql).release)
    postgresql.rollback()
    with postgresql.transaction(force_rollback=True):
        for statement in compile_flow(stored, target=release):
            postgresql.execute(statement)
        catalog = read_catalog(postgresql)
        (verdict,) = compare({code.slug: DiscoveredFlow(code, "test")}, catalog)
        row = postgresql.execute(
            "SELECT pgflow.ensure_flow_compiled('agree', %s)", (Jsonb(pgflow_shape(code)),)
        ).fetchone()
        assert row is not None
        answer = row[0]
    ours = verdict.status in {FlowStatus.IN_SYNC, FlowStatus.OPTIONS_CHANGED}
    assert ours == (answer["status"] == "verified"), (
        verdict.status,
        verdict.structure_differences,
        json.dumps(answer),
    )
