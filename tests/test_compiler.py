"""The compiler's output, byte for byte, against pgflow's own format."""

from __future__ import annotations

import pytest

from alembic_pgflow import Flow, UnsupportedFeatureError, compile_flow


def test_facts_example_reproduced_exactly() -> None:
    flow = (
        Flow("analyze_website", max_attempts=3, base_delay=5, timeout=10)
        .step("website")
        .step("sentiment", depends_on=["website"], max_attempts=5, timeout=30)
        .step("summary", depends_on=["website"])
        .step("saveToDb", depends_on=["sentiment", "summary"])
    )
    assert compile_flow(flow) == [
        "SELECT pgflow.create_flow('analyze_website', max_attempts => 3, base_delay => 5, timeout => 10);",
        "SELECT pgflow.add_step('analyze_website', 'website');",
        "SELECT pgflow.add_step('analyze_website', 'sentiment', ARRAY['website'], max_attempts => 5, timeout => 30);",
        "SELECT pgflow.add_step('analyze_website', 'summary', ARRAY['website']);",
        "SELECT pgflow.add_step('analyze_website', 'saveToDb', ARRAY['sentiment', 'summary']);",
    ]


def test_facts_map_example_reproduced_exactly() -> None:
    flow = Flow("demo_flow").step("fetch").map("double", array="fetch", base_delay=2)
    assert compile_flow(flow)[2] == (
        "SELECT pgflow.add_step('demo_flow', 'double', ARRAY['fetch'], base_delay => 2, "
        "step_type => 'map');"
    )


GOLDEN = [
    pytest.param(
        Flow("bare"),
        ["SELECT pgflow.create_flow('bare');"],
        id="flow-without-steps",
    ),
    pytest.param(
        Flow("only_timeout", timeout=3).step("a"),
        [
            "SELECT pgflow.create_flow('only_timeout', timeout => 3);",
            "SELECT pgflow.add_step('only_timeout', 'a');",
        ],
        id="one-flow-option",
    ),
    pytest.param(
        Flow("flow_base_delay", base_delay=1).step("a", base_delay=7),
        [
            "SELECT pgflow.create_flow('flow_base_delay', base_delay => 1);",
            "SELECT pgflow.add_step('flow_base_delay', 'a', base_delay => 7);",
        ],
        id="base-delay-only",
    ),
    pytest.param(
        Flow("all_step_options").step("a", max_attempts=1, base_delay=2, timeout=3, start_delay=0),
        [
            "SELECT pgflow.create_flow('all_step_options');",
            "SELECT pgflow.add_step('all_step_options', 'a', max_attempts => 1, base_delay => 2, "
            "timeout => 3, start_delay => 0);",
        ],
        id="every-step-option-in-order",
    ),
    pytest.param(
        Flow("delayed").step("a").step("b", depends_on=["a"], start_delay=3600),
        [
            "SELECT pgflow.create_flow('delayed');",
            "SELECT pgflow.add_step('delayed', 'a');",
            "SELECT pgflow.add_step('delayed', 'b', ARRAY['a'], start_delay => 3600);",
        ],
        id="start-delay",
    ),
    pytest.param(
        Flow("deps_keep_user_order").step("z").step("a").step("m", depends_on=["z", "a"]),
        [
            "SELECT pgflow.create_flow('deps_keep_user_order');",
            "SELECT pgflow.add_step('deps_keep_user_order', 'z');",
            "SELECT pgflow.add_step('deps_keep_user_order', 'a');",
            "SELECT pgflow.add_step('deps_keep_user_order', 'm', ARRAY['z', 'a']);",
        ],
        id="deps-in-user-order",
    ),
    pytest.param(
        Flow("root_map").map("each", timeout=30),
        [
            "SELECT pgflow.create_flow('root_map');",
            "SELECT pgflow.add_step('root_map', 'each', timeout => 30, step_type => 'map');",
        ],
        id="root-map-without-deps",
    ),
    pytest.param(
        Flow("map_chain")
        .step("list")
        .map("a", array="list")
        .map("b", array="a")
        .step("join", depends_on=["b"]),
        [
            "SELECT pgflow.create_flow('map_chain');",
            "SELECT pgflow.add_step('map_chain', 'list');",
            "SELECT pgflow.add_step('map_chain', 'a', ARRAY['list'], step_type => 'map');",
            "SELECT pgflow.add_step('map_chain', 'b', ARRAY['a'], step_type => 'map');",
            "SELECT pgflow.add_step('map_chain', 'join', ARRAY['b']);",
        ],
        id="map-of-map-then-join",
    ),
    pytest.param(
        Flow("conditions").step(
            "premium",
            required_input_pattern={"plan": "premium", "limits": {"seats": 10}},
            when_unmet="skip-cascade",
        ),
        [
            "SELECT pgflow.create_flow('conditions');",
            "SELECT pgflow.add_step('conditions', 'premium', "
            'required_input_pattern => \'{"plan":"premium","limits":{"seats":10}}\', '
            "when_unmet => 'skip-cascade');",
        ],
        id="required-pattern-keeps-key-order",
    ),
    pytest.param(
        Flow("every_condition")
        .step("a")
        .map(
            "b",
            array="a",
            max_attempts=2,
            start_delay=5,
            required_input_pattern={"a": [1, 2.5, True, None]},
            forbidden_input_pattern={"blocked": True},
            when_unmet="fail",
            when_exhausted="skip",
        ),
        [
            "SELECT pgflow.create_flow('every_condition');",
            "SELECT pgflow.add_step('every_condition', 'a');",
            "SELECT pgflow.add_step('every_condition', 'b', ARRAY['a'], max_attempts => 2, "
            "start_delay => 5, required_input_pattern => '{\"a\":[1,2.5,true,null]}', "
            "forbidden_input_pattern => '{\"blocked\":true}', when_unmet => 'fail', "
            "when_exhausted => 'skip', step_type => 'map');",
        ],
        id="all-arguments-in-pgflow-order-map-last",
    ),
    pytest.param(
        Flow("exhausted_only").step("a", when_exhausted="skip-cascade"),
        [
            "SELECT pgflow.create_flow('exhausted_only');",
            "SELECT pgflow.add_step('exhausted_only', 'a', when_exhausted => 'skip-cascade');",
        ],
        id="when-exhausted-alone",
    ),
    pytest.param(
        Flow("quoting").step(
            "a",
            forbidden_input_pattern={"it's": "O'Brien", "path": "C:\\temp", "q": '"x"'},
        ),
        [
            "SELECT pgflow.create_flow('quoting');",
            "SELECT pgflow.add_step('quoting', 'a', forbidden_input_pattern => "
            '\'{"it\'\'s":"O\'\'Brien","path":"C:\\\\temp","q":"\\"x\\""}\');',
        ],
        id="quotes-doubled-json-escapes-kept",
    ),
    pytest.param(
        Flow("unicode_pattern").step("a", required_input_pattern={"city": "Zürich", "e": "😀"}),
        [
            "SELECT pgflow.create_flow('unicode_pattern');",
            "SELECT pgflow.add_step('unicode_pattern', 'a', "
            'required_input_pattern => \'{"city":"Zürich","e":"😀"}\');',
        ],
        id="unicode-written-as-is-like-json-stringify",
    ),
    pytest.param(
        Flow("Mixed_Case9", max_attempts=10)
        .step("fetchData")
        .step("parse2", depends_on=["fetchData"]),
        [
            "SELECT pgflow.create_flow('Mixed_Case9', max_attempts => 10);",
            "SELECT pgflow.add_step('Mixed_Case9', 'fetchData');",
            "SELECT pgflow.add_step('Mixed_Case9', 'parse2', ARRAY['fetchData']);",
        ],
        id="mixed-case-slugs",
    ),
    pytest.param(
        Flow("empty_pattern").step("a", required_input_pattern={}),
        [
            "SELECT pgflow.create_flow('empty_pattern');",
            "SELECT pgflow.add_step('empty_pattern', 'a', required_input_pattern => '{}');",
        ],
        id="empty-pattern-is-present",
    ),
    pytest.param(
        Flow("diamond", max_attempts=2, base_delay=3, timeout=120)
        .step("start")
        .step("left", depends_on=["start"])
        .step("right", depends_on=["start"], timeout=5)
        .step("finish", depends_on=["left", "right"], max_attempts=9),
        [
            "SELECT pgflow.create_flow('diamond', max_attempts => 2, base_delay => 3, timeout => 120);",
            "SELECT pgflow.add_step('diamond', 'start');",
            "SELECT pgflow.add_step('diamond', 'left', ARRAY['start']);",
            "SELECT pgflow.add_step('diamond', 'right', ARRAY['start'], timeout => 5);",
            "SELECT pgflow.add_step('diamond', 'finish', ARRAY['left', 'right'], max_attempts => 9);",
        ],
        id="diamond",
    ),
]


