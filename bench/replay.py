"""Send a revision's upgrade statements through one client layer at a time.

``alembic upgrade head`` passes every statement through Alembic's ``op.execute``, SQLAlchemy's
``text()`` and ``Connection.execute``, psycopg's cursor and libpq. Replaying the same statements,
in one transaction on a fresh database, through each layer alone shows what each adds:
libpq alone costs what ``psql -f`` costs (the server's work and one round trip a statement).
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import sqlalchemy
from sqlalchemy.dialects import postgresql


class _Recorder:
    """Stands in for ``alembic.op`` and keeps what ``op.execute`` receives."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def execute(self, sql: str) -> None:
        self.statements.append(sql)


def upgrade_statements(revision: Path) -> list[str]:
    """The arguments of the revision's ``op.execute`` calls in its upgrade, in order."""
    spec = importlib.util.spec_from_file_location("bench_revision", revision)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    recorder = _Recorder()
    # The revision looks ``op`` up when upgrade() runs.
    setattr(module, "op", recorder)  # noqa: B010
    module.upgrade()
    return recorder.statements


def _sent_sql(statement: str) -> str:
    """What reaches the server for ``op.execute(statement)``: ``text()`` without its escapes."""
    dialect = postgresql.dialect(paramstyle="named")  # type: ignore[no-untyped-call]
    return str(sqlalchemy.text(statement).compile(dialect=dialect))


def replay_seconds(layer: str, statements: list[str], url: str) -> float:
    """Seconds to send ``statements`` through ``layer`` in one transaction (connecting excluded)."""
    return _SENDERS[layer](statements, url)


def _conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _through_libpq(statements: list[str], url: str) -> float:
    sql = [_sent_sql(s).encode() for s in statements]
    with psycopg.connect(_conninfo(url)) as connection:
        pgconn = connection.pgconn
        start = time.perf_counter()
        for command in (b"BEGIN", *sql, b"COMMIT"):
            result = pgconn.exec_(command)
            if result.error_message:
                raise RuntimeError(result.error_message.decode())
        return time.perf_counter() - start


def _through_psycopg(statements: list[str], url: str) -> float:
    sql = [_sent_sql(s) for s in statements]
    with psycopg.connect(_conninfo(url)) as connection:
        cursor = connection.cursor()
        start = time.perf_counter()
        for statement in sql:
            cursor.execute(statement.encode())
        connection.commit()
        return time.perf_counter() - start


def _through_sqlalchemy(statements: list[str], url: str) -> float:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            start = time.perf_counter()
            with connection.begin():
                for statement in statements:
                    connection.execute(sqlalchemy.text(statement))
            return time.perf_counter() - start
    finally:
        engine.dispose()


_SENDERS: dict[str, Callable[[list[str], str], float]] = {
    "libpq": _through_libpq,
    "psycopg": _through_psycopg,
    "sqlalchemy": _through_sqlalchemy,
}
LAYERS = tuple(_SENDERS)
"""The client layers, innermost first."""
