"""The slug rule that every pgflow release accepts.

pgflow up to 0.16 allows ``^[a-zA-Z_][a-zA-Z0-9_]*$`` (at most 128 characters, not ``run``);
0.17 also requires a leading letter, no trailing ``_`` and no ``__``, and compares slugs
ignoring case. A flow slug also names a pgmq queue, and pgmq refuses names of 48 characters or
more. The rule below is the intersection, so a valid slug works on every release.
"""

from __future__ import annotations

import re

MAX_FLOW_SLUG_LENGTH = 47
MAX_STEP_SLUG_LENGTH = 128
RESERVED_SLUGS = frozenset({"run"})

_SLUG_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def slug_problem(slug: object, *, max_length: int) -> str | None:
    """Return why ``slug`` is not a safe pgflow slug, or ``None`` when it is."""
    if not isinstance(slug, str):
        return f"must be a string, got {type(slug).__name__}"
    if not slug:
        return "must not be empty"
    if len(slug) > max_length:
        return f"must be at most {max_length} characters, got {len(slug)}"
    if not _SLUG_PATTERN.fullmatch(slug):
        return (
            f"{slug!r} must start with a letter and contain only ASCII letters, digits and "
            "underscores"
        )
    if slug.endswith("_"):
        return f"{slug!r} must not end with '_' (pgflow 0.17 refuses it)"
    if "__" in slug:
        return f"{slug!r} must not contain '__' (pgflow 0.17 refuses it)"
    if slug.lower() in RESERVED_SLUGS:
        return f"{slug!r} is reserved by pgflow"
    return None
