#!/usr/bin/env bash
# The one command that runs every test on a fresh Debian 12 machine:
#   1. as root, apt-get installs the container tools the e2e tier drives (only those missing);
#   2. creates .venv and installs '.[test]' (again only when pyproject.toml changed);
#   3. runs ruff check, ruff format --check, mypy, then pytest with this script's arguments.
# Every step runs even when an earlier one failed; the exit status is non-zero if any failed.
# pytest collecting no test (exit status 5) is a failure too.
#
#   scripts/test.sh                      everything (the e2e and in-process tiers run side by side)
#   scripts/test.sh -m 'not e2e'         skip the end-to-end tier
#   E2E_SERVER=distribution scripts/test.sh tests/e2e   the e2e tier against CNCF distribution
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/venv.sh
source scripts/venv.sh

# Debian package -> commands that prove it is installed.
PACKAGES=(
  "docker.io:docker dockerd"
  "skopeo:skopeo"
  "podman:podman"
  "containerd:containerd ctr"
  "busybox-static:"
  "docker-registry:docker-registry"
  "runc:runc"
  "umoci:umoci"
  "wrk:wrk"
  "postgresql:"
  "nginx:nginx"
  "chromium:chromium"
  "chromium-driver:chromedriver"
)

package_installed() { # PACKAGE [COMMAND...]
  local package=$1 cmd
  shift
  if [[ $# -eq 0 ]]; then
    [[ "$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null)" == installed ]]
    return
  fi
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 || return 1
  done
}

missing_packages() {
  local entry package commands
  for entry in "${PACKAGES[@]}"; do
    package=${entry%%:*}
    commands=${entry#*:}
    # shellcheck disable=SC2086 # word splitting of the command list is intended
    package_installed "$package" $commands || echo "$package"
  done
  if ! venv_ok && ! "$PYTHON3" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo python3-venv
  fi
}

install_system_packages() {
  local missing
  mapfile -t missing < <(missing_packages)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "test.sh: not root, so not installing: ${missing[*]} (their e2e tests skip, or fail under CI=true)" >&2
    return 0
  fi
  echo "==> apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
}

install_python_packages() {
  local stamp=.venv/.test-install.sha256 want
  ensure_venv
  want=$(sha256sum pyproject.toml)
  if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
    echo "==> pip install -e '.[test]'"
    .venv/bin/python -m pip install -q -e '.[test]'
    echo "$want" >"$stamp"
  fi
}

FAILED=()
step() { # NAME COMMAND...
  local name=$1
  shift
  echo "==> $name"
  if "$@"; then
    return 0
  fi
  FAILED+=("$name")
}

run_pytest() {
  local status=0
  .venv/bin/python -m pytest "$@" || status=$?
  if [[ $status -eq 5 ]]; then
    echo "test.sh: pytest collected no tests; that counts as a failure" >&2
  fi
  return "$status"
}

# Everything (no arguments): the end-to-end tier and the in-process tier side by side, each in its own pytest with
# its own temporary directory. The e2e tier mostly waits on the processes it drives, the other keeps a core busy:
# together they take the longer one's time, where one after the other took both (about 14 minutes on 2 cores).
run_both_tiers() {
  local work e2e_status=0 fast_status=0 e2e_pid
  work=$(mktemp -d /tmp/registry-tests.XXXXXX)
  run_pytest -m e2e --basetemp="$work/e2e" -p no:cacheprovider >"$work/e2e.log" 2>&1 &
  e2e_pid=$!
  run_pytest -m 'not e2e' --basetemp="$work/fast" -p no:cacheprovider || fast_status=$?
  wait "$e2e_pid" || e2e_status=$?
  echo "==> pytest -m e2e (ran beside the in-process tier above)"
  cat "$work/e2e.log"
  rm -rf "$work"
  [[ $fast_status -eq 0 && $e2e_status -eq 0 ]]
}

# A private PostgreSQL cluster for the metadata tests (they also run on SQLite); skipped when not root or absent.
start_postgres() {
  local bin dir port
  [[ -n ${REGISTRY_TEST_POSTGRES:-} ]] && return 0
  bin=$(find /usr/lib/postgresql -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -1)
  if [[ -z $bin || $(id -u) -ne 0 ]] || ! id postgres >/dev/null 2>&1; then
    echo "test.sh: no PostgreSQL server (apt-get install postgresql as root): metadata tests run on SQLite only" >&2
    [[ ${CI:-} == true ]] && return 1
    return 0
  fi
  dir=$(mktemp -d /tmp/registry-test-pg.XXXXXX)
  chown postgres "$dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  su postgres -s /bin/sh -c "$bin/initdb -D $dir/data -A trust -U postgres >/dev/null" || return 1
  su postgres -s /bin/sh -c "$bin/pg_ctl -D $dir/data -w -l $dir/log \
    -o '-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off' start >/dev/null" || return 1
  # shellcheck disable=SC2064 # expand now: the locals are gone when the trap runs
  trap "su postgres -s /bin/sh -c '$bin/pg_ctl -D $dir/data -m immediate stop' >/dev/null 2>&1; rm -rf '$dir'" EXIT
  export REGISTRY_TEST_POSTGRES="postgresql+asyncpg://postgres@127.0.0.1:$port/postgres"
  echo "==> PostgreSQL for the tests on 127.0.0.1:$port"
}

install_system_packages
install_python_packages
step "postgres" start_postgres

step "ruff check" .venv/bin/ruff check .
step "ruff format --check" .venv/bin/ruff format --check .
step "mypy" .venv/bin/mypy
if [[ $# -eq 0 ]]; then
  step "pytest" run_both_tiers
else
  step "pytest" run_pytest "$@"
fi

if [[ ${#FAILED[@]} -gt 0 ]]; then
  echo "test.sh: FAILED: ${FAILED[*]}" >&2
  exit 1
fi
echo "test.sh: all checks passed"
