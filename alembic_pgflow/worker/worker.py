"""A Python worker for pgflow: it runs the handlers of flows defined with alembic-pgflow.

It never creates or changes definitions (migrations do): before polling, every flow it serves
must be in the database with the structure it has in code, and every step must have a
handler. Then one thread per flow polls the flow's queue for as many tasks as the flow has
free slots (``concurrency`` for each flow, as each of pgflow's own workers serves one flow), a
pool of threads runs the handlers (``async`` ones in an event loop of their own), and one
reporter thread sends their outcomes to pgflow on its own connection (so the server serves a
worker on a few connections, whatever its concurrency). Several workers, on several machines,
share a queue safely: pgmq's visibility timeout and ``pgflow.start_tasks`` decide who gets a
task, and a task whose worker died comes back after its timeout.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg

from alembic_pgflow.comparison.status import FlowStatus, compare
from alembic_pgflow.database.catalog import read_catalog
from alembic_pgflow.definition.context import TaskContext
from alembic_pgflow.definition.discovery import DiscoveredFlow
from alembic_pgflow.definition.dsl import Flow
from alembic_pgflow.errors import PgflowCommandError
from alembic_pgflow.worker import protocol
from alembic_pgflow.worker.protocol import Runtime, Task

log = logging.getLogger("alembic_pgflow.worker")

HEARTBEAT_SECONDS = 5.0
BATCH_WAIT_SECONDS = 0.005
"""How long a poller waits for more free slots once one is free, to read in batches."""
DEFAULT_TIMEOUT_SECONDS = 60.0
"""pgflow's timeout for a flow created without one (``create_flow``'s default)."""


class WorkerRefusedError(PgflowCommandError):
    """The worker must not start: a flow is missing, differs, or lacks handlers."""


@dataclass
class WorkerSummary:
    """What a worker did."""

    completed: int = 0
    failed: int = 0
    by_step: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Outcome:
    """A handler's result, waiting for the reporter: its JSON output, or its error message."""

    task: Task
    ok: bool
    text: str
    started: float


