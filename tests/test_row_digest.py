"""The rows' digest: a stored flow whose rows are exactly its code's is taken from the code
without being read; any other flow, edited by hand or corrupt, is read and compared in full."""

from __future__ import annotations

import json
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy

from alembic_pgflow import Flow, read_catalog, shape_of
from alembic_pgflow.comparison.status import FlowStatus, compare
from alembic_pgflow.database import catalog as catalog_module
from alembic_pgflow.definition.discovery import DiscoveredFlow
from alembic_pgflow.definition.row_digest import jsonb_text, record_field, rows_text
from tests.alembic_project import AlembicProject
from tests.test_database_reader import apply, ten_step_flow

OPTIONS = (
    Flow("options", max_attempts=7, base_delay=2, timeout=30)
    .step("a", max_attempts=2, base_delay=3, timeout=9, start_delay=4)
    .map("m", array="a", timeout=5)
    .step("Z", depends_on=["m", "a"])
    .step("joined", depends_on=["Z", "a", "m"], max_attempts=1)
)
FLOWS = [
    ten_step_flow("plain"),
    OPTIONS,
    Flow("no_steps"),
    Flow("input_map", timeout=3).map("each"),
    Flow("Mixed_Case").step("Zeta").step("alpha", depends_on=["Zeta"]),
]

TRICKY: dict[str, object] = {
    "quotes": 'it\'s "quoted"',
    "backslash": "C:\\path\\",
    "unicode": "naïve ☃ 日本語 \U0001f600",
    "controls": "\x01\x08\x0c\n\r\t\x1f\x7f",
    "": "the empty key",
    "é": "a two-byte key of one character",
    "nested": [1, 2.5, {"deep": [True, False, None, "]},{"]}],
}
ROW_TEXT: dict[str, object] = {
    # What a row value's text quotes: commas, parentheses, quotes, backslashes, ASCII white
    # space; and what it does not (other white space, braces, brackets).
    "a,b": "(x)",
    "(": ")",
    "q": '"',
    "bs": "\\\\",
    "sp ace": " ",
    "\t": "\x0b\x0c\r\n",
    "nbsp": "\u00a0\u2028\u3000\x85",
    "braces": "{}[]",
    "null": None,
    "empty": "",
    "{}": {},
}
NUMBERS: dict[str, object] = {
    "one_point_zero": 1.0,
    "tenth": 0.1,
    "small": 1e-07,
    "large": 1.5e20,
    "negative_zero": -0.0,
    "negative": -2.25,
    "huge_int": 10**30,
    "int": 0,
}

PATTERN_FLOWS = [
    Flow("tricky")
    .step("a", required_input_pattern=TRICKY, when_unmet="fail")
    .step("b", depends_on=["a"], forbidden_input_pattern=NUMBERS, when_exhausted="skip")
    .step("c", required_input_pattern={"k": {}}, forbidden_input_pattern={"k": []}),
    Flow("row_text")
    .step("a", required_input_pattern=ROW_TEXT, forbidden_input_pattern={})
    .step("b", depends_on=["a"], forbidden_input_pattern={"a": {"": [None, ","]}}),
    Flow("defaults_spelt_out").step("a", when_unmet="skip", when_exhausted="fail"),
]


def code(*flows: Flow) -> dict[str, Flow]:
    return {flow.slug: flow for flow in flows}


def discovered(flow: Flow) -> dict[str, DiscoveredFlow]:
    return {flow.slug: DiscoveredFlow(flow, "tests:flow")}


def test_flows_stored_as_their_code_are_not_read(postgresql: psycopg.Connection) -> None:
    apply(postgresql, FLOWS)
    catalog = read_catalog(postgresql, code(*FLOWS))
    for flow in FLOWS:
        assert catalog.flows[flow.slug].shape is shape_of(flow), flow.slug
    assert catalog == read_catalog(postgresql)  # the same catalog as a full read
    assert list(catalog.flows) == sorted(flow.slug for flow in FLOWS)


@pytest.mark.needs_step_conditions
def test_digests_agree_on_patterns_with_tricky_strings_and_numbers(
    postgresql: psycopg.Connection,
) -> None:
    flows = PATTERN_FLOWS
    apply(postgresql, flows)
    catalog = read_catalog(postgresql, code(*flows))
    for flow in flows:
        assert catalog.flows[flow.slug].shape is shape_of(flow), flow.slug
    assert catalog == read_catalog(postgresql)


