#!/usr/bin/env bash
# The one test command: install what the tests need, then run tox's py, z2jh, lint and
# docs environments, and print how long each phase took. py tests on the latest
# releases; z2jh runs the real-hub, spawner and accounting tests again on the Zero to
# JupyterHub chart's (JupyterHub 5.5, KubeSpawner 7.0.0: ci/constraints/).
#
#   scripts/test.sh [pytest args...]     e.g. scripts/test.sh -k slapd -x
#
# Extra arguments go to pytest (the py environment, then run once, one test at a time).
# Set EOHUB_TOX_ENVS to run other tox environments (default: py,z2jh,lint,docs).
set -uo pipefail
cd "$(dirname "$0")/.."

PHASES=()
FAILED=()
# Each phase's output is also kept in .artifacts/phases/, so that the summary at the end
# can list every failed and retried test of every phase: a CI log is often read from
# its tail, and the py phase's failures are far above it.
PHASE_LOGS=.artifacts/phases
rm -rf "$PHASE_LOGS" && mkdir -p "$PHASE_LOGS"
phase() {
  local name=$1; shift
  local t0=$SECONDS log
  log="$PHASE_LOGS/$(printf '%s' "$name" | tr -c 'A-Za-z0-9' '_').log"
  printf '\n==> %s\n' "$name"
  "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  PHASES+=("$(printf '%-22s %5ds  %s' "$name" $((SECONDS - t0)) "$([ $rc -eq 0 ] && echo ok || echo "FAILED ($rc)")")")
  [ $rc -eq 0 ] || FAILED+=("$name")
  return $rc
}

summary() {
  local log lines
  for log in "$PHASE_LOGS"/*.log; do
    [ -f "$log" ] || continue
    lines=$(grep -E '^(FAILED|ERROR|RERUN) |^[0-9]+ (passed|failed)|^=+ .*(passed|failed|error).* in [0-9.]+s' "$log" | head -n 60)
    [ -n "$lines" ] || continue
    printf '\n==> %s\n%s\n' "$(basename "$log" .log)" "$lines"
  done
  printf '\n==> timing summary (total %ds)\n' "$SECONDS"
  printf '  %s\n' "${PHASES[@]}"
}
trap summary EXIT

phase "bootstrap: apt" scripts/bootstrap.sh apt || exit 1
phase "bootstrap: npm" scripts/bootstrap.sh node || exit 1
phase "bootstrap: tox" scripts/bootstrap.sh tox || exit 1

# A failed test runs once more, after 2 s. The real-hub and browser tests race real
# processes on a shared two-core machine, and now and then a wait loses to the machine
# rather than to eohub. Every retried test is listed with its first attempt's traceback
# under "rerun test summary info", so a flake stays visible. A test that fails twice
# fails the run. After 10 retries in one run nothing more is retried: that many
# failures mean something is broken.
export PYTEST_ADDOPTS="--reruns 1 --reruns-delay 2 --max-suite-reruns 10 --rerun-show-tracebacks ${PYTEST_ADDOPTS:-}"

IFS=, read -r -a ENVS <<< "${EOHUB_TOX_ENVS:-py,z2jh,lint,docs}"
for env in "${ENVS[@]}"; do
  if [ "$env" = py ] && [ $# -eq 0 ]; then
    # The whole suite in two runs: the tests that start a real hub in two pytest-xdist
    # workers, a test file each at a time (a module's shared hub stays in one worker),
    # as they mostly wait on hubs, servers and browsers; then the rest one at a time, as
    # some of them bound how long an in-process wait may take.
    phase "tox -e py: hub tests" .venv-tox/bin/tox -e py -- -m hub -n 2 --dist loadfile
    phase "tox -e py: the rest" .venv-tox/bin/tox -e py -- -m "not hub"
  elif [ "$env" = py ]; then
    phase "tox -e py" .venv-tox/bin/tox -e py -- "$@"
  else
    phase "tox -e $env" .venv-tox/bin/tox -e "$env"
  fi
done

if [ ${#FAILED[@]} -gt 0 ]; then
  printf '\nfailed: %s\n' "${FAILED[*]}"
  exit 1
fi
