"""docs/getting-started.md, followed block by block in a new folder, ends with a flow in the
database; and the README's and docs' claims that a test can check."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from alembic_pgflow import read_catalog
from alembic_pgflow.database.pgflow_install import npm_available
from tests.alembic_project import ROOT
from tests.guides import blocks, reader_environment, write_block

pytestmark = pytest.mark.alembic_cli

INSTALL_VARIABLE = "ALEMBIC_PGFLOW_TEST_INSTALL"
"""Set (to 1), the guide's pip line installs this tree into a fresh venv (some 30 s more)."""


def test_getting_started_ends_with_a_flow_in_the_database(tmp_path: Path) -> None:
    guide = (ROOT / "docs" / "getting-started.md").read_text()
    folder = tmp_path / "new_project"
    folder.mkdir()
    env = reader_environment()
    for language, title, body in blocks(guide):
        if language == "sh":
            for line in body.strip().splitlines():
                if line.startswith("pip install"):
                    if "git+" in line or not os.environ.get(INSTALL_VARIABLE):
                        # The Git form needs the network; without INSTALL_VARIABLE the guide
                        # runs on this environment's alembic-pgflow.
                        continue
                    # The clone form, from this tree, into a fresh venv that then runs the
                    # rest of the guide.
                    venv = tmp_path / "venv"
                    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
                    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
                    env["VIRTUAL_ENV"] = str(venv)
                    line = line.replace("${ALEMBIC_PGFLOW_SOURCE}", str(ROOT))  # noqa: PLW2901
                if "dev install-pgflow" in line and not npm_available():
                    pytest.skip("npm is not installed, and the guide installs pgflow with it")
                result = subprocess.run(
                    shlex.split(line),
                    cwd=folder,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
                assert result.returncode == 0, f"{line}\n{result.stdout}\n{result.stderr}"
                last_output = result.stdout
        else:
            write_block(folder, title, body)
    assert "greet_user  in sync" in last_output
    assert (folder / ".pgdata" / "PG_VERSION").is_file()
    socket = folder / ".pgdata"
    # The server stopped with the last command; start it once more to read the rows.
    check = subprocess.run(
        ["alembic", "check"], cwd=folder, env=env, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    from alembic_pgflow.database.embedded import embedded_database_url

    url = embedded_database_url(socket).replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(url) as connection:
        flows = read_catalog(connection).flows
    assert [step.slug for step in flows["greet_user"].shape.structure.steps] == [
        "load_user",
        "write_greeting",
        "send_email",
    ]


def test_readme_quick_start_commands_exist_and_ci_calls_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```sh\n(.*?)```", quick_start, re.S)
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
