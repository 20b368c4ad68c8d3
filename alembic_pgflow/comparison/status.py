"""Compare the flows in code with the flows in the database, slug by slug."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from alembic_pgflow.comparison.differences import (
    OptionChange,
    next_free_slug,
    option_changes,
    structure_differences,
)
from alembic_pgflow.database.catalog import PgflowCatalog, StoredFlow
from alembic_pgflow.definition.compiler import check_features
from alembic_pgflow.definition.discovery import DiscoveredFlow, DiscoveredRetired
from alembic_pgflow.definition.gc_pause import paused_gc
from alembic_pgflow.definition.releases import OLDEST_SUPPORTED
from alembic_pgflow.definition.shape import FlowShape, shape_of
from alembic_pgflow.errors import UnsupportedFeatureError


class FlowStatus(enum.Enum):
    """Where a flow stands between code and database."""

    NEW = "new"
    IN_SYNC = "in sync"
    OPTIONS_CHANGED = "options changed"
    STRUCTURE_CHANGED = "structure changed"
    ONLY_IN_DATABASE = "only in database"
    UNSUPPORTED = "needs newer pgflow"
    """The flow uses a feature the database's pgflow release lacks."""
    CORRUPT = "corrupt in database"
    """The stored rows break pgflow's invariants (for example a wrong ``deps_count``)."""
    RETIRED = "retired"
    """Declared retired in code: kept in the database as it is (or already gone)."""
    TO_REMOVE = "retired, to remove"
    """Declared retired with ``remove=True`` and still in the database."""

    @property
    def settled(self) -> bool:
        """Whether nothing is left to do: ``status`` exits 0 only when every flow is."""
        return self in {FlowStatus.IN_SYNC, FlowStatus.RETIRED}


@dataclass(frozen=True)
class FlowComparison:
    """One slug: its status, both sides, and what differs."""

    slug: str
    status: FlowStatus
    code: DiscoveredFlow | None
    stored: StoredFlow | None
    wanted: FlowShape | None = None
    """The shape of the flow in code (computed once, here)."""
    structure_differences: tuple[str, ...] = ()
    option_changes: tuple[OptionChange, ...] = ()
    problems: tuple[str, ...] = ()
    """Why a flow is ``UNSUPPORTED`` or ``CORRUPT``."""
    retired: DiscoveredRetired | None = None
    """The marker that retires the slug, if one does."""


def compare(
    code: Mapping[str, DiscoveredFlow],
    catalog: PgflowCatalog,
    retired: Mapping[str, DiscoveredRetired] | None = None,
) -> list[FlowComparison]:
    """Every slug in code, declared retired, or in the database, in slug order, with its
    status.

    A corrupt stored flow is ``CORRUPT`` whatever the code says; a flow in code that the
    database's pgflow cannot hold is ``UNSUPPORTED`` before any structure is compared, so the
    real reason comes first.
    """
    retired = retired or {}
    comparisons = []
    with paused_gc():
        for slug in sorted(set(code) | set(catalog.flows) | set(retired)):
            found, stored = code.get(slug), catalog.flows.get(slug)
            marker = retired.get(slug)
            if marker is not None:
                to_remove = marker.marker.remove and stored is not None
                status = FlowStatus.TO_REMOVE if to_remove else FlowStatus.RETIRED
                comparisons.append(FlowComparison(slug, status, None, stored, retired=marker))
            elif stored is not None and stored.problems:
                problems = stored.problems
                comparisons.append(
                    FlowComparison(slug, FlowStatus.CORRUPT, found, stored, problems=problems)
                )
            elif found is not None and (missing := unsupported(found, catalog)):
                comparisons.append(
                    FlowComparison(slug, FlowStatus.UNSUPPORTED, found, stored, problems=(missing,))
                )
            elif found is None:
                comparisons.append(FlowComparison(slug, FlowStatus.ONLY_IN_DATABASE, None, stored))
            elif stored is None:
                comparisons.append(
                    FlowComparison(slug, FlowStatus.NEW, found, None, shape_of(found.flow))
                )
            else:
                comparisons.append(_compare_one(slug, found, stored))
    return comparisons


def unsupported(found: DiscoveredFlow, catalog: PgflowCatalog) -> str | None:
    """Why the database's pgflow cannot hold this flow, or ``None`` when it can."""
    if catalog.release < OLDEST_SUPPORTED:
        return (
            f"the database's pgflow ({catalog.release} or close) is older than "
            f"{OLDEST_SUPPORTED}, the oldest release alembic-pgflow supports; upgrade pgflow first"
        )
    try:
        check_features(
            found.flow,
            catalog.features,
            f"the database's pgflow (detected as {catalog.release} or later)",
        )
    except UnsupportedFeatureError as error:
        return (
            f"{error} ({found.location}); upgrade pgflow in the database first, or remove the "
            "feature from the flow"
        )
    return None


def _compare_one(slug: str, found: DiscoveredFlow, stored: StoredFlow) -> FlowComparison:
    wanted = shape_of(found.flow)
    if stored.shape is wanted:  # the catalog found the rows to be exactly the flow's
        return FlowComparison(slug, FlowStatus.IN_SYNC, found, stored, wanted)
    if wanted.structure != stored.shape.structure:
        differences = structure_differences(stored.shape.structure, wanted.structure)
        return FlowComparison(
            slug, FlowStatus.STRUCTURE_CHANGED, found, stored, wanted, tuple(differences)
        )
    changes = option_changes(stored.shape.options, wanted.options)
    status = FlowStatus.OPTIONS_CHANGED if changes else FlowStatus.IN_SYNC
    return FlowComparison(slug, status, found, stored, wanted, option_changes=tuple(changes))


def structure_change_report(changed: list[FlowComparison], taken: frozenset[str]) -> str:
    """The message for flows whose structure changed: what, where, both checksums, what to do.

    ``taken`` holds every slug in code or database, folded by ``folded_slugs``.
    """
    blocks = []
    for comparison in changed:
        assert comparison.code is not None
        assert comparison.stored is not None
        assert comparison.wanted is not None
        wanted = comparison.wanted
        suggestion = next_free_slug(comparison.slug, taken)
        lines = [
            f"pgflow flow {comparison.slug!r} ({comparison.code.location}) has another structure "
            "in code than in the database, and a flow's structure cannot change under its slug.",
            f"  structure checksum in the database: {comparison.stored.shape.structure_checksum}",
            f"  structure checksum in code:         {wanted.structure_checksum}",
            *(f"  - {difference}" for difference in comparison.structure_differences),
            f"  To ship the new structure, give it a new slug, for example "
            f"Flow({suggestion!r}, ...), and keep {comparison.slug!r} in code until it is "
            "retired; to keep the old structure, revert the change in code.",
        ]
        blocks.append("\n".join(lines))
    return "\n".join(blocks) + "\nNo revision was generated."
