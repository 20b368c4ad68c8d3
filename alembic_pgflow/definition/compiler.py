"""Compile a :class:`~alembic_pgflow.definition.dsl.Flow` to the SQL statements pgflow expects.

The output is byte-identical to what pgflow's own TypeScript compiler emitted (0.14 format):
``create_flow`` first, then one ``add_step`` per step in definition order, dependencies as the
third positional argument, options as named arguments in a fixed order and only when set.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict

from alembic_pgflow.definition.dsl import Flow, StepDefinition
from alembic_pgflow.definition.releases import (
    DEFAULT_TARGET,
    Feature,
    PgflowRelease,
    supported_release,
)
from alembic_pgflow.definition.shape import DEFAULT_WHEN_EXHAUSTED, DEFAULT_WHEN_UNMET, FlowShape
from alembic_pgflow.definition.sql_text import quote_text, sql_value, text_array
from alembic_pgflow.errors import UnsupportedFeatureError

STEP_CONDITION_FIELDS = (
    "required_input_pattern",
    "forbidden_input_pattern",
    "when_unmet",
    "when_exhausted",
)


def compile_flow(flow: Flow, target: str | PgflowRelease = DEFAULT_TARGET) -> list[str]:
    """Return the statements that create ``flow``, one per element, for a pgflow release.

    Raises :class:`~alembic_pgflow.errors.UnsupportedFeatureError` when the flow uses a
    feature the target release does not have, and ``ValueError`` for an unsupported target.
    """
    release = supported_release(target)
    check_features(flow, release.features, f"pgflow {release}")
    return [create_flow_sql(flow), *(add_step_sql(flow.slug, step) for step in flow.steps)]


def check_features(flow: Flow, available: frozenset[Feature], target_name: str) -> None:
    """Raise if ``flow`` needs a feature that is not in ``available``.

    ``target_name`` says what lacks it in the message, for example ``pgflow 0.13.0`` or
    ``the connected database's pgflow schema``.
    """
    if available.issuperset(_STEP_FEATURES):
        return
    for step in flow.steps:
        if (  # the common case, without a generator per step
            step.step_type == "single"
            and step.options.start_delay is None
            and step.required_input_pattern is None
            and step.forbidden_input_pattern is None
            and step.when_unmet is None
            and step.when_exhausted is None
        ):
            continue
        for feature, field in _features_used(step):
            if feature not in available:
                raise UnsupportedFeatureError(
                    f"uses {feature.description}, which pgflow {feature.since} introduced; "
                    f"{target_name} does not have it",
                    flow=flow.slug,
                    step=step.slug,
                    field=field,
                )


_STEP_FEATURES = frozenset({Feature.START_DELAY, Feature.MAP_STEPS, Feature.STEP_CONDITIONS})
"""Every feature :func:`_features_used` looks for."""


def _features_used(step: StepDefinition) -> Iterator[tuple[Feature, str]]:
    if step.options.start_delay is not None:
        yield Feature.START_DELAY, "start_delay"
    if step.step_type == "map":
        yield Feature.MAP_STEPS, "step_type"
    for field in STEP_CONDITION_FIELDS:
        if getattr(step, field) is not None:
            yield Feature.STEP_CONDITIONS, field


def create_flow_sql(flow: Flow) -> str:
    """``SELECT pgflow.create_flow(...)`` with the options that were set."""
    arguments = [quote_text(flow.slug), *_named(asdict(flow.options))]
    return f"SELECT pgflow.create_flow({', '.join(arguments)});"


def add_step_sql(flow_slug: str, step: StepDefinition) -> str:
    """``SELECT pgflow.add_step(...)`` for one step."""
    arguments = [quote_text(flow_slug), quote_text(step.slug)]
    if step.depends_on:
        arguments.append(text_array(step.depends_on))
    arguments.extend(_named(asdict(step.options)))
    patterns = {
        "required_input_pattern": step.required_input_pattern,
        "forbidden_input_pattern": step.forbidden_input_pattern,
    }
    arguments.extend(
        _named({name: None if p is None else p.compact_json for name, p in patterns.items()})
    )
    arguments.extend(_named({"when_unmet": step.when_unmet, "when_exhausted": step.when_exhausted}))
    if step.step_type == "map":
        arguments.append(f"step_type => {quote_text('map')}")
    return f"SELECT pgflow.add_step({', '.join(arguments)});"


def _named(values: Mapping[str, int | str | None]) -> list[str]:
    return [f"{name} => {sql_value(value)}" for name, value in values.items() if value is not None]


def shape_statements(shape: FlowShape) -> list[str]:
    """The statements that recreate a flow as the database held it (a retired flow's
    restore): its stored options as they are, dependencies in name order, conditions only
    where they differ from pgflow's defaults."""
    options = shape.options
    flow_options = {
        "max_attempts": options.max_attempts,
        "base_delay": options.base_delay,
        "timeout": options.timeout,
    }
    statements = [
        f"SELECT pgflow.create_flow({', '.join([quote_text(shape.slug), *_named(flow_options)])});"
    ]
    step_options = {step.slug: step for step in options.steps}
    for step in shape.structure.steps:
        arguments = [quote_text(shape.slug), quote_text(step.slug)]
        if step.dependencies:
            arguments.append(text_array(sorted(step.dependencies)))
        values = asdict(step_options[step.slug])
        del values["slug"]
        arguments.extend(_named(values))
        arguments.extend(
            _named(
                {
                    "required_input_pattern": step.required_input_pattern,
                    "forbidden_input_pattern": step.forbidden_input_pattern,
                    "when_unmet": None
                    if step.when_unmet == DEFAULT_WHEN_UNMET
                    else step.when_unmet,
                    "when_exhausted": (
                        None
                        if step.when_exhausted == DEFAULT_WHEN_EXHAUSTED
                        else step.when_exhausted
                    ),
                }
            )
        )
        if step.step_type == "map":
            arguments.append(f"step_type => {quote_text('map')}")
        statements.append(f"SELECT pgflow.add_step({', '.join(arguments)});")
    return statements