@pytest.mark.needs_step_conditions
def test_jsonb_text_is_what_postgresql_writes(postgresql: psycopg.Connection) -> None:
    values: list[dict[str, object]] = [
        TRICKY,
        NUMBERS,
        {"a": {"bb": [], "c": {}}},
        {"x": "\u2028\u00a0"},
    ]
    for value in values:
        flow = Flow("p").step("a", required_input_pattern=value)
        pattern = flow.steps[0].required_input_pattern
        assert pattern is not None
        row = postgresql.execute("SELECT %s::jsonb::text", (pattern.compact_json,)).fetchone()
        assert row is not None
        assert jsonb_text(json.loads(pattern.compact_json, parse_float=Decimal)) == row[0]


def test_record_field_is_what_postgresql_writes(postgresql: psycopg.Connection) -> None:
    texts = [
        "",
        "plain",
        "a,b",
        "(x)",
        '"',
        "\\",
        "a b",
        "\t\n\x0b\x0c\r",
        "\u00a0é\u2028",
        "{}",
        "NULL",
    ]
    for text in texts:
        row = postgresql.execute("SELECT row(%s::text, 1)::text", (text,)).fetchone()
        assert row is not None
        assert f"({record_field(text)},1)" == row[0], repr(text)


def test_the_server_writes_the_code_text(postgresql: psycopg.Connection) -> None:
    """The server's text of each flow's rows is the code's, byte for byte."""
    columns = {
        f"{table}.{column}"
        for table, column in postgresql.execute(
            "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'pgflow' "
            "AND a.attnum > 0 AND NOT a.attisdropped"
        )
    }
    flows = FLOWS + (PATTERN_FLOWS if "steps.required_input_pattern" in columns else [])
    apply(postgresql, flows)
    sql = catalog_module._digests_sql(columns)
    texts_sql = sql.replace("encode(sha256(convert_to(", "((").replace(
        ", 'UTF8')),\n  'hex')", "))"
    )
    assert "sha256" not in texts_sql
    stored: dict[str, str] = dict(postgresql.execute(texts_sql).fetchall())
    assert stored == {flow.slug: rows_text(flow) for flow in flows}


def count_statements(database_url: str, flows: dict[str, Flow]) -> int:
    engine = sqlalchemy.create_engine(database_url)
    statements: list[str] = []
    sqlalchemy.event.listen(
        engine, "before_cursor_execute", lambda *args: statements.append(args[2])
    )
    with engine.connect() as connection:
        read_catalog(connection, flows)
    engine.dispose()
    return len(statements)


def test_only_differing_flows_take_a_fourth_query(
    postgresql: psycopg.Connection, database_url: str
) -> None:
    apply(postgresql, FLOWS)
    assert count_statements(database_url, code(*FLOWS)) == 3
    postgresql.execute("UPDATE pgflow.flows SET opt_timeout = 99 WHERE flow_slug = 'options'")
    postgresql.commit()
    assert count_statements(database_url, code(*FLOWS)) == 4


EDITS = [
    (
        "a step option",
        "UPDATE pgflow.steps SET opt_timeout = 99 WHERE flow_slug = 'options' AND step_slug = 'a'",
        FlowStatus.OPTIONS_CHANGED,
    ),
    (
        "a step option to NULL",
        "UPDATE pgflow.steps SET opt_start_delay = NULL WHERE flow_slug = 'options' "
        "AND step_slug = 'a'",
        FlowStatus.OPTIONS_CHANGED,
    ),
    (
        "a flow option",
        "UPDATE pgflow.flows SET opt_base_delay = 5 WHERE flow_slug = 'options'",
        FlowStatus.OPTIONS_CHANGED,
    ),
    (
        "deps_count",
        "UPDATE pgflow.steps SET deps_count = 1 WHERE flow_slug = 'options' "
        "AND step_slug = 'joined'",
        FlowStatus.CORRUPT,
    ),
    (
        "a dependency row removed",
        "DELETE FROM pgflow.deps WHERE flow_slug = 'options' AND step_slug = 'Z' "
        "AND dep_slug = 'a'",
        FlowStatus.CORRUPT,
    ),
    (
        "a dependency replaced",
        "UPDATE pgflow.deps SET dep_slug = 'joined' WHERE flow_slug = 'options' "
        "AND step_slug = 'Z' AND dep_slug = 'a'",
        FlowStatus.STRUCTURE_CHANGED,
    ),
    (
        "a step's type",
        "UPDATE pgflow.steps SET step_type = 'single' WHERE flow_slug = 'options' "
        "AND step_slug = 'm'",
        FlowStatus.STRUCTURE_CHANGED,
    ),
    (
        "two steps' order",
        "UPDATE pgflow.steps SET step_index = 100 WHERE flow_slug = 'options' AND step_slug = 'Z';"
        "UPDATE pgflow.steps SET step_index = 2 WHERE flow_slug = 'options' "
        "AND step_slug = 'joined';"
        "UPDATE pgflow.steps SET step_index = 3 WHERE flow_slug = 'options' AND step_slug = 'Z'",
        FlowStatus.STRUCTURE_CHANGED,
    ),
    (
        "a gap in step_index",
        "UPDATE pgflow.steps SET step_index = 7 WHERE flow_slug = 'options' "
        "AND step_slug = 'joined'",
        FlowStatus.CORRUPT,
    ),
]


