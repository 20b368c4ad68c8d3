"""Build frozen dataclass instances quickly, for objects made by the thousand."""

from __future__ import annotations

from typing import Any, TypeVar

FrozenT = TypeVar("FrozenT")


def frozen_instance(cls: type[FrozenT], fields: dict[str, Any]) -> FrozenT:
    """An instance of the frozen dataclass ``cls`` holding ``fields`` (every field, checked by
    the caller). The generated ``__init__`` sets fields one by one through
    ``object.__setattr__``, which counts when a thousand flows build tens of thousands of steps
    and shapes; this sets them at once. The instance stays frozen."""
    instance: FrozenT = object.__new__(cls)
    object.__setattr__(instance, "__dict__", fields)
    return instance
