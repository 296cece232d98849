"""Containers on disk: create (overlay rootfs + OCI bundle), state, stop, remove. Nothing lives in a daemon.

containers/<id>/container.json   what was asked: image, layers, options (written once)
containers/<id>/state.json       created | running (pid, monitor pid) | exited (exit code), rewritten atomically
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import spec, users
from .errors import ConflictError, ContainerNotFound
from .fsroot import InRoot, remove_tree_quietly
from .ociruntime import OciRuntime, alive, is_mounted, mount_overlay, unmount, wait_exit
from .spec import RunOptions
from .store import ImageRecord, Store, hex_of, write_json_atomic

EMPTY_LAYER = "empty"


def now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Container:
    id: str
    name: str
    image: str
    manifest: str
    diff_ids: list[str]
    created: str
    args: list[str]
    options: dict[str, Any]
    state: dict[str, Any] = field(default_factory=dict)
    dir: Path = Path()

    @property
    def rootfs(self) -> Path:
        return self.dir / "rootfs"

    def save_state(self, **changes: Any) -> None:
        self.state.update(changes)
        write_json_atomic(self.dir / "state.json", self.state)

    @property
    def status(self) -> str:
        """created, running or exited; a running record whose processes are all gone reads as exited."""
        status = str(self.state.get("status", "created"))
        if status == "running":
            pids = [p for p in (self.state.get("pid"), self.state.get("monitor_pid")) if isinstance(p, int)]
            if not any(alive(p) for p in pids):
                return "exited"
        return status

    def running(self) -> bool:
        return self.status == "running"

    def pid(self) -> int | None:
        """The container's init pid: from state.json (detached), else the pid file runc writes (attached)."""
        pid = self.state.get("pid")
        if isinstance(pid, int):
            return pid
        try:
            return int((self.dir / "pid").read_text())
        except (OSError, ValueError):
            return None


def load(store: Store, container_id: str) -> Container:
    path = store.container_dir(container_id)
    doc = json.loads((path / "container.json").read_text())
    try:
        state = json.loads((path / "state.json").read_text())
    except FileNotFoundError:
        state = {}
    return Container(**doc, state=state, dir=path)


def all_containers(store: Store) -> list[Container]:
    found = []
    for cid in store.container_ids():
        try:
            found.append(load(store, cid))
        except (OSError, ValueError):
            continue  # removed while listing
    return sorted(found, key=lambda c: c.created, reverse=True)


def find(store: Store, key: str) -> Container:
    """By name, full id or unique id prefix."""
    containers = all_containers(store)
    for c in containers:
        if c.name == key or c.id == key:
            return c
    matches = [c for c in containers if c.id.startswith(key)] if len(key) >= 3 else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ConflictError(f"{key!r} matches {len(matches)} containers: give more of the id")
    raise ContainerNotFound(f"no such container: {key}")


def create(store: Store, ref: str, image: ImageRecord, opts: RunOptions, host_env: dict[str, str]) -> Container:
    """Make the container's directory, mount its overlay rootfs and write the OCI bundle."""
    config = store.config_doc(image).get("config") or {}
    cid = secrets.token_hex(32)
    with store.locked():
        name = opts.name or f"c-{cid[:12]}"
        if any(c.name == name for c in all_containers(store)):
            raise ConflictError(f"the container name {name!r} is already in use (runtime rm {name})")
        path = store.container_dir(cid)
        for sub in ("upper", "work", "rootfs"):
            (path / sub).mkdir(parents=True)
        container = Container(cid, name, ref, image.manifest, image.diff_ids, now(), [], asdict(opts), dir=path)
        write_json_atomic(path / "container.json", _record(container))
        container.save_state(status="created")
    try:
        mount_rootfs(store, container)
        bundle = _bundle(store, container, config, opts, host_env)
    except BaseException:
        unmount(container.rootfs)
        remove_tree_quietly(path)
        raise
    container.args = bundle["process"]["args"]
    write_json_atomic(path / "container.json", _record(container))
    return container


def rename(store: Store, container: Container, name: str) -> None:
    with store.locked():
        if any(c.name == name and c.id != container.id for c in all_containers(store)):
            raise ConflictError(f"the container name {name!r} is already in use")
        container.name = name
        write_json_atomic(container.dir / "container.json", _record(container))


def _record(c: Container) -> dict[str, Any]:
    doc = asdict(c)
    del doc["state"], doc["dir"]
    return doc


def mount_rootfs(store: Store, container: Container) -> None:
    if is_mounted(container.rootfs):
        return
    lower = [hex_of(d) for d in reversed(container.diff_ids)]
    if not lower:
        (store.layers / EMPTY_LAYER).mkdir(exist_ok=True)
        lower = [EMPTY_LAYER]
    mount_overlay(container.rootfs, store.layers, lower, container.dir / "upper", container.dir / "work")


def _bundle(
    store: Store, container: Container, image: dict[str, Any], opts: RunOptions, host_env: dict[str, str]
) -> dict[str, Any]:
    with InRoot(container.rootfs) as root:
        user = users.resolve(root, opts.user if opts.user is not None else str(image.get("User") or ""))
        workdir = opts.workdir or image.get("WorkingDir") or "/"
        if not workdir.startswith("/"):
            raise ConflictError(f"the working directory {workdir!r} is not absolute")
        root.make_dirs(workdir)
    hostname = container.id[:12]
    (container.dir / "hostname").write_text(hostname + "\n")
    hosts = f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
    if opts.network == "host":
        hosts += f"127.0.1.1\t{socket.gethostname()}\n"
    (container.dir / "hosts").write_text(hosts)
    resolv = Path("/etc/resolv.conf")
    text = resolv.read_text() if opts.network == "host" and resolv.is_file() else ""
    (container.dir / "resolv.conf").write_text(text)
    doc = spec.build(
        container_id=container.id,
        bundle=container.dir,
        rootfs=container.rootfs,
        image=image,
        opts=opts,
        user=user,
        host_env=host_env,
    )
    write_json_atomic(container.dir / "config.json", doc)
    return doc


def stop(container: Container, runtime: OciRuntime, timeout: float) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds; returns when the monitor has recorded the exit."""
    pid = container.pid()
    if not container.running() or pid is None:
        return
    runtime.kill(container.id, "TERM")
    if not wait_exit(pid, timeout):
        runtime.kill(container.id, "KILL")
        wait_exit(pid, None)
    _wait_monitor(container)


def kill(container: Container, runtime: OciRuntime, signal: str) -> None:
    if not container.running():
        raise ConflictError(f"container {container.name} is not running")
    if not runtime.kill(container.id, signal):
        raise ConflictError(f"could not signal container {container.name} ({signal})")


def _wait_monitor(container: Container) -> None:
    monitor = container.state.get("monitor_pid")
    if isinstance(monitor, int) and monitor != os.getpid():
        wait_exit(monitor, 30)


def remove(store: Store, container: Container, runtime: OciRuntime, *, force: bool = False) -> None:
    if container.running():
        if not force:
            raise ConflictError(f"container {container.name} is running: runtime stop it first, or rm -f")
        stop(container, runtime, 0)
    runtime.delete(container.id)
    unmount(container.rootfs)
    remove_tree_quietly(container.dir)


def finish(store: Store, container: Container, runtime: OciRuntime, exit_code: int) -> None:
    """After the container's process is gone: release runc state and the mount, record the exit code."""
    runtime.delete(container.id)
    unmount(container.rootfs)
    if container.options.get("rm"):
        remove_tree_quietly(container.dir)
    else:
        container.save_state(status="exited", exit_code=exit_code, finished_at=now(), pid=None)
