"""SQL literals for the statements alembic-pgflow writes.

Every value reaches SQL through these functions; slugs are validated before they get here and
patterns are re-serialized JSON, so no unchecked text is ever spliced into a statement. The
output assumes ``standard_conforming_strings = on``, PostgreSQL's default since 9.1.
"""

from __future__ import annotations

from collections.abc import Iterable


def quote_text(value: str) -> str:
    """A single-quoted SQL string literal with ``'`` doubled."""
    if "\x00" in value:
        raise ValueError("a SQL string literal cannot contain a NUL character")
    return "'" + value.replace("'", "''") + "'"


def text_array(values: Iterable[str]) -> str:
    """``ARRAY['a', 'b']`` as pgflow's compiler writes it."""
    return "ARRAY[" + ", ".join(quote_text(value) for value in values) + "]"


def sql_value(value: int | str | None) -> str:
    """An integer, a string literal or ``NULL``."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        raise TypeError("booleans are not pgflow option values")
    if isinstance(value, int):
        return str(value)
    return quote_text(value)


def do_block(body: str) -> str:
    """``DO $pgflow$ ... $pgflow$`` around a PL/pgSQL body, with a dollar-quote tag that does
    not occur in the body (patterns are user data and may contain ``$pgflow$``)."""
    tag, number = "$pgflow$", 0
    while tag in body:
        number += 1
        tag = f"$pgflow{number}$"
    return f"DO {tag}\n{body}\n{tag}"