@pytest.mark.parametrize(("what", "sql", "status"), EDITS, ids=[edit[0] for edit in EDITS])
def test_rows_edited_by_hand_are_read_and_compared(
    postgresql: psycopg.Connection, what: str, sql: str, status: FlowStatus
) -> None:
    apply(postgresql, [OPTIONS])
    with postgresql.cursor() as cursor:
        for statement in sql.split(";"):
            cursor.execute(statement)
    postgresql.commit()
    catalog = read_catalog(postgresql, code(OPTIONS))
    assert catalog.flows["options"].shape is not shape_of(OPTIONS), what  # read in full
    assert catalog == read_catalog(postgresql)
    (comparison,) = compare(discovered(OPTIONS), catalog)
    assert comparison.status is status


@pytest.mark.needs_step_conditions
@pytest.mark.parametrize(
    ("stored", "status"),
    [
        ('{"kind": "other", "n": 1.0}', FlowStatus.STRUCTURE_CHANGED),
        ('{"n": 1.0}', FlowStatus.STRUCTURE_CHANGED),  # a key removed
        ('{"n": 1.00, "kind": "x"}', FlowStatus.IN_SYNC),  # equal, written otherwise
        ('{"kind": "x", "n": 1}', FlowStatus.IN_SYNC),
    ],
)
def test_a_pattern_edited_by_hand_is_compared_by_value(
    postgresql: psycopg.Connection, stored: str, status: FlowStatus
) -> None:
    flow = Flow("conditions").step("a", required_input_pattern={"kind": "x", "n": 1.0})
    apply(postgresql, [flow])
    postgresql.execute(
        "UPDATE pgflow.steps SET required_input_pattern = %s::jsonb WHERE flow_slug = 'conditions'",
        (stored,),
    )
    postgresql.commit()
    catalog = read_catalog(postgresql, code(flow))
    assert catalog.flows["conditions"].shape is not shape_of(flow)  # read in full
    (comparison,) = compare(discovered(flow), catalog)
    assert comparison.status is status


def test_flows_only_in_code_or_database_are_unaffected(postgresql: psycopg.Connection) -> None:
    stored_only = ten_step_flow("stored_only")
    apply(postgresql, [stored_only, OPTIONS])
    code_only = Flow("code_only").step("a")
    catalog = read_catalog(postgresql, code(OPTIONS, code_only))
    assert set(catalog.flows) == {"options", "stored_only"}
    assert catalog.flows["options"].shape is shape_of(OPTIONS)
    assert catalog.flows["stored_only"].shape == shape_of(stored_only)
    assert catalog.flows["stored_only"].shape is not shape_of(stored_only)


@pytest.mark.alembic_cli
def test_check_fails_after_a_hand_edit(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows(
        "from alembic_pgflow import Flow\n"
        "f = Flow('tuned', timeout=30).step('a', timeout=10).step('b', depends_on=['a'])\n"
    )
    alembic_project.autogenerate()
    alembic_project.alembic("upgrade", "head")
    assert alembic_project.alembic("check").returncode == 0
    postgresql.execute(
        "UPDATE pgflow.steps SET opt_timeout = 11 WHERE flow_slug = 'tuned' AND step_slug = 'a'"
    )
    postgresql.commit()
    failed = alembic_project.alembic("check", check=False)
    assert failed.returncode != 0
    assert "New upgrade operations detected" in failed.stdout
    assert "\"step 'a': timeout 11 -> 10\"" in failed.stdout
