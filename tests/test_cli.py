"""The alembic-pgflow command: every command's output and exit code."""

from __future__ import annotations

import json
import re
import subprocess

import psycopg
import pytest

from alembic_pgflow import Flow, compile_flow, read_catalog, shape_of
from tests.alembic_project import AlembicProject

pytestmark = [pytest.mark.alembic_cli, pytest.mark.needs_step_conditions]

FLOWS = """
    from alembic_pgflow import Flow

    orders = (
        Flow("orders", timeout=30)
        .step("fetch")
        .map("lines", array="fetch", max_attempts=2)
        .step("total", depends_on=["lines"], required_input_pattern={"currency": "EUR"})
    )
    refunds = Flow("refunds").step("check")
"""
ORDERS = (
    Flow("orders", timeout=30)
    .step("fetch")
    .map("lines", array="fetch", max_attempts=2)
    .step("total", depends_on=["lines"], required_input_pattern={"currency": "EUR"})
)


def cli(
    project: AlembicProject, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return project.cli(*args, env=env)


@pytest.fixture
def project(alembic_project: AlembicProject) -> AlembicProject:
    alembic_project.write_flows(FLOWS)
    return alembic_project


def test_compile_all_and_one(project: AlembicProject) -> None:
    everything = cli(project, "compile")
    assert everything.returncode == 0
    assert everything.stdout == (
        "-- orders (flows_app.flows:orders)\n"
        + "\n".join(compile_flow(ORDERS))
        + "\n\n-- refunds (flows_app.flows:refunds)\n"
        "SELECT pgflow.create_flow('refunds');\n"
        "SELECT pgflow.add_step('refunds', 'check');\n"
    )
    one = cli(project, "compile", "refunds", "--target", "0.7")
    assert one.stdout.startswith("-- refunds")
    assert "orders" not in one.stdout


def test_compile_errors_are_one_line(project: AlembicProject) -> None:
    too_old = cli(project, "compile", "orders", "--target", "0.13")
    assert too_old.returncode == 2
    assert too_old.stderr == (
        "Error: flow 'orders', step 'total', field 'required_input_pattern': uses step conditions "
        "(input patterns, when_unmet, when_exhausted), which pgflow 0.14.0 introduced; pgflow "
        "0.13.0 does not have it\n"
    )
    unknown = cli(project, "compile", "nope")
    assert (unknown.returncode, unknown.stderr) == (
        2,
        "Error: no flow 'nope' in pgflow_modules (flows in code: orders, refunds)\n",
    )


def test_show_text(project: AlembicProject) -> None:
    result = cli(project, "show", "orders")
    shape = shape_of(ORDERS)
    assert result.returncode == 0
    assert result.stdout == (
        "flow orders  (flows_app.flows:orders)\n"
        "  options: max_attempts=3 base_delay=5 timeout=30\n"
        f"  structure checksum: {shape.structure_checksum}\n"
        f"  options checksum:   {shape.options_checksum}\n"
        "  steps:\n"
        "     0 fetch  single\n"
        "     1 lines  map     over fetch  max_attempts=2\n"
        '     2 total  single  after lines  required_input_pattern={"currency": "EUR"}\n'
    )


def test_show_json(project: AlembicProject) -> None:
    data = json.loads(cli(project, "show", "orders", "--format", "json").stdout)
    assert data["slug"] == "orders"
    assert data["structure_checksum"] == shape_of(ORDERS).structure_checksum
    assert data["steps"][1] == {
        "index": 1,
        "slug": "lines",
        "step_type": "map",
        "depends_on": ["fetch"],
        "options": {"max_attempts": 2},
        "required_input_pattern": None,
        "forbidden_input_pattern": None,
        "when_unmet": None,
        "when_exhausted": None,
    }


def test_show_mermaid_and_dot(project: AlembicProject) -> None:
    assert cli(project, "show", "orders", "--format", "mermaid").stdout == (
        "flowchart TD\n"
        '  __input(["input"])\n'
        '  fetch["fetch"]\n'
        '  lines[["lines (map)"]]\n'
        '  total["total"]\n'
        "  __input --> fetch\n"
        "  fetch --> lines\n"
        "  lines --> total\n"
    )
    assert cli(project, "show", "refunds", "--format", "dot").stdout == (
        'digraph "refunds" {\n'
        "  rankdir=LR;\n"
        '  "__input" [shape=oval, label="input"];\n'
        '  "check" [shape=box];\n'
        '  "__input" -> "check";\n'
        "}\n"
    )


def test_status_through_a_flow_lifecycle(
    project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    new = cli(project, "status")
    assert (new.returncode, new.stdout) == (
        1,
        "SLUG     STATUS             LOCATION\n"
        "orders   new                flows_app.flows:orders\n"
        "refunds  new                flows_app.flows:refunds\n",
    )
    project.autogenerate()
    project.alembic("upgrade", "head")
    assert cli(project, "status").returncode == 0

    with postgresql.cursor() as cursor:
        for statement in compile_flow(Flow("legacy").step("a")):
            cursor.execute(statement)
    postgresql.commit()
    project.write_flows(
        FLOWS.replace('Flow("orders", timeout=30)', 'Flow("orders", timeout=45)').replace(
            '.step("check")', '.step("check").step("notify")'
        )
    )
    changed = cli(project, "status")
    assert (changed.returncode, changed.stdout) == (
        1,
        "SLUG     STATUS             LOCATION\n"
        "legacy   only in database   -\n"
        "orders   options changed    flows_app.flows:orders\n"
        "refunds  structure changed  flows_app.flows:refunds\n",
    )


def test_diff(project: AlembicProject) -> None:
    project.autogenerate()
    project.alembic("upgrade", "head")
    project.write_flows(
        FLOWS.replace('Flow("orders", timeout=30)', 'Flow("orders", timeout=45)').replace(
            '.step("check")', '.step("check").step("notify", depends_on=["check"])'
        )
    )
    options = cli(project, "diff", "orders")
    assert options.returncode == 1
    assert options.stdout.startswith(
        "orders: options changed\n  structure checksum in the database: "
    )
    assert options.stdout.endswith("  - flow: timeout 30 -> 45\n")
    structure = cli(project, "diff", "refunds")
    assert structure.returncode == 1
    assert "  - step 'notify' added at position 1 (single, depends on check)\n" in structure.stdout
    assert structure.stdout.endswith(
        "  a structure cannot change under its slug: give the new structure a new slug\n"
    )
    unknown = cli(project, "diff", "nope")
    assert unknown.returncode == 2
    assert unknown.stderr.endswith("\nError: no flow 'nope' in code or in the database\n")


def test_diff_in_sync(project: AlembicProject) -> None:
    project.autogenerate()
    project.alembic("upgrade", "head")
    result = cli(project, "diff", "refunds")
    assert result.returncode == 0
    assert result.stdout.startswith("refunds: in sync\n")


def test_install_schema(project: AlembicProject, postgresql: psycopg.Connection) -> None:
    postgresql.execute("DROP SCHEMA pgflow CASCADE")
    postgresql.commit()
    missing = cli(project, "status")
    assert (missing.returncode, missing.stderr) == (
        2,
        "Error: the database has no pgflow definition schema (missing pgflow.flows, pgflow.steps, "
        "pgflow.deps): install pgflow in this database before managing flows\n",
    )
    installed = cli(project, "dev", "install-schema")
    assert installed.returncode == 0
    assert installed.stdout == (
        "installed the pgflow 0.14 definition schema stand-in (for development only: "
        "production databases run real pgflow)\n"
    )
    assert read_catalog(postgresql).flows == {}
    again = cli(project, "dev", "install-schema")
    assert again.stdout == "the database already has a pgflow schema; nothing installed\n"


def test_configuration_errors(project: AlembicProject) -> None:
    no_config = cli(project, "-c", "missing.ini", "status")
    assert (no_config.returncode, no_config.stderr) == (
        2,
        "Error: no Alembic config at 'missing.ini': run from the project folder or pass -c alembic.ini\n",
    )
    good_url = project.database_url
    project.set_option("sqlalchemy.url", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    unreachable = cli(project, "status")
    project.set_option("sqlalchemy.url", good_url)
    assert unreachable.returncode == 2
    assert unreachable.stderr.startswith("Error: cannot connect to the database: ")
    assert "Traceback" not in unreachable.stderr
    project.set_option("pgflow_modules", None)
    unset = cli(project, "compile")
    assert unset.returncode == 2
    assert unset.stderr.startswith(
        "Error: pgflow_modules is not set: add 'pgflow_modules = myapp.flows'"
    )
    project.write_flows("from alembic_pgflow import Flow\nbad = Flow('bad').step('a', timeout=1)\n")
    project.set_option("pgflow_modules", "flows_app.flows")
    broken = cli(project, "compile")
    assert broken.returncode == 2
    assert broken.stderr.startswith(
        "Error: could not import pgflow module 'flows_app.flows': FlowDefinitionError: flow 'bad', "
        "step 'a', field 'timeout': must be at least 3, got 1 (at "
    )


def test_the_cli_reads_the_database_alembic_reads(
    project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    project.autogenerate()
    project.alembic("upgrade", "head")
    # The stock env.py ignores DATABASE_URL; so must the CLI, or the two disagree.
    elsewhere = {"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/elsewhere"}
    status = cli(project, "status", env=elsewhere)
    assert status.returncode == 0, status.stderr
    info = postgresql.info
    (line,) = status.stderr.splitlines()
    assert line.startswith(f"database: postgresql+psycopg://{info.user}@/{info.dbname}?host=")
    assert re.search(rf"&port={info.port} \(pgflow 0\.\d+\.\d+ or later\)$", line), line
    assert project.alembic("check", check=False).returncode == 0


def test_status_as_json(project: AlembicProject) -> None:
    project.write_flows(FLOWS.replace("timeout=30", "timeout=45"))
    result = cli(project, "status", "--format", "json")
    assert result.returncode == 1
    rows = json.loads(result.stdout)
    assert [(row["slug"], row["status"]) for row in rows] == [
        ("orders", "new"),
        ("refunds", "new"),
    ]
    assert rows[0]["location"] == "flows_app.flows:orders"
    assert rows[0]["structure_checksum_in_database"] is None


def test_help_and_version_short_options(project: AlembicProject) -> None:
    import alembic_pgflow

    assert cli(project, "-h").stdout.startswith("Usage: ")
    version = cli(project, "-V")
    assert version.returncode == 0
    assert alembic_pgflow.__version__ in version.stdout


def test_compile_prints_nothing_when_a_flow_fails(project: AlembicProject) -> None:
    result = cli(project, "compile", "--target", "0.13")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "uses step conditions" in result.stderr


def test_show_lists_flows_and_shows_a_flow_only_in_the_database(
    project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    listed = cli(project, "show")
    assert listed.stdout == "orders  flows_app.flows:orders\nrefunds  flows_app.flows:refunds\n"
    postgresql.execute("SELECT pgflow.create_flow('legacy', timeout => 9)")
    postgresql.execute("SELECT pgflow.add_step('legacy', 'a')")
    postgresql.execute("SELECT pgflow.add_step('legacy', 'b', ARRAY['a'], max_attempts => 2)")
    postgresql.commit()
    shown = cli(project, "show", "legacy")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "flow legacy  (in the database)"
    assert "     1 b  single  after a  max_attempts=2" in shown.stdout
    dot = cli(project, "show", "legacy", "--format", "dot")
    assert '"a" -> "b";' in dot.stdout
