"""The flow DSL: immutable, validated definitions of pgflow flows.

A :class:`Flow` is built step by step; each call returns a new flow and checks the step as
strictly as pgflow would, raising :class:`~alembic_pgflow.errors.FlowDefinitionError` that names
the flow, the step and the field. Steps can only depend on steps defined before them, so
definition order is always a topological order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar, Unpack

from alembic_pgflow.definition.frozen import frozen_instance
from alembic_pgflow.definition.input_patterns import InputPattern, PatternError
from alembic_pgflow.definition.slugs import MAX_FLOW_SLUG_LENGTH, MAX_STEP_SLUG_LENGTH, slug_problem
from alembic_pgflow.errors import FlowDefinitionError

if TYPE_CHECKING:
    from alembic_pgflow.definition.shape import FlowShape

StepType = Literal["single", "map"]
WhenAction = Literal["fail", "skip", "skip-cascade"]
WHEN_ACTIONS: tuple[WhenAction, ...] = ("fail", "skip", "skip-cascade")
Handler = Callable[..., Any]
HandlerT = TypeVar("HandlerT", bound=Handler)

POSTGRES_INT_MAX = 2**31 - 1
# pgflow's own DSL refuses values below these; its tables would accept some of them.
OPTION_MINIMUMS: Mapping[str, int] = MappingProxyType(
    {"max_attempts": 1, "base_delay": 1, "timeout": 3, "start_delay": 0}
)


class FlowOptionArgs(TypedDict, total=False):
    """Keywords accepted by :class:`Flow`."""

    max_attempts: int | None
    base_delay: int | None
    timeout: int | None


class StepOptionArgs(TypedDict, total=False):
    """Keywords accepted by :meth:`Flow.step` and :meth:`Flow.map`."""

    max_attempts: int | None
    base_delay: int | None
    timeout: int | None
    start_delay: int | None
    required_input_pattern: Mapping[str, object] | None
    forbidden_input_pattern: Mapping[str, object] | None
    when_unmet: WhenAction | None
    when_exhausted: WhenAction | None
    handler: Handler | None


@dataclass(frozen=True)
class FlowOptions:
    """Flow options as written by the user; ``None`` means pgflow's default."""

    max_attempts: int | None = None
    base_delay: int | None = None
    timeout: int | None = None


@dataclass(frozen=True)
class StepOptions:
    """Step options as written by the user; ``None`` means the flow's value."""

    max_attempts: int | None = None
    base_delay: int | None = None
    timeout: int | None = None
    start_delay: int | None = None


@dataclass(frozen=True)
class StepDefinition:
    """One step of a flow, in the form pgflow's ``add_step`` takes it."""

    slug: str
    step_type: StepType
    depends_on: tuple[str, ...]
    options: StepOptions = StepOptions()
    required_input_pattern: InputPattern | None = None
    forbidden_input_pattern: InputPattern | None = None
    when_unmet: WhenAction | None = None
    when_exhausted: WhenAction | None = None


