"""The per-container monitor of a detached run: `python -m runtime.monitor ROOT ID STATUS_FD OCI_RUNTIME`.

It becomes a child subreaper, starts `runc run --detach` with its stdin and pipes for the container's stdout and stderr,
reports `{"pid": N}` (or `{"error": ...}`) on STATUS_FD for the waiting `runtime run -d`, copies both pipes to log.json
in docker's json-file format, reaps the container's process, and records its exit code in state.json. Then it
releases the runc state and the overlay mount (and the container, with --rm), and exits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from . import containers
from .console import ConsoleSocket, feed_input
from .console import copy_output as console_copy
from .logs import LogWriter
from .ociruntime import OciRuntime, become_subreaper
from .store import Store

DRAIN_TIMEOUT = 5.0


def report(fd: int, doc: dict[str, object]) -> None:
    with os.fdopen(fd, "wb") as f:
        f.write(json.dumps(doc).encode())


def main(argv: list[str]) -> int:
    root, container_id, status_fd, binary = argv
    store = Store(Path(root))
    container = containers.load(store, container_id)
    runtime = OciRuntime(binary, store.runc_root)
    become_subreaper()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid_file = container.dir / "pid"
    console = ConsoleSocket(container.dir) if container.options.get("tty") else None
    terminal, bundle = (console.args() if console else []), str(container.dir)
    proc = subprocess.run(
        runtime.command("run", "--detach", *terminal, "--pid-file", str(pid_file), "--bundle", bundle, container_id),
        stdin=None,  # ours: /dev/null from `runtime run -d`, a pipe from the daemon for `docker run -i`
        stdout=out_w,
        stderr=err_w,
        check=False,
        cwd=container.dir,  # the bundle, and where a console socket's relative name is found
    )
    os.close(out_w)
    os.close(err_w)
    master = _terminal(console, proc.returncode == 0) if console is not None else None
    if proc.returncode != 0:
        os.close(out_r)
        with os.fdopen(err_r, "rb") as err:
            message = err.read().decode(errors="replace").strip() or f"{binary} exited {proc.returncode}"
        containers.finish(store, container, runtime, 127)
        report(int(status_fd), {"error": message})
        return 1
    pid = int(pid_file.read_text())
    container.save_state(status="running", pid=pid, monitor_pid=os.getpid(), started_at=containers.now())
    report(int(status_fd), {"pid": pid})

    log = LogWriter(container.dir / "log.json")
    copiers = [
        threading.Thread(target=log.copy, args=(stream, os.fdopen(fd, "rb")), daemon=True)
        for stream, fd in (("stdout", out_r), ("stderr", err_r))
    ]
    if master is not None:
        copiers.append(threading.Thread(target=console_copy, args=(master, log), daemon=True))
        threading.Thread(target=feed_input, args=(sys.stdin.fileno(), master), daemon=True).start()
    for t in copiers:
        t.start()
    exit_code = reap(pid)
    for t in copiers:
        t.join(DRAIN_TIMEOUT)  # a daemonised grandchild may hold the pipes open: do not wait for it forever
    log.close()
    containers.finish(store, containers.load(store, container_id), runtime, exit_code)
    return 0


def _terminal(console: ConsoleSocket, started: bool) -> int | None:
    try:
        return console.receive() if started else None
    except OSError:
        return None  # the container runs; its output is lost rather than the run failed
    finally:
        console.close()


def reap(pid: int) -> int:
    """Wait for `pid` (our child once runc has exited), reaping any other orphans on the way."""
    while True:
        try:
            found, status = os.wait()
        except ChildProcessError:
            return 255
        if found == pid:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
