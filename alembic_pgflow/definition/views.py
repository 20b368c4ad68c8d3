"""A flow shown to people: text, JSON, and its DAG as Mermaid or Graphviz dot.

Every view is drawn from plain data (:func:`flow_data` for a flow in code, :func:`stored_data`
for a flow only the database has), so both look the same.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from alembic_pgflow.definition.dsl import Flow, StepDefinition
from alembic_pgflow.definition.shape import FlowShape, shape_of

# Not a valid slug (slugs never contain "__"), so it cannot clash with a step.
INPUT_NODE = "__input"


def flow_data(flow: Flow, location: str | None = None) -> dict[str, Any]:
    """The flow as plain data: effective flow options, steps, checksums."""
    steps = [_step_data(index, step) for index, step in enumerate(flow.steps)]
    return _data(shape_of(flow), location, steps)


def _data(shape: FlowShape, location: str | None, steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "slug": shape.slug,
        "location": location,
        "options": {
            "max_attempts": shape.options.max_attempts,
            "base_delay": shape.options.base_delay,
            "timeout": shape.options.timeout,
        },
        "structure_checksum": shape.structure_checksum,
        "options_checksum": shape.options_checksum,
        "steps": steps,
    }


def _step_data(index: int, step: StepDefinition) -> dict[str, Any]:
    required, forbidden = step.required_input_pattern, step.forbidden_input_pattern
    return {
        "index": index,
        "slug": step.slug,
        "step_type": step.step_type,
        "depends_on": list(step.depends_on),
        "options": {
            name: value for name, value in asdict(step.options).items() if value is not None
        },
        "required_input_pattern": None if required is None else required.value,
        "forbidden_input_pattern": None if forbidden is None else forbidden.value,
        "when_unmet": step.when_unmet,
        "when_exhausted": step.when_exhausted,
    }


def stored_data(shape: FlowShape, location: str | None = "in the database") -> dict[str, Any]:
    """A flow as the database holds it, as the same plain data as :func:`flow_data`
    (dependencies in name order: the database keeps no order)."""
    step_options = {step.slug: step for step in shape.options.steps}
    steps = []
    for index, step in enumerate(shape.structure.steps):
        values = step_options[step.slug]
        required, forbidden = step.required_input_pattern, step.forbidden_input_pattern
        steps.append(
            {
                "index": index,
                "slug": step.slug,
                "step_type": step.step_type,
                "depends_on": sorted(step.dependencies),
                "options": {
                    name: value
                    for name, value in asdict(values).items()
                    if name != "slug" and value is not None
                },
                "required_input_pattern": None if required is None else json.loads(required),
                "forbidden_input_pattern": None if forbidden is None else json.loads(forbidden),
                "when_unmet": step.when_unmet,
                "when_exhausted": step.when_exhausted,
            }
        )
    return _data(shape, location, steps)


def flow_json(data: dict[str, Any]) -> str:
    """Pretty JSON of a flow's data."""
    return json.dumps(data, indent=2, ensure_ascii=False)


def flow_text(data: dict[str, Any]) -> str:
    """A human summary, one line per step."""
    location = data["location"]
    options = " ".join(f"{name}={value}" for name, value in data["options"].items())
    lines = [
        f"flow {data['slug']}" + (f"  ({location})" if location else ""),
        f"  options: {options}",
        f"  structure checksum: {data['structure_checksum']}",
        f"  options checksum:   {data['options_checksum']}",
        "  steps:",
    ]
    width = max((len(step["slug"]) for step in data["steps"]), default=0)
    for step in data["steps"]:
        parts = [f"    {step['index']:>2} {step['slug']:<{width}}  {step['step_type']:<6}"]
        if step["step_type"] == "map":
            parts.append(
                f"over {step['depends_on'][0] if step['depends_on'] else 'the flow input'}"
            )
        elif step["depends_on"]:
            parts.append("after " + ", ".join(step["depends_on"]))
        parts.extend(f"{name}={value}" for name, value in step["options"].items())
        for name in ("required_input_pattern", "forbidden_input_pattern"):
            if step[name] is not None:
                parts.append(f"{name}={json.dumps(step[name], ensure_ascii=False)}")
        parts.extend(
            f"{name}={step[name]}" for name in ("when_unmet", "when_exhausted") if step[name]
        )
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def flow_mermaid(data: dict[str, Any]) -> str:
    """A Mermaid flowchart; map steps are drawn as subroutine boxes."""
    lines = ["flowchart TD", f'  {INPUT_NODE}(["input"])']
    for step in data["steps"]:
        slug = step["slug"]
        lines.append(
            f'  {slug}[["{slug} (map)"]]' if step["step_type"] == "map" else f'  {slug}["{slug}"]'
        )
    lines.extend(f"  {source} --> {target}" for source, target in _edges(data))
    return "\n".join(lines)


def flow_dot(data: dict[str, Any]) -> str:
    """A Graphviz digraph; map steps are drawn as 3D boxes."""
    lines = [
        f'digraph "{data["slug"]}" {{',
        "  rankdir=LR;",
        f'  "{INPUT_NODE}" [shape=oval, label="input"];',
    ]
    for step in data["steps"]:
        slug = step["slug"]
        if step["step_type"] == "map":
            lines.append(f'  "{slug}" [shape=box3d, label="{slug} (map)"];')
        else:
            lines.append(f'  "{slug}" [shape=box];')
    lines.extend(f'  "{source}" -> "{target}";' for source, target in _edges(data))
    lines.append("}")
    return "\n".join(lines)


def _edges(data: dict[str, Any]) -> list[tuple[str, str]]:
    edges: list[tuple[str, str]] = []
    for step in data["steps"]:
        sources = step["depends_on"] or [INPUT_NODE]
        edges.extend((source, step["slug"]) for source in sources)
    return edges
