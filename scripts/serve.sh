#!/usr/bin/env bash
# Run the registry from this checkout: creates .venv on first use, then `registry serve [CONFIG]`.
# With no CONFIG it listens on 127.0.0.1:5000 and keeps everything under ./data (SQLite + filesystem).
# As root it installs python3-venv when missing (otherwise it says the one apt line); a broken .venv is made again.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/venv.sh
source scripts/venv.sh
ensure_venv
if [[ ! -x .venv/bin/registry || pyproject.toml -nt .venv/.installed ]]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e .
  touch .venv/.installed
fi
# byte-compiled ahead, as an installed package is (only what changed): where PYTHONDONTWRITEBYTECODE is set, as in
# many containers, each start would otherwise compile every module from source again
.venv/bin/python -m compileall -q registry storage_backends migrations >/dev/null
exec .venv/bin/registry serve "$@"
