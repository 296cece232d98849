"""The companion runtime as a user runs it: `python -m runtime --root STORE ...` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .procs import base_env, remove_tree, run


class RuntimeCli:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.root = base / "store"
        self.env = {**base_env(), "RUNTIME_CONFIG": str(base / "config.json")}

    def __call__(self, *args: str | os.PathLike[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([sys.executable, "-m", "runtime", "--root", self.root, *args], check=check, env=self.env)

    def inspect(self, target: str) -> dict[str, Any]:
        doc: list[dict[str, Any]] = json.loads(self("inspect", target).stdout)
        return doc[0]

    def layer_dirs(self) -> set[str]:
        layers = self.root / "layers"
        return {p.name for p in layers.iterdir()} if layers.exists() else set()

    def cleanup(self) -> None:
        if (self.root / "containers").exists():
            for cid in os.listdir(self.root / "containers"):
                self("rm", "-f", cid, check=False)
        remove_tree(self.base)
