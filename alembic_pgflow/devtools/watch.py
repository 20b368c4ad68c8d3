"""Run a command again on every save of a flow module, with a file-watching library."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from pathlib import Path

from watchfiles import PythonFilter, watch


def module_folders(module_names: Iterable[str]) -> list[Path]:
    """The folders that hold the configured flow modules (a package's whole folder)."""
    folders: set[Path] = set()
    for name in module_names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            continue
        if spec.submodule_search_locations:
            folders.update(Path(location) for location in spec.submodule_search_locations)
        elif spec.origin:
            folders.add(Path(spec.origin).parent)
    return sorted(folders)


def watch_and_run(
    folders: list[Path],
    run_once: Callable[[], None],
    report: Callable[[str], None],
    *,
    stop_after: int | None = None,
) -> None:
    """Call ``run_once`` now and after every change to a ``.py`` file in ``folders``, until
    interrupted (or after ``stop_after`` changes)."""
    run_once()
    changes_seen = watch(*folders, watch_filter=PythonFilter(), raise_interrupt=False)
    for count, changes in enumerate(changes_seen, start=1):
        for _, path in sorted(changes, key=lambda change: change[1]):
            report(f"changed: {path}")
        run_once()
        if stop_after is not None and count >= stop_after:
            return
