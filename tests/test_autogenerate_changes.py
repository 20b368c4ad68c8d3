"""Changed flows: a changed structure fails loudly, changed options become an UPDATE."""

from __future__ import annotations

import psycopg
import pytest

from alembic_pgflow import Flow, compile_flow, structure_checksum
from tests.alembic_project import AlembicProject, function_body

pytestmark = pytest.mark.alembic_cli

ORIGINAL = """
    from alembic_pgflow import Flow

    analyze = (
        Flow("analyze_website", max_attempts=3, timeout=10)
        .step("website")
        .step("sentiment", depends_on=["website"], timeout=30)
        .step("summary", depends_on=["website"])
        .step("save_to_db", depends_on=["sentiment", "summary"])
    )
"""

RESTRUCTURED = """
    from alembic_pgflow import Flow

    analyze = (
        Flow("analyze_website", max_attempts=3, timeout=10)
        .step("website")
        .step("summary", depends_on=["website"])
        .step("sentiment", depends_on=["website", "summary"], timeout=30)
        .map("scores", array="summary")
        .step("save_to_db", depends_on=["sentiment", "scores"], when_exhausted="skip")
    )
"""


def applied(project: AlembicProject, flows: str) -> None:
    project.write_flows(flows)
    project.autogenerate("initial")
    project.alembic("upgrade", "head")


@pytest.mark.needs_step_conditions
def test_structure_change_fails_and_writes_no_file(alembic_project: AlembicProject) -> None:
    applied(alembic_project, ORIGINAL)
    files_before = alembic_project.revisions()
    alembic_project.write_flows(RESTRUCTURED)

    result = alembic_project.alembic("revision", "--autogenerate", "-m", "changed", check=False)

    assert result.returncode != 0
    assert alembic_project.revisions() == files_before
    old = (
        Flow("analyze_website")
        .step("website")
        .step("sentiment", depends_on=["website"])
        .step("summary", depends_on=["website"])
        .step("save_to_db", depends_on=["sentiment", "summary"])
    )
    new = (
        Flow("analyze_website")
        .step("website")
        .step("summary", depends_on=["website"])
        .step("sentiment", depends_on=["website", "summary"])
        .map("scores", array="summary")
        .step("save_to_db", depends_on=["sentiment", "scores"], when_exhausted="skip")
    )
    expected = f"""\
FAILED: pgflow flow 'analyze_website' (flows_app.flows:analyze) has another structure in code than in the database, and a flow's structure cannot change under its slug.
  structure checksum in the database: {structure_checksum(old)}
  structure checksum in code:         {structure_checksum(new)}
  - step 'scores' added at position 3 (map, depends on summary)
  - step 'summary' moved from position 2 to 1
  - step 'sentiment' moved from position 1 to 2
  - step 'sentiment': dependencies changed: added 'summary'
  - step 'save_to_db' moved from position 3 to 4
  - step 'save_to_db': dependencies changed: added 'scores'; removed 'summary'
  - step 'save_to_db': when_exhausted changed from 'fail' to 'skip'
  To ship the new structure, give it a new slug, for example Flow('analyze_website_v2', ...), and keep 'analyze_website' in code until it is retired; to keep the old structure, revert the change in code.
No revision was generated.
"""
    assert result.stdout == expected
    check = alembic_project.alembic("check", check=False)
    assert check.returncode != 0
    assert "has another structure in code than in the database" in check.stdout


