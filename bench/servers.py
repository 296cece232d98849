"""Start our registry and distribution's ``docker-registry`` side by side on free loopback ports."""

from __future__ import annotations

import compileall
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import yaml

READY_TIMEOUT = 60.0


def wait_for_200(process: subprocess.Popen[bytes], url: str, name: str, log_tail: Callable[[], str]) -> None:
    """Poll ``url`` until it answers 200; fail early if ``process`` exits, and after READY_TIMEOUT."""
    deadline = time.perf_counter() + READY_TIMEOUT
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.perf_counter() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}: {log_tail()}")
            try:
                if client.get(url).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.01)  # polling interval, not a fixed wait
    raise RuntimeError(f"{name} not ready within {READY_TIMEOUT}s: {log_tail()}")


STOP_TIMEOUT = 30.0
REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config_text(port: int, data_dir: Path, with_database: bool, storage: dict[str, Any] | None = None) -> str:
    """The same config.yml content for both; ours also gets ``database.url`` (distribution ignores it).

    ``storage`` replaces the default filesystem storage (``delete.enabled: true`` is added either way)."""
    storage = storage or {"filesystem": {"rootdirectory": str(data_dir / "storage")}}
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {**storage, "delete": {"enabled": True}},
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
    env: dict[str, str] | None = None
    ready_path: str = "/v2/"  # answers 200 once the server is up (behind token auth: the token endpoint)
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
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, cwd=self.data_dir, env=self.env
        )
        log.close()
        wait_for_200(self.process, f"{self.base_url}{self.ready_path}", self.name, self.log_tail)
        self.startup_seconds = time.perf_counter() - started

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

    def state(self) -> str:
        """Whether the process still runs, for a failure report."""
        if self.process is None:
            return "not started"
        code = self.process.poll()
        return f"running (pid {self.process.pid})" if code is None else f"exited with status {code}"

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""


def compile_ours() -> None:
    """Byte-compile our packages ahead, as installing a package does: this checkout is installed editable, and where
    PYTHONDONTWRITEBYTECODE is set (as on this machine) every start would otherwise compile them from source again."""
    for package in ("registry", "storage_backends", "migrations"):
        compileall.compile_dir(REPO_ROOT / package, quiet=1)


def make_servers(tmp: Path, storage: Callable[[], dict[str, Any]] | None = None) -> tuple[Server, Server]:
    """Ours and the reference, each with its own data directory under ``tmp`` (and its own ``storage()``)."""
    compile_ours()
    servers = []
    for name, with_db in (("ours", True), ("reference", False)):
        data_dir = tmp / name
        data_dir.mkdir()
        port = free_port()
        config_path = data_dir / "config.yml"
        config_path.write_text(config_text(port, data_dir, with_db, storage() if storage else None))
        if name == "ours":
            command = [sys.executable, "-m", "registry", "serve", str(config_path)]
        else:
            command = ["docker-registry", "serve", str(config_path)]
        servers.append(Server(name, command, port, data_dir, env=SERVER_ENV))
    return servers[0], servers[1]


# docker-registry's Go S3 client refuses to start when AWS_CA_BUNDLE names a bundle and the endpoint is plain HTTP
SERVER_ENV = {key: value for key, value in os.environ.items() if key != "AWS_CA_BUNDLE"}
MOTO_KEYS = {"accesskey": "bench-access-key", "secretkey": "bench-secret-key"}


class Moto:
    """A moto S3 server (``moto_server``, in memory) on a free loopback port; one bucket per ``storage()`` call."""

    def __init__(self, log_path: Path) -> None:
        beside_python = Path(sys.executable).with_name("moto_server")
        self.command = [str(beside_python) if beside_python.exists() else shutil.which("moto_server") or "moto_server"]
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            args = [*self.command, "-H", "127.0.0.1", "-p", str(self.port)]
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=SERVER_ENV)
        wait_for_200(self.process, self.endpoint + "/", "moto_server", lambda: "")

    def client(self) -> Any:
        keys = {"aws_access_key_id": MOTO_KEYS["accesskey"], "aws_secret_access_key": MOTO_KEYS["secretkey"]}
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", **keys)

    def create_bucket(self) -> str:
        bucket = f"bench-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket

    def storage(self, redirect: bool) -> Callable[[], dict[str, Any]]:
        """A ``storage`` section maker: ``storage.s3`` on a new bucket, and ``storage.redirect``."""

        def make() -> dict[str, Any]:
            params = {"region": "us-east-1", "regionendpoint": self.endpoint, "bucket": self.create_bucket()}
            return {"s3": {**params, **MOTO_KEYS, "forcepathstyle": True}, "redirect": {"disable": not redirect}}

        return make

    def rss_mib(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=STOP_TIMEOUT)


def start_ours(tmp: Path, name: str, extra: dict[str, Any], workers: int = 1) -> Server:
    """Our server on SQLite and the filesystem under ``tmp/<name>``, quiet (errors only, no access log), with the
    config sections in ``extra`` added (``extra["http"]`` merged into ``http``); started."""
    data_dir = tmp / name.replace(" ", "-").replace("+", "and")
    data_dir.mkdir()
    port = free_port()
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(data_dir / "storage")}},
        "http": {"addr": f"127.0.0.1:{port}", "workers": workers, **extra.get("http", {})},
        "database": {"url": f"sqlite+aiosqlite:///{data_dir / 'registry.db'}"},
    }
    config.update({key: value for key, value in extra.items() if key != "http"})
    (data_dir / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "registry", "serve", str(data_dir / "config.yml")]
    server = Server(name, command, port, data_dir, env=SERVER_ENV)
    server.start()
    return server


def cpu_seconds(server: Server) -> float:
    """User and system CPU time of the server process and its live children (the workers) so far."""
    assert server.process is not None
    pids = [server.process.pid]
    children = Path(f"/proc/{pids[0]}/task/{pids[0]}/children")
    pids += [int(pid) for pid in children.read_text().split()] if children.exists() else []
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")
