"""The Python worker on pgflow's own runtime: chains, fan-out, map steps, retries, failures,
several workers on one queue, a killed worker, a graceful stop, and the start-up check."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from alembic_pgflow import Flow, compile_flow, read_catalog
from alembic_pgflow.worker import TaskContext, Worker, WorkerRefusedError, start_run, wait_for_run
from tests.alembic_project import AlembicProject
from tests.database_helpers import run_sql

pytestmark = pytest.mark.needs("runtime")


def migrate(connection: psycopg.Connection, *flows: Flow) -> None:
    """What a revision does for these flows (the compiler's statements)."""
    release = str(read_catalog(connection).release)
    connection.rollback()
    run_sql(connection, [s for flow in flows for s in compile_flow(flow, target=release)])


@contextmanager
def serving(dsn: str, *flows: Flow, concurrency: int = 4) -> Iterator[Worker]:
    worker = Worker(dsn, flows, concurrency=concurrency)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop(10)
        thread.join(30)
    assert not thread.is_alive()


def plus_one(value: dict[str, Any]) -> int:
    return int(value["run"]["n"]) + 1


def double_previous(value: dict[str, Any]) -> int:
    return int(value["a"]) * 2


async def describe(value: dict[str, Any], context: TaskContext) -> dict[str, Any]:
    return {"b": value["b"], "step": context.step_slug}


CHAIN = (
    Flow("chain")
    .step("a", handler=plus_one)
    .step("b", depends_on=["a"], handler=double_previous)
    .step("c", depends_on=["b"], handler=describe)
)


def test_a_chain_runs_to_its_output(postgresql: psycopg.Connection) -> None:
    migrate(postgresql, CHAIN)
    dsn = postgresql.info.dsn
    with serving(dsn, CHAIN) as worker:
        run_id = start_run(dsn, "chain", {"n": 4})
        result = wait_for_run(dsn, run_id, timeout=30)
    assert result.status == "completed"
    assert result.output == {"c": {"b": 10, "step": "c"}}
    assert worker.summary.completed == 3


FAN = (
    Flow("fan")
    .step("root", handler=lambda value: value["run"]["words"])
    .step("count", depends_on=["root"], handler=lambda value: len(value["root"]))
    .step("upper", depends_on=["root"], handler=lambda value: [w.upper() for w in value["root"]])
    .step(
        "join",
        depends_on=["count", "upper"],
        handler=lambda value: f"{value['count']}:{'-'.join(value['upper'])}",
    )
)
MAPPED = (
    Flow("mapped")
    .step("items", handler=lambda value: value["run"]["items"])
    .map("double", array="items", handler=lambda item: item * 2)
    .step("total", depends_on=["double"], handler=lambda value: sum(value["double"]))
)


def test_fan_out_join_and_map_steps(postgresql: psycopg.Connection) -> None:
    migrate(postgresql, FAN, MAPPED)
    dsn = postgresql.info.dsn
    with serving(dsn, FAN, MAPPED):
        fan = start_run(dsn, "fan", {"words": ["a", "b"]})
        mapped = start_run(dsn, "mapped", {"items": [1, 2, 3]})
        empty = start_run(dsn, "mapped", {"items": []})
        results = [wait_for_run(dsn, run_id, timeout=30) for run_id in (fan, mapped, empty)]
    assert [r.status for r in results] == ["completed"] * 3
    assert results[0].output == {"join": "2:A-B"}
    assert results[1].output == {"total": 12}
    assert results[2].output == {"total": 0}


def flaky(value: Any, context: TaskContext) -> str:
    if context.attempt < 2:
        raise RuntimeError("not yet")
    return f"ok on attempt {context.attempt}"


def broken(value: Any) -> None:
    raise ValueError("always broken")


def not_json(value: Any) -> object:
    return {1, 2}


def exits(value: Any) -> None:
    sys.exit(3)


def test_retries_and_failures_are_pgflows(postgresql: psycopg.Connection) -> None:
    retried = Flow("retried", max_attempts=2, base_delay=1).step("s", handler=flaky)
    failing = Flow("failing", max_attempts=2, base_delay=1).step("s", handler=broken)
    odd = Flow("odd", max_attempts=1).step("s", handler=not_json)
    leaving = Flow("leaving", max_attempts=1).step("s", handler=exits)
    migrate(postgresql, retried, failing, odd, leaving)
    dsn = postgresql.info.dsn
    with serving(dsn, retried, failing, odd, leaving) as worker:
        runs = [start_run(dsn, slug, {}) for slug in ("retried", "failing", "odd", "leaving")]
        results = [wait_for_run(dsn, run_id, timeout=40) for run_id in runs]
        # The worker lives on after a handler's SystemExit, and its slot is free again.
        again = wait_for_run(dsn, start_run(dsn, "retried", {}), timeout=40)
    assert again.status == "completed"
    assert worker.summary.failed == 6  # retried twice, failing twice, odd, leaving
    assert results[0].status == "completed"
    assert results[0].output == {"s": "ok on attempt 2"}
    assert [r.status for r in results[1:]] == ["failed", "failed", "failed"]
    postgresql.rollback()
    errors: dict[str, str] = dict(
        postgresql.execute(
            "SELECT flow_slug, error_message FROM pgflow.step_tasks WHERE status = 'failed'"
        ).fetchall()
    )
    assert errors["failing"] == "ValueError: always broken"
    assert errors["leaving"] == "SystemExit: 3"
    assert errors["odd"].startswith(
        "TypeError: the handler of flow 'odd', step 's' returned set, which is not JSON"
    )


def test_flows_with_idle_queues_do_not_hold_up_a_busy_one(
    postgresql: psycopg.Connection,
) -> None:
    """Slots are counted per flow: the pollers of idle flows, each waiting on its queue with
    its slot taken, never keep the busy flow's tasks waiting."""
    busy = Flow("busy").step("s", handler=lambda value: value["run"]["i"])
    idle = [Flow(f"idle_{n}").step("s", handler=lambda value: None) for n in range(3)]
    migrate(postgresql, busy, *idle)
    dsn = postgresql.info.dsn
    with serving(dsn, busy, *idle, concurrency=1):
        started = time.monotonic()
        results = [
            wait_for_run(dsn, start_run(dsn, "busy", {"i": i}), timeout=20) for i in range(5)
        ]
        elapsed = time.monotonic() - started
    assert [r.output for r in results] == [{"s": i} for i in range(5)]
    assert elapsed < 10


CALLS: list[str] = []
CALLS_LOCK = threading.Lock()


def record(value: dict[str, Any]) -> int:
    with CALLS_LOCK:
        CALLS.append(str(value["run"]["i"]))
    time.sleep(0.01)
    return int(value["run"]["i"])


def test_two_workers_share_a_queue_and_do_each_task_once(postgresql: psycopg.Connection) -> None:
    shared = Flow("shared").step("s", handler=record)
    migrate(postgresql, shared)
    dsn = postgresql.info.dsn
    CALLS.clear()
    with serving(dsn, shared, concurrency=3) as one, serving(dsn, shared, concurrency=3) as two:
        runs = [start_run(dsn, "shared", {"i": i}) for i in range(40)]
        results = [wait_for_run(dsn, run_id, timeout=60) for run_id in runs]
    assert all(r.status == "completed" for r in results)
    assert sorted(CALLS, key=int) == [str(i) for i in range(40)]  # each exactly once
    assert one.summary.completed + two.summary.completed == 40
    assert one.summary.completed > 0
    assert two.summary.completed > 0


def test_the_worker_refuses_a_flow_that_differs_or_is_missing(
    postgresql: psycopg.Connection,
) -> None:
    migrate(postgresql, Flow("chain").step("a").step("other", depends_on=["a"]))
    with pytest.raises(WorkerRefusedError) as caught:
        Worker(postgresql.info.dsn, [CHAIN, Flow("absent").step("x", handler=plus_one)]).check()
    message = str(caught.value)
    assert "flow 'chain' is structure changed" in message
    assert "flow 'absent' is not in the database" in message
    assert "alembic upgrade head" in message
    with pytest.raises(WorkerRefusedError, match="no handler for step"):
        Worker(postgresql.info.dsn, [Flow("bare").step("x")]).check()


def test_a_worker_started_mid_migration_refuses_then_starts_after_the_commit(
    postgresql: psycopg.Connection,
) -> None:
    """The migration's transaction has created the flow but not committed: the worker does not
    wait on it, does not see the half-made flow, and refuses; after the commit it runs."""
    release = str(read_catalog(postgresql).release)
    postgresql.rollback()
    dsn = postgresql.info.dsn
    with psycopg.connect(dsn) as migration:
        for statement in compile_flow(CHAIN, target=release):
            migration.execute(statement)
        started = time.monotonic()
        with pytest.raises(WorkerRefusedError, match="flow 'chain' is not in the database"):
            Worker(dsn, [CHAIN]).check()
        assert time.monotonic() - started < 5
        migration.commit()
    with serving(dsn, CHAIN):
        result = wait_for_run(dsn, start_run(dsn, "chain", {"n": 1}), timeout=30)
    assert result.output == {"c": {"b": 4, "step": "c"}}


SLOW = """\
import time
from alembic_pgflow import Flow

def slow(value):
    time.sleep(float(value["run"].get("sleep", 0)))
    return "done"

slow_flow = Flow("slow", timeout=3, max_attempts=3, base_delay=1).step("s", handler=slow)
"""


def worker_process(project: AlembicProject) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "alembic_pgflow",
            "worker",
            "--concurrency",
            "2",
            "--poll-interval-ms",
            "50",
        ],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


