"""Reading definitions back from PostgreSQL."""

from __future__ import annotations

import os

import psycopg
import pytest
import sqlalchemy

from alembic_pgflow import (
    Feature,
    Flow,
    PgflowSchemaMissingError,
    compile_flow,
    read_catalog,
    shape_of,
)
from alembic_pgflow.database.catalog import PendingCatalog, begin_catalog_read, detect_release
from tests.conftest import PgflowTemplate


def apply(connection: psycopg.Connection, flows: list[Flow]) -> None:
    with connection.cursor() as cursor:
        for flow in flows:
            for statement in compile_flow(flow):
                cursor.execute(statement)
    connection.commit()


def ten_step_flow(slug: str) -> Flow:
    flow = Flow(slug).step("s0")
    for index in range(1, 10):
        flow = flow.step(f"s{index}", depends_on=[f"s{index - 1}"])
    return flow


def count_statements(database_url: str) -> int:
    engine = sqlalchemy.create_engine(database_url)
    statements: list[str] = []
    sqlalchemy.event.listen(
        engine, "before_cursor_execute", lambda *args: statements.append(args[2])
    )
    with engine.connect() as connection:
        before = len(statements)
        read_catalog(connection)
        count = len(statements) - before
    engine.dispose()
    return count


def test_query_count_does_not_grow_with_flows(
    postgresql: psycopg.Connection, database_url: str
) -> None:
    apply(postgresql, [ten_step_flow("first")])
    with_one = count_statements(database_url)
    apply(postgresql, [ten_step_flow(f"flow_{n}") for n in range(60)])
    with_many = count_statements(database_url)
    assert with_one == with_many == 3


def test_reads_through_sqlalchemy_and_psycopg_alike(
    postgresql: psycopg.Connection, database_url: str
) -> None:
    flows = [ten_step_flow("zeta"), Flow("Alpha").step("a"), Flow("beta").map("m")]
    apply(postgresql, flows)
    engine = sqlalchemy.create_engine(database_url)
    with engine.connect() as connection:
        via_sqlalchemy = read_catalog(connection)
    engine.dispose()
    via_psycopg = read_catalog(postgresql)
    assert via_sqlalchemy == via_psycopg
    assert list(via_psycopg.flows) == ["Alpha", "beta", "zeta"]
    assert {slug: stored.shape for slug, stored in via_psycopg.flows.items()} == {
        flow.slug: shape_of(flow) for flow in flows
    }


@pytest.mark.needs_step_conditions
def test_features_of_a_0_14_schema(postgresql: psycopg.Connection) -> None:
    catalog = read_catalog(postgresql)
    assert {Feature.START_DELAY, Feature.MAP_STEPS, Feature.STEP_CONDITIONS} <= catalog.features
    settings = postgresql.execute(
        "SELECT current_setting('max_locks_per_transaction')::int,"
        " current_setting('max_connections')::int, current_setting('max_prepared_transactions')::int"
    ).fetchone()
    assert settings is not None
    locks, connections, prepared = settings
    assert catalog.lock_table_size == locks * (connections + prepared)


def test_a_schema_before_0_14_reads_conditions_as_defaults(
    postgresql: psycopg.Connection, pgflow_template: PgflowTemplate
) -> None:
    if pgflow_template.real_pgflow:
        pytest.skip("rewrites the stand-in schema into an older release's shape")
    flow = Flow("old").step("a").map("b", array="a")
    apply(postgresql, [flow])
    postgresql.execute(
        """
        ALTER TABLE pgflow.steps DROP COLUMN required_input_pattern,
          DROP COLUMN forbidden_input_pattern, DROP COLUMN when_unmet, DROP COLUMN when_exhausted;
        DROP FUNCTION pgflow.add_step;
        CREATE FUNCTION pgflow.add_step(flow_slug text, step_slug text, deps_slugs text[] DEFAULT '{}',
          max_attempts int DEFAULT NULL, base_delay int DEFAULT NULL, timeout int DEFAULT NULL,
          start_delay int DEFAULT NULL, step_type text DEFAULT 'single')
        RETURNS void LANGUAGE sql AS 'SELECT NULL';
        """
    )
    catalog = read_catalog(postgresql)
    assert Feature.STEP_CONDITIONS not in catalog.features
    assert Feature.MAP_STEPS in catalog.features
    assert catalog.flows["old"].shape == shape_of(flow)


