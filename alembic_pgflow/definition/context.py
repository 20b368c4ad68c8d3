"""What a handler may learn about the task it runs (given by the worker as a second argument)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskContext:
    """The task a handler runs: ``handler(value, context)`` (or just ``handler(value)``)."""

    flow_slug: str
    run_id: str
    step_slug: str
    task_index: int
    """The element's index in a map step's array; 0 for a single step."""
    attempt: int
    """1 on the first try, 2 on the first retry, and so on."""