@dataclass(frozen=True, init=False)
class Flow:
    """A pgflow flow: a slug, flow options and steps in definition order.

    >>> flow = Flow("greet", timeout=10).step("hello").step("bye", depends_on=["hello"])
    >>> [step.slug for step in flow.steps]
    ['hello', 'bye']

    Handlers can be attached (``handler=`` or :meth:`handler`); they are not part of the
    definition, so they never change its shape or checksums.
    """

    slug: str
    options: FlowOptions
    steps: tuple[StepDefinition, ...]
    _handlers: dict[str, Handler] = field(compare=False, repr=False)
    _folded: dict[str, str] = field(compare=False, repr=False)
    """Step slugs by their lower case (slugs are unique ignoring case)."""
    _shape: FlowShape | None = field(default=None, compare=False, repr=False)
    """The flow's shape once :func:`~alembic_pgflow.definition.shape.shape_of` computed it (a
    flow never changes, so neither does its shape)."""

    def __init__(self, slug: str, **options: Unpack[FlowOptionArgs]) -> None:
        problem = slug_problem(slug, max_length=MAX_FLOW_SLUG_LENGTH)
        if problem:
            raise FlowDefinitionError(problem, flow=_shown(slug), field="slug")
        if not options:
            flow_options = _NO_FLOW_OPTIONS
        else:
            if not _FLOW_OPTION_NAMES.issuperset(options):
                _reject_unknown(options, FlowOptionArgs, flow=slug, step=None)
            flow_options = frozen_instance(
                FlowOptions,
                {
                    name: _option(name, options.get(name), flow=slug, step=None)
                    for name in _FLOW_OPTION_NAMES_IN_ORDER
                },
            )
        _set_attribute(
            self,
            "__dict__",
            {"slug": slug, "options": flow_options, "steps": (), "_handlers": {}, "_folded": {}},
        )

    def step(
        self, slug: str, *, depends_on: Sequence[str] = (), **options: Unpack[StepOptionArgs]
    ) -> Flow:
        """Return this flow with a new ``single`` step after the existing ones."""
        return self._with_step(slug, "single", depends_on, "depends_on", options)

    def map(
        self, slug: str, *, array: str | None = None, **options: Unpack[StepOptionArgs]
    ) -> Flow:
        """Return this flow with a new ``map`` step over ``array``'s output.

        Without ``array`` the step maps over the flow's input, which must be an array.
        """
        if "depends_on" in options:
            raise FlowDefinitionError(
                "a map step has at most one dependency, the step whose output it maps over: "
                "give it as array='slug' instead of depends_on",
                flow=self.slug,
                step=_shown(slug),
                field="depends_on",
            )
        if array is not None and not isinstance(array, str):
            raise FlowDefinitionError(
                f"must be one step slug (a map step has at most one dependency), got {array!r}",
                flow=self.slug,
                step=_shown(slug),
                field="array",
            )
        deps = () if array is None else (array,)
        return self._with_step(slug, "map", deps, "array", options)

    def handler(self, step_slug: str) -> Callable[[HandlerT], HandlerT]:
        """Decorator that attaches a handler to an existing step of this flow."""
        if self.get_step(step_slug) is None:
            raise FlowDefinitionError(
                "no such step to attach a handler to", flow=self.slug, step=step_slug
            )

        def attach(function: HandlerT) -> HandlerT:
            self._attach(step_slug, function)
            return function

        return attach

    @property
    def handlers(self) -> Mapping[str, Handler]:
        """Handlers by step slug (read-only)."""
        return MappingProxyType(self._handlers)

    def get_step(self, slug: str) -> StepDefinition | None:
        """Return the step called ``slug``, or ``None``."""
        return next((step for step in self.steps if step.slug == slug), None)

    def _attach(self, step_slug: str, function: Handler) -> None:
        if not callable(function):
            raise FlowDefinitionError(
                f"must be callable, got {function!r}",
                flow=self.slug,
                step=step_slug,
                field="handler",
            )
        existing = self._handlers.get(step_slug)
        if existing is not None and existing is not function:
            raise FlowDefinitionError(
                "already has a handler", flow=self.slug, step=step_slug, field="handler"
            )
        self._handlers[step_slug] = function

    def _with_step(
        self,
        slug: str,
        step_type: StepType,
        depends_on: Sequence[str],
        deps_field: str,
        options: StepOptionArgs,
    ) -> Flow:
        # Flows are built at import time, ten thousand steps for a thousand flows: the common
        # case (a known good slug, a few options) takes the short paths, with the same checks.
        if type(slug) is not str or slug not in _GOOD_STEP_SLUGS:
            problem = slug_problem(slug, max_length=MAX_STEP_SLUG_LENGTH)
            if problem:
                raise FlowDefinitionError(problem, flow=self.slug, step=_shown(slug), field="slug")
            if len(_GOOD_STEP_SLUGS) < _GOOD_SLUGS_KEPT:
                _GOOD_STEP_SLUGS.add(slug)
        folded = slug.lower()
        earlier = self._folded.get(folded)
        if earlier is not None:
            same = "" if earlier == slug else f" as {earlier!r} (slugs are compared ignoring case)"
            raise FlowDefinitionError(
                f"duplicate step: it is already defined{same}",
                flow=self.slug,
                step=slug,
                field="slug",
            )
        if not _STEP_OPTION_NAMES.issuperset(options):
            _reject_unknown(
                options,
                StepOptionArgs,
                flow=self.slug,
                step=slug,
                also=("array",) if step_type == "map" else ("depends_on",),
            )
        known = self._folded
        dependencies = _known_dependencies(depends_on, known)
        if dependencies is None:
            dependencies = self._checked_dependencies(slug, depends_on, deps_field)
        # frozen_instance(StepDefinition, ...) inline: a function call less a step.
        step = _new_object(StepDefinition)
        fields = {"slug": slug, "step_type": step_type, "depends_on": dependencies, **_NO_OPTIONS}
        if options:
            fields["options"] = self._step_options(slug, options)
            if not _STEP_OPTION_FIELDS.issuperset(options):  # conditions or a handler
                fields["required_input_pattern"] = _pattern(
                    options.get("required_input_pattern"),
                    self.slug,
                    slug,
                    "required_input_pattern",
                )
                fields["forbidden_input_pattern"] = _pattern(
                    options.get("forbidden_input_pattern"),
                    self.slug,
                    slug,
                    "forbidden_input_pattern",
                )
                fields["when_unmet"] = _when(
                    options.get("when_unmet"), self.slug, slug, "when_unmet"
                )
                fields["when_exhausted"] = _when(
                    options.get("when_exhausted"), self.slug, slug, "when_exhausted"
                )
        _set_attribute(step, "__dict__", fields)
        extended: Flow = _new_object(Flow)  # frozen_instance(Flow, ...) inline
        _set_attribute(
            extended,
            "__dict__",
            {
                "slug": self.slug,
                "options": self.options,
                "steps": (*self.steps, step),
                "_handlers": self._handlers.copy(),
                "_folded": {**known, folded: slug},
            },
        )
        handler = options.get("handler")
        if handler is not None:
            extended._attach(slug, handler)
        return extended

    def _step_options(self, slug: str, options: StepOptionArgs) -> StepOptions:
        if _STEP_OPTION_FIELDS.isdisjoint(options):
            return NO_STEP_OPTIONS
        values = {name: options.get(name) for name in _STEP_OPTION_FIELDS_IN_ORDER}
        for name, value in values.items():
            if value is not None:
                _option(name, value, flow=self.slug, step=slug)
        return frozen_instance(StepOptions, values)

    def _checked_dependencies(
        self, slug: str, depends_on: Sequence[str], deps_field: str
    ) -> tuple[str, ...]:
        # list and tuple first: the ABC check is slow, and flows are built at import time.
        if not isinstance(depends_on, (list, tuple)) and (
            isinstance(depends_on, str) or not isinstance(depends_on, Sequence)
        ):
            raise FlowDefinitionError(
                f"must be a list of step slugs, got {depends_on!r}",
                flow=self.slug,
                step=slug,
                field=deps_field,
            )
        folded = self._folded
        seen: set[str] = set()
        for dep in depends_on:
            if dep == slug:
                raise FlowDefinitionError(
                    "a step cannot depend on itself", flow=self.slug, step=slug, field=deps_field
                )
            if dep in seen:
                raise FlowDefinitionError(
                    f"duplicate dependency {dep!r}", flow=self.slug, step=slug, field=deps_field
                )
            if not isinstance(dep, str) or folded.get(dep.lower()) != dep:
                known = {step.slug for step in self.steps}
                raise FlowDefinitionError(
                    f"unknown dependency {dep!r}: a step can only depend on steps defined "
                    "before it" + _known_steps_hint(dep, known),
                    flow=self.slug,
                    step=slug,
                    field=deps_field,
                )
            seen.add(dep)
        return tuple(depends_on)


