#!/usr/bin/env bash
# The one demo command: install what the demo needs (slapd, the npm proxy, tox), then run
# the demo hub and its demo directory on 127.0.0.1.
#
#   scripts/demo.sh [--port N]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh apt node tox
if [ ! -x .tox/demo/bin/jupyterhub ]; then
  # The first run builds the demo's Python environment: a few minutes, shown as it goes.
  echo "[demo] first run: building the demo environment in .tox/demo (takes a few minutes)"
  .venv-tox/bin/tox -e demo --notest
fi
exec .venv-tox/bin/tox -q -e demo -- "$@"
