#!/usr/bin/env bash
# Create a virtual environment (once) and install alembic-pgflow into it.
# Usage: scripts/setup.sh [VENV_DIR [EXTRA_REQUIREMENT ...]]   (default: .venv)
# EXTRA_REQUIREMENTs are resolved together with alembic-pgflow (test.sh pins each runtime
# dependency to its floor this way). SETUP_EXTRAS picks the extras (default: dev, everything the
# checks need; the demo needs only embedded).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"
shift || true
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
"${pip[@]}" install --upgrade pip
"${pip[@]}" install -e ".[${SETUP_EXTRAS:-dev}]" "$@"
