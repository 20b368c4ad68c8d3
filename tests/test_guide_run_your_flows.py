"""docs/run-your-flows.md, followed block by block after getting started's set-up, in an
empty folder: a flow with handlers, migrated, run by the worker, with its output printed."""

from __future__ import annotations

import shlex
import signal
import subprocess
from pathlib import Path

import pytest

from alembic_pgflow.database.pgflow_install import npm_available
from tests.alembic_project import ROOT
from tests.guides import blocks, reader_environment, write_block

pytestmark = pytest.mark.alembic_cli


def test_run_your_flows_ends_with_the_runs_output(tmp_path: Path) -> None:
    if not npm_available():
        pytest.skip("npm is not installed, and the guide installs pgflow with it")
    setup = (ROOT / "docs" / "getting-started.md").read_text().split("\n## 4.", 1)[0]
    guide = (ROOT / "docs" / "run-your-flows.md").read_text()
    folder = tmp_path / "new_project"
    folder.mkdir()
    env = reader_environment()
    background: list[subprocess.Popen[str]] = []
    outputs = []
    try:
        for language, title, body in blocks(setup) + blocks(guide):
            if language == "sh":
                for line in body.strip().splitlines():
                    if line.startswith("pip install"):
                        continue  # this environment has alembic-pgflow installed
                    if line.endswith(" &"):
                        background.append(_start(line[:-2], folder, env))
                        continue
                    result = subprocess.run(
                        shlex.split(line),
                        cwd=folder,
                        env=env,
                        capture_output=True,
                        text=True,
                        check=False,
                        timeout=120,
                    )
                    assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
                    outputs.append(result.stdout)
            elif title:
                write_block(folder, title, body)
    finally:
        for process in background:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
    first, *rest = outputs[-1].splitlines()
    assert first.startswith("run ")
    assert first.endswith(": completed")
    assert '"words": 3' in "\n".join(rest)
    assert '"longest": 7' in "\n".join(rest)


def _start(line: str, folder: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """A background command of the guide; returns once it serves (it shares the embedded
    server with the commands after it)."""
    process = subprocess.Popen(
        shlex.split(line),
        cwd=folder,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    for output in process.stdout:
        if "pgflow worker serving" in output:
            return process
    raise AssertionError(f"{line} ended before serving (exit {process.wait()})")
