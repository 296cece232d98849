"""The README's two commands on a fresh machine (scripts/venv.sh, which both source): a half-made `.venv` is made
again, and a missing python3-venv is installed as root or named in one line otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def in_checkout(tmp_path: Path, script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (bash, with scripts/venv.sh sourced) in a bare checkout at ``tmp_path``."""
    (tmp_path / "scripts").mkdir(exist_ok=True)
    shutil.copy(SCRIPTS / "venv.sh", tmp_path / "scripts" / "venv.sh")
    command = f"set -euo pipefail; source scripts/venv.sh; {script}"
    return subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, env={**os.environ, **(env or {})}, capture_output=True, text=True
    )


def fake_tools(tmp_path: Path, *, venv_module: bool) -> dict[str, str]:
    """A python3 whose ensurepip is missing until a fake apt-get 'installs' python3-venv, and that apt-get."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    installed = tmp_path / "installed"
    if venv_module:
        installed.touch()
    real = os.path.realpath(sys.executable)  # the interpreter itself, not a shim that would find the fake again
    (bin_dir / "python3").write_text(
        f'#!/bin/sh\nif [ "$1" = -c ] && [ ! -e {installed} ]; then exit 1; fi\nexec {real} "$@"\n'
    )
    (bin_dir / "apt-get").write_text(
        f'#!/bin/sh\necho "$@" >> {tmp_path}/apt.log\nif [ "$1" = install ]; then touch {installed}; fi\n'
    )
    for tool in ("python3", "apt-get"):
        (bin_dir / tool).chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "PYTHON3": str(bin_dir / "python3")}


def test_a_half_made_venv_is_made_again(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", tmp_path / ".venv"], check=True
    )  # what a failure leaves
    result = in_checkout(tmp_path, "ensure_venv")
    assert result.returncode == 0, result.stderr
    assert ".venv is broken" in result.stderr
    subprocess.run([tmp_path / ".venv/bin/python", "-m", "pip", "--version"], check=True, capture_output=True)


def test_a_working_venv_is_kept(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", tmp_path / ".venv"], check=True)
    (tmp_path / ".venv" / "marker").touch()
    assert in_checkout(tmp_path, "ensure_venv").returncode == 0
    assert (tmp_path / ".venv" / "marker").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="the root path of the script")
def test_as_root_a_missing_venv_module_is_installed(tmp_path: Path) -> None:
    result = in_checkout(tmp_path, "ensure_venv", fake_tools(tmp_path, venv_module=False))
    assert result.returncode == 0, result.stderr
    assert "install -y -q python3-venv" in (tmp_path / "apt.log").read_text()
    assert (tmp_path / ".venv/bin/python").exists()


def test_not_as_root_the_one_line_to_run_is_printed(tmp_path: Path) -> None:
    env = fake_tools(tmp_path, venv_module=False)
    result = in_checkout(tmp_path, "id() { echo 1000; }; ensure_venv", env)  # as a normal user would
    assert result.returncode == 1
    assert result.stderr.strip().endswith("run 'sudo apt-get install python3-venv' (as root this script installs it)")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / ".venv").exists() and not (tmp_path / "apt.log").exists()
