"""The other programs the tier drives: a private dockerd, skopeo, podman and containerd.

Each is isolated from the host's configuration and state: own sockets, roots, auth files and registries.conf.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx

from .procs import COMMAND_TIMEOUT, Daemon, base_env, remove_tree, require, run, wait_until

# --------------------------------------------------------------------------------------------------------------------
# dockerd
# --------------------------------------------------------------------------------------------------------------------


def docker_cli() -> str:
    """The docker CLI: the one Debian's docker.io ships next to its daemon, else whatever is first in PATH."""
    paired = Path("/usr/bin/docker")
    if paired.is_file() and os.access(paired, os.X_OK):
        return str(paired)
    return require("docker")


class DockerDaemon:
    """A private dockerd (vfs storage, no bridge, no iptables) and the docker CLI pointed at it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.sock = base / "docker.sock"
        self.host = f"unix://{self.sock}"
        self.config_dir = base / "cli"
        self.config_dir.mkdir()
        self.cli = docker_cli()
        self.env = {
            **base_env(),
            "DOCKER_BUILDKIT": "0",
            "DOCKER_CONFIG": str(self.config_dir),
            "DOCKER_HOST": self.host,
        }
        self.env.pop("DOCKER_CONTEXT", None)
        args = [
            require("dockerd"),
            "--iptables=false",
            "--bridge=none",
            "--storage-driver=vfs",
            f"--data-root={base / 'data'}",
            f"--exec-root={base / 'exec'}",
            f"--pidfile={base / 'docker.pid'}",
            f"--host={self.host}",
        ]
        self.daemon = Daemon("dockerd", args, base / "dockerd.log")
        self.log_title = self.daemon.log_title
        self.log_path = self.daemon.log_path

    def start(self) -> None:
        self.daemon.start()
        wait_until(self._ping, what="dockerd", daemon=self.daemon)
        self.run("version")

    def _ping(self) -> bool:
        if not self.sock.exists():
            return False
        try:
            transport = httpx.HTTPTransport(uds=str(self.sock))
            with httpx.Client(transport=transport, timeout=2, trust_env=False) as client:
                return client.get("http://docker/_ping").status_code == 200
        except httpx.HTTPError:
            return False

    def run(
        self,
        *args: str | os.PathLike[str],
        check: bool = True,
        timeout: float = COMMAND_TIMEOUT,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `docker ARGS` against this daemon."""
        return run([self.cli, *args], check=check, env=self.env, timeout=timeout, input=input)

    def inspect(self, ref: str, template: str) -> str:
        return self.run("image", "inspect", "--format", template, ref).stdout.strip()

    def has_image(self, ref: str) -> bool:
        return self.run("image", "inspect", ref, check=False).returncode == 0

    def stop(self) -> None:
        self.daemon.stop(timeout=30)
        remove_tree(self.base)


PUSH_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64}) size: \d+")
LAYER_STATUS = re.compile(r"^([0-9a-f]{12}): (.+)$", re.MULTILINE)


def push_digest(output: str) -> str:
    match = PUSH_DIGEST.search(output)
    assert match, f"no 'digest: sha256:... size: N' line in push output:\n{output}"
    return match.group(1)


def layer_statuses(output: str) -> dict[str, str]:
    """Final status of each layer in `docker push`/`docker pull` output (short layer id -> status)."""
    return dict(LAYER_STATUS.findall(output))


def docker_push(docker: DockerDaemon, ref: str) -> tuple[str, str]:
    """`docker push ref`; returns (manifest digest, full output)."""
    out = docker.run("push", ref).stdout
    return push_digest(out), out


def docker_forget(docker: DockerDaemon, *refs: str) -> None:
    """Remove every given reference, so the next pull must really fetch the image."""
    docker.run("rmi", "--force", *refs)
    for ref in refs:
        assert not docker.has_image(ref), f"{ref} is still present after docker rmi"


# --------------------------------------------------------------------------------------------------------------------
# skopeo, podman, containerd
# --------------------------------------------------------------------------------------------------------------------