@pytest.mark.needs_step_conditions
def test_suggested_slug_skips_taken_versions(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    applied(alembic_project, ORIGINAL)
    with postgresql.cursor() as cursor:
        for statement in compile_flow(Flow("analyze_website_v2").step("a")):
            cursor.execute(statement)
    postgresql.commit()
    alembic_project.write_flows(RESTRUCTURED)
    result = alembic_project.alembic("revision", "--autogenerate", check=False)
    assert "for example Flow('analyze_website_v3', ...)" in result.stdout


@pytest.mark.needs_step_conditions
def test_removed_step_and_changed_pattern_are_listed(alembic_project: AlembicProject) -> None:
    applied(
        alembic_project,
        """
        from alembic_pgflow import Flow
        f = Flow("f").step("a", required_input_pattern={"x": 1}).step("b").step("c")
        """,
    )
    alembic_project.write_flows(
        """
        from alembic_pgflow import Flow
        f = Flow("f").step("a", required_input_pattern={"x": 2}).step("b", when_unmet="fail")
        """
    )
    result = alembic_project.alembic("revision", "--autogenerate", check=False)
    assert "  - step 'c' removed\n" in result.stdout
    assert (
        '  - step \'a\': required_input_pattern changed from {"x":1} to {"x":2}\n' in result.stdout
    )
    assert "  - step 'b': when_unmet changed from 'skip' to 'fail'\n" in result.stdout


TUNED = """
    from alembic_pgflow import Flow

    analyze = (
        Flow("analyze_website", max_attempts=5, timeout=10)
        .step("website", start_delay=60)
        .step("sentiment", depends_on=["website"])
        .step("summary", depends_on=["website"], base_delay=2, timeout=45)
        .step("save_to_db", depends_on=["summary", "sentiment"])
    )
"""


def option_rows(connection: psycopg.Connection) -> list[tuple[object, ...]]:
    connection.rollback()
    flow = connection.execute(
        "SELECT 'flow', opt_max_attempts, opt_base_delay, opt_timeout, NULL FROM pgflow.flows"
    ).fetchall()
    steps = connection.execute(
        "SELECT step_slug, opt_max_attempts, opt_base_delay, opt_timeout, opt_start_delay"
        " FROM pgflow.steps ORDER BY step_index"
    ).fetchall()
    return flow + steps


def test_options_change_gives_an_update_revision(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    applied(alembic_project, ORIGINAL)
    before = option_rows(postgresql)
    alembic_project.write_flows(TUNED)

    revision = alembic_project.autogenerate("tune")

    assert function_body(revision, "upgrade") == (
        "# ### commands auto generated by Alembic - please adjust! ###\n"
        "# pgflow flow 'analyze_website': tune options (flow: max_attempts 3 -> 5; "
        "step 'website': start_delay default -> 60; step 'sentiment': timeout 30 -> default; "
        "step 'summary': base_delay default -> 2; step 'summary': timeout default -> 45)\n"
        "op.execute(\"UPDATE pgflow.flows SET opt_max_attempts = 5 WHERE flow_slug = 'analyze_website'\")\n"
        "op.execute(\"UPDATE pgflow.steps SET opt_start_delay = 60 WHERE flow_slug = 'analyze_website' AND step_slug = 'website'\")\n"
        "op.execute(\"UPDATE pgflow.steps SET opt_timeout = NULL WHERE flow_slug = 'analyze_website' AND step_slug = 'sentiment'\")\n"
        "op.execute(\"UPDATE pgflow.steps SET opt_base_delay = 2, opt_timeout = 45 WHERE flow_slug = 'analyze_website' AND step_slug = 'summary'\")\n"
        "# ### end Alembic commands ###\n"
    )
    assert function_body(revision, "downgrade") == (
        "# ### commands auto generated by Alembic - please adjust! ###\n"
        "# pgflow flow 'analyze_website': tune options (flow: max_attempts 5 -> 3; "
        "step 'website': start_delay 60 -> default; step 'sentiment': timeout default -> 30; "
        "step 'summary': base_delay 2 -> default; step 'summary': timeout 45 -> default)\n"
        "op.execute(\"UPDATE pgflow.flows SET opt_max_attempts = 3 WHERE flow_slug = 'analyze_website'\")\n"
        "op.execute(\"UPDATE pgflow.steps SET opt_start_delay = NULL WHERE flow_slug = 'analyze_website' AND step_slug = 'website'\")\n"
        "op.execute(\"UPDATE pgflow.steps SET opt_timeout = 30 WHERE flow_slug = 'analyze_website' AND step_slug = 'sentiment'\")\n"
        "op.execute(\"UPDATE pgflow.steps SET opt_base_delay = NULL, opt_timeout = NULL WHERE flow_slug = 'analyze_website' AND step_slug = 'summary'\")\n"
        "# ### end Alembic commands ###\n"
    )

    alembic_project.alembic("upgrade", "head")
    assert option_rows(postgresql) == [
        ("flow", 5, 5, 10, None),
        ("website", None, None, None, 60),
        ("sentiment", None, None, None, None),
        ("summary", None, 2, 45, None),
        ("save_to_db", None, None, None, None),
    ]
    assert alembic_project.alembic("check").returncode == 0

    alembic_project.alembic("downgrade", "-1")
    assert option_rows(postgresql) == before


def test_options_changes_can_be_refused(alembic_project: AlembicProject) -> None:
    applied(alembic_project, ORIGINAL)
    alembic_project.set_option("pgflow_options_changes", "error")
    alembic_project.write_flows(TUNED)
    files_before = alembic_project.revisions()
    result = alembic_project.alembic("revision", "--autogenerate", check=False)
    assert result.returncode != 0
    assert result.stdout.startswith(
        "FAILED: pgflow flow options changed, and pgflow_options_changes = error refuses option "
        "changes:\n  analyze_website: flow: max_attempts 3 -> 5; "
    )
    assert alembic_project.revisions() == files_before


def test_flow_only_in_database_is_never_dropped(
    alembic_project: AlembicProject, postgresql: psycopg.Connection
) -> None:
    with postgresql.cursor() as cursor:
        for statement in compile_flow(Flow("legacy").step("a")):
            cursor.execute(statement)
    postgresql.commit()
    alembic_project.write_flows("from alembic_pgflow import Flow\n")
    result = alembic_project.alembic("revision", "--autogenerate", "-m", "none")
    assert "pgflow flow 'legacy' is in the database but in no configured module" in result.stderr
    assert "pass\n" in function_body(alembic_project.revisions()[-1], "upgrade")
    alembic_project.alembic("upgrade", "head")
    assert alembic_project.alembic("check").returncode == 0
    postgresql.rollback()
    assert postgresql.execute("SELECT flow_slug FROM pgflow.flows").fetchall() == [("legacy",)]


def test_flows_come_after_tables_and_in_slug_order(alembic_project: AlembicProject) -> None:
    env = alembic_project.root / "migrations" / "env.py"
    env.write_text(
        env.read_text().replace(
            "target_metadata = MetaData()",
            "target_metadata = MetaData()\n"
            "from sqlalchemy import Column, Integer, Table\n"
            "Table('orders', target_metadata, Column('id', Integer, primary_key=True))",
        )
    )
    alembic_project.write_flows(
        """
        from alembic_pgflow import Flow
        zeta = Flow("zeta").step("a")
        alpha = Flow("alpha").step("a")
        """
    )
    revision = alembic_project.autogenerate()
    upgrade = function_body(revision, "upgrade")
    downgrade = function_body(revision, "downgrade")
    assert upgrade.index("op.create_table('orders'") < upgrade.index("# pgflow flow 'alpha'")
    assert upgrade.index("# pgflow flow 'alpha'") < upgrade.index("# pgflow flow 'zeta'")
    assert downgrade.index("# pgflow flow 'zeta'") < downgrade.index("# pgflow flow 'alpha'")
    assert downgrade.index("# pgflow flow 'alpha'") < downgrade.index("op.drop_table('orders')")
    alembic_project.alembic("upgrade", "head")
    alembic_project.alembic("downgrade", "base")


@pytest.mark.parametrize("hook", ["include_name", "include_object"])
def test_user_hooks_can_exclude_flows(alembic_project: AlembicProject, hook: str) -> None:
    env = alembic_project.root / "migrations" / "env.py"
    source = env.read_text()
    if hook == "include_name":
        function = (
            "def skip_drafts(name, type_, parent_names):\n"
            "    return not (type_ == 'pgflow_flow' and name.startswith('draft'))\n"
        )
    else:
        function = (
            "def skip_drafts(object_, name, type_, reflected, compare_to):\n"
            "    return not (type_ == 'pgflow_flow' and name.startswith('draft'))\n"
        )
    source = source.replace(
        "def run_migrations_offline", function + "\n\ndef run_migrations_offline"
    )
    source = source.replace(
        "target_metadata=target_metadata\n",
        f"target_metadata=target_metadata, {hook}=skip_drafts\n",
    )
    env.write_text(source)
    alembic_project.write_flows(
        """
        from alembic_pgflow import Flow
        draft = Flow("draft_flow").step("a")
        real = Flow("real_flow").step("a")
        """
    )
    upgrade = function_body(alembic_project.autogenerate(), "upgrade")
    assert "'real_flow'" in upgrade
    assert "draft_flow" not in upgrade
