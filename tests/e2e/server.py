"""The registry under test: our server (`python -m registry serve`) or CNCF distribution, on a loopback port
(or on another address of this host)."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .client import RegistryClient
from .procs import STARTUP_TIMEOUT, STOP_TIMEOUT, Daemon, base_env, free_port, require, run, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
DISTRIBUTION_GAPS = "CNCF distribution 2.8.2 does not implement this (our server must)"


def server_kind() -> str:
    kind = os.environ.get("E2E_SERVER", "") or "ours"
    if kind not in ("ours", "distribution"):
        pytest.fail(f"E2E_SERVER={kind!r}: expected unset, 'ours' or 'distribution'", pytrace=False)
    return kind


def merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `extra` merged in, recursively for mappings on both sides (`extra` wins otherwise)."""
    merged = dict(base)
    for key, value in extra.items():
        old = merged.get(key)
        merged[key] = merge(old, value) if isinstance(old, dict) and isinstance(value, Mapping) else value
    return merged


def write_registry_config(
    root: Path, port: int, extra: Mapping[str, Any] | None = None, address: str = "127.0.0.1"
) -> Path:
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    config = {
        "version": 0.1,
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(data)}, "delete": {"enabled": True}},
        "http": {"addr": f"{address}:{port}"},
        "database": {"url": f"sqlite+aiosqlite:///{data / 'registry.db'}"},
    }
    path = root / "config.yml"
    path.write_text(yaml.safe_dump(merge(config, extra or {}), sort_keys=False))
    return path


def needs_our_server(what: str) -> pytest.MarkDecorator:
    """Mark a test of a feature distribution 2.8.2 lacks: skipped only under E2E_SERVER=distribution."""
    return pytest.mark.skipif(os.environ.get("E2E_SERVER") == "distribution", reason=f"{DISTRIBUTION_GAPS}: {what}")


def registry_command(kind: str, config: Path | None, args: Sequence[str] = ()) -> list[str]:
    if kind == "distribution":
        return [require("docker-registry"), "serve", *([str(config)] if config else []), *args]
    return [sys.executable, "-m", "registry", "serve", *([str(config)] if config else []), *args]


class RegistryServer:
    """The registry under test, on a loopback port (or on `address`, an IPv4 address of this host), with its data
    under `root`.

    `extra_config` is merged into the config.yml written under `root`; with `config_file=False` there is none, and
    the port comes from REGISTRY_HTTP_ADDR (the data then lands in `cwd`). `args` go after `serve [CONFIG]`, `env`
    on top of this process's environment without proxy settings. With `tls` (a client SSL context trusting the
    server's CA) it is reached over https. A server that asks for credentials is ready when `/v2/` answers 401.
    """

    def __init__(
        self,
        root: Path,
        kind: str,
        *,
        cwd: Path = REPO_ROOT,
        extra_config: Mapping[str, Any] | None = None,
        config_file: bool = True,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        address: str = "127.0.0.1",
    ) -> None:
        self.kind = kind
        self.root = root
        self.port = free_port()
        self.host = f"{address}:{self.port}"
        self.tls = tls
        self.url = f"{'https' if tls else 'http'}://{self.host}"
        if config_file:
            self.config: Path | None = write_registry_config(root, self.port, extra_config, address)
        else:
            assert extra_config is None, "extra_config needs a config file"
            root.mkdir(parents=True, exist_ok=True)
            self.config = None
        self.env = {**base_env(), **({} if config_file else {"REGISTRY_HTTP_ADDR": self.host}), **(env or {})}
        self.args = list(args)
        self.log_path = root / "server.log"
        self.log_title = f"registry server ({kind})"
        self.cwd = cwd
        self.daemon: Daemon | None = None

    def command(self) -> list[str]:
        return registry_command(self.kind, self.config, self.args)

    def start(self) -> None:
        self.daemon = Daemon(self.log_title, self.command(), self.log_path, env=self.env, cwd=self.cwd)
        self.daemon.start()
        wait_until(self._ready, what=f"{self.log_title} on {self.url}", daemon=self.daemon)

    def run(self, timeout: float = STARTUP_TIMEOUT) -> subprocess.CompletedProcess[str]:
        """Run the server in the foreground until it exits, for a configuration it must refuse (stderr separate)."""
        return run(self.command(), check=False, env=self.env, cwd=self.cwd, timeout=timeout)

    def _ready(self) -> bool:
        try:
            response = httpx.get(f"{self.url}/v2/", timeout=2, trust_env=False, verify=self.tls or True)
            return response.status_code in (200, 401)
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM (SIGKILL after `timeout`); returns the exit status, None when it was not running."""
        daemon, self.daemon = self.daemon, None
        return daemon.stop(timeout) if daemon is not None else None

    def restart(self) -> None:
        """Stop with SIGTERM and start again on the same port and data."""
        self.stop()
        self.start()

    def client(self) -> RegistryClient:
        return RegistryClient(self.url, verify=self.tls or True)
