"""A flow's DAG as SVG, laid out by Graphviz (``dot``), the standard layered graph layout.

Steps are nodes (map steps drawn as 3D boxes, conditional steps with a dashed outline),
dependencies are edges, left to right. Every node carries ``id="step-<slug>"`` so that a page
can find, colour and click it.
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from alembic_pgflow.definition.views import INPUT_NODE
from alembic_pgflow.errors import PgflowCommandError


class GraphvizMissingError(PgflowCommandError):
    """Graphviz's ``dot`` is not installed."""


def is_conditional(step: dict[str, Any]) -> bool:
    """Whether a step (as :func:`~alembic_pgflow.definition.views.flow_data` gives it) runs
    only under a condition."""
    return bool(
        step["required_input_pattern"] is not None
        or step["forbidden_input_pattern"] is not None
        or step["when_unmet"] not in (None, "skip")
    )


def dot_source(data: dict[str, Any], rankdir: str = "LR") -> str:
    """The Graphviz source of a flow's DAG."""
    lines = [
        f'digraph "{data["slug"]}" {{',
        f'  rankdir={rankdir}; nodesep=0.35; ranksep=0.6; bgcolor="transparent";',
        '  node [fontname="Helvetica", fontsize=12, style="rounded,filled", '
        'fillcolor="#ffffff", color="#4b5563", shape=box, margin="0.18,0.08"];',
        '  edge [color="#6b7280", arrowsize=0.7];',
        f'  "{INPUT_NODE}" [id="flow-input", label="input", shape=oval, style=filled, '
        'fillcolor="#eef2ff", color="#6366f1"];',
    ]
    for step in data["steps"]:
        slug = step["slug"]
        attributes = [f'id="step-{slug}"', 'class="step"', f'tooltip="{slug}"']
        if step["step_type"] == "map":
            attributes += [
                "shape=box3d",
                "style=filled",
                'fillcolor="#ecfdf5"',
                f'label="{slug}\\n(map)"',
            ]
        if is_conditional(step):
            attributes += ['style="rounded,filled,dashed"', 'color="#b45309"', "penwidth=1.6"]
        lines.append(f'  "{slug}" [{", ".join(attributes)}];')
    for step in data["steps"]:
        for source in step["depends_on"] or [INPUT_NODE]:
            lines.append(f'  "{source}" -> "{step["slug"]}" [id="edge-{source}-{step["slug"]}"];')
    lines.append("}")
    return "\n".join(lines)


def flow_svg(data: dict[str, Any], rankdir: str = "LR") -> str:
    """The DAG as an SVG document, laid out by Graphviz."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissingError(
            "drawing a flow needs Graphviz's dot command: install the graphviz package "
            "(apt-get install graphviz, brew install graphviz)"
        )
    result = subprocess.run(
        [dot, "-Tsvg"], input=dot_source(data, rankdir), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise PgflowCommandError(f"Graphviz could not draw flow {data['slug']!r}: {result.stderr}")
    svg = result.stdout
    return svg[svg.index("<svg") :]