class Worker:
    """Runs the handlers of ``flows`` against the database at ``conninfo`` (a libpq string)."""

    def __init__(
        self,
        conninfo: str,
        flows: Sequence[Flow],
        *,
        concurrency: int = 10,
        poll_seconds: int = 1,
        poll_interval_ms: int = 100,
        function_name: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.conninfo = conninfo
        self.flows = {flow.slug: flow for flow in flows}
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.poll_interval_ms = poll_interval_ms
        self.function_name = function_name or f"alembic-pgflow@{socket.gethostname()}"
        self.summary = WorkerSummary()
        self._stop = threading.Event()
        self._slots = {flow.slug: threading.Semaphore(concurrency) for flow in flows}
        """Each flow's free task slots: one flow's poller, waiting on an idle queue while it
        holds slots, never keeps another flow's tasks waiting."""
        self._lock = threading.Lock()
        self._reports: queue.SimpleQueue[_Outcome | None] = queue.SimpleQueue()
        self._handlers: dict[tuple[str, str], tuple[Callable[..., Any], bool]] = {}
        """Each step's handler, and whether it takes the context as a second argument."""
        self._maps = {
            (flow.slug, step.slug)
            for flow in flows
            for step in flow.steps
            if step.step_type == "map"
        }
        self._timeouts = {
            (flow.slug, step.slug): float(
                step.options.timeout or flow.options.timeout or DEFAULT_TIMEOUT_SECONDS
            )
            for flow in flows
            for step in flow.steps
        }

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.conninfo, autocommit=True)

    def check(self) -> Runtime:
        """Refuse to start unless every flow is in the database as in code, with a handler
        for each step (the production-strict start-up check)."""
        problems = []
        for flow in self.flows.values():
            missing = [step.slug for step in flow.steps if step.slug not in flow.handlers]
            if missing:
                problems.append(
                    f"flow {flow.slug!r}: no handler for step(s) {', '.join(missing)} "
                    "(handler= or @flow.handler)"
                )
            for step in flow.steps:
                if step.slug in flow.handlers:
                    handler = flow.handlers[step.slug]
                    takes_context = len(inspect.signature(handler).parameters) >= 2
                    self._handlers[flow.slug, step.slug] = (handler, takes_context)
        with self._connect() as connection:
            catalog = read_catalog(connection)
            runtime = Runtime.detect(connection)
        code = {slug: DiscoveredFlow(flow, slug) for slug, flow in self.flows.items()}
        for comparison in compare(code, catalog):
            if comparison.code is None:
                continue
            if comparison.status is FlowStatus.NEW:
                problems.append(
                    f"flow {comparison.slug!r} is not in the database: generate its revision "
                    "(alembic revision --autogenerate) and run alembic upgrade head"
                )
            elif comparison.status not in {FlowStatus.IN_SYNC, FlowStatus.OPTIONS_CHANGED}:
                details = "; ".join([*comparison.problems, *comparison.structure_differences][:3])
                problems.append(
                    f"flow {comparison.slug!r} is {comparison.status.value} ({details}): run "
                    "alembic upgrade head with the revision for this code, or deploy the code "
                    "that matches the database"
                )
        if problems:
            raise WorkerRefusedError(
                "the worker does not start:\n" + "\n".join(f"  {p}" for p in problems)
            )
        return runtime

    def run(self) -> WorkerSummary:
        """Check, register, then poll and run tasks until :meth:`stop`; finish in-flight
        tasks (see :meth:`stop`) and mark the workers stopped."""
        runtime = self.check()
        with self._connect() as connection:
            worker_ids = {
                slug: protocol.register(connection, runtime.queue_of(slug), self.function_name)
                for slug in self.flows
            }
        log.info(
            "pgflow worker serving %s with %d slot(s) a flow",
            ", ".join(self.flows),
            self.concurrency,
        )
        pool = ThreadPoolExecutor(
            self.concurrency * len(self.flows), thread_name_prefix="pgflow-task"
        )
        pollers = [
            threading.Thread(
                target=self._poll, args=(runtime, slug, worker_ids[slug], pool), daemon=True
            )
            for slug in self.flows
        ]
        beat = threading.Thread(target=self._heartbeat, args=(runtime, list(worker_ids.values())))
        beat.daemon = True
        reporter = threading.Thread(target=self._report, name="pgflow-reporter", daemon=True)
        for thread in [*pollers, beat, reporter]:
            thread.start()
        try:
            self._stop.wait()
        finally:
            self._stop.set()
            for thread in pollers:
                thread.join()
            self._drain(pool)
            self._reports.put(None)
            reporter.join()
            with self._connect() as connection:
                protocol.mark_stopped(connection, runtime, list(worker_ids.values()))
            log.info(
                "pgflow worker stopped: %d task(s) completed, %d failed",
                self.summary.completed,
                self.summary.failed,
            )
        return self.summary

    def stop(self, deadline: float = 30.0) -> None:
        """Stop polling; tasks in flight get ``deadline`` seconds to finish (later ones come
        back to another worker after their visibility timeout)."""
        self._deadline = deadline
        self._stop.set()

    def _drain(self, pool: ThreadPoolExecutor) -> None:
        deadline = time.monotonic() + getattr(self, "_deadline", 30.0)
        acquired = 0
        total = self.concurrency * len(self._slots)
        for slots in self._slots.values():
            for _ in range(self.concurrency):
                if not slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    break
                acquired += 1
        pool.shutdown(wait=acquired == total, cancel_futures=True)

    def _heartbeat(self, runtime: Runtime, worker_ids: list[str]) -> None:
        with self._connect() as connection:
            while not self._stop.wait(HEARTBEAT_SECONDS):
                try:
                    requeued = protocol.heartbeat(connection, runtime, worker_ids)
                except psycopg.Error as error:
                    log.warning("heartbeat failed: %s", error)
                    continue
                if requeued:
                    log.info("pgflow requeued %d stalled task(s) of dead workers", requeued)

    def _poll(self, runtime: Runtime, slug: str, worker_id: str, pool: ThreadPoolExecutor) -> None:
        with self._connect() as connection:
            while not self._stop.is_set():
                free = self._free_slots(slug)
                if free == 0:
                    continue
                try:
                    tasks = protocol.read_and_start(
                        connection,
                        runtime,
                        slug,
                        worker_id,
                        quantity=free,
                        poll_seconds=self.poll_seconds,
                        poll_interval_ms=self.poll_interval_ms,
                    )
                except psycopg.Error as error:
                    log.warning("polling flow %r failed: %s", slug, error)
                    tasks = []
                    self._stop.wait(1)
                for _ in range(free - len(tasks)):
                    self._slots[slug].release()
                for task in tasks:
                    pool.submit(self._execute, task)

    def _free_slots(self, slug: str) -> int:
        """Wait for a free slot, then take the others that free up within a few
        milliseconds, so that reads fetch tasks in batches rather than one by one."""
        slots = self._slots[slug]
        if not slots.acquire(timeout=0.2):
            return 0
        free = 1
        deadline = time.monotonic() + BATCH_WAIT_SECONDS
        while free < self.concurrency:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not slots.acquire(timeout=remaining):
                break
            free += 1
        return free

    def _execute(self, task: Task) -> None:
        """Run a task's handler and hand its outcome to the reporter, which frees the slot."""
        started = time.monotonic()
        try:
            handler, takes_context = self._handlers[task.flow_slug, task.step_slug]
            timeout = self._timeouts[task.flow_slug, task.step_slug]
            value = protocol.step_input(task, (task.flow_slug, task.step_slug) in self._maps)
            if takes_context:
                context = TaskContext(
                    task.flow_slug, task.run_id, task.step_slug, task.task_index, task.attempt
                )
                result = handler(value, context)
            else:
                result = handler(value)
            output = _settle(result, timeout)
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                # pgflow has made the message visible again by now: never report an overrun
                # as done; fail it, and pgflow retries it by its own rules.
                raise TimeoutError(  # noqa: TRY301
                    f"the handler took {elapsed:.1f} s, past the step's timeout of {timeout:g} s"
                )
            outcome = _Outcome(task, True, _json(output, task), started)
        except BaseException as error:  # asyncio.CancelledError and SystemExit fail it too
            outcome = _Outcome(task, False, f"{type(error).__name__}: {error}", started)
        self._reports.put(outcome)

    def _report(self) -> None:
        """Send outcomes to pgflow, one call at a time (each its own transaction), until told
        to stop; each outcome is then counted, logged, and its slot freed."""
        connection: psycopg.Connection[Any] | None = None
        while (outcome := self._reports.get()) is not None:
            failure = None
            try:
                if connection is None or connection.closed:
                    connection = self._connect()
                _send(connection, outcome)
            except psycopg.Error as error:
                failure = error
            self._reported(outcome, failure)
        if connection is not None:
            connection.close()

    def _reported(self, outcome: _Outcome, failure: psycopg.Error | None) -> None:
        task = outcome.task
        try:
            if failure is not None:
                # The message comes back after its visibility timeout; pgflow retries it then.
                log.warning(
                    "%s/%s: reporting to pgflow failed: %s", task.flow_slug, task.step_slug, failure
                )
                return
            self._count(task, ok=outcome.ok)
            elapsed = time.monotonic() - outcome.started
            if outcome.ok:
                log.info(
                    "%s/%s[%d] completed in %.3fs",
                    task.flow_slug,
                    task.step_slug,
                    task.task_index,
                    elapsed,
                )
            else:
                log.info(
                    "%s/%s[%d] failed (attempt %d) in %.3fs: %s",
                    task.flow_slug,
                    task.step_slug,
                    task.task_index,
                    task.attempt,
                    elapsed,
                    outcome.text,
                )
        finally:
            self._slots[task.flow_slug].release()

    def _count(self, task: Task, *, ok: bool) -> None:
        with self._lock:
            if ok:
                self.summary.completed += 1
            else:
                self.summary.failed += 1
            key = f"{task.flow_slug}/{task.step_slug}"
            self.summary.by_step[key] = self.summary.by_step.get(key, 0) + 1