@pytest.mark.parametrize(("flow", "expected"), GOLDEN)
def test_golden(flow: Flow, expected: list[str]) -> None:
    assert compile_flow(flow) == expected


def test_compile_is_deterministic_for_equal_definitions() -> None:
    def build() -> Flow:
        return (
            Flow("same")
            .step("a", required_input_pattern={"b": 1, "a": 2})
            .step("c", depends_on=["a"])
        )

    assert compile_flow(build()) == compile_flow(build())
    assert build() == build()


@pytest.mark.parametrize("target", ["0.7", "0.13", "0.13.9"])
def test_conditions_are_refused_before_0_14(target: str) -> None:
    flow = Flow("cond").step("a").step("b", depends_on=["a"], when_exhausted="skip")
    with pytest.raises(UnsupportedFeatureError) as caught:
        compile_flow(flow, target=target)
    assert str(caught.value) == (
        "flow 'cond', step 'b', field 'when_exhausted': uses step conditions (input patterns, "
        "when_unmet, when_exhausted), which pgflow 0.14.0 introduced; "
        f"pgflow {target if target.count('.') == 2 else target + '.0'} does not have it"
    )


def test_same_sql_for_every_release_that_has_the_features() -> None:
    flow = Flow("plain").step("a").map("b", array="a", start_delay=1)
    outputs = {
        tuple(compile_flow(flow, target=t)) for t in ["0.7", "0.9.1", "0.14", "0.16", "0.17"]
    }
    assert len(outputs) == 1


def test_conditions_accepted_from_0_14() -> None:
    flow = Flow("cond").step("a", required_input_pattern={"x": 1})
    assert compile_flow(flow, target="0.14.0") == compile_flow(flow, target="0.17")


@pytest.mark.parametrize("target", ["0.6", "0.5.3", "0.18", "1.0", "latest", "0.14.x"])
def test_unsupported_targets_are_refused(target: str) -> None:
    with pytest.raises(ValueError, match=r"pgflow|release number"):
        compile_flow(Flow("f").step("a"), target=target)
