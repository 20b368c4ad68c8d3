"""Install real pgflow into a development database, from pgflow's own published migrations.

pgflow ships its SQL as migrations inside the ``@pgflow/core`` npm package
(``dist/supabase/migrations/*.sql``); pgmq ships its install script inside the ``pgmq`` package
on PyPI. Nothing of either is copied into alembic-pgflow: both are read at run time. What a
plain PostgreSQL lacks of Supabase (``realtime.send``, and the ``pg_cron``/``pg_net`` calls of
pgflow's telemetry) gets a do-nothing stand-in, created only where it is missing.

Everything happens in one transaction: a failed migration leaves the database as it was.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic_pgflow.errors import PgflowInstallError

NPM_PACKAGE = "@pgflow/core"
MIGRATIONS_IN_PACKAGE = "package/dist/supabase/migrations/"

_EXTENSION_RE = re.compile(
    r"create\s+extension\s+(?:if\s+not\s+exists\s+)?\"?([a-z_]+)\"?", re.IGNORECASE
)


@dataclass(frozen=True)
class PgflowMigrations:
    """pgflow's migration files for one release, in the order they apply."""

    release: str
    files: tuple[Path, ...]

    def mention(self, text: str) -> bool:
        """Whether any migration contains ``text``."""
        return any(text in path.read_text("utf-8") for path in self.files)

    def extensions(self) -> frozenset[str]:
        """The extensions the migrations create (pgmq, and pg_cron/pg_net from 0.17.1)."""
        found: set[str] = set()
        for path in self.files:
            found.update(name.lower() for name in _EXTENSION_RE.findall(path.read_text("utf-8")))
        return frozenset(found)


@dataclass(frozen=True)
class InstalledPgflow:
    """What :func:`install_pgflow` put into the database."""

    release: str
    migrations: int
    pgmq_version: str
    stand_ins: tuple[str, ...]


