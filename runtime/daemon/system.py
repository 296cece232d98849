"""``/_ping``, ``/version`` and ``/info``: what docker reads before anything else, with the fields 20.10 reads."""

from __future__ import annotations

import asyncio
import os
import platform
import time

from .. import containers
from ..ociruntime import find
from .http import Reply, Request, Response, json_response
from .router import Route

API_VERSION = "1.41"
MIN_API_VERSION = "1.12"
VERSION = "20.10.0-runtime"
CGROUP_VERSION = "2" if os.path.exists("/sys/fs/cgroup/cgroup.controllers") else "1"


async def ping(request: Request) -> Reply:
    no_cache = [("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache")]
    return Response(200, b"OK", "text/plain; charset=utf-8", no_cache)


async def version(request: Request) -> Reply:
    details = {
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": f"python{platform.python_version()}",
        "Os": "linux",
        "Arch": _arch(os.uname().machine),
        "KernelVersion": os.uname().release,
        "BuildTime": "",
        "Experimental": "false",
    }
    return json_response(
        {
            "Platform": {"Name": "runtime daemon"},
            "Components": [{"Name": "Engine", "Version": VERSION, "Details": details}],
            "Version": VERSION,
            **{k: v for k, v in details.items() if k != "Experimental"},
        }
    )


async def info(request: Request) -> Reply:
    store = request.context.store
    found = await asyncio.to_thread(containers.all_containers, store)
    running = sum(1 for c in found if c.running())
    uname = os.uname()
    try:
        runtime_name = os.path.basename(find(request.context.settings.oci_runtime))
    except Exception:  # noqa: BLE001 (info still answers without an OCI runtime)
        runtime_name = "none"
    return json_response(
        {
            "ID": "",
            "Containers": len(found),
            "ContainersRunning": running,
            "ContainersPaused": 0,
            "ContainersStopped": len(found) - running,
            "Images": len(store.images()),
            "Driver": "overlay",
            "DriverStatus": [],
            "DockerRootDir": str(store.root),
            "Plugins": {"Volume": [], "Network": ["host", "null"], "Authorization": None, "Log": ["json-file"]},
            "MemoryLimit": True,
            "SwapLimit": False,
            "CpuCfsPeriod": False,
            "CpuCfsQuota": False,
            "OomKillDisable": False,
            "IPv4Forwarding": False,
            "Debug": False,
            "NFd": len(os.listdir("/proc/self/fd")),
            "NGoroutines": 0,
            "SystemTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": CGROUP_VERSION,
            "KernelVersion": uname.release,
            "OperatingSystem": "linux",
            "OSType": "linux",
            "OSVersion": "",
            "Architecture": uname.machine,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}, "Mirrors": []},
            "NCPU": os.cpu_count() or 1,
            "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
            "Name": uname.nodename,
            "Labels": [],
            "ExperimentalBuild": False,
            "ServerVersion": VERSION,
            "Runtimes": {runtime_name: {"path": runtime_name}},
            "DefaultRuntime": runtime_name,
            "Swarm": {"LocalNodeState": "inactive", "ControlAvailable": False},
            "LiveRestoreEnabled": True,
            "Isolation": "",
            "InitBinary": "",
            "SecurityOptions": ["name=seccomp,profile=default"],
            "Warnings": [],
        }
    )


def _arch(machine: str) -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


ROUTES = [
    Route("GET", "/_ping", ping),
    Route("GET", "/version", version),
    Route("GET", "/info", info),
]
