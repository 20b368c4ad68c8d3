"""Run one ``alembic`` command in this process and report what it cost.

Writes JSON to the file named by ``BENCH_REPORT``: the SQL statements sent through SQLAlchemy
and the peak resident memory of the process. The caller measures wall time.
"""

from __future__ import annotations

import json
import os
import resource
import sys

import sqlalchemy
from alembic.config import main

statements: list[str] = []


@sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "before_cursor_execute")
def _count(conn: object, cursor: object, statement: str, *rest: object) -> None:
    statements.append(statement)


if __name__ == "__main__":
    try:
        main(argv=sys.argv[1:], prog="alembic")
    finally:
        with open(os.environ["BENCH_REPORT"], "w") as report:
            json.dump(
                {
                    "statements": len(statements),
                    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                },
                report,
            )
