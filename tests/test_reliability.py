"""Reliability: queues, batches, atomicity, races and hostile input, through the real alembic."""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg
import pytest

from alembic_pgflow import Feature, Flow, PgflowCatalog, read_catalog, shape_of
from alembic_pgflow.migration.autogenerate import new_flow_limit
from alembic_pgflow.migration.revision_sql import ADVISORY_LOCK_KEY
from alembic_pgflow.migration.settings import PgflowSettings
from tests.alembic_project import AlembicProject, function_body
from tests.conftest import PgflowTemplate
from tests.database_helpers import definition_rows, flows_in_source

pytestmark = pytest.mark.alembic_cli

# Just enough of pgmq's interface for create_flow and the downgrade: queues as rows.
FAKE_PGMQ = """
CREATE SCHEMA pgmq;
CREATE TABLE pgmq.meta (queue_name text PRIMARY KEY);
CREATE FUNCTION pgmq.list_queues() RETURNS TABLE (queue_name text)
  LANGUAGE sql AS 'SELECT m.queue_name FROM pgmq.meta m';
CREATE FUNCTION pgmq."create"(queue_name text) RETURNS void
  LANGUAGE sql AS 'INSERT INTO pgmq.meta VALUES (queue_name)';
CREATE FUNCTION pgmq.drop_queue(queue_name text) RETURNS boolean
  LANGUAGE sql AS 'DELETE FROM pgmq.meta m WHERE m.queue_name = drop_queue.queue_name RETURNING true';
"""


def three_flows(project: AlembicProject) -> None:
    project.write_flows(
        """
        from alembic_pgflow import Flow
        c = Flow("gamma").step("a")
        a = Flow("alpha").step("a").step("b", depends_on=["a"])
        b = Flow("beta").map("each")
        """
    )


@pytest.fixture
def with_fake_pgmq(postgresql: psycopg.Connection, pgflow_template: PgflowTemplate) -> None:
    if pgflow_template.real_pgflow:
        pytest.skip("a real pgflow brings its own pgmq")
    postgresql.execute(FAKE_PGMQ)
    postgresql.commit()


@pytest.mark.usefixtures("with_fake_pgmq")
def test_queues_are_created_and_dropped(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    three_flows(alembic_project)
    alembic_project.autogenerate()
    alembic_project.alembic("upgrade", "head")
    postgresql.rollback()
    assert postgresql.execute("SELECT queue_name FROM pgmq.meta ORDER BY 1").fetchall() == [
        ("alpha",),
        ("beta",),
        ("gamma",),
    ]
    alembic_project.alembic("downgrade", "base")
    postgresql.rollback()
    assert postgresql.execute("SELECT count(*) FROM pgmq.meta").fetchone() == (0,)


@pytest.mark.usefixtures("with_fake_pgmq")
def test_new_flows_come_in_batches_when_limited(alembic_project: AlembicProject) -> None:
    alembic_project.set_option("pgflow_max_new_flows_per_revision", "2")
    three_flows(alembic_project)
    first = alembic_project.alembic("revision", "--autogenerate", "-m", "batch one")
    assert "3 new pgflow flows, but this revision creates only the first 2" in first.stderr
    upgrade = function_body(alembic_project.revisions()[-1], "upgrade")
    assert "create_flow('alpha')" in upgrade
    assert "create_flow('beta')" in upgrade
    assert "gamma" not in upgrade
    alembic_project.alembic("upgrade", "head")
    pending = alembic_project.alembic("check", check=False)
    assert pending.returncode != 0
    assert "'add_pgflow_flow', 'gamma'" in pending.stdout
    second = function_body(alembic_project.autogenerate("batch two"), "upgrade")
    assert "create_flow('gamma')" in second
    alembic_project.alembic("upgrade", "head")
    alembic_project.alembic("check")


def test_automatic_limit_follows_the_lock_table() -> None:
    settings = PgflowSettings(modules=("m",))

    def catalog(has_pgmq: bool, size: int) -> PgflowCatalog:
        return PgflowCatalog(frozenset(Feature), {}, has_pgmq=has_pgmq, lock_table_size=size)

    assert new_flow_limit(settings, catalog(True, 6400)) == 128
    assert new_flow_limit(settings, catalog(True, 64_000)) == 1280
    assert new_flow_limit(settings, catalog(False, 6400)) is None
    explicit = PgflowSettings(modules=("m",), max_new_flows_per_revision=0)
    assert new_flow_limit(explicit, catalog(True, 6400)) == 0


def test_a_failure_in_the_middle_leaves_no_flow_behind(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(
        "from alembic_pgflow import Flow\n"
        + "".join(
            f"f{n} = Flow('flow_{n}').step('a').step('b', depends_on=['a'])\n" for n in range(5)
        )
    )
    alembic_project.autogenerate()
    # flow_2's second step cannot be inserted: the migration fails in its middle.
    postgresql.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
        "$$BEGIN IF NEW.flow_slug = 'flow_2' AND NEW.step_slug = 'b' THEN "
        "RAISE EXCEPTION 'refused for the test'; END IF; RETURN NEW; END$$;"
        "CREATE TRIGGER refuse BEFORE INSERT ON pgflow.steps FOR EACH ROW EXECUTE FUNCTION refuse()"
    )
    postgresql.commit()
    result = alembic_project.alembic("upgrade", "head", check=False)
    assert result.returncode != 0
    assert "refused for the test" in result.stderr
    assert definition_rows(postgresql) == {"flows": [], "steps": [], "deps": []}


def test_two_upgrades_racing_for_one_slug(
    alembic_project: AlembicProject, postgresql: psycopg.Connection, database_url: str
) -> None:
    alembic_project.write_flows("from alembic_pgflow import Flow\n")
    alembic_project.autogenerate("empty")
    alembic_project.alembic("upgrade", "head")
    flow = Flow("raced").step("a").step("b", depends_on=["a"]).step("c", depends_on=["a", "b"])
    alembic_project.write_flows(
        "from alembic_pgflow import Flow\n"
        "raced = Flow('raced').step('a').step('b', depends_on=['a']).step('c', depends_on=['a', 'b'])\n"
    )
    alembic_project.autogenerate("raced")

    # Hold the guard's lock so that both upgrades are inside their migration at once.
    holder = psycopg.connect(postgresql.info.dsn, autocommit=False)
    holder.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "alembic", "upgrade", "head"],
            cwd=alembic_project.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    deadline = time.monotonic() + 30
    waiting = 0
    while waiting < 2 and time.monotonic() < deadline:
        row = postgresql.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
        postgresql.rollback()
        waiting = row[0] if row else 0
        time.sleep(0.05)
    assert waiting == 2, "both upgrades should be waiting on the guard"
    holder.rollback()
    holder.close()
    outcomes = sorted(racer.wait(timeout=60) for racer in racers)

    assert outcomes[0] == 0
    assert outcomes[1] != 0  # the second finds the version already moved and rolls back
    stored = read_catalog(postgresql).flows["raced"]
    assert stored.shape == shape_of(flow)
    assert stored.problems == ()  # deps_count is right
    postgresql.rollback()
    assert postgresql.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)


