"""Start a pgflow run from Python and wait for its end."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg

from alembic_pgflow.worker import protocol


@dataclass(frozen=True)
class RunResult:
    """A run's final (or last seen) status and its output."""

    run_id: str
    status: str
    output: Any


def start_run(conninfo: str, flow_slug: str, run_input: Any) -> str:
    """Start a run of ``flow_slug`` with ``run_input`` (``pgflow.start_flow``); its id."""
    with psycopg.connect(conninfo, autocommit=True) as connection:
        return protocol.start_flow(connection, flow_slug, run_input)


def wait_for_run(conninfo: str, run_id: str, timeout: float = 60.0) -> RunResult:
    """Wait until the run completes or fails, or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(conninfo, autocommit=True) as connection:
        while True:
            status, output = protocol.run_state(connection, run_id)
            if status in {"completed", "failed"} or time.monotonic() > deadline:
                return RunResult(run_id, status, output)
            time.sleep(0.1)
