"""Every validation rule of the DSL, with the message a user sees."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest

from alembic_pgflow import Flow, FlowDefinitionError


def message_of(build: Any) -> str:
    with pytest.raises(FlowDefinitionError) as caught:
        build()
    assert isinstance(caught.value, ValueError)
    return str(caught.value)


BASE = Flow("orders").step("fetch").step("parse", depends_on=["fetch"])
# The type checker already refuses most bad input; these reach the runtime checks.
UNTYPED_BASE = cast(Any, BASE)
UntypedFlow = cast(Any, Flow)


@pytest.mark.parametrize(
    ("slug", "problem"),
    [
        ("", "must not be empty"),
        ("9lives", "must start with a letter"),
        ("_private", "must start with a letter"),
        ("has-dash", "must start with a letter and contain only ASCII letters"),
        ("quote'injection", "must start with a letter and contain only ASCII letters"),
        ("semi;colon", "must start with a letter and contain only ASCII letters"),
        ("dash--comment", "must start with a letter and contain only ASCII letters"),
        ("space here", "must start with a letter and contain only ASCII letters"),
        ("zürich", "must start with a letter and contain only ASCII letters"),
        ("trailing_", "must not end with '_'"),
        ("double__underscore", "must not contain '__'"),
        ("run", "is reserved by pgflow"),
        ("RUN", "is reserved by pgflow"),
        ("a" * 48, "must be at most 47 characters, got 48"),
    ],
)
def test_flow_slug_rules(slug: str, problem: str) -> None:
    message = message_of(lambda: Flow(slug))
    assert message.startswith(f"flow {slug!r}, field 'slug': ")
    assert problem in message


def test_flow_slug_of_47_characters_is_accepted() -> None:
    assert Flow("a" * 47).slug == "a" * 47


def test_flow_slug_must_be_a_string() -> None:
    assert message_of(lambda: Flow(42)) == "flow '42', field 'slug': must be a string, got int"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("slug", "problem"),
    [
        ("1st", "must start with a letter"),
        ("bad slug", "must start with a letter and contain only ASCII letters"),
        ("x_", "must not end with '_'"),
        ("a__b", "must not contain '__'"),
        ("run", "is reserved by pgflow"),
        ("s" * 129, "must be at most 128 characters, got 129"),
    ],
)
def test_step_slug_rules(slug: str, problem: str) -> None:
    message = message_of(lambda: BASE.step(slug))
    assert message.startswith(f"flow 'orders', step {slug!r}, field 'slug': ")
    assert problem in message


def test_step_slug_of_128_characters_is_accepted() -> None:
    assert BASE.step("s" * 128).steps[-1].slug == "s" * 128


def test_duplicate_step() -> None:
    assert message_of(lambda: BASE.step("fetch")) == (
        "flow 'orders', step 'fetch', field 'slug': duplicate step: it is already defined"
    )


def test_duplicate_step_ignoring_case() -> None:
    assert message_of(lambda: BASE.step("Fetch")) == (
        "flow 'orders', step 'Fetch', field 'slug': duplicate step: it is already defined as "
        "'fetch' (slugs are compared ignoring case)"
    )


def test_unknown_dependency() -> None:
    assert message_of(lambda: BASE.step("save", depends_on=["parse", "store"])) == (
        "flow 'orders', step 'save', field 'depends_on': unknown dependency 'store': a step can "
        "only depend on steps defined before it; defined so far: fetch, parse"
    )


def test_unknown_dependency_suggests_other_case() -> None:
    message = message_of(lambda: BASE.step("save", depends_on=["Parse"]))
    assert message.endswith("did you mean 'parse'?")


def test_dependency_on_a_later_step_is_unknown() -> None:
    # Definition order is a topological order: a cycle cannot be written.
    message = message_of(lambda: Flow("cyc").step("a", depends_on=["b"]).step("b"))
    assert message == (
        "flow 'cyc', step 'a', field 'depends_on': unknown dependency 'b': a step can only "
        "depend on steps defined before it (the flow has no steps yet)"
    )


def test_self_dependency() -> None:
    assert message_of(lambda: BASE.step("loop", depends_on=["loop"])) == (
        "flow 'orders', step 'loop', field 'depends_on': a step cannot depend on itself"
    )


def test_duplicate_dependency() -> None:
    assert message_of(lambda: BASE.step("save", depends_on=["fetch", "fetch"])) == (
        "flow 'orders', step 'save', field 'depends_on': duplicate dependency 'fetch'"
    )


def test_dependencies_given_as_a_string() -> None:
    assert message_of(lambda: BASE.step("save", depends_on="fetch")) == (
        "flow 'orders', step 'save', field 'depends_on': must be a list of step slugs, got 'fetch'"
    )


def test_map_with_depends_on() -> None:
    message = message_of(lambda: BASE.map("each", depends_on=["fetch", "parse"]))  # type: ignore[call-arg]
    assert message.startswith("flow 'orders', step 'each', field 'depends_on': a map step has at")
    assert "at most one dependency" in message


def test_map_with_a_list_as_array() -> None:
    message = message_of(lambda: BASE.map("each", array=["fetch", "parse"]))  # type: ignore[arg-type]
    assert message == (
        "flow 'orders', step 'each', field 'array': must be one step slug (a map step has at "
        "most one dependency), got ['fetch', 'parse']"
    )


def test_map_over_unknown_step() -> None:
    message = message_of(lambda: BASE.map("each", array="nothing"))
    assert message.startswith("flow 'orders', step 'each', field 'array': unknown dependency")


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("max_attempts", 0, "must be at least 1, got 0"),
        ("base_delay", 0, "must be at least 1, got 0"),
        ("timeout", 2, "must be at least 3, got 2"),
        ("start_delay", -1, "must be at least 0, got -1"),
        ("max_attempts", True, "must be an integer, got True"),
        ("timeout", 30.0, "must be an integer, got 30.0"),
        ("base_delay", "5", "must be an integer, got '5'"),
        ("timeout", 2**31, "must be at most 2147483647 (a PostgreSQL integer), got 2147483648"),
    ],
)
def test_step_option_ranges(field: str, value: object, problem: str) -> None:
    message = message_of(lambda: UNTYPED_BASE.step("save", **{field: value}))
    assert message == f"flow 'orders', step 'save', field {field!r}: {problem}"


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("max_attempts", 0, "must be at least 1, got 0"),
        ("base_delay", 0, "must be at least 1, got 0"),
        ("timeout", 1, "must be at least 3, got 1"),
        ("timeout", False, "must be an integer, got False"),
    ],
)
def test_flow_option_ranges(field: str, value: object, problem: str) -> None:
    message = message_of(lambda: UntypedFlow("orders", **{field: value}))
    assert message == f"flow 'orders', field {field!r}: {problem}"


def test_option_minimums_are_accepted() -> None:
    flow = Flow("edge", max_attempts=1, base_delay=1, timeout=3).step(
        "a", max_attempts=1, base_delay=1, timeout=3, start_delay=0
    )
    assert flow.steps[0].options.start_delay == 0


def test_start_delay_is_a_step_option_only() -> None:
    message = message_of(lambda: UntypedFlow("orders", start_delay=5))
    assert message == (
        "flow 'orders', field 'start_delay': unknown keyword; start_delay is a step option "
        "(give it to .step() or .map()); accepted: max_attempts, base_delay, timeout"
    )


def test_a_misspelled_keyword_gets_a_suggestion() -> None:
    message = message_of(lambda: UNTYPED_BASE.step("save", depnds_on=["a"]))
    assert message.startswith(
        "flow 'orders', step 'save', field 'depnds_on': unknown keyword; did you mean "
        "'depends_on'? accepted: depends_on, max_attempts,"
    )
    message = message_of(lambda: UNTYPED_BASE.map("each", arary="a"))
    assert "did you mean 'array'?" in message


def test_unknown_step_keyword() -> None:
    message = message_of(lambda: UNTYPED_BASE.step("save", retries=3))
    assert message.startswith("flow 'orders', step 'save', field 'retries': unknown keyword;")
    assert "start_delay" in message
    assert "when_exhausted" in message


@pytest.mark.parametrize("field", ["when_unmet", "when_exhausted"])
def test_unknown_when_value(field: str) -> None:
    assert message_of(lambda: UNTYPED_BASE.step("save", **{field: "retry"})) == (
        f"flow 'orders', step 'save', field {field!r}: must be one of 'fail', 'skip', "
        "'skip-cascade', got 'retry'"
    )


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ([1, 2], "must be a JSON object (a dict), got list"),
        ('{"a": 1}', "must be a JSON object (a dict), got str"),
        (42, "must be a JSON object (a dict), got int"),
        ({1: "x"}, "has a non-string key 1 at $"),
        ({"a": float("nan")}, "has a non-finite number nan at $.a; JSON has none"),
        ({"a": {"b": [1, float("inf")]}}, "has a non-finite number inf at $.a.b[1]; JSON has none"),
        ({"a": {1, 2}}, "has a value of type set at $.a, which is not JSON"),
        ({"a": "nul\x00byte"}, "has a NUL character at $.a, which jsonb refuses"),
        ({"a": "\ud800"}, "has text that is not valid Unicode at $.a"),
    ],
)
@pytest.mark.parametrize("field", ["required_input_pattern", "forbidden_input_pattern"])
def test_patterns_must_be_json_objects(field: str, pattern: object, problem: str) -> None:
    assert message_of(lambda: UNTYPED_BASE.step("save", **{field: pattern})) == (
        f"flow 'orders', step 'save', field {field!r}: {problem}"
    )


def test_hostile_pattern_text_is_only_ever_data() -> None:
    flow = BASE.step("save", required_input_pattern={"x'); DROP TABLE pgflow.flows; --": "'"})
    pattern = flow.steps[-1].required_input_pattern
    assert pattern is not None
    assert pattern.value == {"x'); DROP TABLE pgflow.flows; --": "'"}


def test_a_defined_flow_cannot_change_in_place() -> None:
    extended = BASE.step("save", depends_on=["parse"])
    assert [s.slug for s in BASE.steps] == ["fetch", "parse"]
    assert [s.slug for s in extended.steps] == ["fetch", "parse", "save"]
    with pytest.raises(AttributeError):
        BASE.slug = "other"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        BASE.steps[0].slug = "other"  # type: ignore[misc]


def test_handlers_by_keyword_and_decorator_are_not_part_of_the_definition() -> None:
    def fetch(payload: object) -> object:
        return payload

    with_keyword = Flow("h").step("fetch", handler=fetch).step("parse", depends_on=["fetch"])

    @with_keyword.handler("parse")
    def parse(payload: object) -> object:
        return payload

    assert with_keyword.handlers == {"fetch": fetch, "parse": parse}
    assert with_keyword == Flow("h").step("fetch").step("parse", depends_on=["fetch"])


def test_handler_for_unknown_step() -> None:
    assert message_of(lambda: BASE.handler("nope")) == (
        "flow 'orders', step 'nope': no such step to attach a handler to"
    )


def test_second_handler_for_a_step() -> None:
    flow = Flow("h").step("a", handler=print)
    message = message_of(lambda: flow.handler("a")(repr))
    assert message == "flow 'h', step 'a', field 'handler': already has a handler"


def test_handler_must_be_callable() -> None:
    message = message_of(lambda: UntypedFlow("h").step("a", handler=42))
    assert re.fullmatch(r"flow 'h', step 'a', field 'handler': must be callable, got 42", message)


def test_error_keeps_its_parts() -> None:
    with pytest.raises(FlowDefinitionError) as caught:
        BASE.step("save", timeout=1)
    assert (caught.value.flow, caught.value.step, caught.value.field) == (
        "orders",
        "save",
        "timeout",
    )
