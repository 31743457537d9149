#!/usr/bin/env bash
# The one test command: install what the tests need, then run tox's py, z2jh, lint and
# docs environments, and print how long each phase took. py tests on the latest
# releases; z2jh runs the real-hub, spawner and accounting tests again on the Zero to
# JupyterHub chart's (JupyterHub 5.5, KubeSpawner 7.0.0: ci/constraints/).
#
#   scripts/test.sh [pytest args...]     e.g. scripts/test.sh -k slapd -x
#
# Extra arguments go to pytest (the py environment). Set EOHUB_TOX_ENVS to run other
# tox environments (default: py,z2jh,lint,docs).
set -uo pipefail
cd "$(dirname "$0")/.."

PHASES=()
FAILED=()
phase() {
  local name=$1; shift
  local t0=$SECONDS
  printf '\n==> %s\n' "$name"
  "$@"
  local rc=$?
  PHASES+=("$(printf '%-22s %5ds  %s' "$name" $((SECONDS - t0)) "$([ $rc -eq 0 ] && echo ok || echo "FAILED ($rc)")")")
  [ $rc -eq 0 ] || FAILED+=("$name")
  return $rc
}

summary() {
  printf '\n==> timing summary (total %ds)\n' "$SECONDS"
  printf '  %s\n' "${PHASES[@]}"
}
trap summary EXIT

phase "bootstrap: apt" scripts/bootstrap.sh apt || exit 1
phase "bootstrap: npm" scripts/bootstrap.sh node || exit 1
phase "bootstrap: tox" scripts/bootstrap.sh tox || exit 1

IFS=, read -r -a ENVS <<< "${EOHUB_TOX_ENVS:-py,z2jh,lint,docs}"
for env in "${ENVS[@]}"; do
  if [ "$env" = py ]; then
    phase "tox -e py" .venv-tox/bin/tox -e py -- "$@"
  else
    phase "tox -e $env" .venv-tox/bin/tox -e "$env"
  fi
done

if [ ${#FAILED[@]} -gt 0 ]; then
  printf '\nfailed: %s\n' "${FAILED[*]}"
  exit 1
fi
