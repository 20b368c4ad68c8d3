"""The package as a user gets it: the sdist built from this tree and the wheel built from that
sdist, each with the declared build requirements in an isolated environment (setuptools comes
from the package index, or pip's cache), and the wheel installed into a fresh venv where its
command and import work. Deselect with ``-m 'not packaging'``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.alembic_project import ROOT

pytestmark = pytest.mark.packaging

VERSION: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
NEVER_SHIPPED = (
    ".venv",
    ".pgdata",
    "__pycache__",
    ".pyc",
    ".hypothesis",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".git/",
)
NOT_COPIED = ("*.egg-info", "build", "dist", ".git", ".venv*", ".pgdata", "*_cache", ".hypothesis")


@dataclass(frozen=True)
class Distributions:
    sdist: Path
    wheel: Path


def _run(
    command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> Distributions:
    """``python -m build`` without flags: the sdist from this tree, then the wheel from the
    sdist, so the sdist is proven to hold what a build needs."""
    # From a copy without the products of earlier builds: setuptools adds the files listed in
    # an existing *.egg-info/SOURCES.txt to the sdist, which would hide a missing entry.
    source = tmp_path_factory.mktemp("source") / "alembic-pgflow"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_COPIED), symlinks=True)
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(source)])
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return Distributions(sdist, wheel)


def test_sdist_ships_the_tests_and_what_they_read(distributions: Distributions) -> None:
    prefix = f"alembic_pgflow-{VERSION}/"
    with tarfile.open(distributions.sdist) as archive:
        names = {name.removeprefix(prefix) for name in archive.getnames()}
    for shipped in (
        "LICENSE",
        "README.md",
        "pyproject.toml",
        "docs/getting-started.md",
        "sample_project/alembic.ini",
        "sample_project/migrations/env.py",
        "tests/conftest.py",
        "tests/test_packaging.py",
        "alembic_pgflow/py.typed",
        "alembic_pgflow/database/sql/pgflow_definition_0_14.sql",
        ".ci/run",
    ):
        assert shipped in names
    assert [name for name in names if any(part in name for part in NEVER_SHIPPED)] == []


def test_wheel_ships_only_the_package(distributions: Distributions) -> None:
    with zipfile.ZipFile(distributions.wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"alembic_pgflow-{VERSION}.dist-info/METADATA").decode()
    assert "alembic_pgflow/py.typed" in names
    assert "alembic_pgflow/database/sql/pgflow_definition_0_14.sql" in names
    assert f"alembic_pgflow-{VERSION}.dist-info/licenses/LICENSE" in names
    assert {name.split("/")[0] for name in names} == {
        "alembic_pgflow",
        f"alembic_pgflow-{VERSION}.dist-info",
    }
    assert not [name for name in names if name.startswith("tests/") or ".pyc" in name]
    in_tree = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "alembic_pgflow").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    # A data file the package reads must be listed in [tool.setuptools.package-data].
    assert sorted(in_tree - names) == []
    assert "License-Expression: MIT\n" in metadata


def test_wheel_installs_and_runs_in_a_fresh_venv(
    distributions: Distributions, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    # A venv without pip of its own (ensurepip takes longer than the install): this
    # environment's pip installs into it.
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    bin_dir = venv / "bin"
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    env |= {"VIRTUAL_ENV": str(venv), "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}"}
    pip = [
        sys.executable,
        "-m",
        "pip",
        "--disable-pip-version-check",
        "--python",
        str(bin_dir / "python"),
    ]
    _run([*pip, "install", "--quiet", str(distributions.wheel)], env=env, cwd=tmp_path)
    _run([*pip, "check"], env=env, cwd=tmp_path)

    version = _run([str(bin_dir / "alembic-pgflow"), "--version"], env=env, cwd=tmp_path)
    assert version.stdout.split()[-1] == VERSION
    usage = _run([str(bin_dir / "alembic-pgflow"), "--help"], env=env, cwd=tmp_path)
    assert usage.stdout.startswith("Usage: alembic-pgflow ")
    imported = _run(
        [
            str(bin_dir / "python"),
            "-c",
            "import alembic_pgflow; print(alembic_pgflow.__version__, alembic_pgflow.__file__)",
        ],
        env=env,
        cwd=tmp_path,
    )
    module_version, module_file = imported.stdout.split()
    assert module_version == VERSION
    assert Path(module_file).is_relative_to(venv)  # the wheel's copy, not this source tree
