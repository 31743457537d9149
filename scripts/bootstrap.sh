#!/usr/bin/env bash
# Install what the eohub demo and tests need on a fresh Debian machine; safe to run again.
#
#   scripts/bootstrap.sh [apt] [node] [tox]    (no argument: all three)
#
# - apt:  Debian packages the harness starts (slapd, ldap-utils, chromium, git,
#         docker-registry), installed only when missing. Needs root (or sudo).
# - node: the npm tools in tools/node (configurable-http-proxy, oidc-provider), from the
#         committed package-lock.json; reinstalled only when the lock file changed.
# - tox:  tox itself, in .venv-tox; tox then builds the Python test environments.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

APT_PACKAGES=(slapd ldap-utils chromium git docker-registry openssl)

log() { printf '[bootstrap] %s\n' "$*"; }

want() {
  [ $# -eq 0 ] && return 0
  local s; for s in "${WANTED[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1
}

bootstrap_apt() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "Debian packages present: ${APT_PACKAGES[*]}"
    return
  fi
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { log "need root or sudo to install: ${missing[*]}"; exit 1; }
    sudo="sudo"
  fi
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's postinst scripts may start daemons where an init system runs; the harness
  # starts its own on free ports and wants nothing else listening.
  $sudo systemctl disable --now slapd docker-registry >/dev/null 2>&1 || true
}

bootstrap_node() {
  command -v npm >/dev/null || { log "npm not found: install Node.js 20+ (Debian: nodejs npm)"; exit 1; }
  local dir="$ROOT/tools/node" stamp="$ROOT/tools/node/node_modules/.eohub-lock.sha256" sum
  sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ]; then
    log "npm tools present: configurable-http-proxy, oidc-provider"
    return
  fi
  log "installing npm tools into tools/node"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$sum" > "$stamp"
}

bootstrap_tox() {
  if [ -x "$ROOT/.venv-tox/bin/tox" ]; then
    log "tox present in .venv-tox"
    return
  fi
  log "installing tox into .venv-tox"
  python3 -m venv "$ROOT/.venv-tox"
  "$ROOT/.venv-tox/bin/pip" install -q "tox>=4.11"
}

WANTED=("$@")
if want apt "${WANTED[@]+"${WANTED[@]}"}" || [ ${#WANTED[@]} -eq 0 ]; then bootstrap_apt; fi
if want node "${WANTED[@]+"${WANTED[@]}"}" || [ ${#WANTED[@]} -eq 0 ]; then bootstrap_node; fi
if want tox "${WANTED[@]+"${WANTED[@]}"}" || [ ${#WANTED[@]} -eq 0 ]; then bootstrap_tox; fi
