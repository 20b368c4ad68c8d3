"""Compile, execute on PostgreSQL, read back: the database holds exactly the flow's shape."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alembic_pgflow import (
    Feature,
    Flow,
    compile_flow,
    options_checksum,
    read_catalog,
    shape_of,
    structure_checksum,
)
from tests.conftest import PgflowTemplate
from tests.strategies import flows

HAND_WRITTEN = [
    Flow("analyze_website", max_attempts=3, base_delay=5, timeout=10)
    .step("website")
    .step("sentiment", depends_on=["website"], max_attempts=5, timeout=30)
    .step("summary", depends_on=["website"])
    .step("saveToDb", depends_on=["sentiment", "summary"])
    .map("scores", array="summary", base_delay=2),
    Flow("bare"),
    Flow("root_map", timeout=3).map("each", start_delay=0),
    Flow("conditions")
    .step("a", required_input_pattern={"plan": "premium", "n": [1, 2.50, -0.0, 1e20]})
    .step(
        "b",
        depends_on=["a"],
        forbidden_input_pattern={"it's": "O'Brien", "nested": {"z": None, "a": True}},
        when_unmet="skip-cascade",
        when_exhausted="skip",
    )
    .step("c", depends_on=["b", "a"], required_input_pattern={}),
]


def apply(connection: psycopg.Connection, statements: list[str]) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


@pytest.mark.parametrize(
    "flow",
    [
        pytest.param(flow, marks=[pytest.mark.needs_step_conditions] if conditions else [])
        for flow, conditions in zip(HAND_WRITTEN, [False, False, False, True], strict=True)
    ],
    ids=lambda flow: flow.slug,
)
def test_hand_written_round_trip(postgresql: psycopg.Connection, flow: Flow) -> None:
    apply(postgresql, compile_flow(flow))
    stored = read_catalog(postgresql).flows[flow.slug]
    assert stored.shape == shape_of(flow)
    assert stored.shape.structure_checksum == structure_checksum(flow)
    assert stored.shape.options_checksum == options_checksum(flow)
    assert stored.problems == ()


def test_rows_match_the_definition(postgresql: psycopg.Connection) -> None:
    apply(postgresql, compile_flow(HAND_WRITTEN[0]))
    flows = postgresql.execute(
        "SELECT flow_slug, opt_max_attempts, opt_base_delay, opt_timeout FROM pgflow.flows"
    ).fetchall()
    assert flows == [("analyze_website", 3, 5, 10)]
    steps = postgresql.execute(
        "SELECT step_slug, step_type, step_index, deps_count, opt_max_attempts, opt_base_delay,"
        " opt_timeout FROM pgflow.steps ORDER BY step_index"
    ).fetchall()
    assert steps == [
        ("website", "single", 0, 0, None, None, None),
        ("sentiment", "single", 1, 1, 5, None, 30),
        ("summary", "single", 2, 1, None, None, None),
        ("saveToDb", "single", 3, 2, None, None, None),
        ("scores", "map", 4, 1, None, 2, None),
    ]
    deps = postgresql.execute(
        "SELECT dep_slug, step_slug FROM pgflow.deps ORDER BY step_slug, dep_slug"
    ).fetchall()
    assert deps == [
        ("sentiment", "saveToDb"),
        ("summary", "saveToDb"),
        ("summary", "scores"),
        ("website", "sentiment"),
        ("website", "summary"),
    ]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_generated_flows_round_trip(
    postgresql: psycopg.Connection, pgflow_template: PgflowTemplate, data: st.DataObject
) -> None:
    conditions = Feature.STEP_CONDITIONS in pgflow_template.features
    flow = data.draw(flows(conditions=conditions))
    with postgresql.transaction(force_rollback=True):
        apply(postgresql, compile_flow(flow))
        stored = read_catalog(postgresql).flows[flow.slug]
    assert stored.shape == shape_of(flow)
    assert stored.shape.structure_checksum == structure_checksum(flow)
    assert stored.shape.options_checksum == options_checksum(flow)
    assert stored.problems == ()
