"""alembic-pgflow's settings, read from ``context.configure(...)`` or the Alembic config.

``context.configure(pgflow_modules=[...])`` wins; otherwise ``pgflow_modules`` is read from
``alembic.ini``'s ``[alembic]`` section or, on Alembic 1.16 and newer, ``[tool.alembic]`` in
``pyproject.toml``. Nothing is ever written twice: the CLI reads the same places.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from alembic.config import Config

from alembic_pgflow.errors import PgflowConfigurationError

OptionsChanges = Literal["update", "error"]
RevisionStyle = Literal["statements", "block"]
SETTING_NAMES = (
    "pgflow_modules",
    "pgflow_options_changes",
    "pgflow_max_new_flows_per_revision",
    "pgflow_revision_style",
)
PROJECT_SETTING_NAMES = ("pgflow_embedded_pgdata",)
"""Settings of the project (read by the CLI and env.py helpers), not of autogenerate."""


@dataclass(frozen=True)
class PgflowSettings:
    """What to compare and how to treat option changes."""

    modules: tuple[str, ...]
    """Modules or packages (searched recursively) that define ``Flow`` objects."""
    options_changes: OptionsChanges = "update"
    """``"update"`` writes an UPDATE of the options; ``"error"`` refuses option changes."""
    revision_style: RevisionStyle = "block"
    """``"block"``: one ``DO`` block per new flow (the guard, then the compiler's calls as
    ``PERFORM``s, one round trip per flow); ``"statements"``: one ``op.execute`` per statement
    of the compiler."""
    max_new_flows_per_revision: int | None = None
    """At most this many new flows in one revision (``0``: no limit); ``None`` lets the plugin
    derive a limit from the server's lock table where pgmq queues are created."""


def read_settings(
    opts: Mapping[str, Any], config: Config | None, *, strict: bool = True
) -> PgflowSettings | None:
    """Settings from ``context.configure`` keywords, then the config; ``None`` if not set up.
    ``strict``: an unknown ``pgflow_*`` setting is an error (see :func:`unknown_settings`)."""
    if strict:
        _refuse_unknown(opts, config)
    modules = _modules(_setting("pgflow_modules", opts, config))
    if not modules:
        return None
    changes = _choice("pgflow_options_changes", opts, config, ("update", "error"))
    style = _choice("pgflow_revision_style", opts, config, ("block", "statements"))
    return PgflowSettings(
        modules=modules,
        options_changes=cast(OptionsChanges, changes),
        revision_style=cast(RevisionStyle, style),
        max_new_flows_per_revision=_count(
            "pgflow_max_new_flows_per_revision",
            _setting("pgflow_max_new_flows_per_revision", opts, config),
        ),
    )


def _choice(
    name: str, opts: Mapping[str, Any], config: Config | None, choices: tuple[str, ...]
) -> str:
    value = _setting(name, opts, config) or choices[0]
    if value not in choices:
        allowed = " or ".join(repr(choice) for choice in choices)
        raise PgflowConfigurationError(f"{name} must be {allowed}, got {value!r}")
    return str(value)


def _count(name: str, value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    if isinstance(value, bool) or number < 0:
        raise PgflowConfigurationError(f"{name} must be a whole number >= 0, got {value!r}")
    return number


def read_config_settings(config: Config, *, strict: bool = True) -> PgflowSettings | None:
    """Settings from ``alembic.ini`` / ``pyproject.toml`` alone (for the CLI)."""
    return read_settings({}, config, strict=strict)


def _setting(name: str, opts: Mapping[str, Any], config: Config | None) -> Any:
    if name in opts:
        return opts[name]
    if config is None:
        return None
    if hasattr(config, "get_alembic_option"):  # Alembic 1.16+: .ini, then pyproject.toml
        return config.get_alembic_option(name)
    if config.file_config.has_section(config.config_ini_section):
        return config.get_main_option(name)
    return None


def _modules(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    names = re.split(r"[\s,]+", value) if isinstance(value, str) else list(value)
    modules = tuple(name for name in names if name)
    for name in modules:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*", name):
            raise PgflowConfigurationError(
                f"pgflow_modules must name Python modules (like myapp.flows), got {name!r}"
            )
    return modules


def unknown_settings(opts: Mapping[str, Any], config: Config | None) -> list[str]:
    """A message for each ``pgflow_*`` name that alembic-pgflow does not read, wherever it is
    set, with the closest known name: a misspelled setting must never be silently ignored."""
    known = (*SETTING_NAMES, *PROJECT_SETTING_NAMES)
    places: list[tuple[str, str]] = [(key, "context.configure()") for key in opts]
    if config is not None:
        section = config.config_ini_section
        if config.file_config.has_section(section):
            name = config.config_file_name or "alembic.ini"
            places += [(key, f"[{section}] of {name}") for key in config.file_config[section]]
        toml = getattr(config, "toml_alembic_config", None) or {}
        places += [(key, "[tool.alembic] of pyproject.toml") for key in toml]
    messages = []
    for key, where in places:
        if key.startswith("pgflow") and key not in known:
            import difflib  # only for the message

            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            messages.append(
                f"unknown setting {key!r} in {where}; {hint}alembic-pgflow reads "
                + ", ".join(known)
            )
    return messages


def _refuse_unknown(opts: Mapping[str, Any], config: Config | None) -> None:
    messages = unknown_settings(opts, config)
    if messages:
        raise PgflowConfigurationError("\n".join(messages))
