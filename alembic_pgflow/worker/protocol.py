"""pgflow's runtime functions, called the way pgflow's own TypeScript worker calls them.

A worker reads its flow's pgmq queue with ``pgmq.read_with_poll``, claims the messages with
``pgflow.start_tasks`` (which returns each task's input and extends the message's visibility
to the step's timeout), then reports with ``pgflow.complete_task`` or ``pgflow.fail_task``;
retries, delays, fan-out and conditions are pgflow's. Workers register in ``pgflow.workers``
and heartbeat there. pgflow 0.17 names queues in lower case and wants the queue name in
``start_tasks``.

Every function takes a psycopg connection in autocommit mode: each call is its own
transaction, as pgflow expects.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

VISIBILITY_SECONDS = 2
"""How long a read message stays hidden before ``start_tasks`` extends it to the step's
timeout (pgflow's own worker reads with the same short visibility)."""


@dataclass(frozen=True)
class Task:
    """One task as ``start_tasks`` hands it out."""

    flow_slug: str
    run_id: str
    step_slug: str
    task_index: int
    input: Any
    msg_id: int
    attempt: int
    """pgflow's count of starts of this task: 1 on the first try."""
    run_input: Any = None
    """The run's input, where the release leaves it out of ``input`` (see :func:`step_input`)."""
    input_has_run: bool = True
    """Up to pgflow 0.11 a single step's input holds the run's input under ``"run"``; later
    releases give only the dependencies' outputs and the run's input apart."""


@dataclass(frozen=True)
class Runtime:
    """What differs between pgflow releases for a worker."""

    lower_case_queues: bool
    """pgflow 0.17+: the flow's queue is ``lower(slug)``, and ``start_tasks`` takes it."""
    has_mark_stopped: bool
    has_requeue: bool = False
    """pgflow 0.13+: ``requeue_stalled_tasks()`` gives a dead worker's tasks back."""

    @classmethod
    def detect(cls, connection: Connection[Any]) -> Runtime:
        """Read the release's runtime signatures from the database."""
        row = connection.execute(
            "SELECT EXISTS (SELECT FROM information_schema.columns WHERE table_schema = 'pgflow'"
            " AND table_name = 'flows' AND column_name = 'queue_mode'),"
            " to_regproc('pgflow.mark_worker_stopped') IS NOT NULL,"
            " to_regproc('pgflow.requeue_stalled_tasks') IS NOT NULL"
        ).fetchone()
        assert row is not None
        return cls(
            lower_case_queues=bool(row[0]), has_mark_stopped=bool(row[1]), has_requeue=bool(row[2])
        )

    def queue_of(self, flow_slug: str) -> str:
        """The pgmq queue of a flow-mode flow."""
        return flow_slug.lower() if self.lower_case_queues else flow_slug


def register(connection: Connection[Any], queue: str, function_name: str) -> str:
    """Register a worker for one queue in ``pgflow.workers``; its id."""
    worker_id = str(uuid.uuid4())
    connection.execute(
        "INSERT INTO pgflow.workers (queue_name, worker_id, function_name) VALUES (%s, %s, %s)",
        (queue, worker_id, function_name),
    )
    return worker_id


def heartbeat(connection: Connection[Any], runtime: Runtime, worker_ids: list[str]) -> int:
    """Tell pgflow these workers are alive; where pgflow has it (0.13+), also run its own
    ``requeue_stalled_tasks()``, which pg_cron runs on Supabase, so that tasks of a worker
    that died come back where no scheduler runs. Returns how many came back."""
    connection.execute(
        "UPDATE pgflow.workers SET last_heartbeat_at = clock_timestamp()"
        " WHERE worker_id = ANY(%s::uuid[])",
        (worker_ids,),
    )
    if not runtime.has_requeue:
        return 0
    row = connection.execute("SELECT pgflow.requeue_stalled_tasks()").fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


def mark_stopped(connection: Connection[Any], runtime: Runtime, worker_ids: list[str]) -> None:
    """Tell pgflow these workers stopped."""
    for worker_id in worker_ids:
        if runtime.has_mark_stopped:
            connection.execute("SELECT pgflow.mark_worker_stopped(%s::uuid)", (worker_id,))
        else:
            connection.execute(
                "UPDATE pgflow.workers SET deprecated_at = clock_timestamp(),"
                " last_heartbeat_at = clock_timestamp() WHERE worker_id = %s::uuid",
                (worker_id,),
            )


def read_and_start(
    connection: Connection[Any],
    runtime: Runtime,
    flow_slug: str,
    worker_id: str,
    *,
    quantity: int,
    poll_seconds: int,
    poll_interval_ms: int = 100,
) -> list[Task]:
    """Wait up to ``poll_seconds`` for messages on the flow's queue, looking every
    ``poll_interval_ms``, then claim them."""
    queue = runtime.queue_of(flow_slug)
    messages = connection.execute(
        "SELECT msg_id FROM pgmq.read_with_poll(queue_name => %s, vt => %s, qty => %s,"
        " max_poll_seconds => %s, poll_interval_ms => %s)",
        (queue, VISIBILITY_SECONDS, quantity, poll_seconds, poll_interval_ms),
    ).fetchall()
    if not messages:
        return []
    msg_ids = [int(msg_id) for (msg_id,) in messages]
    arguments: tuple[Any, ...] = (flow_slug, msg_ids, worker_id)
    call = "pgflow.start_tasks(flow_slug => %s, msg_ids => %s::bigint[], worker_id => %s::uuid"
    if runtime.lower_case_queues:
        call += ", queue_name => %s"
        arguments += (queue,)
    # As JSON: the record's columns differ between releases (flow_input came with 0.12). The
    # attempt is pgflow's own count, which start_tasks raises by one for each task it starts:
    # this statement's snapshot was taken before start_tasks ran, so the joined row is the one
    # before that update (a message's read count would not do: it also grows with reads that
    # start nothing, after the visibility ran out).
    records = connection.execute(
        f"SELECT to_jsonb(t), s.attempts_count + 1 FROM {call}) t"
        " JOIN pgflow.step_tasks s ON s.run_id = t.run_id AND s.step_slug = t.step_slug"
        " AND s.message_id = t.msg_id",
        arguments,
    ).fetchall()
    if not records:
        return []
    separate = "flow_input" in records[0][0]
    run_inputs: dict[str, Any] = {}
    if separate:
        missing = sorted({r["run_id"] for r, _ in records if r.get("flow_input") is None})
        if missing:
            run_inputs = dict(
                connection.execute(
                    "SELECT run_id::text, input FROM pgflow.runs WHERE run_id = ANY(%s::uuid[])",
                    (missing,),
                ).fetchall()
            )
    tasks = []
    for record, attempt in records:
        index = record.get("task_index")
        tasks.append(
            Task(
                flow_slug=record["flow_slug"],
                run_id=record["run_id"],
                step_slug=record["step_slug"],
                input=record["input"],
                msg_id=int(record["msg_id"]),
                task_index=0 if index is None else int(index),
                attempt=int(attempt),
                run_input=(
                    None
                    if not separate
                    else record.get("flow_input") or run_inputs.get(record["run_id"])
                ),
                input_has_run=not separate,
            )
        )
    return tasks


def step_input(task: Task, is_map: bool) -> Any:
    """The input a handler gets, the same on every release: a map task's array element; for
    any other step, the run's input under ``"run"`` and each dependency's output under its
    slug."""
    if is_map or task.input_has_run:
        return task.input
    return {"run": task.run_input, **(task.input or {})}


def complete(connection: Connection[Any], task: Task, output_json: str) -> None:
    """Report a task's JSON output."""
    connection.execute(
        "SELECT pgflow.complete_task(run_id => %s::uuid, step_slug => %s, task_index => %s,"
        " output => %s::jsonb)",
        (task.run_id, task.step_slug, task.task_index, output_json),
    )


def fail(connection: Connection[Any], task: Task, message: str) -> None:
    """Report a task's failure; pgflow retries it or fails the run."""
    connection.execute(
        "SELECT pgflow.fail_task(run_id => %s::uuid, step_slug => %s, task_index => %s,"
        " error_message => %s)",
        (task.run_id, task.step_slug, task.task_index, message),
    )


def start_flow(connection: Connection[Any], flow_slug: str, run_input: Any) -> str:
    """Start a run; its id."""
    row = connection.execute(
        "SELECT run_id::text FROM pgflow.start_flow(flow_slug => %s, input => %s)",
        (flow_slug, Jsonb(run_input)),
    ).fetchone()
    if row is None:
        raise RuntimeError(f"pgflow did not start flow {flow_slug!r}")
    return str(row[0])


def run_state(connection: Connection[Any], run_id: str) -> tuple[str, Any]:
    """A run's status and output (``None`` until it completes)."""
    row = connection.execute(
        "SELECT status, to_jsonb(r) -> 'output' FROM pgflow.runs r WHERE run_id = %s::uuid",
        (run_id,),
    ).fetchone()
    if row is None:
        raise LookupError(f"no pgflow run {run_id}")
    return str(row[0]), row[1]


def dumps(value: Any) -> str:
    """JSON text of a handler's output; ``TypeError``/``ValueError`` when it is not JSON."""
    return json.dumps(value, allow_nan=False)