@pytest.fixture
def slow_project(alembic_project: AlembicProject) -> AlembicProject:
    alembic_project.write_flows(SLOW)
    alembic_project.autogenerate()
    alembic_project.alembic("upgrade", "head")
    return alembic_project


def task_status(connection: psycopg.Connection, run_id: str) -> str | None:
    connection.rollback()
    row = connection.execute(
        "SELECT status FROM pgflow.step_tasks WHERE run_id = %s::uuid", (run_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def test_a_killed_workers_task_comes_back(
    slow_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    row = postgresql.execute("SELECT to_regproc('pgflow.requeue_stalled_tasks')").fetchone()
    postgresql.rollback()
    if row is None or row[0] is None:
        pytest.skip("this pgflow has no requeue_stalled_tasks (0.13+): a dead worker's task stays")
    dsn = postgresql.info.dsn
    first = worker_process(slow_project)
    run_id = start_run(dsn, "slow", {"sleep": 30})
    deadline = time.monotonic() + 30
    while task_status(postgresql, run_id) != "started" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert task_status(postgresql, run_id) == "started"
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    run_sql(
        postgresql,
        ["UPDATE pgflow.runs SET input = '{\"sleep\": 0}' WHERE run_id = '" + run_id + "'"],
    )
    second = worker_process(slow_project)
    try:
        # pgflow requeues a started task once its timeout and 30 s have passed.
        result = wait_for_run(dsn, run_id, timeout=75)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert result.status == "completed"


def test_sigterm_finishes_the_task_in_flight(
    slow_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    dsn = postgresql.info.dsn
    process = worker_process(slow_project)
    run_id = start_run(dsn, "slow", {"sleep": 2})
    deadline = time.monotonic() + 30
    while task_status(postgresql, run_id) != "started" and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "stopped: 1 task(s) completed, 0 failed" in output
    assert "slow/s[0] completed in" in output
    assert wait_for_run(dsn, run_id, timeout=5).status == "completed"
    postgresql.rollback()
    stopped = postgresql.execute(
        "SELECT count(*) FROM pgflow.workers w WHERE w.function_name LIKE 'alembic-pgflow@%'"
        " AND (to_jsonb(w) ->> 'stopped_at' IS NOT NULL OR w.deprecated_at IS NOT NULL)"
    ).fetchone()
    assert stopped == (1,)


def test_run_wait_prints_the_output(
    slow_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    process = worker_process(slow_project)
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "alembic_pgflow",
                "run",
                "slow",
                "--input",
                '{"sleep": 0}',
                "--wait",
            ],
            cwd=slow_project.root,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].endswith(": completed")
    assert '"s": "done"' in result.stdout


def test_worker_options_out_of_range_are_refused(slow_project: AlembicProject) -> None:
    for option in ("--concurrency", "--poll-interval-ms"):
        result = slow_project.cli("worker", option, "0")
        assert result.returncode == 2
        assert f"Invalid value for '{option}': 0 is not in the range x>=1" in result.stderr


def slow_first_time(value: Any, context: TaskContext) -> str:
    if context.attempt == 1:
        time.sleep(3.5)
    return f"attempt {context.attempt}"


async def hangs(value: Any) -> None:
    await asyncio.sleep(60)


def test_a_handler_past_its_timeout_fails_and_pgflow_retries(
    postgresql: psycopg.Connection,
) -> None:
    overrun = Flow("overrun", timeout=3, max_attempts=2, base_delay=1).step(
        "s", handler=slow_first_time
    )
    hanging = Flow("hanging", timeout=3, max_attempts=1).step("s", handler=hangs)
    migrate(postgresql, overrun, hanging)
    dsn = postgresql.info.dsn
    with serving(dsn, overrun, hanging):
        first = start_run(dsn, "overrun", {})
        second = start_run(dsn, "hanging", {})
        results = [wait_for_run(dsn, run_id, timeout=40) for run_id in (first, second)]
    assert results[0].status == "completed"
    assert results[0].output == {"s": "attempt 2"}
    assert results[1].status == "failed"
    postgresql.rollback()
    (message,) = postgresql.execute(
        "SELECT error_message FROM pgflow.step_tasks WHERE flow_slug = 'hanging'"
    ).fetchone() or ("",)
    assert message == "TimeoutError: the handler passed the step's timeout of 3 s"


@pytest.mark.needs("conditions")
def test_a_condition_skips_a_step(postgresql: psycopg.Connection) -> None:
    gated = (
        Flow("gated")
        .step("always", handler=lambda value: "ran")
        .step(
            "only_when_asked",
            handler=lambda value: "asked",
            required_input_pattern={"publish": True},  # a root step: the run input
            when_unmet="skip",
        )
    )
    migrate(postgresql, gated)
    dsn = postgresql.info.dsn
    with serving(dsn, gated):
        skipped = start_run(dsn, "gated", {"publish": False})
        asked = start_run(dsn, "gated", {"publish": True})
        results = [wait_for_run(dsn, run_id, timeout=30) for run_id in (skipped, asked)]
    assert [r.status for r in results] == ["completed", "completed"]
    postgresql.rollback()
    states = postgresql.execute(
        "SELECT run_id::text, status FROM pgflow.step_states WHERE step_slug = 'only_when_asked'"
    ).fetchall()
    assert dict(states) == {skipped: "skipped", asked: "completed"}
