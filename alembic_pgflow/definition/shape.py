"""The canonical shape of a flow: its structure and its options, each with a checksum.

pgflow counts as *structure* the steps in ``step_index`` order, each with its slug, type, set of
dependencies, ``when_unmet``, ``when_exhausted`` and both input patterns (absent or present).
A changed structure needs a new flow slug. The *options* (``max_attempts``, ``base_delay``,
``timeout``, ``start_delay``) may be tuned in place.

A shape is built from a :class:`~alembic_pgflow.definition.dsl.Flow` here, or from database
rows by :mod:`alembic_pgflow.database.catalog`; both give equal shapes and equal checksums for
the same flow.
The checksums are SHA-256 over canonical JSON that starts with :data:`SHAPE_VERSION`, so they
are stable across processes, platforms and Python versions. The flow slug is identity, not
structure: it is in neither checksum.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from alembic_pgflow.definition.dsl import Flow
from alembic_pgflow.definition.frozen import frozen_instance

SHAPE_VERSION = 1

# What pgflow.create_flow stores for an omitted argument (the table defaults differ: base_delay
# there is 1, but flows are only ever created through create_flow).
CREATE_FLOW_DEFAULTS: Mapping[str, int] = MappingProxyType(
    {"max_attempts": 3, "base_delay": 5, "timeout": 60}
)
DEFAULT_WHEN_UNMET = "skip"
DEFAULT_WHEN_EXHAUSTED = "fail"
DEFAULT_QUEUE_MODE = "flow"


@dataclass(frozen=True)
class StepStructure:
    """What pgflow counts as the structure of one step."""

    slug: str
    step_type: str
    dependencies: frozenset[str]
    when_unmet: str = DEFAULT_WHEN_UNMET
    when_exhausted: str = DEFAULT_WHEN_EXHAUSTED
    required_input_pattern: str | None = None
    """Canonical JSON (see :func:`~alembic_pgflow.definition.input_patterns.canonical_json`) or
    ``None``."""
    forbidden_input_pattern: str | None = None

    def canonical(self) -> dict[str, Any]:
        """Plain data for the checksum."""
        return {
            "slug": self.slug,
            "step_type": self.step_type,
            "dependencies": sorted(self.dependencies),
            "when_unmet": self.when_unmet,
            "when_exhausted": self.when_exhausted,
            "required_input_pattern": self.required_input_pattern,
            "forbidden_input_pattern": self.forbidden_input_pattern,
        }


@dataclass(frozen=True)
class FlowStructure:
    """The steps of a flow in ``step_index`` order, and (pgflow 0.17+) how its tasks are queued."""

    steps: tuple[StepStructure, ...]
    queue_mode: str = DEFAULT_QUEUE_MODE
    """``flow`` (one queue for the flow, every release) or ``step`` (a queue per step, 0.17+,
    created only by pgflow's own ``ensure_flow_compiled``)."""

    def canonical(self) -> dict[str, Any]:
        """Plain data for the checksum (the queue mode only where it is not the default, so
        checksums of flow-mode flows are the same on every release)."""
        data: dict[str, Any] = {
            "shape_version": SHAPE_VERSION,
            "steps": [step.canonical() for step in self.steps],
        }
        if self.queue_mode != DEFAULT_QUEUE_MODE:
            data["queue_mode"] = self.queue_mode
        return data

    @property
    def checksum(self) -> str:
        """SHA-256 hex of the canonical structure."""
        return _sha256(self.canonical())


@dataclass(frozen=True)
class StepOptionValues:
    """A step's options as stored; ``None`` means the step uses the flow's value."""

    slug: str
    max_attempts: int | None = None
    base_delay: int | None = None
    timeout: int | None = None
    start_delay: int | None = None


@dataclass(frozen=True)
class FlowOptionValues:
    """A flow's effective options and its steps' options, in step order."""

    max_attempts: int
    base_delay: int
    timeout: int
    steps: tuple[StepOptionValues, ...]

    def canonical(self) -> dict[str, Any]:
        """Plain data for the checksum."""
        return {
            "shape_version": SHAPE_VERSION,
            "max_attempts": self.max_attempts,
            "base_delay": self.base_delay,
            "timeout": self.timeout,
            "steps": [
                {
                    "slug": step.slug,
                    "max_attempts": step.max_attempts,
                    "base_delay": step.base_delay,
                    "timeout": step.timeout,
                    "start_delay": step.start_delay,
                }
                for step in self.steps
            ],
        }

    @property
    def checksum(self) -> str:
        """SHA-256 hex of the canonical options."""
        return _sha256(self.canonical())


@dataclass(frozen=True)
class FlowShape:
    """A flow's identity, structure and options."""

    slug: str
    structure: FlowStructure
    options: FlowOptionValues

    @property
    def structure_checksum(self) -> str:
        """SHA-256 hex of the structure; equal structures have equal checksums."""
        return self.structure.checksum

    @property
    def options_checksum(self) -> str:
        """SHA-256 hex of the effective options."""
        return self.options.checksum

    if not TYPE_CHECKING:  # mypy keeps checking attribute names

        def __getattr__(self, name: str) -> Any:
            # A shape from shape_of() builds its structure and options on first use: a no-op
            # check of a thousand flows whose rows match the code never needs them.
            flow = self.__dict__.get("_flow")
            if flow is None or name not in {"structure", "options"}:
                raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
            structure, options = _built(flow)
            self.__dict__.update(structure=structure, options=options)
            del self.__dict__["_flow"]
            return self.__dict__[name]


def shape_of(flow: Flow) -> FlowShape:
    """The shape pgflow will hold once ``flow``'s compiled SQL has run.

    Computed once a flow (a flow never changes), and its structure and options only when they
    are first read.
    """
    if flow._shape is None:
        object.__setattr__(
            flow, "_shape", frozen_instance(FlowShape, {"slug": flow.slug, "_flow": flow})
        )
    assert flow._shape is not None
    return flow._shape


def _built(flow: Flow) -> tuple[FlowStructure, FlowOptionValues]:
    structures = []
    option_values = []
    for step in flow.steps:  # frozen_instance: ten thousand steps for a thousand flows
        required, forbidden = step.required_input_pattern, step.forbidden_input_pattern
        structures.append(
            frozen_instance(
                StepStructure,
                {
                    "slug": step.slug,
                    "step_type": step.step_type,
                    "dependencies": frozenset(step.depends_on),
                    "when_unmet": step.when_unmet or DEFAULT_WHEN_UNMET,
                    "when_exhausted": step.when_exhausted or DEFAULT_WHEN_EXHAUSTED,
                    "required_input_pattern": None if required is None else required.canonical_json,
                    "forbidden_input_pattern": (
                        None if forbidden is None else forbidden.canonical_json
                    ),
                },
            )
        )
        step_options = step.options
        option_values.append(
            frozen_instance(
                StepOptionValues,
                {
                    "slug": step.slug,
                    "max_attempts": step_options.max_attempts,
                    "base_delay": step_options.base_delay,
                    "timeout": step_options.timeout,
                    "start_delay": step_options.start_delay,
                },
            )
        )
    options = FlowOptionValues(
        max_attempts=_or_default(flow.options.max_attempts, "max_attempts"),
        base_delay=_or_default(flow.options.base_delay, "base_delay"),
        timeout=_or_default(flow.options.timeout, "timeout"),
        steps=tuple(option_values),
    )
    return FlowStructure(tuple(structures)), options


def structure_checksum(source: Flow | FlowShape) -> str:
    """SHA-256 hex of a flow's structure, from a ``Flow`` or a shape read from the database."""
    return (shape_of(source) if isinstance(source, Flow) else source).structure_checksum


def options_checksum(source: Flow | FlowShape) -> str:
    """SHA-256 hex of a flow's effective options, from a ``Flow`` or a database shape."""
    return (shape_of(source) if isinstance(source, Flow) else source).options_checksum


def _or_default(value: int | None, name: str) -> int:
    return CREATE_FLOW_DEFAULTS[name] if value is None else value


def _sha256(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()
