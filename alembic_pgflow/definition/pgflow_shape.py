"""A flow as pgflow's own compile path sees it: the ``shape`` of ``ensure_flow_compiled``.

pgflow's workers (0.10+) pass this JSON to ``pgflow.ensure_flow_compiled(flow_slug, shape)``,
which compares it with ``pgflow._get_flow_shape(flow_slug)``: per step, in order, the slug, the
step type, the set of dependencies and (0.14+) ``whenUnmet``, ``whenExhausted`` and both input
patterns as ``{"defined": ..., "value": ...}``. Options travel along for creation and are
never compared. alembic-pgflow uses it to check its own verdicts against pgflow's.
"""

from __future__ import annotations

from typing import Any

from alembic_pgflow.definition.dsl import Flow, StepDefinition
from alembic_pgflow.definition.input_patterns import InputPattern
from alembic_pgflow.definition.shape import DEFAULT_WHEN_EXHAUSTED, DEFAULT_WHEN_UNMET

_FLOW_OPTIONS = {"max_attempts": "maxAttempts", "base_delay": "baseDelay", "timeout": "timeout"}
_STEP_OPTIONS = {**_FLOW_OPTIONS, "start_delay": "startDelay"}


def pgflow_shape(flow: Flow) -> dict[str, Any]:
    """The shape pgflow's TypeScript DSL extracts from the same flow (0.14+ form; older
    releases ignore the keys they do not compare)."""
    shape: dict[str, Any] = {"steps": [_step(step) for step in flow.steps]}
    options = _options(flow.options, _FLOW_OPTIONS)
    if options:
        shape["options"] = options
    return shape


def _step(step: StepDefinition) -> dict[str, Any]:
    data: dict[str, Any] = {
        "slug": step.slug,
        "stepType": step.step_type,
        "dependencies": sorted(step.depends_on),
        "whenUnmet": step.when_unmet or DEFAULT_WHEN_UNMET,
        "whenExhausted": step.when_exhausted or DEFAULT_WHEN_EXHAUSTED,
        "requiredInputPattern": _pattern(step.required_input_pattern),
        "forbiddenInputPattern": _pattern(step.forbidden_input_pattern),
    }
    options = _options(step.options, _STEP_OPTIONS)
    if options:
        data["options"] = options
    return data


def _pattern(pattern: InputPattern | None) -> dict[str, Any]:
    return {"defined": False} if pattern is None else {"defined": True, "value": pattern.value}


def _options(options: object, names: dict[str, str]) -> dict[str, int]:
    return {
        key: value
        for name, key in names.items()
        if (value := getattr(options, name, None)) is not None
    }