def isolated_containers_env(base: Path) -> dict[str, str]:
    """Environment for containers/image tools with private auth, registries.conf and containers.conf."""
    auth = base / "auth.json"
    auth.write_text('{"auths": {}}\n')
    registries = base / "registries.conf"
    registries.write_text("unqualified-search-registries = []\n")
    containers_conf = base / "containers.conf"
    containers_conf.write_text("")
    tmp = base / "tmp"
    tmp.mkdir(exist_ok=True)
    return {
        **base_env(),
        "REGISTRY_AUTH_FILE": str(auth),
        "CONTAINERS_REGISTRIES_CONF": str(registries),
        "CONTAINERS_CONF": str(containers_conf),
        "TMPDIR": str(tmp),
    }


class Skopeo:
    def __init__(self, base: Path, docker_host: str) -> None:
        self.base = base
        self.docker_host = docker_host  # skopeo 1.9 ignores DOCKER_HOST: pass --src-daemon-host too
        self.env = {**isolated_containers_env(base), "DOCKER_HOST": docker_host}
        registries_d = base / "registries.d"
        registries_d.mkdir()
        self.argv = [require("skopeo"), "--insecure-policy", "--registries.d", str(registries_d)]

    def run(
        self, *args: str | os.PathLike[str], check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run([*self.argv, *args], check=check, env=self.env, input=input)

    def inspect(self, ref: str, *extra: str) -> Any:
        return json.loads(self.run("inspect", "--tls-verify=false", *extra, ref).stdout)


class Podman:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.env = isolated_containers_env(base)
        storage_conf = base / "storage.conf"
        storage_conf.write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{base / "root"}"\nrunroot = "{base / "runroot"}"\n'
        )
        self.env["CONTAINERS_STORAGE_CONF"] = str(storage_conf)
        self.argv = [
            require("podman"),
            f"--root={base / 'root'}",
            f"--runroot={base / 'runroot'}",
            "--storage-driver=vfs",
            "--cgroup-manager=cgroupfs",
            "--events-backend=file",
            f"--tmpdir={base / 'libpod'}",
            f"--network-config-dir={base / 'networks'}",
        ]

    def run(
        self, *args: str | os.PathLike[str], check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run([*self.argv, *args], check=check, env=self.env, input=input)

    def inspect(self, ref: str, template: str) -> str:
        return self.run("image", "inspect", "--format", template, ref).stdout.strip()

    def cleanup(self) -> None:
        self.run("rmi", "--all", "--force", check=False)
        remove_tree(self.base)


CONTAINERD_CONFIG = """\
version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{base}/containerd.sock"

[ttrpc]
  address = "{base}/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{base}/opt"
"""


class Containerd:
    """A private containerd (own root, state and socket) and `ctr` in a private namespace on it."""

    namespace = "e2e"

    def __init__(self, base: Path) -> None:
        self.base = base
        self.sock = base / "containerd.sock"
        config = base / "config.toml"
        config.write_text(CONTAINERD_CONFIG.format(base=base))
        self.daemon = Daemon("containerd", [require("containerd"), "--config", config], base / "containerd.log")
        self.log_title = self.daemon.log_title
        self.log_path = self.daemon.log_path
        self.argv = [require("ctr"), "--address", str(self.sock), "--namespace", self.namespace]
        # the native snapshotter works on any filesystem (no overlayfs inside whatever /tmp is)
        self.env = {**base_env(), "CONTAINERD_SNAPSHOTTER": "native"}

    def start(self) -> None:
        self.daemon.start()
        wait_until(self._ready, what="containerd", daemon=self.daemon)

    def _ready(self) -> bool:
        return self.sock.exists() and self.ctr("version", check=False).returncode == 0

    def ctr(self, *args: str | os.PathLike[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([*self.argv, *args], check=check, env=self.env)

    def images(self) -> dict[str, str]:
        """`ctr images ls`: reference -> manifest digest."""
        lines = self.ctr("images", "ls").stdout.splitlines()[1:]
        return {cols[0]: cols[2] for cols in (line.split() for line in lines) if len(cols) >= 3}

    def stop(self) -> None:
        if not self.daemon.exited():
            for task in self.ctr("tasks", "ls", "--quiet", check=False).stdout.split():
                self.ctr("tasks", "kill", "--signal", "SIGKILL", task, check=False)
                self.ctr("tasks", "delete", "--force", task, check=False)
        self.daemon.stop()
        remove_tree(self.base)
