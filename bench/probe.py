"""Run one ``alembic`` command in this process and report what it cost.

Writes JSON to the file named by ``BENCH_REPORT``: the peak resident memory of the process and,
when ``BENCH_COUNT_STATEMENTS`` is set, the SQL statements sent through SQLAlchemy (counting
them adds a listener to every statement, so timed upgrades run without it). The caller measures
wall time.
"""

from __future__ import annotations

import json
import os
import resource
import sys
from pathlib import Path

import sqlalchemy
from alembic.config import main

statements: list[str] = []

if os.environ.get("BENCH_COUNT_STATEMENTS"):

    @sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "before_cursor_execute")
    def _count(conn: object, cursor: object, statement: str, *rest: object) -> None:
        statements.append(statement)


def peak_rss_mb() -> float:
    """This process's peak resident memory.

    Linux's ``VmHWM`` counts only this program; ``ru_maxrss`` would also count the parent
    process's memory at the moment it started this one.
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    try:
        main(argv=sys.argv[1:], prog="alembic")
    finally:
        with open(os.environ["BENCH_REPORT"], "w") as report:
            json.dump({"statements": len(statements), "peak_rss_mb": peak_rss_mb()}, report)