def cache_folder() -> Path:
    """Where downloaded pgflow packages are kept (``$XDG_CACHE_HOME/alembic-pgflow``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "alembic-pgflow"


def npm_migrations(release: str = "latest", cache: Path | None = None) -> PgflowMigrations:
    """pgflow's migrations from ``@pgflow/core@release`` on the npm registry (kept in a cache);
    ``latest`` is the registry's newest release.

    Raises :class:`PgflowInstallError` when npm is missing or the registry has no such release.
    """
    if release == "latest":
        release = _latest_release()
    if not re.fullmatch(r"\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?", release):
        raise PgflowInstallError(f"{release!r} is not a pgflow release such as 0.8.1")
    folder = (cache or cache_folder()) / f"pgflow-core-{release}"
    if not (folder / "migrations").is_dir():
        _download(release, folder)
    return folder_migrations(folder / "migrations", release=release)


def npm_available() -> bool:
    """Whether the ``npm`` command is installed."""
    return shutil.which("npm") is not None


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None:
        raise PgflowInstallError(
            "installing real pgflow needs npm (pgflow ships its SQL in the @pgflow/core npm "
            "package): install Node.js and npm, or give a folder of migrations with --migrations"
        )
    return npm


def _latest_release() -> str:
    result = subprocess.run(
        [_npm(), "view", f"{NPM_PACKAGE}@latest", "version"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not result.stdout.strip():
        reason = (result.stderr.strip().splitlines() or ["npm failed"])[-1]
        raise PgflowInstallError(f"npm could not look up {NPM_PACKAGE}: {reason}")
    return result.stdout.strip()


def _download(release: str, folder: Path) -> None:
    npm = _npm()
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
        result = subprocess.run(
            [npm, "pack", f"{NPM_PACKAGE}@{release}", "--pack-destination", scratch, "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            reason = (result.stderr.strip().splitlines() or ["npm failed"])[-1]
            raise PgflowInstallError(f"npm could not download {NPM_PACKAGE}@{release}: {reason}")
        (packed,) = json.loads(result.stdout)
        staging = Path(scratch) / "migrations"
        staging.mkdir()
        with tarfile.open(Path(scratch) / packed["filename"]) as archive:
            for member in archive.getmembers():
                name = member.name
                inside = name.removeprefix(MIGRATIONS_IN_PACKAGE)
                if member.isfile() and inside != name and inside.endswith(".sql"):
                    if "/" in inside:
                        continue
                    source = archive.extractfile(member)
                    assert source is not None
                    (staging / inside).write_bytes(source.read())
        if not any(staging.iterdir()):
            raise PgflowInstallError(f"{NPM_PACKAGE}@{release} ships no migrations")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        staging.rename(folder / "migrations")


def folder_migrations(folder: Path, release: str | None = None) -> PgflowMigrations:
    """The ``*.sql`` files of a folder of pgflow migrations, in name order."""
    files = tuple(sorted(Path(folder).glob("*.sql")))
    if not files:
        raise PgflowInstallError(f"{folder} holds no pgflow migrations (*.sql)")
    return PgflowMigrations(release=release or Path(folder).name, files=files)


def install_pgflow(connection: Any, migrations: PgflowMigrations) -> InstalledPgflow:
    """Install pgmq (where missing), stand-ins, then every migration, in one transaction.

    ``connection`` is a psycopg connection to a database without pgflow, as a superuser (pgmq
    and the stand-ins are extensions). Raises :class:`PgflowInstallError` for a database that
    already has pgflow, or when pgmq cannot be installed.
    """
    with connection.transaction():
        cursor = connection.cursor()
        cursor.execute("SELECT to_regnamespace('pgflow') IS NOT NULL")
        if cursor.fetchone()[0]:
            raise PgflowInstallError(
                "the database already has a pgflow schema; install real pgflow only into a "
                "database without one"
            )
        pgmq_version = _ensure_pgmq(cursor)
        stand_ins = _stand_ins(cursor, migrations)
        for path in migrations.files:
            try:
                # No parameters: psycopg sends the script as it is, "%" included.
                cursor.execute(path.read_text("utf-8"))
            except Exception as error:
                raise PgflowInstallError(
                    f"pgflow {migrations.release}: migration {path.name} failed: "
                    f"{str(error).strip().splitlines()[0]}"
                ) from error
    return InstalledPgflow(migrations.release, len(migrations.files), pgmq_version, stand_ins)


def _ensure_pgmq(cursor: Any) -> str:
    cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'pgmq'")
    row = cursor.fetchone()
    if row is not None:
        return str(row[0])
    cursor.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'pgmq'")
    if cursor.fetchone() is None:
        version, script = _pgmq_script()
        _write_extension(
            cursor,
            "pgmq",
            version,
            script,
            comment="pgmq, from the pgmq package on PyPI",
            schema="pgmq",
        )
    cursor.execute("CREATE EXTENSION pgmq CASCADE")
    cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'pgmq'")
    return str(cursor.fetchone()[0])


def _pgmq_script() -> tuple[str, str]:
    try:
        from pgmq import install  # the pgmq package on PyPI ships pgmq's install script
    except ImportError as error:
        raise PgflowInstallError(
            "the server has no pgmq extension, and the pgmq package that ships its SQL is not "
            "installed: pip install pgmq (it comes with alembic-pgflow's embedded extra)"
        ) from error
    return install.get_embedded_sql_version(), install.get_embedded_install_sql()


def _write_extension(
    cursor: Any, name: str, version: str, script: str, *, comment: str, schema: str | None
) -> None:
    """Make an extension available by writing its control and script files into the server's
    extension folder (possible for a server whose files this process may write, such as the
    embedded one)."""
    try:
        cursor.execute("SELECT setting FROM pg_config WHERE name = 'SHAREDIR'")
        folder = Path(cursor.fetchone()[0]) / "extension"
    except Exception as error:
        raise PgflowInstallError(
            f"the server has no {name} extension, and alembic-pgflow cannot add one: reading the "
            "server's folders needs a superuser"
        ) from error
    control = [f"comment = '{comment}'", f"default_version = '{version}'", "relocatable = false"]
    if schema:
        control.append(f"schema = {schema}")
    try:
        (folder / f"{name}.control").write_text("\n".join(control) + "\n", "utf-8")
        (folder / f"{name}--{version}.sql").write_text(script, "utf-8")
    except OSError as error:
        raise PgflowInstallError(
            f"the server has no {name} extension, and its extension folder {folder} is not "
            f"writable from here ({error.strerror}): install {name} on the server, or use the "
            "embedded server"
        ) from error


# Do-nothing stand-ins for what pgflow's migrations reference of Supabase. They only have to
# exist: realtime.send broadcasts run events; from 0.10 the worker-management migration creates
# pg_net and pg_cron, schedules cron jobs and reads worker URLs from vault.decrypted_secrets.
_SUPABASE_STAND_INS = {  # by what the migrations mention: (is it missing?, script)
    "realtime.send": (
        "SELECT to_regprocedure('realtime.send(jsonb, text, text, boolean)') IS NULL",
        """\
