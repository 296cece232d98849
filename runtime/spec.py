"""The OCI runtime-spec `config.json` for a container, generated from the image config and the run options.

Defaults follow docker's: namespaces pid, mount, uts, ipc and net (none with `--network host`); a tmpfs /dev with
pts, shm and mqueue (runc adds the standard device nodes); docker's masked and read-only /proc paths; docker's
default capability set; RLIMIT_NOFILE at docker's 1048576, capped at this host's hard limit; memory and pids limits
through cgroups; the compact seccomp profile of `seccomp.py`.
"""

from __future__ import annotations

import resource
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import seccomp
from .errors import UsageError
from .users import User

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_NOFILE = 1048576
DEFAULT_CAPABILITIES = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
]  # fmt: skip
MASKED_PATHS = [
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
    "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
]  # fmt: skip
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


@dataclass
class RunOptions:
    command: list[str] = field(default_factory=list)
    entrypoint: str | None = None
    env: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    name: str | None = None
    network: str = "none"
    memory: int | None = None
    pids_limit: int | None = None
    rm: bool = False
    detach: bool = False
    tty: bool = False  # a pseudo-terminal (the daemon's `docker run -t`): runc's console socket, the monitor's copy
    console_size: list[int] | None = None  # [height, width] of that terminal from the start


def command_line(image: dict[str, Any], opts: RunOptions) -> list[str]:
    """docker's rule: --entrypoint replaces Entrypoint and drops the image's Cmd; CMD args replace Cmd."""
    if opts.entrypoint is not None:
        entrypoint = [opts.entrypoint] if opts.entrypoint else []
        cmd = opts.command
    else:
        entrypoint = list(image.get("Entrypoint") or [])
        cmd = opts.command or list(image.get("Cmd") or [])
    args = entrypoint + cmd
    if not args:
        raise UsageError("no command specified: the image has no Entrypoint or Cmd and none was given")
    return args


def environment(
    image: dict[str, Any], opts: RunOptions, hostname: str, user: User, host_env: dict[str, str]
) -> list[str]:
    env: dict[str, str] = {"PATH": DEFAULT_PATH}
    for item in image.get("Env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    env["HOSTNAME"] = hostname
    env.setdefault("HOME", user.home)
    for item in opts.env:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f"invalid environment variable {item!r}")
        if sep:
            env[key] = value
        elif key in host_env:
            env[key] = host_env[key]
    return [f"{k}={v}" for k, v in env.items()]


def volume_mounts(volumes: list[str]) -> list[dict[str, Any]]:
    mounts = []
    for spec in volumes:
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[0].startswith("/") or not parts[1].startswith("/"):
            raise UsageError(f"invalid volume {spec!r}: expected /HOST:/CONTAINER[:ro|rw]")
        mode = parts[2] if len(parts) == 3 else "rw"
        if mode not in ("ro", "rw"):
            raise UsageError(f"invalid volume mode {mode!r} in {spec!r}: ro or rw")
        if not Path(parts[0]).exists():
            raise UsageError(f"volume source {parts[0]} does not exist")
        options = ["rbind", "rprivate"] + (["ro"] if mode == "ro" else [])
        mounts.append({"destination": parts[1], "type": "bind", "source": parts[0], "options": options})
    return mounts


def base_mounts() -> list[dict[str, Any]]:
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        },
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
        },
    ]


def etc_mounts(bundle: Path) -> list[dict[str, Any]]:
    return [
        {"destination": f"/etc/{name}", "type": "bind", "source": str(bundle / name), "options": ["rbind", "rprivate"]}
        for name in ("hosts", "hostname", "resolv.conf")
    ]


def rlimits() -> list[dict[str, Any]]:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = DEFAULT_NOFILE if hard == resource.RLIM_INFINITY else min(DEFAULT_NOFILE, hard)
    return [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}]


def image_annotations(image: dict[str, Any]) -> dict[str, str]:
    """Labels, and the ports the image exposes (informational: there is no port publishing without a bridge)."""
    found = {f"org.opencontainers.image.label.{k}": str(v) for k, v in (image.get("Labels") or {}).items()}
    ports = sorted(image.get("ExposedPorts") or {})
    if ports:
        found["org.opencontainers.image.exposedPorts"] = ",".join(ports)
    return found


def console_size(opts: RunOptions) -> dict[str, Any]:
    if not opts.tty or not opts.console_size:
        return {}
    height, width = opts.console_size
    return {"consoleSize": {"height": height, "width": width}}


def build(
    *,
    container_id: str,
    bundle: Path,
    rootfs: Path,
    image: dict[str, Any],
    opts: RunOptions,
    user: User,
    host_env: dict[str, str],
) -> dict[str, Any]:
    hostname = container_id[:12]
    caps = DEFAULT_CAPABILITIES
    namespaces = [{"type": t} for t in ("pid", "mount", "uts", "ipc")]
    if opts.network != "host":
        namespaces.append({"type": "network"})
    resources: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    if opts.memory is not None:
        resources["memory"] = {"limit": opts.memory}
    if opts.pids_limit is not None:
        resources["pids"] = {"limit": opts.pids_limit}
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            **console_size(opts),
            "terminal": opts.tty,
            "user": {"uid": user.uid, "gid": user.gid, "additionalGids": user.additional_gids},
            "args": command_line(image, opts),
            "env": environment(image, opts, hostname, user, host_env),
            "cwd": opts.workdir or image.get("WorkingDir") or "/",
            "capabilities": {
                "bounding": caps,
                "effective": caps if user.uid == 0 else [],
                "permitted": caps if user.uid == 0 else [],
            },
            "rlimits": rlimits(),
            "noNewPrivileges": False,
        },
        "root": {"path": str(rootfs), "readonly": False},
        "hostname": hostname,
        "mounts": base_mounts() + etc_mounts(bundle) + volume_mounts(opts.volumes),
        "annotations": image_annotations(image),
        "linux": {
            "namespaces": namespaces,
            "cgroupsPath": f"/runtime/{container_id}",
            "resources": resources,
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
            "seccomp": seccomp.profile(),
        },
    }
