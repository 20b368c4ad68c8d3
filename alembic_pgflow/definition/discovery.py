"""Find the ``Flow`` objects defined in the configured modules and packages."""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from alembic_pgflow.definition.dsl import Flow
from alembic_pgflow.definition.gc_pause import paused_gc
from alembic_pgflow.definition.retired import RetiredFlow
from alembic_pgflow.errors import FlowDiscoveryError


@dataclass(frozen=True)
class DiscoveredFlow:
    """A flow and where it was found (``module:attribute``)."""

    flow: Flow
    location: str


def discover_flows(module_names: Iterable[str]) -> dict[str, DiscoveredFlow]:
    """Import each module (packages recursively) and collect every module-level ``Flow``.

    The same flow found twice (re-exported, or defined identically) is one flow; two
    different flows with one slug, or slugs that differ only in case, are an error naming
    both places. The result is ordered by slug.
    """
    return discover(module_names).flows


@dataclass(frozen=True)
class Discovery:
    """What the configured modules define: flows, and slugs declared retired."""

    flows: dict[str, DiscoveredFlow]
    retired: dict[str, DiscoveredRetired]


@dataclass(frozen=True)
class DiscoveredRetired:
    """A :class:`RetiredFlow` marker and where it was found."""

    marker: RetiredFlow
    location: str


def discover(module_names: Iterable[str]) -> Discovery:
    """Flows and retired markers of the modules, each by slug in slug order; a slug both
    defined and retired (in any case) is an error naming both places."""
    by_folded_slug: dict[str, DiscoveredFlow] = {}
    retired: dict[str, DiscoveredRetired] = {}
    with paused_gc():  # flow modules build many small objects at import
        modules = list(_modules(module_names))
    for module in modules:
        for attribute, value in vars(module).items():
            location = f"{module.__name__}:{attribute}"
            if isinstance(value, RetiredFlow):
                retired.setdefault(value.slug.lower(), DiscoveredRetired(value, location))
                continue
            if not isinstance(value, Flow):
                continue
            candidate = DiscoveredFlow(value, location)
            earlier = by_folded_slug.get(value.slug.lower())
            if earlier is None:
                by_folded_slug[value.slug.lower()] = candidate
            elif earlier.flow != value:
                raise FlowDiscoveryError(_conflict(earlier, candidate))
    for folded, marker in retired.items():
        defined = by_folded_slug.get(folded)
        if defined is not None:
            raise FlowDiscoveryError(
                f"flow {defined.flow.slug!r} is defined ({defined.location}) and retired "
                f"({marker.location}); keep one of them"
            )
    return Discovery(
        flows=dict(sorted((found.flow.slug, found) for found in by_folded_slug.values())),
        retired=dict(sorted((found.marker.slug, found) for found in retired.values())),
    )


def _conflict(earlier: DiscoveredFlow, later: DiscoveredFlow) -> str:
    if earlier.flow.slug == later.flow.slug:
        what = f"two different flows have the slug {later.flow.slug!r}"
    else:
        what = (
            f"flow slugs {earlier.flow.slug!r} and {later.flow.slug!r} differ only in case "
            "(pgflow 0.17 treats them as one flow, older releases give them one queue)"
        )
    return f"{what}: {earlier.location} and {later.location}; rename one of them"


def _modules(module_names: Iterable[str]) -> Iterator[ModuleType]:
    seen: set[str] = set()
    for name in module_names:
        module = _import(name)
        for item in [module, *_submodules(module)]:
            if item.__name__ not in seen:
                seen.add(item.__name__)
                yield item


def _submodules(package: ModuleType) -> Iterator[ModuleType]:
    path = getattr(package, "__path__", None)
    if path is None:
        return
    import pkgutil  # only for packages: a plain module (the common case) does without

    names = sorted(info.name for info in pkgutil.iter_modules(path, package.__name__ + "."))
    for name in names:
        module = _import(name)
        yield module
        yield from _submodules(module)


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name is not None and (name + ".").startswith(error.name + "."):
            raise FlowDiscoveryError(
                f"could not import pgflow module {name!r}: no module named {error.name!r} "
                "(is its folder on sys.path? see prepend_sys_path in alembic.ini)"
            ) from error
        raise _import_failed(name, error) from error
    except Exception as error:
        raise _import_failed(name, error) from error


_PACKAGE_FOLDER = str(Path(__file__).resolve().parent.parent)


def _import_failed(name: str, error: Exception) -> FlowDiscoveryError:
    # The innermost frame of the user's own code: not importlib's, not alembic-pgflow's (a
    # FlowDefinitionError is raised inside the DSL, but the mistake is on the user's line).
    frames = traceback.extract_tb(error.__traceback__)
    user_frames = [
        frame
        for frame in frames
        if "importlib" not in frame.filename
        and not str(Path(frame.filename).resolve()).startswith(_PACKAGE_FOLDER)
    ]
    where = f" (at {user_frames[-1].filename}:{user_frames[-1].lineno})" if user_frames else ""
    return FlowDiscoveryError(
        f"could not import pgflow module {name!r}: {type(error).__name__}: {error}{where}"
    )
