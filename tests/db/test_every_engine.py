"""The metadata tests run on every database: under CI=true, a run without a PostgreSQL to test on is refused rather
than passing on SQLite alone (scripts/test.sh starts one and names it in REGISTRY_TEST_POSTGRES)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _collect(**env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("CI", "REGISTRY_TEST_POSTGRES")} | env
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "--collect-only",
        "-p",
        "no:cacheprovider",
        "tests/db/test_write_contract.py",
    ]
    return subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120, check=False)


def test_under_ci_a_run_without_postgresql_is_refused() -> None:
    refused = _collect(CI="true")
    assert refused.returncode == 4, refused.stdout + refused.stderr
    assert "CI=true needs REGISTRY_TEST_POSTGRES" in refused.stderr


def test_outside_ci_the_metadata_tests_run_on_sqlite_alone() -> None:
    collected = _collect()
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert "[sqlite" in collected.stdout and "[postgres" not in collected.stdout
