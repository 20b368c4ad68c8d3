"""``alembic-pgflow dev sync [--watch]``: instant development loop, with its refusal rules."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from alembic_pgflow import read_catalog
from alembic_pgflow.devtools.sync import is_local_host, refusal
from tests.alembic_project import AlembicProject
from tests.database_helpers import run_sql

pytestmark = [pytest.mark.alembic_cli]

TWO = """\
from alembic_pgflow import Flow
orders = Flow('orders').step('a').step('b', depends_on=['a'])
refunds = Flow('refunds').step('check')
"""


def sync(project: AlembicProject, *args: str) -> subprocess.CompletedProcess[str]:
    return project.cli("dev", "sync", *args)


@pytest.mark.parametrize(
    ("host", "local"),
    [
        (None, True),
        ("/tmp/socket-dir", True),
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("db.internal", False),
        ("10.0.0.5", False),
        ("prod.example.com", False),
    ],
)
def test_only_local_hosts_count_as_development(host: str | None, local: bool) -> None:
    assert is_local_host(host) is local


def test_a_remote_database_needs_explicit_consent() -> None:
    reason = refusal(["db.internal"], declared_dev=False)
    assert reason is not None
    assert "--i-know-this-is-dev" in reason
    assert refusal(["db.internal"], declared_dev=True) is None
    assert refusal([None, "/run/postgresql"], declared_dev=False) is None


def test_create_then_tune_then_recreate(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(TWO)
    created = sync(alembic_project)
    assert created.returncode == 0, created.stderr
    assert created.stdout == "create          orders\ncreate          refunds\n"
    assert sorted(read_catalog(postgresql).flows) == ["orders", "refunds"]
    assert sync(alembic_project).stdout == "in sync: nothing to do\n"

    tuned = TWO.replace("Flow('refunds')", "Flow('refunds', timeout=9)")
    alembic_project.write_flows(tuned)
    assert sync(alembic_project).stdout == "update options  refunds\n"
    assert read_catalog(postgresql).flows["refunds"].shape.options.timeout == 9

    changed = tuned.replace(
        "step('b', depends_on=['a'])", "step('b').step('c', depends_on=['a', 'b'])"
    )
    alembic_project.write_flows(changed)
    refused = sync(alembic_project)
    assert refused.returncode == 2
    assert "dev sync would delete and recreate orders (0 run(s))" in refused.stderr
    assert "pass --yes to agree" in refused.stderr
    recreated = sync(alembic_project, "--yes")
    assert recreated.stdout == "recreate        orders\n", recreated.stderr
    steps = read_catalog(postgresql).flows["orders"].shape.structure.steps
    assert [step.slug for step in steps] == ["a", "b", "c"]


def test_flows_only_in_the_database_stay_unless_pruned(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    run_sql(postgresql, ["SELECT pgflow.create_flow('legacy')"])
    alembic_project.write_flows(TWO)
    assert sync(alembic_project).returncode == 0
    assert "legacy" in read_catalog(postgresql).flows
    pruned = sync(alembic_project, "--prune", "--yes")
    assert pruned.stdout == "drop            legacy\n"
    assert "legacy" not in read_catalog(postgresql).flows


def test_a_flow_an_alembic_revision_created_is_not_dropped(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(TWO)
    alembic_project.autogenerate()
    alembic_project.alembic("upgrade", "head")
    alembic_project.write_flows(TWO.replace("step('check')", "step('check').step('pay')"))
    refused = sync(alembic_project, "--yes")
    assert refused.returncode == 2
    assert "Alembic revisions of this database created 'refunds'" in refused.stderr
    assert len(read_catalog(postgresql).flows["refunds"].shape.structure.steps) == 1
    forced = sync(alembic_project, "--yes", "--force")
    assert forced.stdout == "recreate        refunds\n"


@pytest.mark.needs("runtime")
def test_recreating_says_how_many_runs_are_lost(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(TWO)
    sync(alembic_project)
    run_sql(postgresql, ["SELECT pgflow.start_flow('orders', '{}'::jsonb)"])
    alembic_project.write_flows(TWO.replace("depends_on=['a']", "depends_on=[]"))
    refused = sync(alembic_project)
    assert "delete and recreate orders (1 run(s))" in refused.stderr
    assert sync(alembic_project, "--yes").returncode == 0
    postgresql.rollback()
    assert postgresql.execute("SELECT count(*) FROM pgflow.runs").fetchone() == (0,)


def test_watch_syncs_every_save_and_survives_a_broken_module(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(TWO)
    watcher = subprocess.Popen(
        [sys.executable, "-m", "alembic_pgflow", "dev", "sync", "--watch", "--yes"],
        cwd=alembic_project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()

    def wait_for(text: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        seen = []
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(line)
            if text in line:
                return
        raise AssertionError(f"never saw {text!r}; saw {seen}")

    try:
        wait_for("create          refunds")
        time.sleep(0.5)
        alembic_project.write_flows(TWO.replace("Flow('orders')", "Flow('orders', timeout=7)"))
        wait_for("update options  orders")
        alembic_project.write_flows(TWO + "broken = 1 / 0\n")
        wait_for("Error: could not import pgflow module 'flows_app.flows': ZeroDivisionError")
        alembic_project.write_flows(TWO + "more = Flow('more').step('x')\n")
        wait_for("create          more")
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)
    assert sorted(read_catalog(postgresql).flows) == ["more", "orders", "refunds"]


def test_dev_sync_on_the_sample_project(tmp_path: Path, database_url: str) -> None:
    import shutil

    from tests.alembic_project import ROOT

    sample = tmp_path / "sample_project"
    shutil.copytree(ROOT / "sample_project", sample, ignore=shutil.ignore_patterns(".pgdata"))
    result = subprocess.run(
        [sys.executable, "-m", "alembic_pgflow", "dev", "sync"],
        cwd=sample,
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "create          analyze_website\ncreate          score_reviews\n"