def _known_dependencies(depends_on: Sequence[str], known: dict[str, str]) -> tuple[str, ...] | None:
    """``depends_on`` as a tuple when it is a list or tuple of known step slugs, as written,
    each once; otherwise ``None``, and ``Flow._checked_dependencies`` says what is wrong. (A
    step's own slug is not known yet, so a step that depends on itself is ``None`` too.)"""
    if type(depends_on) is not list and type(depends_on) is not tuple:
        return None
    dependencies = tuple(depends_on)
    for dep in dependencies:
        if type(dep) is not str or known.get(dep.lower()) != dep:
            return None
    if len(dependencies) > 1 and len(set(dependencies)) != len(dependencies):
        return None
    return dependencies


_new_object = object.__new__
_set_attribute = object.__setattr__


_NO_FLOW_OPTIONS = FlowOptions()
_FLOW_OPTION_NAMES_IN_ORDER = tuple(FlowOptions.__dataclass_fields__)
_FLOW_OPTION_NAMES = frozenset(_FLOW_OPTION_NAMES_IN_ORDER)
NO_STEP_OPTIONS = StepOptions()
"""The options of every step built without options: one shared instance, so that readers may
test ``step.options is NO_STEP_OPTIONS`` before reading its fields."""
_STEP_OPTION_FIELDS_IN_ORDER = tuple(StepOptions.__dataclass_fields__)
_STEP_OPTION_FIELDS = frozenset(_STEP_OPTION_FIELDS_IN_ORDER)
_STEP_OPTION_NAMES = frozenset(StepOptionArgs.__annotations__)
_NO_OPTIONS: dict[str, Any] = {
    "options": NO_STEP_OPTIONS,
    "required_input_pattern": None,
    "forbidden_input_pattern": None,
    "when_unmet": None,
    "when_exhausted": None,
}
_GOOD_STEP_SLUGS: set[str] = set()
"""Step slugs already found valid (flows reuse the same step slugs)."""
_GOOD_SLUGS_KEPT = 10_000


