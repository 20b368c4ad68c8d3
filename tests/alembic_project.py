"""A throwaway Alembic project driven through the real ``alembic`` command line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class AlembicProject:
    """A stock ``alembic init`` project with the two lines alembic-pgflow asks for."""

    root: Path
    database_url: str

    @classmethod
    def create(
        cls, root: Path, database_url: str, modules: str = "flows_app.flows"
    ) -> AlembicProject:
        """Run ``alembic init`` and apply the documented set-up."""
        root.mkdir(parents=True, exist_ok=True)
        project = cls(root, database_url)
        project.alembic("init", "migrations")
        env = root / "migrations" / "env.py"
        source = env.read_text()
        source = "import alembic_pgflow  # noqa: F401\n" + source
        source = source.replace(
            "target_metadata = None",
            "from sqlalchemy import MetaData\n\ntarget_metadata = MetaData()",
        )
        env.write_text(source)
        project.set_option("sqlalchemy.url", database_url)
        project.set_option("pgflow_modules", modules)
        (root / "flows_app").mkdir()
        (root / "flows_app" / "__init__.py").write_text("")
        return project

    def set_option(self, name: str, value: str | None) -> None:
        """Set (or, with ``None``, remove) an option of alembic.ini's ``[alembic]`` section."""
        ini = self.root / "alembic.ini"
        text = re.sub(rf"^{re.escape(name)} = .*\n", "", ini.read_text(), flags=re.M)
        if value is not None:
            text = text.replace("[alembic]\n", f"[alembic]\n{name} = {value}\n", 1)
        ini.write_text(text)

    def write(self, relative: str, source: str) -> None:
        """Write a file of the project (dedented)."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))

    def write_flows(self, source: str) -> None:
        """Replace ``flows_app/flows.py``."""
        self.write("flows_app/flows.py", source)

    def alembic(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``alembic ARGS`` in the project; with ``check``, fail on a non-zero exit."""
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        result = subprocess.run(
            [sys.executable, "-m", "alembic", *args],
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"alembic {' '.join(args)} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``alembic-pgflow ARGS`` in the project, with no terminal (as in scripts)."""
        return subprocess.run(
            [sys.executable, "-m", "alembic_pgflow", *args],
            cwd=self.root,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", **(env or {})},
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def revisions(self) -> list[Path]:
        """Revision files, oldest first by modification order of creation."""
        versions = self.root / "migrations" / "versions"
        return sorted(versions.glob("*.py"), key=lambda path: path.stat().st_mtime_ns)

    def autogenerate(self, message: str = "flows", rev_id: str | None = None) -> Path:
        """``alembic revision --autogenerate`` (with ``--rev-id`` if given) and the file it
        wrote."""
        before = set(self.revisions())
        self.alembic(
            "revision", "--autogenerate", "-m", message, *(("--rev-id", rev_id) if rev_id else ())
        )
        (written,) = set(self.revisions()) - before
        return written


def function_body(revision: Path, name: str) -> str:
    """The dedented body of ``upgrade`` or ``downgrade`` in a revision file, without the
    docstring that newer Alembic templates put first."""
    source = revision.read_text()
    match = re.search(rf"^def {name}\(\) -> None:\n(.*?)(?=^def |\Z)", source, re.M | re.S)
    assert match is not None, source
    body = textwrap.dedent(match[1]).strip() + "\n"
    return re.sub(r'\A"""[^\n]*"""\n', "", body)
