"""`runtime daemon` on a private socket and store, and the stock docker CLI pointed at it (DOCKER_HOST)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from .daemons import docker_cli
from .procs import Daemon, base_env, remove_tree, run, wait_until


class RuntimeDaemon:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.socket = base / "runtime.sock"
        self.root = base / "store"
        (base / "cli").mkdir(exist_ok=True)
        env = {**base_env(), "RUNTIME_CONFIG": str(base / "config.json")}
        args: list[str | os.PathLike[str]] = [sys.executable, "-m", "runtime", "daemon", "--socket", self.socket]
        args += ["--root", self.root]
        self.daemon = Daemon("runtime daemon", args, base / "daemon.log", env=env)
        self.log_title, self.log_path = self.daemon.log_title, self.daemon.log_path
        self.env = {**base_env(), "DOCKER_CONFIG": str(base / "cli"), "DOCKER_HOST": f"unix://{self.socket}"}
        self.env.pop("DOCKER_CONTEXT", None)

    def start(self) -> None:
        self.daemon.start()
        wait_until(self.ping, what="runtime daemon", daemon=self.daemon)

    def restart(self) -> None:
        self.daemon.stop()
        self.daemon = Daemon(self.log_title, self.daemon.args, self.log_path, env=self.daemon.env)
        self.start()

    def ping(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket)), timeout=2) as client:
                return client.get("http://docker/_ping").status_code == 200
        except httpx.HTTPError:
            return False

    def docker(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return run([docker_cli(), *args], check=check, env=self.env, input=input)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [docker_cli(), *args], env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def stop(self) -> None:
        """Remove every container (the store's monitors outlive the daemon), stop the daemon, delete everything."""
        if self.ping():
            ids = self.docker("ps", "-aq", "--no-trunc", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
        self.daemon.stop()
        remove_tree(self.base)
        assert not os.path.exists(self.base)