def test_missing_schema_is_a_clear_error(postgresql: psycopg.Connection) -> None:
    postgresql.execute("DROP SCHEMA pgflow CASCADE")
    with pytest.raises(PgflowSchemaMissingError) as caught:
        read_catalog(postgresql)
    assert str(caught.value) == (
        "the database has no pgflow definition schema (missing pgflow.flows, pgflow.steps, "
        "pgflow.deps): install pgflow in this database before managing flows"
    )


def test_corrupt_deps_count_is_reported(postgresql: psycopg.Connection) -> None:
    apply(postgresql, [Flow("f").step("a").step("b").step("c", depends_on=["a"])])
    # pgflow's add_step on an existing step keeps the row but inserts the new deps rows.
    postgresql.execute("SELECT pgflow.add_step('f', 'c', ARRAY['b'])")
    stored = read_catalog(postgresql).flows["f"]
    assert stored.problems == ("step 'c' has deps_count 1 but 2 dependency rows",)


@pytest.mark.parametrize(
    ("features", "data_loss_argument", "expected"),
    [
        ({Feature.START_DELAY, Feature.MAP_STEPS}, False, "0.7.0"),
        ({Feature.START_DELAY, Feature.MAP_STEPS, Feature.COMPILE_PATH}, False, "0.10.0"),
        ({Feature.MAP_STEPS, Feature.COMPILE_PATH}, True, "0.11.0"),
        ({Feature.MAP_STEPS, Feature.COMPILE_PATH, Feature.STEP_CONDITIONS}, True, "0.14.0"),
        (
            {Feature.COMPILE_PATH, Feature.STEP_CONDITIONS, Feature.WORKER_START_MODE},
            True,
            "0.15.0",
        ),
        (
            {Feature.COMPILE_PATH, Feature.STEP_CONDITIONS, Feature.WORKER_START_MODE},
            False,
            "0.16.0",
        ),
        (
            {
                Feature.COMPILE_PATH,
                Feature.STEP_CONDITIONS,
                Feature.WORKER_START_MODE,
                Feature.QUEUE_MODE,
            },
            False,
            "0.17.0",
        ),
    ],
)
def test_release_detection(features: set[Feature], data_loss_argument: bool, expected: str) -> None:
    assert str(detect_release(frozenset(features), data_loss_argument)) == expected


def test_the_release_under_test_is_detected(postgresql: psycopg.Connection) -> None:
    """ALEMBIC_PGFLOW_TEST_EXPECT_RELEASE (set when testing a known release) must match."""
    expected = os.environ.get("ALEMBIC_PGFLOW_TEST_EXPECT_RELEASE")
    if expected is None:
        pytest.skip("ALEMBIC_PGFLOW_TEST_EXPECT_RELEASE is not set")
    assert str(read_catalog(postgresql).release) == expected


def fail_while_reading(connection: psycopg.Connection, begun: list[PendingCatalog]) -> None:
    with begin_catalog_read(connection) as pending:
        begun.append(pending)
        raise RuntimeError("a flow module failed")


def test_a_catalog_read_begun_before_the_code_is_known(postgresql: psycopg.Connection) -> None:
    """Autogenerate begins reading while the flow modules import: the reader gives the same
    catalog as a plain read, and a failure meanwhile leaves the connection idle and usable."""
    flows = [ten_step_flow("orders"), Flow("refunds").step("a")]
    apply(postgresql, flows)
    with begin_catalog_read(postgresql) as pending:
        catalog = pending.result({flow.slug: flow for flow in flows})
    assert catalog == read_catalog(postgresql)

    begun: list[PendingCatalog] = []
    with pytest.raises(RuntimeError, match="a flow module failed"):
        fail_while_reading(postgresql, begun)
    assert not begun[0].is_alive()  # the block waited for the server's answers
    assert postgresql.execute("SELECT count(*) FROM pgflow.flows").fetchone() == (2,)


def test_a_catalog_read_reports_a_missing_schema_to_the_caller(
    postgresql: psycopg.Connection,
) -> None:
    postgresql.execute("DROP SCHEMA pgflow CASCADE")
    with (
        begin_catalog_read(postgresql) as pending,
        pytest.raises(PgflowSchemaMissingError, match="install pgflow in this database"),
    ):
        pending.result({})
