"""What differs between two shapes of one flow, in words a reviewer can act on."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, fields

from alembic_pgflow.definition.shape import FlowOptionValues, FlowStructure, StepStructure
from alembic_pgflow.definition.slugs import MAX_FLOW_SLUG_LENGTH


def structure_differences(stored: FlowStructure, wanted: FlowStructure) -> list[str]:
    """Each structural difference: the queue mode, then step by step: removed, added, moved,
    then changed."""
    old = {step.slug: (index, step) for index, step in enumerate(stored.steps)}
    new = {step.slug: (index, step) for index, step in enumerate(wanted.steps)}
    lines = []
    if stored.queue_mode != wanted.queue_mode:
        lines.append(
            f"queue mode {stored.queue_mode!r} in the database, {wanted.queue_mode!r} in code "
            "(pgflow 0.17's step mode gives each step its own queue and is created only by "
            "pgflow's ensure_flow_compiled; alembic-pgflow defines flow-mode flows)"
        )
    lines += [f"step {slug!r} removed" for slug in old if slug not in new]
    for slug, (index, step) in new.items():
        if slug not in old:
            deps = ", ".join(sorted(step.dependencies)) or "nothing"
            lines.append(
                f"step {slug!r} added at position {index} ({step.step_type}, depends on {deps})"
            )
    for slug, (index, step) in new.items():
        if slug not in old:
            continue
        old_index, old_step = old[slug]
        if old_index != index:
            lines.append(f"step {slug!r} moved from position {old_index} to {index}")
        lines.extend(f"step {slug!r}: {change}" for change in _step_changes(old_step, step))
    return lines


def _step_changes(old: StepStructure, new: StepStructure) -> list[str]:
    changes = []
    if old.step_type != new.step_type:
        changes.append(f"type changed from {old.step_type} to {new.step_type}")
    added, removed = new.dependencies - old.dependencies, old.dependencies - new.dependencies
    if added or removed:
        parts = [f"added {_names(added)}"] if added else []
        parts += [f"removed {_names(removed)}"] if removed else []
        changes.append("dependencies changed: " + "; ".join(parts))
    for name in ("when_unmet", "when_exhausted"):
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            changes.append(f"{name} changed from {before!r} to {after!r}")
    for name in ("required_input_pattern", "forbidden_input_pattern"):
        before, after = getattr(old, name), getattr(new, name)
        if before != after:
            changes.append(f"{name} changed from {before or 'absent'} to {after or 'absent'}")
    return changes


def _names(slugs: frozenset[str]) -> str:
    return ", ".join(repr(slug) for slug in sorted(slugs))


@dataclass(frozen=True)
class OptionChange:
    """One option of a flow (``step`` is ``None``) or of a step, before and after."""

    step: str | None
    option: str
    before: int | None
    after: int | None

    def __str__(self) -> str:
        where = "flow" if self.step is None else f"step {self.step!r}"
        return f"{where}: {self.option} {_value(self.before)} -> {_value(self.after)}"


def _value(value: int | None) -> str:
    return "default" if value is None else str(value)


def option_changes(stored: FlowOptionValues, wanted: FlowOptionValues) -> list[OptionChange]:
    """The options that differ, flow first, then steps in order; both shapes have the same
    steps (option changes are only meaningful for an unchanged structure)."""
    if stored == wanted:  # the common case, and one comparison of frozen dataclasses
        return []
    changes = [
        OptionChange(None, name, getattr(stored, name), getattr(wanted, name))
        for name in ("max_attempts", "base_delay", "timeout")
        if getattr(stored, name) != getattr(wanted, name)
    ]
    old_steps = {step.slug: step for step in stored.steps}
    for step in wanted.steps:
        old = old_steps[step.slug]
        changes.extend(
            OptionChange(step.slug, item.name, getattr(old, item.name), getattr(step, item.name))
            for item in fields(step)
            if item.name != "slug" and getattr(old, item.name) != getattr(step, item.name)
        )
    return changes


def folded_slugs(slugs: Iterable[str]) -> frozenset[str]:
    """Slugs in lower case, as :func:`next_free_slug` compares them."""
    return frozenset(slug.lower() for slug in slugs)


def next_free_slug(slug: str, taken: frozenset[str]) -> str:
    """The first of ``slug_v2``, ``slug_v3``, ... (from the slug's base) whose lower case is not
    in ``taken`` (see :func:`folded_slugs`), within pgflow's flow slug length."""
    match = re.fullmatch(r"(.+)_v(\d+)", slug)
    base, number = (match[1], int(match[2]) + 1) if match else (slug, 2)
    while True:
        suffix = f"_v{number}"
        candidate = base[: MAX_FLOW_SLUG_LENGTH - len(suffix)].rstrip("_") + suffix
        if candidate.lower() not in taken:
            return candidate
        number += 1
