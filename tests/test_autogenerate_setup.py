"""Configuration, discovery and the errors a user meets before any revision is written."""

from __future__ import annotations

import alembic
import psycopg
import pytest

from alembic_pgflow import read_catalog
from tests.alembic_project import AlembicProject, function_body
from tests.conftest import PgflowTemplate
from tests.database_helpers import run_sql, strip_step_conditions

pytestmark = pytest.mark.alembic_cli

ALEMBIC_VERSION = tuple(int(part) for part in alembic.__version__.split(".")[:2])


def failed(project: AlembicProject, *args: str) -> str:
    """Run an alembic command that must fail without writing a revision; return its output."""
    before = project.revisions()
    result = project.alembic(*args, check=False)
    assert result.returncode != 0, result.stdout + result.stderr
    assert project.revisions() == before
    return result.stdout


def test_module_that_fails_to_import(alembic_project: AlembicProject) -> None:
    alembic_project.write_flows("from alembic_pgflow import Flow\nbroken = 1 / 0\n")
    output = failed(alembic_project, "revision", "--autogenerate")
    assert output.startswith(
        "FAILED: could not import pgflow module 'flows_app.flows': ZeroDivisionError: "
        "division by zero (at "
    )
    assert "flows_app/flows.py:2)" in output


def test_a_definition_error_names_the_users_line(alembic_project: AlembicProject) -> None:
    alembic_project.write_flows(
        "from alembic_pgflow import Flow\n\nf = Flow('f').step('a').step('b', depnds_on=['a'])\n"
    )
    output = failed(alembic_project, "revision", "--autogenerate")
    assert output.startswith(
        "FAILED: could not import pgflow module 'flows_app.flows': FlowDefinitionError: flow "
        "'f', step 'b', field 'depnds_on': unknown keyword; did you mean 'depends_on'? accepted: "
        "depends_on, max_attempts"
    )
    assert output.rstrip().endswith("flows_app/flows.py:3)")
    assert "alembic_pgflow" not in output.split("(at ")[-1]


def test_missing_module(alembic_project: AlembicProject) -> None:
    alembic_project.set_option("pgflow_modules", "nowhere.flows")
    output = failed(alembic_project, "revision", "--autogenerate")
    assert output == (
        "FAILED: could not import pgflow module 'nowhere.flows': no module named 'nowhere' (is "
        "its folder on sys.path? see prepend_sys_path in alembic.ini)\n"
    )


def test_two_flows_with_one_slug(alembic_project: AlembicProject) -> None:
    alembic_project.set_option("pgflow_modules", "flows_app")
    alembic_project.write(
        "flows_app/billing.py",
        "from alembic_pgflow import Flow\ninvoice = Flow('invoice').step('a')\n",
    )
    alembic_project.write("flows_app/sales/__init__.py", "")
    alembic_project.write(
        "flows_app/sales/orders.py",
        "from alembic_pgflow import Flow\nsame = Flow('invoice').step('b')\n",
    )
    output = failed(alembic_project, "revision", "--autogenerate")
    assert output == (
        "FAILED: two different flows have the slug 'invoice': flows_app.billing:invoice and "
        "flows_app.sales.orders:same; rename one of them\n"
    )


def test_slugs_differing_only_in_case(alembic_project: AlembicProject) -> None:
    alembic_project.write_flows(
        "from alembic_pgflow import Flow\na = Flow('Orders').step('a')\nb = Flow('orders').step('a')\n"
    )
    output = failed(alembic_project, "revision", "--autogenerate")
    assert "flow slugs 'Orders' and 'orders' differ only in case" in output


def test_packages_are_searched_recursively_and_reexports_count_once(
    alembic_project: AlembicProject,
) -> None:
    alembic_project.set_option("pgflow_modules", "flows_app")
    alembic_project.write(
        "flows_app/deep/__init__.py", "from flows_app.deep.er.flows import nested\n"
    )
    alembic_project.write("flows_app/deep/er/__init__.py", "")
    alembic_project.write(
        "flows_app/deep/er/flows.py",
        "from alembic_pgflow import Flow\nnested = Flow('nested').step('a')\n",
    )
    upgrade = function_body(alembic_project.autogenerate(), "upgrade")
    assert upgrade.count("PERFORM pgflow.create_flow('nested')") == 1


