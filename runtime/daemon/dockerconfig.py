"""A ``containers/create`` body mapped onto the runtime's ``RunOptions``, and kept beside the container.

The body (docker's ``Config`` with ``HostConfig`` inside) is validated here: a client's mistake is a 400 naming the
field. What ``RunOptions`` has no place for (Tty, OpenStdin, StdinOnce, AutoRemove, the network mode as asked) is
written to ``containers/<id>/docker.json`` for inspect, attach and the supervisor.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..containers import Container
from ..spec import RunOptions
from ..store import write_json_atomic
from .http import ApiError

DOCKER_FILE = "docker.json"
NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
NETWORKS = {"": "none", "default": "none", "bridge": "none", "none": "none", "host": "host"}


def string_list(doc: dict[str, Any], key: str) -> list[str] | None:
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApiError(400, f"{key}: expected a list of strings")
    if any("\0" in v for v in value):
        raise ApiError(400, f"{key}: a NUL byte is not allowed")
    return value


def text(doc: dict[str, Any], key: str) -> str:
    """A string field ("" when absent or null); 400 for another type or a NUL byte."""
    value = doc.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ApiError(400, f"{key}: expected a string")
    if "\0" in value:
        raise ApiError(400, f"{key}: a NUL byte is not allowed")
    return value


def optional_int(doc: dict[str, Any], key: str) -> int | None:
    value = doc.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ApiError(400, f"HostConfig.{key}: expected an integer")
    return value if value > 0 else None


def container_name(name: str | None) -> str | None:
    if not name:
        return None
    if not NAME.match(name):
        raise ApiError(400, f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    return name.lstrip("/")


def console_size(host: dict[str, Any]) -> list[int] | None:
    """HostConfig.ConsoleSize, [height, width]: the client's terminal, so a tty starts at its size."""
    size = host.get("ConsoleSize")
    if size is None:
        return None
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(n, int) and 0 <= n < 1 << 16 for n in size)):
        raise ApiError(400, "HostConfig.ConsoleSize: expected [height, width]")
    return size if all(size) else None


def network_of(host: dict[str, Any]) -> str:
    mode = host.get("NetworkMode") or ""
    if not isinstance(mode, str) or mode not in NETWORKS:
        raise ApiError(400, f"network mode {mode!r} is not supported: none or host")
    return NETWORKS[mode]


UNSUPPORTED = {
    "PortBindings": "publishing ports (-p): containers have no network but none or host",
    "Privileged": "--privileged",
    "CapAdd": "--cap-add",
    "CapDrop": "--cap-drop",
    "Devices": "--device",
    "VolumesFrom": "--volumes-from",
    "Links": "--link",
    "Runtime": "--runtime",
}


def refuse_unsupported(host: dict[str, Any]) -> None:
    """A request for what this daemon cannot do is a 400 naming it, never silently ignored."""
    for key, what in UNSUPPORTED.items():
        if host.get(key):
            raise ApiError(400, f"not supported by this daemon: {what} (HostConfig.{key})")


def run_options(body: Any, name: str | None) -> RunOptions:
    if not isinstance(body, dict):
        raise ApiError(400, "Config cannot be empty in order to create a container")
    host = body.get("HostConfig") or {}
    if not isinstance(host, dict):
        raise ApiError(400, "HostConfig: expected an object")
    refuse_unsupported(host)
    entrypoint = string_list(body, "Entrypoint")
    command = string_list(body, "Cmd") or []
    if entrypoint is not None:
        command = entrypoint[1:] + command
    workdir, user = text(body, "WorkingDir"), text(body, "User")
    if workdir and not workdir.startswith("/"):
        raise ApiError(400, f"the working directory '{workdir}' is invalid, it needs to be an absolute path")
    tty = bool(body.get("Tty"))
    env = string_list(body, "Env") or []
    if tty and not any(item.startswith("TERM=") for item in env):
        env = ["TERM=xterm", *env]  # as dockerd sets for a terminal
    return RunOptions(
        command=command,
        entrypoint=(entrypoint[0] if entrypoint else "") if entrypoint is not None else None,
        env=env,
        tty=tty,
        console_size=console_size(host),
        volumes=string_list(host, "Binds") or [],
        workdir=workdir or None,
        user=user or None,
        name=container_name(name),
        network=network_of(host),
        memory=optional_int(host, "Memory"),
        pids_limit=optional_int(host, "PidsLimit"),
    )


def image_of(body: Any) -> str:
    image = body.get("Image") if isinstance(body, dict) else None
    if not isinstance(image, str) or not image:
        raise ApiError(400, "Config.Image: an image is required")
    return image


def save(container_dir: Path, body: dict[str, Any]) -> None:
    host = body.get("HostConfig") or {}
    config = {k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")}
    write_json_atomic(container_dir / DOCKER_FILE, {"Config": config, "HostConfig": host})


def load(container: Container) -> dict[str, Any]:
    try:
        doc = json.loads((container.dir / DOCKER_FILE).read_text())
    except (OSError, ValueError):
        return {"Config": {}, "HostConfig": {}}
    return doc if isinstance(doc, dict) else {"Config": {}, "HostConfig": {}}


def auto_remove(container: Container) -> bool:
    return bool(load(container)["HostConfig"].get("AutoRemove"))


def flag(container: Container, key: str) -> bool:
    return bool(load(container)["Config"].get(key))
