"""``docker exec``: a process run in a running container with ``runc exec``, its output sent over the hijack.

The CLI creates an exec instance (``POST /containers/{id}/exec``), starts it with the connection hijacked
(``POST /exec/{id}/start``, stdout and stderr as stdcopy frames, stdin with ``-i``) and, once the stream ends,
reads the exit code (``GET /exec/{id}/json``). The process is the daemon's child, not a monitor's: an exec does not
outlive the daemon. ``runc exec`` takes the rest (environment, working directory, user) from the container's own
process unless the request says otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import secrets
import struct
import termios
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import containers, users
from ..containers import Container
from ..fsroot import InRoot
from . import dockerconfig, execterm
from .attach import copy_stdin_to, find, frame, supervisor
from .http import ApiError, Hijack, RawStream, Reply, Request, empty, json_response
from .router import Route

DRAIN_TIMEOUT = 5.0


@dataclass
class Exec:
    id: str
    container: Container
    cmd: list[str]
    tty: bool = False
    stdin: bool = False
    streams: set[str] = field(default_factory=set)
    user: str = ""
    workdir: str = ""
    env: list[str] = field(default_factory=list)
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    terminal: int = -1  # the master of the terminal runc relays, while it runs
    size: list[int] | None = None  # the last size asked for: a resize may come before the terminal exists

    def view(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,
            "ProcessConfig": {"entrypoint": self.cmd[0], "arguments": self.cmd[1:], "tty": self.tty,
                              "user": self.user, "privileged": False},
            "OpenStdin": self.stdin,
            "OpenStdout": "stdout" in self.streams,
            "OpenStderr": "stderr" in self.streams,
            "CanRemove": False,
            "ContainerID": self.container.id,
            "DetachKeys": "",
            "Pid": self.pid,
        }  # fmt: skip


def parse(body: Any, container: Container) -> Exec:
    if not isinstance(body, dict):
        raise ApiError(400, "exec config: expected an object")
    cmd = dockerconfig.string_list(body, "Cmd")
    if not cmd:
        raise ApiError(400, "No exec command specified")
    streams = {name for name, key in (("stdout", "AttachStdout"), ("stderr", "AttachStderr")) if body.get(key)}
    return Exec(secrets.token_hex(32), container, cmd, tty=bool(body.get("Tty")), stdin=bool(body.get("AttachStdin")),
                streams=streams, user=dockerconfig.text(body, "User"), workdir=dockerconfig.text(body, "WorkingDir"),
                env=dockerconfig.string_list(body, "Env") or [])  # fmt: skip


async def create(request: Request) -> Reply:
    container = await find(request)
    if not container.running():
        raise ApiError(409, f"Container {container.id} is not running")
    instance = parse(await request.json(), container)
    supervisor(request).execs[instance.id] = instance
    return json_response({"Id": instance.id}, 201)


def instance_of(request: Request) -> Exec:
    found = supervisor(request).execs.get(request.params["id"])
    if found is None:
        raise ApiError(404, f"No such exec instance: {request.params['id']}")
    return found


async def inspect(request: Request) -> Reply:
    return json_response(instance_of(request).view())


async def resize(request: Request) -> Reply:
    """The terminal's new size, set on the container's terminal (its processes get SIGWINCH)."""
    instance = instance_of(request)
    size = [request.query.int("h", 0) or 0, request.query.int("w", 0) or 0]
    if all(0 < n < 1 << 16 for n in size):
        instance.size = size
        if instance.terminal >= 0:
            set_size(instance.terminal, size)
    return empty(201)


def set_size(fd: int, size: list[int]) -> None:
    with contextlib.suppress(OSError):
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))


async def start(request: Request) -> Reply:
    instance = instance_of(request)
    body = await request.json() or {}
    if instance.running or instance.exit_code is not None:
        raise ApiError(409, f"exec {instance.id} has already been started")
    size = dockerconfig.console_size(body if isinstance(body, dict) else {})
    instance.size = instance.size or size
    if isinstance(body, dict) and body.get("Detach"):
        argv = await asyncio.to_thread(command, request, instance, [])
        instance.running = True
        process = await spawn(argv, instance, stdin=False)
        supervisor(request).spawn(finish(instance, process, []))
        return empty(200)
    if instance.tty:
        return await start_on_terminal(request, instance)
    argv = await asyncio.to_thread(command, request, instance, [])
    instance.running = True

    async def run(raw: RawStream) -> None:
        process = await spawn(argv, instance, stdin=instance.stdin)
        copies = [asyncio.ensure_future(relay(raw, process.stdout, "stdout", instance))]
        copies.append(asyncio.ensure_future(relay(raw, process.stderr, "stderr", instance)))
        feeding = asyncio.ensure_future(feed(raw, process)) if instance.stdin else None
        try:
            await finish(instance, process, copies)
        finally:
            if feeding is not None:
                feeding.cancel()

    return Hijack(run)


async def start_on_terminal(request: Request, instance: Exec) -> Reply:
    directory = execterm.private_directory()
    try:
        argv = await asyncio.to_thread(command, request, instance, execterm.detached_options(Path(directory.name)))
    except BaseException:
        directory.cleanup()
        raise
    instance.running = True

    async def run(raw: RawStream) -> None:
        try:
            code = await execterm.run_on_terminal(raw, argv, instance, Path(directory.name))
            instance.exit_code = code if code >= 0 else 128 - code
        finally:
            instance.running = False
            directory.cleanup()

    return Hijack(run)


def command(request: Request, instance: Exec, terminal: list[str]) -> list[str]:
    """``runc exec`` with the request's user (resolved in the container's own /etc/passwd), directory, environment;
    `terminal` the options of a detached tty (``--tty`` is added with them)."""
    runtime = supervisor(request).runtime()
    options: list[str] = ["--tty", *terminal] if terminal else []
    if instance.user:
        with InRoot(instance.container.rootfs) as root:
            user = users.resolve(root, instance.user)
        options += ["--user", f"{user.uid}:{user.gid}"]
        options += [arg for gid in user.additional_gids for arg in ("--additional-gids", str(gid))]
    if instance.workdir:
        options += ["--cwd", instance.workdir]
    options += [arg for item in instance.env for arg in ("--env", item)]
    if terminal:
        options += ["--env", "TERM=xterm"]
    fresh = containers.load(request.context.store, instance.container.id)
    if not fresh.running():
        raise ApiError(409, f"Container {fresh.id} is not running")
    return runtime.command("exec", *options, fresh.id, *instance.cmd)


async def spawn(argv: list[str], instance: Exec, *, stdin: bool) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    instance.pid = process.pid
    return process


async def relay(raw: RawStream, source: asyncio.StreamReader | None, stream: str, instance: Exec) -> None:
    if source is None:
        return
    while data := await source.read(65536):
        if stream in instance.streams:
            await raw.write(frame(stream, data, False))


async def feed(raw: RawStream, process: asyncio.subprocess.Process) -> None:
    if process.stdin is None:
        return
    await copy_stdin_to(raw, process.stdin)


async def finish(instance: Exec, process: asyncio.subprocess.Process, copies: Sequence[asyncio.Future[None]]) -> None:
    """Wait for the process, then (a little) for what it wrote; the exit code is recorded before the stream ends."""
    code = await process.wait()
    if copies:
        _, late = await asyncio.wait(copies, timeout=DRAIN_TIMEOUT)  # a background child may hold the pipes
        for task in late:
            task.cancel()
        for task in copies:
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await task
    instance.exit_code = code if code >= 0 else 128 - code
    instance.running = False


ROUTES = [
    Route("POST", "/containers/{id}/exec", create),
    Route("POST", "/exec/{id}/start", start),
    Route("POST", "/exec/{id}/resize", resize),
    Route("GET", "/exec/{id}/json", inspect),
]
