#!/usr/bin/env bash
# Set up, then run the main job: the sample project's migrations, then the flows they created.
# Without DATABASE_URL the sample uses an embedded PostgreSQL kept in sample_project/.pgdata and,
# because an empty database has no pgflow, installs the development stand-in schema first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh .venv
cd sample_project
bin=../.venv/bin
if [ -z "${DATABASE_URL:-}" ]; then
  echo "== no DATABASE_URL: embedded PostgreSQL in sample_project/.pgdata"
  "$bin/alembic-pgflow" dev install-schema
fi
echo "== alembic upgrade head"
"$bin/alembic" upgrade head
echo "== alembic check"
"$bin/alembic" check
echo "== alembic-pgflow status"
"$bin/alembic-pgflow" status
for slug in analyze_website score_reviews; do
  echo "== alembic-pgflow show $slug"
  "$bin/alembic-pgflow" show "$slug"
done
