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

The text, for a flow of ``n`` steps (``null`` for SQL ``NULL``; strings as JSON strings)::

    apgf-rows-1[max_attempts,base_delay,timeout,"queue_mode",[step,...],[dep,...]]
    step: ["slug",step_index,deps_count,"step_type",opt_max_attempts,opt_base_delay,
           opt_timeout,opt_start_delay,required_input_pattern,forbidden_input_pattern,
           "when_unmet","when_exhausted"]                                 (step_index order)
    dep:  ["step_slug","dep_slug"]                          (by step slug, then dependency)

Each input pattern is ``null`` or the JSON string of the pattern's ``jsonb`` text, which
:func:`jsonb_text` writes as PostgreSQL does (keys by length then bytes, ``", "`` and
``": "``, numbers as ``numeric`` prints them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from alembic_pgflow.definition.dsl import Flow
from alembic_pgflow.definition.input_patterns import InputPattern
from alembic_pgflow.definition.shape import CREATE_FLOW_DEFAULTS

DIGEST_PREFIX = "apgf-rows-1"
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
    for index, step in enumerate(flow.steps):
        # Most steps set few options and no condition: those parts have a fixed text.
        step_options = step.options
        max_attempts_, base_delay_, timeout_, start_delay = (
            step_options.max_attempts,
            step_options.base_delay,
            step_options.timeout,
            step_options.start_delay,
        )
        if (
            max_attempts_ is None
            and base_delay_ is None
            and timeout_ is None
            and start_delay is None
        ):
            option_text = "null,null,null,null"
        else:
            option_text = (
                f"{'null' if max_attempts_ is None else max_attempts_},"
                f"{'null' if base_delay_ is None else base_delay_},"
                f"{'null' if timeout_ is None else timeout_},"
                f"{'null' if start_delay is None else start_delay}"
            )
        required, forbidden = step.required_input_pattern, step.forbidden_input_pattern
        when_unmet, when_exhausted = step.when_unmet, step.when_exhausted
        if required is None and forbidden is None and when_unmet is None and when_exhausted is None:
            condition_text = _NO_CONDITIONS
        else:
            condition_text = (
                f"{'null' if required is None else _pattern(required)},"
                f"{'null' if forbidden is None else _pattern(forbidden)},"
                f"{_string(when_unmet or 'skip')},{_string(when_exhausted or 'fail')}"
            )
        steps.append(
            f"[{_string(step.slug)},{index},{len(step.depends_on)},{_string(step.step_type)},"
            f"{option_text},{condition_text}]"
        )
        if step.depends_on:
            slug = step.slug
            deps.extend((slug, dep) for dep in step.depends_on)
    dep_texts = [f"[{_string(step)},{_string(dep)}]" for step, dep in sorted(deps)]
    return (
        f'{DIGEST_PREFIX}[{max_attempts},{base_delay},{timeout},"flow",'
        f"[{','.join(steps)}],[{','.join(dep_texts)}]]"
    )


_NO_CONDITIONS = 'null,null,"skip","fail"'
_QUOTED: dict[str, str] = {}
"""Strings already written as JSON strings (flows reuse the same slugs)."""
_QUOTED_KEPT = 10_000


def _string(text: str) -> str:
    # PostgreSQL's to_json(text) escapes exactly as json.dumps without ensure_ascii: '"', '\',
    # \b \f \n \r \t, other characters below U+0020 as \u00xx; everything else as it is.
    quoted = _QUOTED.get(text)
    if quoted is None:
        quoted = json.dumps(text, ensure_ascii=False)
        if len(_QUOTED) < _QUOTED_KEPT:
            _QUOTED[text] = quoted
    return quoted


def _pattern(pattern: InputPattern) -> str:
    value = json.loads(pattern.compact_json, parse_float=Decimal)
    return json.dumps(jsonb_text(value), ensure_ascii=False)  # as _string, not kept


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
