# Sourced by serve.sh and test.sh: a working .venv in the checkout, made (or remade) with what it needs.
#   ensure_venv    .venv exists and its pip runs; a half-made one (a failed `python3 -m venv`) is removed first
# As root a missing python3-venv is installed with apt-get; otherwise one line says what to install.
PYTHON3=${PYTHON3:-python3}

venv_ok() {
  [[ -x .venv/bin/python ]] && .venv/bin/python -m pip --version >/dev/null 2>&1
}

need_venv_module() {
  "$PYTHON3" -c 'import ensurepip, venv' >/dev/null 2>&1 && return 0
  if [[ $(id -u) -ne 0 ]]; then
    echo "$(basename "$0"): Python's venv module is missing: run 'sudo apt-get install python3-venv' (as root this script installs it)" >&2
    exit 1
  fi
  echo "==> apt-get install python3-venv"
  DEBIAN_FRONTEND=noninteractive apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
}

ensure_venv() {
  venv_ok && return 0
  if [[ -e .venv ]]; then
    echo "==> .venv is broken (no working pip): making it again" >&2
    rm -rf .venv
  fi
  need_venv_module
  "$PYTHON3" -m venv .venv
}
