#!/usr/bin/env bash
# The one demo command: install what the demo needs, then run the demo hub on 127.0.0.1.
#
#   scripts/demo.sh [--port N]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh node tox
exec .venv-tox/bin/tox -q -e demo -- "$@"
