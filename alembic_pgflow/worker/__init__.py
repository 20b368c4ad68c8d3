"""Run flows in Python: a worker for pgflow's runtime, and starting runs.

``Worker(conninfo, flows).run()`` serves the flows' handlers until ``stop()``;
``start_run`` and ``wait_for_run`` start a run and wait for its output.
"""

from alembic_pgflow.definition.context import TaskContext
from alembic_pgflow.worker.runs import RunResult, start_run, wait_for_run
from alembic_pgflow.worker.worker import Worker, WorkerRefusedError, WorkerSummary

__all__ = [
    "RunResult",
    "TaskContext",
    "Worker",
    "WorkerRefusedError",
    "WorkerSummary",
    "start_run",
    "wait_for_run",
]
