"""Following a guide in docs/ as a reader would: its code blocks, in order, in a new folder."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

FENCE = re.compile(r"^```(\w+)(?: title=\"([^\"]+)\")?\n(.*?)^```\n", re.M | re.S)
"""A fenced block: its language, its optional ``title="file"`` and its text."""


def blocks(markdown: str) -> list[tuple[str, str, str]]:
    """The guide's fenced blocks as (language, title, body)."""
    return FENCE.findall(markdown)


def reader_environment() -> dict[str, str]:
    """A shell's environment with this interpreter's scripts first and no ``DATABASE_URL``."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("DATABASE_URL", None)
    return env


def write_block(folder: Path, title: str, body: str) -> None:
    """Do what a titled block asks: ``file [section]`` adds its lines at the top of that
    section of an existing file; a plain ``file`` is written whole."""
    if title.endswith("]"):
        path, section = title[:-1].split(" [")
        target = folder / path
        target.write_text(target.read_text().replace(f"[{section}]\n", f"[{section}]\n{body}", 1))
    else:
        (folder / title).write_text(body)