def test_database_without_pgflow(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    postgresql.execute("DROP SCHEMA pgflow CASCADE")
    postgresql.commit()
    alembic_project.write_flows("from alembic_pgflow import Flow\nf = Flow('f').step('a')\n")
    output = failed(alembic_project, "revision", "--autogenerate")
    assert output == (
        "FAILED: the database has no pgflow definition schema (missing pgflow.flows, "
        "pgflow.steps, pgflow.deps): install pgflow in this database before managing flows\n"
    )


def test_upgrade_on_a_database_without_pgflow(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    alembic_project.write_flows("from alembic_pgflow import Flow\nf = Flow('f').step('a')\n")
    alembic_project.autogenerate()
    postgresql.execute("DROP SCHEMA pgflow CASCADE")
    postgresql.commit()
    result = alembic_project.alembic("upgrade", "head", check=False)
    assert result.returncode != 0
    assert (
        f"pgflow is not installed in database {postgresql.info.dbname}, and this revision "
        "creates pgflow flows" in result.stderr
    )
    assert "HINT:  Install pgflow in this database first" in result.stderr
    assert "relation" not in result.stderr


def test_database_lacking_a_feature(
    alembic_project: AlembicProject, postgresql: psycopg.Connection, pgflow_template: PgflowTemplate
) -> None:
    if pgflow_template.real_pgflow:
        pytest.skip("rewrites the stand-in schema into an older release's shape")
    strip_step_conditions(postgresql)
    alembic_project.write_flows(
        "from alembic_pgflow import Flow\nf = Flow('f').step('a').step('b', when_unmet='fail')\n"
    )
    output = failed(alembic_project, "revision", "--autogenerate")
    assert output == (
        "FAILED: flow 'f', step 'b', field 'when_unmet': uses step conditions (input patterns, "
        "when_unmet, when_exhausted), which pgflow 0.14.0 introduced; the database's pgflow "
        "(detected as 0.7.0 or later) does not have it (flows_app.flows:f); upgrade pgflow "
        "in the database first, or remove the feature from the flow\n"
    )
    # Without conditions the same database gets a guard that does not read the missing columns.
    alembic_project.write_flows(
        "from alembic_pgflow import Flow\nf = Flow('f').step('a').map('b')\n"
    )
    upgrade = function_body(alembic_project.autogenerate(), "upgrade")
    assert '{"slug": "b", "step_type": "map"}' in upgrade
    alembic_project.alembic("upgrade", "head")
    # The guard reads the missing columns as pgflow's defaults: the same revision runs again.
    run_sql(postgresql, ["DELETE FROM alembic_version"])
    alembic_project.alembic("upgrade", "head")
    assert [s.slug for s in read_catalog(postgresql).flows["f"].shape.structure.steps] == ["a", "b"]


def test_settings_from_context_configure(alembic_project: AlembicProject) -> None:
    alembic_project.set_option("pgflow_modules", None)
    env = alembic_project.root / "migrations" / "env.py"
    env.write_text(
        env.read_text().replace(
            "target_metadata=target_metadata\n",
            "target_metadata=target_metadata, pgflow_modules=['flows_app.flows'], pgflow_modles=1\n",
        )
    )
    alembic_project.write_flows(
        "from alembic_pgflow import Flow\nf = Flow('from_configure').step('a')\n"
    )
    output = failed(alembic_project, "revision", "--autogenerate")
    assert output.startswith(
        "FAILED: unknown setting 'pgflow_modles' in context.configure(); did you mean "
        "'pgflow_modules'? alembic-pgflow reads pgflow_modules,"
    )
    env.write_text(env.read_text().replace(", pgflow_modles=1", ""))
    assert "create_flow('from_configure')" in function_body(
        alembic_project.autogenerate(), "upgrade"
    )


def test_a_misspelled_setting_in_alembic_ini_is_an_error(alembic_project: AlembicProject) -> None:
    alembic_project.set_option("pgflow_modules", None)
    alembic_project.set_option("pgflow_module", "flows_app.flows")
    alembic_project.write_flows("from alembic_pgflow import Flow\nf = Flow('f').step('a')\n")
    output = failed(alembic_project, "check")
    assert output.startswith("FAILED: unknown setting 'pgflow_module' in [alembic] of ")
    assert "did you mean 'pgflow_modules'?" in output


@pytest.mark.skipif(ALEMBIC_VERSION < (1, 16), reason="pyproject.toml settings need Alembic 1.16")
def test_settings_from_pyproject(alembic_project: AlembicProject) -> None:
    alembic_project.set_option("pgflow_modules", None)
    alembic_project.write(
        "pyproject.toml", '[tool.alembic]\npgflow_modules = ["flows_app.flows"]\n'
    )
    alembic_project.write_flows(
        "from alembic_pgflow import Flow\nf = Flow('from_toml').step('a')\n"
    )
    upgrade = function_body(alembic_project.autogenerate(), "upgrade")
    assert "create_flow('from_toml')" in upgrade


def test_not_configured_compares_nothing(alembic_project: AlembicProject) -> None:
    alembic_project.set_option("pgflow_modules", None)
    alembic_project.write_flows("from alembic_pgflow import Flow\nf = Flow('ignored').step('a')\n")
    result = alembic_project.alembic("revision", "--autogenerate")
    assert "pgflow_modules is not set: no flows compared" in result.stderr
    assert "ignored" not in alembic_project.revisions()[-1].read_text()


def test_bad_options_changes_setting(alembic_project: AlembicProject) -> None:
    alembic_project.set_option("pgflow_options_changes", "ignore")
    alembic_project.write_flows("from alembic_pgflow import Flow\n")
    output = failed(alembic_project, "revision", "--autogenerate")
    assert output == "FAILED: pgflow_options_changes must be 'update' or 'error', got 'ignore'\n"


def test_bad_new_flow_limit_setting(alembic_project: AlembicProject) -> None:
    alembic_project.set_option("pgflow_max_new_flows_per_revision", "many")
    alembic_project.write_flows("from alembic_pgflow import Flow\n")
    output = failed(alembic_project, "revision", "--autogenerate")
    assert (
        output
        == "FAILED: pgflow_max_new_flows_per_revision must be a whole number >= 0, got 'many'\n"
    )


def test_autogenerate_logs_each_flow_decision(alembic_project: AlembicProject) -> None:
    alembic_project.write_flows("from alembic_pgflow import Flow\nf = Flow('logged').step('a')\n")
    created = alembic_project.alembic("revision", "--autogenerate", "-m", "one")
    assert "Detected new pgflow flow 'logged'" in created.stderr
    alembic_project.alembic("upgrade", "head")
    alembic_project.write_flows(
        "from alembic_pgflow import Flow\nf = Flow('logged', timeout=7).step('a')\n"
    )
    tuned = alembic_project.alembic("revision", "--autogenerate", "-m", "two")
    assert "Detected option change of pgflow flow 'logged': flow: timeout 60 -> 7" in tuned.stderr


@pytest.mark.skipif(ALEMBIC_VERSION < (1, 16), reason="pyproject.toml settings need Alembic 1.16")
def test_the_cli_takes_prepend_sys_path_from_pyproject(alembic_project: AlembicProject) -> None:
    alembic_project.set_option("prepend_sys_path", None)
    alembic_project.set_option("pgflow_modules", None)
    alembic_project.write(
        "pyproject.toml",
        '[tool.alembic]\nprepend_sys_path = ["src"]\npgflow_modules = ["elsewhere"]\n',
    )
    alembic_project.write(
        "src/elsewhere.py", "from alembic_pgflow import Flow\nf = Flow('from_src').step('a')\n"
    )
    import subprocess
    import sys

    shown = subprocess.run(
        [sys.executable, "-m", "alembic_pgflow", "show"],
        cwd=alembic_project.root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.stdout == "from_src  elsewhere:f\n", shown.stderr
