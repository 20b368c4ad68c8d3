"""The flow playground: a local, read-only web page of a project's flows.

Starlette serves one page and a small JSON API on 127.0.0.1. The flows come from a snapshot
(:mod:`alembic_pgflow.devtools.snapshot`) built in a fresh process at start and after every
save of a flow module (watched with watchfiles), so a module that fails to import shows its
error on the page. Runs and step states are read live from the database. Nothing is written.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

import sqlalchemy
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from watchfiles import PythonFilter, awatch

_RUNS_SQL = sqlalchemy.text(
    "SELECT to_jsonb(r) FROM pgflow.runs r WHERE r.flow_slug = :slug "
    "ORDER BY r.started_at DESC LIMIT 20"
)
_STEPS_SQL = sqlalchemy.text(
    "SELECT to_jsonb(s) FROM pgflow.step_states s WHERE s.run_id = CAST(:run_id AS uuid)"
)
_TASKS_SQL = sqlalchemy.text(
    "SELECT to_jsonb(t) - 'message_id' FROM pgflow.step_tasks t "
    "WHERE t.run_id = CAST(:run_id AS uuid) ORDER BY t.step_slug, t.task_index"
)


class Playground:
    """The state behind the page: the latest snapshot and who waits for the next one."""

    def __init__(
        self, snapshot_command: Sequence[str], folders: Sequence[Path], url: sqlalchemy.URL | None
    ) -> None:
        self.snapshot_command = list(snapshot_command)
        self.folders = list(folders)
        self.engine = (
            None if url is None else sqlalchemy.create_engine(url, poolclass=sqlalchemy.NullPool)
        )
        self.snapshot = "{}"
        self.version = 0
        self.changed = asyncio.Event()

    async def refresh(self) -> None:
        """Build a new snapshot in a fresh process and wake every page."""
        process = await asyncio.create_subprocess_exec(
            *self.snapshot_command,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        out, err = await process.communicate()
        if process.returncode == 0:
            self.snapshot = out.decode()
        else:
            lines = [line for line in err.decode().splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit code {process.returncode}"
            self.snapshot = json.dumps({"error": reason.removeprefix("Error: "), "flows": []})
        self.version += 1
        self.changed.set()
        self.changed = asyncio.Event()

    async def watch(self) -> None:
        """Refresh after every change of a ``.py`` file in the flow modules' folders."""
        async for _ in awatch(*self.folders, watch_filter=PythonFilter()):
            await self.refresh()

    def rows(self, statement: sqlalchemy.TextClause, **values: Any) -> list[Any]:
        """JSON rows from the database, or none where it has no pgflow runtime."""
        if self.engine is None:
            return []
        try:
            with self.engine.connect() as connection:
                return [row[0] for row in connection.execute(statement, values)]
        except sqlalchemy.exc.DBAPIError:
            return []


def create_app(playground: Playground) -> Starlette:
    """The Starlette application; only GET routes, so the page cannot change anything."""

    async def page(request: Request) -> Response:
        html = files("alembic_pgflow.devtools").joinpath("playground.html").read_text("utf-8")
        return HTMLResponse(html)

    async def snapshot(request: Request) -> Response:
        return Response(playground.snapshot, media_type="application/json")

    async def events(request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            yield f"data: {playground.version}\n\n"
            while True:
                waiter = playground.changed
                try:
                    await asyncio.wait_for(waiter.wait(), timeout=15)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"data: {playground.version}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    async def runs(request: Request) -> Response:
        slug = request.path_params["slug"]
        return JSONResponse(playground.rows(_RUNS_SQL, slug=slug))

    async def run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        return JSONResponse(
            {
                "steps": playground.rows(_STEPS_SQL, run_id=run_id),
                "tasks": playground.rows(_TASKS_SQL, run_id=run_id),
            }
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await playground.refresh()
        watcher = asyncio.create_task(playground.watch())
        try:
            yield
        finally:
            watcher.cancel()

    return Starlette(
        routes=[
            Route("/", page),
            Route("/api/snapshot", snapshot),
            Route("/api/events", events),
            Route("/api/runs/{slug:str}", runs),
            Route("/api/runs/{slug:str}/{run_id:str}", run),
        ],
        lifespan=lifespan,
    )


def snapshot_command(config_path: str) -> list[str]:
    """The command that prints a fresh snapshot of the project as JSON."""
    return [sys.executable, "-m", "alembic_pgflow", "-c", config_path, "playground", "--snapshot"]


def serve(playground: Playground, port: int, announce: Any) -> None:
    """Serve on 127.0.0.1 only, until interrupted."""
    import uvicorn

    announce(
        f"alembic-pgflow playground: http://127.0.0.1:{port}/ (this machine only, read-only; "
        "Ctrl+C stops)"
    )
    uvicorn.run(create_app(playground), host="127.0.0.1", port=port, log_level="warning")


def run_snapshot(config: Any) -> None:
    """Print the project's snapshot as JSON (what the server's subprocess runs)."""
    from alembic_pgflow.devtools.snapshot import snapshot

    sys.stdout.write(json.dumps(snapshot(config)))
