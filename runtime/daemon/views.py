"""Containers as docker shows them: ``containers/json`` rows (ps) and ``containers/{id}/json`` (inspect)."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import containers
from ..containers import Container
from ..errors import RuntimeFailure
from ..store import Store
from . import dockerconfig

ZERO_TIME = "0001-01-01T00:00:00Z"


def rfc3339(text: object) -> str:
    if not isinstance(text, str) or not text:
        return ZERO_TIME
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return ZERO_TIME
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def epoch(text: object) -> float:
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return 0.0


def image_id(store: Store, container: Container) -> str:
    try:
        return store.image(container.image).config
    except (RuntimeFailure, OSError):
        return ""


def exit_code(container: Container) -> int:
    code = container.state.get("exit_code")
    return code if isinstance(code, int) else 0


def ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 1:
        return "Less than a second"
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= 2 * size:
            return f"{int(seconds // size)} {unit}"
    if seconds >= 60:
        return "About a minute"
    return "1 second" if seconds < 2 else f"{int(seconds)} seconds"


def status_line(container: Container) -> str:
    status = container.status
    now = time.time()
    if status == "running":
        return f"Up {ago(now - epoch(container.state.get('started_at')))}"
    if status == "exited":
        return f"Exited ({exit_code(container)}) {ago(now - epoch(container.state.get('finished_at')))} ago"
    return "Created"


def network_mode(container: Container) -> str:
    return str(container.options.get("network") or "none")


def row(store: Store, container: Container) -> dict[str, Any]:
    return {
        "Id": container.id,
        "Names": [f"/{container.name}"],
        "Image": container.image,
        "ImageID": image_id(store, container),
        "Command": shlex.join(container.args),
        "Created": int(epoch(container.created)),
        "Ports": [],
        "Labels": dockerconfig.load(container)["Config"].get("Labels") or {},
        "State": container.status,
        "Status": status_line(container),
        "HostConfig": {"NetworkMode": network_mode(container)},
        "NetworkSettings": {"Networks": {}},
        "Mounts": [],
    }


def matches(container: Container, filters: dict[str, Any]) -> bool:
    def values(key: str) -> list[str]:
        found = filters.get(key) or []
        return list(found) if isinstance(found, list | dict) else [str(found)]

    checks: dict[str, Callable[[str], bool]] = {
        "status": lambda v: container.status == v,
        "name": lambda v: v.lstrip("/") in container.name,
        "id": lambda v: container.id.startswith(v),
        "ancestor": lambda v: container.image == v or container.image.endswith("/" + v),
        "exited": lambda v: container.status == "exited" and str(exit_code(container)) == v,
    }
    return all(any(check(v) for v in values(key)) for key, check in checks.items() if values(key))


def listing(store: Store, everything: bool, filters: dict[str, Any], limit: int | None) -> list[dict[str, Any]]:
    found = [c for c in containers.all_containers(store) if everything or c.running() or limit]
    found = [c for c in found if matches(c, filters)]
    if limit is not None and limit > 0:
        found = found[:limit]
    return [row(store, c) for c in found]


TOP_TITLES = ["UID", "PID", "PPID", "CMD"]


def process_row(pid: int) -> list[str] | None:
    """``docker top``'s row for a process, from /proc; None once it is gone."""
    try:
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
        )
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    command = " ".join(part.decode(errors="replace") for part in cmdline.split(b"\0") if part)
    uid = status.get("Uid", "").split()
    name = status.get("Name", "").strip()
    return [uid[0] if uid else "?", str(pid), status.get("PPid", "").strip(), command or f"[{name}]"]


def inspect(store: Store, container: Container) -> dict[str, Any]:
    docker = dockerconfig.load(container)
    config = docker["Config"]
    status = container.status
    running = status == "running"
    args = container.args or [""]
    return {
        "Id": container.id,
        "Created": rfc3339(container.created),
        "Path": args[0],
        "Args": args[1:],
        "State": {
            "Status": status,
            "Running": running,
            "Paused": False,
            "Restarting": False,
            "OOMKilled": False,
            "Dead": False,
            "Pid": (container.pid() or 0) if running else 0,
            "ExitCode": 0 if running else exit_code(container),
            "Error": "",
            "StartedAt": rfc3339(container.state.get("started_at")),
            "FinishedAt": rfc3339(container.state.get("finished_at")) if not running else ZERO_TIME,
        },
        "Image": image_id(store, container),
        "Name": f"/{container.name}",
        "RestartCount": 0,
        "Driver": "overlay",
        "Platform": "linux",
        "HostConfig": {**docker["HostConfig"], "NetworkMode": network_mode(container)},
        "Config": {
            **config,
            "Image": container.image if not config.get("Image") else config["Image"],
            "Hostname": container.id[:12],
            "Tty": bool(config.get("Tty")),
            "OpenStdin": bool(config.get("OpenStdin")),
        },
        "NetworkSettings": {"Networks": {}, "Ports": {}},
        "Mounts": [],
    }
