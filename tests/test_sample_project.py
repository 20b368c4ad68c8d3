"""The sample project: its committed revisions upgrade, check and downgrade on PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from alembic_pgflow import read_catalog
from tests.alembic_project import ROOT, function_body

pytestmark = [pytest.mark.alembic_cli]

SAMPLE = ROOT / "sample_project"


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A copy of the sample, so that runs leave nothing in the repository."""
    copy = tmp_path / "sample_project"
    shutil.copytree(SAMPLE, copy, ignore=shutil.ignore_patterns(".pgdata", "__pycache__"))
    return copy


def run(folder: Path, *command: str, database_url: str | None) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    if database_url:
        env["DATABASE_URL"] = database_url
    tool = {
        "alembic": [sys.executable, "-m", "alembic"],
        "pgflow": [sys.executable, "-m", "alembic_pgflow"],
    }
    result = subprocess.run(
        [*tool[command[0]], *command[1:]],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return result


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_upgrade_check_downgrade(
    sample: Path, database_url: str, postgresql: psycopg.Connection
) -> None:
    ok(run(sample, "alembic", "upgrade", "head", database_url=database_url))
    catalog = read_catalog(postgresql)
    assert list(catalog.flows) == ["analyze_website", "score_reviews"]
    assert catalog.flows["analyze_website"].shape.options.max_attempts == 5
    postgresql.rollback()
    assert postgresql.execute("SELECT to_regclass('public.websites') IS NOT NULL").fetchone() == (
        True,
    )
    assert "No new upgrade operations detected." in ok(
        run(sample, "alembic", "check", database_url=database_url)
    )
    status = ok(run(sample, "pgflow", "status", database_url=database_url))
    assert status.count("in sync") == 2

    ok(run(sample, "alembic", "downgrade", "-1", database_url=database_url))
    assert read_catalog(postgresql).flows["analyze_website"].shape.options.max_attempts == 3
    ok(run(sample, "alembic", "downgrade", "base", database_url=database_url))
    assert read_catalog(postgresql).flows == {}


# The second sample revision tuned these options; the first was generated before that.
TUNING = [
    ('Flow("analyze_website", max_attempts=5,', 'Flow("analyze_website", max_attempts=3,'),
    ('depends_on=["website"], timeout=300,', 'depends_on=["website"], timeout=120,'),
]


def test_committed_revisions_are_what_the_plugin_generates(sample: Path, database_url: str) -> None:
    versions = sample / "migrations" / "versions"
    committed = sorted(
        versions.glob("*.py"), key=lambda path: "Revises: \n" not in path.read_text()
    )
    assert len(committed) == 2
    texts = {path: path.read_text() for path in committed}
    flows_file = sample / "shop" / "flows.py"
    tuned = flows_file.read_text()
    untuned = tuned
    for new, old in TUNING:
        assert new in untuned
        untuned = untuned.replace(new, old)
    for path in committed:
        path.unlink()
    # Revision by revision: the plugin writes it again from the code of its time; compare.
    for path, code in zip(committed, [untuned, tuned], strict=True):
        flows_file.write_text(code)
        ok(
            run(
                sample,
                "alembic",
                "revision",
                "--autogenerate",
                "-m",
                "again",
                "--rev-id",
                re.search(r"^revision: str = '(\w+)'", texts[path], re.M)[1],  # type: ignore[index]
                database_url=database_url,
            )
        )
        (regenerated,) = list(versions.glob("*again.py"))
        path.write_text(texts[path])
        assert function_body(regenerated, "upgrade") == function_body(path, "upgrade")
        assert function_body(regenerated, "downgrade") == function_body(path, "downgrade")
        regenerated.unlink()
        ok(run(sample, "alembic", "upgrade", "head", database_url=database_url))


def test_embedded_database_without_database_url(sample: Path) -> None:
    installed = ok(run(sample, "pgflow", "dev", "install-schema", database_url=None))
    assert installed.startswith("installed the pgflow 0.14 definition schema stand-in")
    ok(run(sample, "alembic", "upgrade", "head", database_url=None))
    assert (sample / ".pgdata" / "PG_VERSION").is_file()
    status = ok(run(sample, "pgflow", "status", database_url=None))
    assert status.splitlines()[1:] == [
        "analyze_website  in sync            shop.flows:analyze_website",
        "score_reviews    in sync            shop.flows:score_reviews",
    ]
