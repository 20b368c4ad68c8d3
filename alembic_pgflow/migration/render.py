"""Render flow operations as ``op.execute(...)`` lines of a revision file."""

from __future__ import annotations

import re

from alembic.autogenerate import renderers
from alembic.autogenerate.api import AutogenContext

from alembic_pgflow.errors import PgflowCommandError
from alembic_pgflow.migration.operations import (
    CreateFlowOp,
    DropFlowOp,
    PgflowOps,
    RemoveRetiredFlowOp,
    RestoreRetiredFlowOp,
    UpdateFlowOptionsOp,
)
from alembic_pgflow.migration.revision_sql import (
    guard_function_sql,
    prologue_sql,
    remover_function_sql,
)

# SQLAlchemy's text() reads ":name" as a bind parameter and turns "\:" into ":". These are the
# two patterns it applies (sqlalchemy.sql.compiler.BIND_PARAMS and BIND_PARAMS_ESC).
_BIND = re.compile(r"(?<![:\w\x5c]):(\w+)(?![:\w])", re.UNICODE)
_ESCAPED = re.compile(r"\x5c(:\w*)(?![:\w])", re.UNICODE)


def text_safe(sql: str) -> str:
    """Escape ``sql`` so that SQLAlchemy's ``text()`` gives back exactly ``sql``."""
    colons = {match.start() for match in _BIND.finditer(sql)}
    colons |= {match.start() + 1 for match in _ESCAPED.finditer(sql)}
    for position in sorted(colons, reverse=True):
        sql = sql[:position] + "\\" + sql[position:]
    return sql


def python_string(text: str) -> str:
    """A readable Python literal for ``text``: plain or triple quotes, raw where needed."""
    if '"' not in text and "\\" not in text and "\n" not in text:
        return f'"{text}"'
    if '"""' not in text and not text.endswith(('"', "\\")):
        return ('r"""' if "\\" in text else '"""') + text + '"""'
    return repr(text)


def execute_line(sql: str) -> str:
    """``op.execute(...)`` for one statement; Alembic adds the terminator offline."""
    return f"op.execute({python_string(text_safe(sql.rstrip().removesuffix(';')))})"


_TEMPORARY = "(a temporary function, gone after the session)"


@renderers.dispatch_for(PgflowOps)
def render_pgflow_ops(autogen_context: AutogenContext, op: PgflowOps) -> list[str]:
    """The prologue and the temporary functions this side of the revision calls, then each
    operation."""
    created, removed = op.created, op.removed
    lines = []
    if created or removed:
        if op.revision is None:
            raise PgflowCommandError(
                "pgflow operations cannot be rendered without the revision id they record; "
                "render them through alembic revision --autogenerate"
            )
        if created:
            lines += [
                "# pgflow: serialize flow migrations, check the lock budget, keep the claims "
                "table,",
                "# lock the new flows' slugs and refuse slugs that differ only in case",
            ]
        else:
            lines.append("# pgflow: serialize flow migrations, check the lock budget")
        prologue = prologue_sql(
            len(created) + len(removed),
            creates=bool(created),
            new_slugs=[operation.slug for operation in created],
        )
        lines.append(execute_line(prologue))
    if created:
        assert op.revision is not None
        lines += [
            f"# pgflow: the guard each new flow calls first {_TEMPORARY}",
            execute_line(guard_function_sql(op.revision)),
        ]
    if removed:
        assert op.revision is not None
        lines += [
            f"# pgflow: the remover each removed flow calls {_TEMPORARY}",
            execute_line(remover_function_sql(op.revision)),
        ]
    for operation in op.ops:
        lines += renderers.dispatch(operation)(autogen_context, operation)
    return lines


@renderers.dispatch_for(CreateFlowOp)
def render_create_flow(autogen_context: AutogenContext, op: CreateFlowOp) -> list[str]:
    """A comment, then the guard's call, ``create_flow`` and each ``add_step``."""
    return [
        f"# pgflow flow {op.slug!r}: create it (structure {op.structure_checksum[:12]})",
        *(execute_line(statement) for statement in op.statements),
    ]


@renderers.dispatch_for(RestoreRetiredFlowOp)
def render_restore_flow(autogen_context: AutogenContext, op: RestoreRetiredFlowOp) -> list[str]:
    """A comment, then the guarded statements that recreate the retired flow."""
    return [
        f"# pgflow flow {op.slug!r}: recreate the retired flow as the database held it",
        *(execute_line(statement) for statement in op.statements),
    ]


@renderers.dispatch_for(RemoveRetiredFlowOp)
def render_remove_retired(autogen_context: AutogenContext, op: RemoveRetiredFlowOp) -> list[str]:
    """A comment and the remover's call in retirement mode."""
    return [
        f"# pgflow flow {op.slug!r}: retired with remove=True; delete its definition "
        "(refused while it has runs or queued messages)",
        execute_line(op.statement),
    ]


@renderers.dispatch_for(DropFlowOp)
def render_drop_flow(autogen_context: AutogenContext, op: DropFlowOp) -> list[str]:
    """A comment and the remover's call."""
    return [
        f"# pgflow flow {op.slug!r}: remove it if no other revision claims it "
        "(refused while it has runs or queued messages)",
        execute_line(op.statement),
    ]


@renderers.dispatch_for(UpdateFlowOptionsOp)
def render_update_options(autogen_context: AutogenContext, op: UpdateFlowOptionsOp) -> list[str]:
    """A comment naming the changes and one ``UPDATE`` per flow or step."""
    return [
        f"# pgflow flow {op.slug!r}: tune options ({'; '.join(map(str, op.changes))})",
        *(execute_line(statement) for statement in op.statements),
    ]
