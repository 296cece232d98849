"""Start our registry and distribution's ``docker-registry`` side by side on free loopback ports."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_text(port: int, data_dir: Path, with_database: bool) -> str:
    """The same config.yml content for both; ours also gets ``database.url`` (distribution ignores it)."""
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(data_dir / "storage")}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    if with_database:
        config["database"] = {"url": f"sqlite+aiosqlite:///{data_dir / 'registry.db'}"}
    return yaml.safe_dump(config, sort_keys=False)


@dataclass
class Server:
    name: str
    command: list[str]
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None
    startup_seconds: float = 0.0
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir / "server.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = self.log_path.open("wb")
        started = time.perf_counter()
        self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir)
        log.close()
        deadline = started + READY_TIMEOUT
        with httpx.Client(timeout=2.0) as client:
            while time.perf_counter() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}: {self.log_tail()}")
                try:
                    if client.get(f"{self.base_url}/v2/").status_code == 200:
                        self.startup_seconds = time.perf_counter() - started
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.01)  # polling interval, not a fixed wait
        raise RuntimeError(f"{self.name} not ready within {READY_TIMEOUT}s: {self.log_tail()}")

    def peak_rss_mib(self) -> float:
        """VmHWM of the server process (and, if it forked workers, the largest child)."""
        assert self.process is not None
        pids = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        peak = 0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        return peak / 1024

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT)

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""


def make_servers(tmp: Path) -> tuple[Server, Server]:
    servers = []
    for name, with_db in (("ours", True), ("reference", False)):
        data_dir = tmp / name
        data_dir.mkdir()
        port = free_port()
        config_path = data_dir / "config.yml"
        config_path.write_text(config_text(port, data_dir, with_db))
        if name == "ours":
            command = [sys.executable, "-m", "registry", "serve", str(config_path)]
        else:
            command = ["docker-registry", "serve", str(config_path)]
        servers.append(Server(name, command, port, data_dir))
    return servers[0], servers[1]