HOSTILE = """
    from alembic_pgflow import Flow

    hostile = Flow("hostile").step(
        "a",
        required_input_pattern={
            "x'); DROP TABLE pgflow.flows; --": "'; DELETE FROM pgflow.steps; --",
            "$pgflow$": "$$ END $pgflow$; DROP SCHEMA pgflow CASCADE; --",
            ":name": ":1 %s %(x)s \\\\:",
        },
    )
"""


@pytest.mark.needs_step_conditions
def test_hostile_pattern_is_only_data(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(HOSTILE)
    alembic_project.autogenerate()
    alembic_project.alembic("upgrade", "head")
    stored = read_catalog(postgresql).flows["hostile"]
    assert stored.shape == shape_of(flows_in_source(HOSTILE)["hostile"])
    alembic_project.alembic("check")
    alembic_project.alembic("downgrade", "base")
    assert definition_rows(postgresql) == {"flows": [], "steps": [], "deps": []}


@pytest.mark.parametrize(
    "slug",
    ["it's", "drop--table", "a;b", "zürich", "a" * 48, "9lives", "run"],
)
def test_hostile_slug_stops_autogenerate(alembic_project: AlembicProject, slug: str) -> None:
    alembic_project.write_flows(f"from alembic_pgflow import Flow\nbad = Flow({slug!r})\n")
    before = alembic_project.revisions()
    result = alembic_project.alembic("revision", "--autogenerate", check=False)
    assert result.returncode != 0
    assert result.stdout.startswith(
        f"FAILED: could not import pgflow module 'flows_app.flows': FlowDefinitionError: flow {slug!r}, field 'slug': "
    )
    assert alembic_project.revisions() == before


def test_unreachable_database_writes_no_revision(alembic_project: AlembicProject) -> None:
    alembic_project.set_option("sqlalchemy.url", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    alembic_project.write_flows("from alembic_pgflow import Flow\nf = Flow('f').step('a')\n")
    result = alembic_project.alembic("revision", "--autogenerate", check=False)
    assert result.returncode != 0
    assert "connection" in result.stderr.lower()
    assert alembic_project.revisions() == []
