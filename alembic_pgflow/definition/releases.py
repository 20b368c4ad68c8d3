"""pgflow releases and the definition features each one introduced."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class PgflowRelease:
    """A pgflow release number such as 0.14 or 0.14.1."""

    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> PgflowRelease:
        """Read ``"0.14"`` or ``"0.14.1"``; raise ``ValueError`` for anything else."""
        match = re.fullmatch(r"(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
        if match is None:
            raise ValueError(f"{text!r} is not a pgflow release number such as 0.14 or 0.14.1")
        return cls(int(match[1]), int(match[2]), int(match[3] or 0))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def features(self) -> frozenset[Feature]:
        """The definition features this release has."""
        return frozenset(feature for feature in Feature if feature.since <= self)


class Feature(enum.Enum):
    """A part of the definition layer that only some pgflow releases have."""

    START_DELAY = ("the start_delay step option", PgflowRelease(0, 5, 3))
    MAP_STEPS = ("map steps", PgflowRelease(0, 7, 0))
    STEP_CONDITIONS = (
        "step conditions (input patterns, when_unmet, when_exhausted)",
        PgflowRelease(0, 14, 0),
    )
    COMPILE_PATH = (
        "pgflow.ensure_flow_compiled, the compile path of pgflow's workers",
        PgflowRelease(0, 10, 0),
    )
    WORKER_START_MODE = (
        "worker start modes (worker_functions.start_mode)",
        PgflowRelease(0, 15, 0),
    )
    QUEUE_MODE = ("per-step queues (queue_mode, queue_name)", PgflowRelease(0, 17, 0))

    def __init__(self, description: str, since: PgflowRelease) -> None:
        self.description = description
        self.since = since


OLDEST_SUPPORTED = PgflowRelease(0, 7, 0)
NEWEST_SUPPORTED = PgflowRelease(0, 17, 99)
DEFAULT_TARGET = PgflowRelease(0, 14, 0)


def supported_release(target: str | PgflowRelease) -> PgflowRelease:
    """Parse a target release and check that the compiler supports it (0.7 to 0.17)."""
    release = PgflowRelease.parse(target) if isinstance(target, str) else target
    if not OLDEST_SUPPORTED <= release <= NEWEST_SUPPORTED:
        raise ValueError(
            f"pgflow {release} is not a supported target: alembic-pgflow writes SQL for pgflow "
            "0.7 to 0.17"
        )
    return release
