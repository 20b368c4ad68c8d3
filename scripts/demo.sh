#!/usr/bin/env bash
# Set up, then run the main job: compile the example flow to pgflow's SQL.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python examples/analyze_website.py
