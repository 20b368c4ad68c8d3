"""Hypothesis strategies for random valid flows."""

from __future__ import annotations

import string
from typing import Any

from hypothesis import strategies as st

from alembic_pgflow import Flow

_FIRST = string.ascii_letters
_REST = string.ascii_letters + string.digits


@st.composite
def slugs(draw: st.DrawFn, max_length: int = 20) -> str:
    """Slugs that every pgflow release accepts: no '__', no trailing '_', not 'run'."""
    parts = draw(
        st.lists(
            st.text(_REST, min_size=1, max_size=6), min_size=1, max_size=max(1, max_length // 7)
        )
    )
    slug = draw(st.sampled_from(_FIRST)) + "_".join(parts)
    slug = slug[:max_length].rstrip("_")
    return slug if slug.lower() != "run" else slug + "x"


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.text(max_size=5).filter(lambda t: "\x00" not in t and t.isprintable()),
            children,
            max_size=3,
        )
    ),
    max_leaves=8,
)
patterns = st.dictionaries(
    st.text(max_size=6).filter(lambda t: "\x00" not in t and t.isprintable()),
    json_values,
    max_size=4,
)
option = st.none() | st.integers(min_value=3, max_value=2**31 - 1)
when = st.none() | st.sampled_from(["fail", "skip", "skip-cascade"])


@st.composite
def flows(
    draw: st.DrawFn, slug: str | None = None, max_steps: int = 8, conditions: bool = True
) -> Flow:
    """A random valid flow: any DAG in definition order, map steps, options and (unless
    ``conditions`` is false, for pgflow before 0.14) step conditions."""
    flow = Flow(
        slug or draw(slugs(max_length=47)),
        max_attempts=draw(option),
        base_delay=draw(option),
        timeout=draw(option),
    )
    taken: set[str] = set()
    for _ in range(draw(st.integers(min_value=0, max_value=max_steps))):
        step_slug = draw(slugs().filter(lambda s: s.lower() not in taken))
        taken.add(step_slug.lower())
        earlier = [step.slug for step in flow.steps]
        options: dict[str, Any] = {
            "max_attempts": draw(option),
            "base_delay": draw(option),
            "timeout": draw(option),
            "start_delay": draw(st.none() | st.integers(min_value=0, max_value=10**6)),
        }
        if conditions:
            options |= {
                "required_input_pattern": draw(st.none() | patterns),
                "forbidden_input_pattern": draw(st.none() | patterns),
                "when_unmet": draw(when),
                "when_exhausted": draw(when),
            }
        make_map = draw(st.booleans())
        if earlier and make_map:
            array = draw(st.none() | st.sampled_from(earlier))
            flow = flow.map(step_slug, array=array, **options)
        else:
            deps = draw(st.lists(st.sampled_from(earlier), unique=True)) if earlier else []
            flow = flow.step(step_slug, depends_on=deps, **options)
    return flow
