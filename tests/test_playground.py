"""The playground in a real browser (headless Chromium from Debian, driven by Playwright), on a
copy of the sample project migrated into this test's database."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.alembic_project import ROOT, AlembicProject
from tests.conftest import PgflowTemplate
from tests.database_helpers import run_sql

pytestmark = [pytest.mark.alembic_cli]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT = ROOT / "docs" / "playground.png"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def sample(tmp_path: Path, database_url: str) -> Iterator[tuple[Path, str]]:
    """The sample project, migrated to head in this test's database, and its playground."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz is not installed (apt-get install graphviz)")
    copy = tmp_path / "sample_project"
    shutil.copytree(ROOT / "sample_project", copy, ignore=shutil.ignore_patterns(".pgdata"))
    env = {**os.environ, "DATABASE_URL": database_url, "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=copy, env=env, check=True
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "alembic_pgflow", "playground", "--port", str(port)],
        cwd=copy,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url + "api/snapshot", timeout=2) as response:
                if b'"flows"' in response.read():
                    break
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the playground did not start: {server.stdout}")
        time.sleep(0.2)
    try:
        yield copy, url
    finally:
        server.terminate()
        output = server.communicate(timeout=10)[0]
        assert "http://127.0.0.1:" in output
        assert "this machine only, read-only" in output


def test_the_page_draws_clicks_and_reloads(
    sample: tuple[Path, str], postgresql: psycopg.Connection, pgflow_template: PgflowTemplate
) -> None:
    from playwright.sync_api import expect, sync_playwright

    project, url = sample
    if pgflow_template.has_runtime:
        run_sql(postgresql, ["""SELECT pgflow.start_flow('analyze_website', '{"url": "x"}')"""])
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url)

        # Every step a node, every dependency an edge (plus the flow input's edge).
        nodes = page.locator("#graph g.step")
        expect(nodes).to_have_count(4)
        ids = sorted(nodes.evaluate_all("nodes => nodes.map(node => node.id)"))
        assert ids == ["step-save_to_db", "step-sentiment", "step-summary", "step-website"]
        expect(page.locator("#graph g.edge")).to_have_count(5)
        expect(page.locator("nav button.current")).to_contain_text("analyze_website")
        expect(page.locator("nav button.current")).to_contain_text("in sync")

        # Click a step: its options, with the flow's effective values marked.
        page.locator("#step-summary").click()
        table = page.locator("#step-table")
        expect(table).to_have_attribute("data-step", "summary")
        expect(table).to_contain_text("timeout300")
        expect(table).to_contain_text("max_attempts5 (flow's)")
        page.locator("#step-website").click()
        expect(table).to_contain_text("handlershop.flows.fetch_website")

        # The other flow: a map step drawn as a 3D box, and its SQL for a chosen release.
        page.locator("nav button", has_text="score_reviews").click()
        expect(page.locator("#graph g.step")).to_have_count(3)
        page.locator("#target").select_option("0.7")
        expect(page.locator("#sql")).to_contain_text("step_type => 'map'")

        page.locator("nav button", has_text="analyze_website").click()
        page.locator("#step-summary").click()
        if pgflow_template.has_runtime:
            # The run's step states on the DAG, stepped through event by event.
            runs = page.locator("#runs li")
            expect(runs).to_have_count(1)
            runs.first.click()
            expect(page.locator("#event")).to_contain_text("website started")
            page.locator("#prev").click()
            expect(page.locator("#event")).to_contain_text("created")
            page.locator("#next").click()
        if os.environ.get("ALEMBIC_PGFLOW_UPDATE_SCREENSHOT"):
            page.screenshot(path=str(SCREENSHOT), full_page=True)

        reloads_on_every_save(page, project)
        browser.close()


def reloads_on_every_save(page: Any, project: Path) -> None:
    """Editing a flow module updates the page by itself; a broken one shows its error."""
    from playwright.sync_api import expect

    flows = project / "shop" / "flows.py"
    source = flows.read_text()
    join = '.step("save_to_db", depends_on=["summary", "sentiment"], handler=save)'
    assert join in source
    flows.write_text(
        source.replace(join, join + '\n    .step("notify", depends_on=["save_to_db"])')
    )
    expect(page.locator("#step-notify")).to_have_count(1, timeout=90_000)
    expect(page.locator("nav button.current")).to_contain_text("structure changed")
    flows.write_text(source + "\nbroken = 1 / 0\n")
    expect(page.locator("#error")).to_contain_text("ZeroDivisionError", timeout=90_000)
    flows.write_text(source)
    expect(page.locator("#error")).to_be_hidden(timeout=90_000)
    expect(page.locator("#graph g.step")).to_have_count(4)


def test_show_writes_the_same_drawing_as_svg(
    tmp_path: Path, alembic_project: AlembicProject
) -> None:
    if shutil.which("dot") is None:
        pytest.skip("Graphviz is not installed (apt-get install graphviz)")
    alembic_project.write_flows(
        "from alembic_pgflow import Flow\n"
        "f = Flow('drawn').step('a').map('b', array='a').step('c', depends_on=['a'], "
        "when_unmet='skip', forbidden_input_pattern={'x': 1})\n"
    )
    target = tmp_path / "drawn.svg"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic_pgflow",
            "show",
            "drawn",
            "--format",
            "svg",
            "-o",
            str(target),
        ],
        cwd=alembic_project.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    svg = target.read_text()
    assert svg.startswith("<svg")
    for slug in ("a", "b", "c"):
        assert f'id="step&#45;{slug}"' in svg
    assert "stroke-dasharray" in svg  # the conditional step's dashed outline
    assert svg.count('class="edge"') == 3