def _shown(slug: object) -> str:
    return slug if isinstance(slug, str) else repr(slug)


def _known_steps_hint(dep: object, known: set[str]) -> str:
    if not known:
        return " (the flow has no steps yet)"
    same_case = [
        slug for slug in sorted(known) if isinstance(dep, str) and slug.lower() == dep.lower()
    ]
    if same_case:
        return f"; did you mean {same_case[0]!r}?"
    return f"; defined so far: {', '.join(sorted(known))}"


def _reject_unknown(
    options: Mapping[str, object],
    allowed: type,
    *,
    flow: str,
    step: str | None,
    also: Sequence[str] = (),
) -> None:
    """Refuse a keyword that is not an option (``also``: the method's own keywords, such as
    ``depends_on``), suggesting the closest one."""
    known = [*also, *allowed.__annotations__]
    for name in options:
        if name not in allowed.__annotations__:
            import difflib  # only for the message

            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            if step is None and name in StepOptionArgs.__annotations__:
                hint = f"{name} is a step option (give it to .step() or .map()); "
            raise FlowDefinitionError(
                f"unknown keyword; {hint}accepted: {', '.join(known)}",
                flow=flow,
                step=step,
                field=name,
            )


def _option(name: str, value: object, *, flow: str, step: str | None) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise FlowDefinitionError(
            f"must be an integer, got {value!r}", flow=flow, step=step, field=name
        )
    minimum = OPTION_MINIMUMS[name]
    if value < minimum:
        raise FlowDefinitionError(
            f"must be at least {minimum}, got {value}", flow=flow, step=step, field=name
        )
    if value > POSTGRES_INT_MAX:
        raise FlowDefinitionError(
            f"must be at most {POSTGRES_INT_MAX} (a PostgreSQL integer), got {value}",
            flow=flow,
            step=step,
            field=name,
        )
    return value


def _pattern(value: object, flow: str, step: str, name: str) -> InputPattern | None:
    if value is None:
        return None
    try:
        return InputPattern.from_value(value)
    except PatternError as error:
        raise FlowDefinitionError(str(error), flow=flow, step=step, field=name) from error


def _when(value: object, flow: str, step: str, name: str) -> WhenAction | None:
    if value is None:
        return None
    for action in WHEN_ACTIONS:
        if value == action:
            return action
    choices = ", ".join(repr(action) for action in WHEN_ACTIONS)
    raise FlowDefinitionError(
        f"must be one of {choices}, got {value!r}", flow=flow, step=step, field=name
    )
