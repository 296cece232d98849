"""Container routes: create, start, wait, stop, kill, rm, resize; attach and logs live in attach.py, views in views.py.

Each handler parses the request, calls the CLI's own container logic (``runtime.containers``) off the event loop,
and answers as dockerd does: 404 ``No such container: X``, 409 for a conflict, 304 for a start or stop that has
nothing to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import re
import struct
import subprocess
import termios
from collections.abc import AsyncIterator

from .. import containers, reference
from ..containers import Container
from ..errors import ImageNotFound, UsageError
from ..ociruntime import OciRuntime
from . import dockerconfig, views
from .attach import attach, find, logs, supervisor
from .http import ApiError, Reply, Request, Streamed, empty, json_response
from .router import Route

SIGNAL = re.compile(r"^(SIG)?[A-Z0-9+-]{1,12}$")
WAIT_CONDITIONS = ("next-exit", "not-running", "removed")


async def create(request: Request) -> Reply:
    body = await request.json()
    image = dockerconfig.image_of(body)
    opts = dockerconfig.run_options(body, request.query.get("name"))
    store = request.context.store
    try:
        ref = reference.parse(image)
    except UsageError as exc:
        raise ApiError(400, f"invalid reference format: {exc}") from None
    try:
        record = await asyncio.to_thread(store.image, str(ref))
    except ImageNotFound:
        raise ApiError(404, f"No such image: {image}") from None
    if opts.name is not None and await asyncio.to_thread(_name_taken, request, opts.name):
        raise ApiError(409, f'Conflict. The container name "/{opts.name}" is already in use.')
    container = await asyncio.to_thread(containers.create, store, str(ref), record, opts, {})
    await asyncio.to_thread(dockerconfig.save, container.dir, body)
    return json_response({"Id": container.id, "Warnings": []}, 201)


def _name_taken(request: Request, name: str) -> bool:
    return any(c.name == name for c in containers.all_containers(request.context.store))


async def start(request: Request) -> Reply:
    container = await find(request)
    if container.running():
        return empty(304)
    await supervisor(request).start(container, dockerconfig.flag(container, "OpenStdin"))
    return empty(204)


async def wait(request: Request) -> Reply:
    container = await find(request)
    condition = request.query.get("condition") or "not-running"  # the API's default
    if condition not in WAIT_CONDITIONS:
        raise ApiError(400, f"invalid condition {condition!r}: next-exit, not-running or removed")
    sup = supervisor(request)
    watch = sup.removal(container.id) if condition == "removed" else sup.next_exit(container)
    immediate = condition == "not-running" and not container.running()

    async def chunks() -> AsyncIterator[bytes]:
        if immediate:
            code = container.state.get("exit_code")
            yield _wait_body(code if isinstance(code, int) else 0)
            return
        await watch.event.wait()
        yield _wait_body(watch.code)

    return Streamed(chunks())


def _wait_body(code: int) -> bytes:
    return (json.dumps({"Error": None, "StatusCode": code}) + "\n").encode()


async def stop(request: Request) -> Reply:
    container = await find(request)
    if not container.running():
        return empty(304)
    await stop_container(request, container)
    return empty(204)


async def stop_container(request: Request, container: Container) -> None:
    timeout = request.query.int("t", 10)
    runtime = supervisor(request).runtime()
    await asyncio.to_thread(containers.stop, container, runtime, float(timeout if timeout is not None else 10))


async def restart(request: Request) -> Reply:
    container = await find(request)
    if container.running():
        await stop_container(request, container)
    fresh = await find(request)
    await supervisor(request).start(fresh, dockerconfig.flag(fresh, "OpenStdin"))
    return empty(204)


async def prune(request: Request) -> Reply:
    """Every container that is not running; ``filters`` are not read."""
    deleted = []
    sup = supervisor(request)
    for container in await asyncio.to_thread(containers.all_containers, request.context.store):
        if not container.running():
            await sup.remove(container, force=False)
            deleted.append(container.id)
    return json_response({"ContainersDeleted": deleted, "SpaceReclaimed": 0})


async def kill(request: Request) -> Reply:
    container = await find(request)
    signal = (request.query.get("signal") or "KILL").upper()
    if not SIGNAL.match(signal):
        raise ApiError(400, f"Invalid signal: {signal}")
    if not container.running():
        raise ApiError(409, f"Container {container.id} is not running")
    await asyncio.to_thread(containers.kill, container, supervisor(request).runtime(), signal)
    return empty(204)


async def remove(request: Request) -> Reply:
    container = await find(request)
    force = request.query.flag("force")
    if container.running() and not force:
        raise ApiError(
            409,
            f"You cannot remove a running container {container.id}. "
            "Stop the container before attempting removal or force remove",
        )
    await supervisor(request).remove(container, force=force)
    return empty(204)


async def resize(request: Request) -> Reply:
    """The terminal's size (a no-op without one): set on the container's own terminal, which signals SIGWINCH."""
    container = await find(request)
    height, width = request.query.int("h", 0) or 0, request.query.int("w", 0) or 0
    if not (0 <= height < 1 << 16 and 0 <= width < 1 << 16):
        raise ApiError(400, f"invalid terminal size {height}x{width}")
    pid = container.pid()
    if dockerconfig.flag(container, "Tty") and container.running() and pid is not None:
        await asyncio.to_thread(set_window_size, pid, height, width)
    return empty(200)


def set_window_size(pid: int, height: int, width: int) -> None:
    try:
        fd = os.open(f"/proc/{pid}/fd/0", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return  # gone meanwhile, or its stdin is no longer the terminal
    try:
        with contextlib.suppress(OSError):
            fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
    finally:
        os.close(fd)


async def rename(request: Request) -> Reply:
    container = await find(request)
    name = dockerconfig.container_name(request.query.get("name"))
    if name is None:
        raise ApiError(400, "Neither old nor new names may be empty")
    await asyncio.to_thread(containers.rename, request.context.store, container, name)
    return empty(204)


async def top(request: Request) -> Reply:
    container = await find(request)
    if not container.running():
        raise ApiError(409, f"Container {container.id} is not running")
    pids = await asyncio.to_thread(container_pids, supervisor(request).runtime(), container.id)
    rows = [row for row in map(views.process_row, pids) if row is not None]
    return json_response({"Titles": views.TOP_TITLES, "Processes": rows})


def container_pids(runtime: OciRuntime, cid: str) -> list[int]:
    proc = subprocess.run(runtime.command("ps", "--format", "json", cid), capture_output=True, check=False)
    try:
        pids = json.loads(proc.stdout) if proc.returncode == 0 else []
    except ValueError:
        pids = []
    return [p for p in pids if isinstance(p, int)] if isinstance(pids, list) else []


async def inspect(request: Request) -> Reply:
    container = await find(request)
    return json_response(await asyncio.to_thread(views.inspect, request.context.store, container))


async def listing(request: Request) -> Reply:
    try:
        filters = json.loads(request.query.get("filters") or "{}")
    except ValueError:
        raise ApiError(400, "invalid filters: not JSON") from None
    if not isinstance(filters, dict):
        raise ApiError(400, "invalid filters: expected an object")
    rows = await asyncio.to_thread(
        views.listing, request.context.store, request.query.flag("all"), filters, request.query.int("limit")
    )
    return json_response(rows)


ROUTES = [
    Route("POST", "/containers/create", create),
    Route("POST", "/containers/prune", prune),
    Route("GET", "/containers/json", listing),
    Route("GET", "/containers/{id}/json", inspect),
    Route("POST", "/containers/{id}/start", start),
    Route("POST", "/containers/{id}/wait", wait),
    Route("POST", "/containers/{id}/attach", attach),
    Route("GET", "/containers/{id}/logs", logs),
    Route("POST", "/containers/{id}/stop", stop),
    Route("POST", "/containers/{id}/restart", restart),
    Route("POST", "/containers/{id}/rename", rename),
    Route("GET", "/containers/{id}/top", top),
    Route("POST", "/containers/{id}/kill", kill),
    Route("POST", "/containers/{id}/resize", resize),
    Route("DELETE", "/containers/{id}", remove),
]