CREATE SCHEMA IF NOT EXISTS realtime;
CREATE FUNCTION realtime.send(payload jsonb, event text, topic text, private boolean DEFAULT true)
RETURNS void LANGUAGE sql AS 'SELECT NULL::void';
""",
    ),
    "vault.decrypted_secrets": (
        "SELECT to_regclass('vault.decrypted_secrets') IS NULL",
        """\
CREATE SCHEMA IF NOT EXISTS vault;
CREATE TABLE vault.secrets (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text UNIQUE,
  description text NOT NULL DEFAULT '', secret text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE VIEW vault.decrypted_secrets AS
  SELECT id, name, description, secret, secret AS decrypted_secret, created_at, updated_at
  FROM vault.secrets;
""",
    ),
}

# Extensions the migrations create, by name: each script makes its own schema, so the
# migration's "WITH SCHEMA ..." does not matter. Nothing is ever scheduled or sent.
_EXTENSION_STAND_INS: dict[str, str] = {
    "pg_cron": """\
CREATE SCHEMA IF NOT EXISTS cron;
CREATE TABLE cron.job (jobid bigserial PRIMARY KEY, schedule text NOT NULL, command text NOT NULL,
  jobname text UNIQUE, active boolean NOT NULL DEFAULT true);
CREATE TABLE cron.job_run_details (jobid bigint, runid bigserial PRIMARY KEY, status text,
  return_message text, start_time timestamptz, end_time timestamptz);
CREATE FUNCTION cron.schedule(job_name text, schedule text, command text) RETURNS bigint
LANGUAGE sql AS $$
  INSERT INTO cron.job (jobname, schedule, command) VALUES (job_name, schedule, command)
  ON CONFLICT (jobname) DO UPDATE SET schedule = excluded.schedule, command = excluded.command
  RETURNING jobid
$$;
CREATE FUNCTION cron.schedule(schedule text, command text) RETURNS bigint
LANGUAGE sql AS $$
  INSERT INTO cron.job (schedule, command) VALUES (schedule, command) RETURNING jobid
$$;
CREATE FUNCTION cron.unschedule(job_name text) RETURNS boolean
LANGUAGE sql AS $$ WITH gone AS (DELETE FROM cron.job WHERE jobname = job_name RETURNING 1)
  SELECT EXISTS (SELECT FROM gone) $$;
CREATE FUNCTION cron.unschedule(job_id bigint) RETURNS boolean
LANGUAGE sql AS $$ WITH gone AS (DELETE FROM cron.job WHERE jobid = job_id RETURNING 1)
  SELECT EXISTS (SELECT FROM gone) $$;
""",
    "pg_net": """\
CREATE SCHEMA IF NOT EXISTS net;
CREATE FUNCTION net.http_post(url text, body jsonb DEFAULT '{}', params jsonb DEFAULT '{}',
  headers jsonb DEFAULT '{}', timeout_milliseconds integer DEFAULT 5000) RETURNS bigint
LANGUAGE sql AS 'SELECT 0::bigint';
CREATE FUNCTION net.http_get(url text, params jsonb DEFAULT '{}', headers jsonb DEFAULT '{}',
  timeout_milliseconds integer DEFAULT 5000) RETURNS bigint
LANGUAGE sql AS 'SELECT 0::bigint';
""",
}

STAND_IN_VERSION = "0.0.0"


def _stand_ins(cursor: Any, migrations: PgflowMigrations) -> tuple[str, ...]:
    made = []
    for name, (missing, script) in _SUPABASE_STAND_INS.items():
        if not migrations.mention(name.split(".")[0] + "."):
            continue
        cursor.execute(missing)
        if cursor.fetchone()[0]:
            cursor.execute(script)
            made.append(name)
    for name in sorted(migrations.extensions() - {"pgmq"}):
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = %s", (name,))
        if cursor.fetchone() is not None:
            continue  # the real extension is there; pgflow's migration creates it
        if name not in _EXTENSION_STAND_INS:
            raise PgflowInstallError(
                f"pgflow's migrations create the {name} extension, which the server lacks and "
                "alembic-pgflow has no stand-in for: install it on the server"
            )
        _write_extension(
            cursor,
            name,
            STAND_IN_VERSION,
            _EXTENSION_STAND_INS[name],
            comment=f"alembic-pgflow's do-nothing stand-in for {name} (development only)",
            schema=None,
        )
        made.append(f"{name} (stand-in)")
    return tuple(made)
