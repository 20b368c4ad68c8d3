"""JSON input patterns of step conditions: validation, compact text and canonical text.

The compact text is what the compiler emits (the user's key order, like ``JSON.stringify``);
the canonical text is what the shape compares. PostgreSQL stores patterns as ``jsonb``, which
reorders keys and keeps numbers as ``numeric``, so the canonical text sorts keys and writes each
number in one normal form: the same pattern read back from the database gives the same text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

MAX_DEPTH = 64
MAX_INTEGER_DIGITS = 4000
"""Python writes integers of up to 4300 digits as text; patterns stay well inside that."""
MAX_INTEGER_BITS = int(MAX_INTEGER_DIGITS * 3.3219)  # log2(10): bits of a 4000-digit number


class PatternError(ValueError):
    """A value that cannot be a pgflow input pattern; the message says where and why."""


@dataclass(frozen=True)
class InputPattern:
    """A JSON object that a step's input must (or must not) contain."""

    compact_json: str
    """The pattern as the compiler writes it: the user's key order, no spaces."""
    canonical_json: str
    """Sorted keys and normalized numbers: equal for equal ``jsonb`` values."""

    @classmethod
    def from_value(cls, value: object) -> InputPattern:
        """Validate a user's pattern, which must be a JSON object."""
        if not isinstance(value, dict | Mapping):
            raise PatternError(f"must be a JSON object (a dict), got {type(value).__name__}")
        plain = _plain(value, "$", 0)
        compact = json.dumps(plain, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return cls(compact_json=compact, canonical_json=canonical_json(plain))

    @property
    def value(self) -> Any:
        """The pattern as Python data."""
        return json.loads(self.compact_json)


def _plain(value: object, path: str, depth: int) -> Any:
    """Check one JSON value and return it as plain dicts, lists and scalars."""
    if depth > MAX_DEPTH:
        raise PatternError(f"is nested more than {MAX_DEPTH} levels deep at {path}")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_INTEGER_BITS:
            raise PatternError(
                f"has an integer of more than {MAX_INTEGER_DIGITS} digits at {path}, which "
                "cannot be written as JSON text here"
            )
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise PatternError(f"has a non-finite number {value!r} at {path}; JSON has none")
        return value
    if isinstance(value, str):
        _check_text(value, path)
        return value
    if isinstance(value, dict | Mapping):
        result: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise PatternError(f"has a non-string key {key!r} at {path}")
            _check_text(key, f"{path} key {key!r}")
            result[key] = _plain(item, f"{path}.{key}", depth + 1)
        return result
    if isinstance(value, list | tuple):
        return [_plain(item, f"{path}[{index}]", depth + 1) for index, item in enumerate(value)]
    raise PatternError(f"has a value of type {type(value).__name__} at {path}, which is not JSON")


def _check_text(text: str, path: str) -> None:
    if "\x00" in text:
        raise PatternError(f"has a NUL character at {path}, which jsonb refuses")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise PatternError(f"has text that is not valid Unicode at {path}") from error


def canonical_json(value: Any, *, spaced: bool = False) -> str:
    """Write plain JSON data (numbers as int, float or Decimal) in the canonical form.

    ``spaced`` puts a space after ``,`` and ``:`` for text meant to be read; checksums use the
    compact form.
    """
    comma, colon = (", ", ": ") if spaced else (",", ":")
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, int | float | Decimal):
        return _canonical_number(value)
    if isinstance(value, Mapping):
        items = [
            f"{canonical_json(key)}{colon}{canonical_json(item, spaced=spaced)}"
            for key, item in sorted(value.items())
        ]
        return "{" + comma.join(items) + "}"
    return "[" + comma.join(canonical_json(item, spaced=spaced) for item in value) + "]"


def _canonical_number(number: int | float | Decimal) -> str:
    """Positional notation without trailing zeros, as ``jsonb`` prints ``numeric``: 1, 1.0 and
    1e0 are one value. Built from the digits, never through ``int`` (a stored 1e5000 has more
    digits than Python converts) nor a decimal context (which would round)."""
    exact = Decimal(repr(number)) if isinstance(number, float) else Decimal(number)
    if exact.is_zero():
        return "0"
    sign, digit_tuple, exponent = exact.as_tuple()
    assert isinstance(exponent, int)  # finite: patterns hold no NaN or Infinity
    digits = "".join(map(str, digit_tuple)).lstrip("0")
    while exponent < 0 and digits.endswith("0"):
        digits, exponent = digits[:-1], exponent + 1
    if exponent >= 0:
        text = digits + "0" * exponent
    else:
        whole, fraction = digits[:exponent], digits[exponent:]
        text = (whole or "0") + "." + fraction.rjust(-exponent, "0")
    return ("-" if sign else "") + text
