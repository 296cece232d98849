"""Starting a container: attached (`runc run` in the foreground) or detached (through `runtime.monitor`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from . import containers
from .containers import Container
from .errors import RuntimeFailure
from .ociruntime import OciRuntime
from .store import Store


def run_attached(store: Store, container: Container, runtime: OciRuntime) -> int:
    """Run with our stdin/stdout/stderr; runc forwards signals; returns the container's exit code."""
    container.save_state(status="running", monitor_pid=os.getpid(), started_at=containers.now())
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    code = 255
    try:
        argv = runtime.command(
            "run", "--pid-file", str(container.dir / "pid"), "--bundle", str(container.dir), container.id
        )
        returncode = subprocess.run(argv, check=False).returncode
        code = returncode if returncode >= 0 else 128 - returncode
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        containers.finish(store, container, runtime, code)
    return code


def launch_detached(store: Store, container: Container, runtime: OciRuntime, stdin: int | None = None) -> int:
    """Start the monitor in its own session and wait only until it reports the container started; its pid.

    `stdin` (a pipe's read end, from the daemon) becomes the container's stdin; without it, /dev/null.
    """
    read_fd, write_fd = os.pipe()
    log = open(container.dir / "monitor.log", "ab")  # noqa: SIM115 (handed to the child)
    try:
        subprocess.Popen(
            [sys.executable, "-m", "runtime.monitor", str(store.root), container.id, str(write_fd), runtime.binary],
            stdin=subprocess.DEVNULL if stdin is None else stdin,
            stdout=log,
            stderr=log,
            pass_fds=(write_fd,),
            start_new_session=True,
            cwd="/",
        )
    finally:
        os.close(write_fd)
        log.close()
    with os.fdopen(read_fd, "rb") as status:
        report = status.read()
    try:
        doc = json.loads(report)
    except ValueError:
        doc = {"error": f"the monitor died before reporting; see {container.dir / 'monitor.log'}"}
    if "error" in doc:
        raise RuntimeFailure(f"container {container.name} failed to start: {doc['error']}")
    pid: int = doc["pid"]
    return pid