def _send(connection: psycopg.Connection[Any], outcome: _Outcome) -> None:
    if outcome.ok:
        protocol.complete(connection, outcome.task, outcome.text)
    else:
        protocol.fail(connection, outcome.task, outcome.text)


def _settle(result: Any, timeout: float) -> Any:
    """A handler's output: an async handler's is awaited, cancelled at the step's timeout."""
    if inspect.isawaitable(result):
        return asyncio.run(_await(result, timeout))
    return result


async def _await(awaitable: Any, timeout: float) -> Any:
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        raise TimeoutError(f"the handler passed the step's timeout of {timeout:g} s") from None


def _json(output: Any, task: Task) -> str:
    try:
        return protocol.dumps(output)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"the handler of flow {task.flow_slug!r}, step {task.step_slug!r} returned "
            f"{type(output).__name__}, which is not JSON ({error})"
        ) from error


def flows_to_serve(found: Mapping[str, DiscoveredFlow], slugs: Sequence[str]) -> list[Flow]:
    """The flows a worker serves: the slugs named, or every flow with handlers."""
    if slugs:
        unknown = [slug for slug in slugs if slug not in found]
        if unknown:
            raise WorkerRefusedError(
                f"no flow {unknown[0]!r} in pgflow_modules (flows: {', '.join(found) or 'none'})"
            )
        return [found[slug].flow for slug in slugs]
    chosen = [item.flow for item in found.values() if item.flow.handlers]
    if not chosen:
        raise WorkerRefusedError("no flow in pgflow_modules has handlers to run")
    return chosen
