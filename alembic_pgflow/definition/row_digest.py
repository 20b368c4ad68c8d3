"""The digest of the rows a flow's SQL stores, for comparing many flows without reading them.

:func:`rows_digest` is SHA-256 over a canonical text of what ``create_flow`` and the
``add_step`` calls of a :class:`~alembic_pgflow.definition.dsl.Flow` leave in ``pgflow.flows``,
``pgflow.steps`` and ``pgflow.deps``. :mod:`alembic_pgflow.database.catalog` has the server
build the same text from the stored rows, so a flow whose digests agree holds exactly these rows
and need not be read; any other flow is read and compared in full. The text covers every column
the comparison looks at (options and structure) and the invariants it checks (``step_index``
and ``deps_count``), so agreeing digests mean "in sync and not corrupt"; a text that differs
for equal flows (for example a stored pattern number written ``1.0`` where the code has ``1``)
only costs the full read.

The text is made of PostgreSQL's own text form of row values (``row(...)::text``, which the
server writes cheaply): for a flow of ``n`` steps::

    apgf-rows-2(max_attempts,base_delay,timeout,queue_mode)[step,...][dep,...]
    step: (slug,step_index,deps_count,step_type,opt_max_attempts,opt_base_delay,opt_timeout,
           opt_start_delay,required_input_pattern,forbidden_input_pattern,when_unmet,
           when_exhausted)                                                (step_index order)
    dep:  (step_slug,dep_slug)                              (by step slug, then dependency)

In a row's text a ``NULL`` field is empty, and a field that is empty or holds ``"``, ``\\``,
``(``, ``)``, ``,`` or ASCII white space is written in double quotes with ``"`` and ``\\``
doubled (:func:`record_field`); so the text of rows of a known width is unambiguous. An input
pattern is the pattern's ``jsonb`` text, which :func:`jsonb_text` writes as PostgreSQL does
(keys by length then bytes, ``", "`` and ``": "``, numbers as ``numeric`` prints them).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from alembic_pgflow.definition.dsl import NO_STEP_OPTIONS, Flow
from alembic_pgflow.definition.input_patterns import InputPattern
from alembic_pgflow.definition.shape import CREATE_FLOW_DEFAULTS

DIGEST_PREFIX = "apgf-rows-2"
"""Starts every text; a new version of the text gets a new prefix."""

_FLOW_DEFAULTS = tuple(
    CREATE_FLOW_DEFAULTS[name] for name in ("max_attempts", "base_delay", "timeout")
)


def rows_digest(flow: Flow) -> str:
    """SHA-256 hex of :func:`rows_text`."""
    return hashlib.sha256(rows_text(flow).encode("utf-8")).hexdigest()


def rows_text(flow: Flow) -> str:
    """The canonical text of the rows that ``flow``'s SQL stores (see the module's doc)."""
    options = flow.options
    max_attempts = _FLOW_DEFAULTS[0] if options.max_attempts is None else options.max_attempts
    base_delay = _FLOW_DEFAULTS[1] if options.base_delay is None else options.base_delay
    timeout = _FLOW_DEFAULTS[2] if options.timeout is None else options.timeout
    steps = []
    deps: list[tuple[str, str]] = []
    fields = _FIELDS
    for index, step in enumerate(flow.steps):
        # Most steps set few options and no condition: those parts have a fixed text.
        step_options = step.options
        if step_options is NO_STEP_OPTIONS:
            option_text = ",,,"
        else:
            max_attempts_, base_delay_, timeout_, start_delay = (
                step_options.max_attempts,
                step_options.base_delay,
                step_options.timeout,
                step_options.start_delay,
            )
            option_text = (
                f"{'' if max_attempts_ is None else max_attempts_},"
                f"{'' if base_delay_ is None else base_delay_},"
                f"{'' if timeout_ is None else timeout_},"
                f"{'' if start_delay is None else start_delay}"
            )
        required, forbidden = step.required_input_pattern, step.forbidden_input_pattern
        when_unmet, when_exhausted = step.when_unmet, step.when_exhausted
        if required is None and forbidden is None and when_unmet is None and when_exhausted is None:
            condition_text = _NO_CONDITIONS
        else:
            condition_text = (
                f"{'' if required is None else _pattern(required)},"
                f"{'' if forbidden is None else _pattern(forbidden)},"
                f"{_field(when_unmet or 'skip')},{_field(when_exhausted or 'fail')}"
            )
        slug, depends_on = step.slug, step.depends_on
        steps.append(
            f"({fields.get(slug) or _field(slug)},{index},{len(depends_on)},{step.step_type},"
            f"{option_text},{condition_text})"
        )
        if depends_on:
            deps.extend([(slug, dep) for dep in depends_on])
    deps.sort()
    dep_texts = [
        f"({fields.get(step) or _field(step)},{fields.get(dep) or _field(dep)})"
        for step, dep in deps
    ]
    return (
        f"{DIGEST_PREFIX}({max_attempts},{base_delay},{timeout},flow)"
        f"[{','.join(steps)}][{','.join(dep_texts)}]"
    )


_NO_CONDITIONS = ",,skip,fail"
_NEEDS_QUOTES = re.compile(r'[ \t\n\v\f\r"\\(),]').search
_FIELDS: dict[str, str] = {}
"""Strings already written as fields (flows reuse the same slugs)."""
_FIELDS_KEPT = 10_000
_PATTERNS: dict[str, str] = {}
"""The text of patterns already written, by their compact JSON (flows reuse patterns)."""
_PATTERNS_KEPT = 10_000


def record_field(text: str) -> str:
    """``text`` as a field of a row value's text (PostgreSQL's ``record_out``)."""
    if text and _NEEDS_QUOTES(text) is None:
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '""') + '"'


def _field(text: str) -> str:
    field = record_field(text)
    if len(_FIELDS) < _FIELDS_KEPT:
        _FIELDS[text] = field
    return field


def _pattern(pattern: InputPattern) -> str:
    key = pattern.compact_json
    text = _PATTERNS.get(key)
    if text is None:
        text = record_field(jsonb_text(json.loads(key, parse_float=Decimal)))
        if len(_PATTERNS) < _PATTERNS_KEPT:
            _PATTERNS[key] = text
    return text


def jsonb_text(value: Any) -> str:
    """``value`` (JSON data; fractional numbers as ``Decimal``, as ``json.loads`` reads them
    with ``parse_float=Decimal``) as PostgreSQL writes the ``jsonb`` it becomes."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        # numeric keeps the scale it was written with (1.0 stays 1.0, 1e-07 is 0.0000001)
        # and has no negative zero.
        return format(abs(value) if value.is_zero() else value, "f")
    if isinstance(value, float):  # as PostgreSQL reads the text Python writes for it
        return jsonb_text(Decimal(repr(value)))
    if isinstance(value, Mapping):
        # jsonb orders keys by length in bytes, then bytewise.
        keys = sorted(value, key=lambda key: (len(key.encode("utf-8")), key.encode("utf-8")))
        items = [f"{jsonb_text(key)}: {jsonb_text(value[key])}" for key in keys]
        return "{" + ", ".join(items) + "}"
    return "[" + ", ".join(jsonb_text(item) for item in value) + "]"
