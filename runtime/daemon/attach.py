"""A container's output as the Engine API sends it: attach (the hijack, stdin in) and logs (follow, tail, timestamps).

Both read the container's log.json, which its monitor writes a line at a time, and send each record as an 8-byte
stdcopy frame (``[stream, 0, 0, 0, size big-endian u32]`` then the bytes: 1 stdout, 2 stderr) -- or the bare bytes
for a ``Tty`` container, as dockerd does. Following ends when the supervisor reports the container's exit and the
log is drained.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import errno
import json
import os
import struct
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import containers
from ..containers import Container
from ..errors import ContainerNotFound
from . import dockerconfig
from .http import ApiError, Hijack, RawStream, Reply, Request, Streamed
from .supervisor import Supervisor

POLL = 0.05
STREAMS = {"stdout": 1, "stderr": 2}
LOG_FILE = "log.json"


def frame(stream: str, data: bytes, tty: bool) -> bytes:
    return data if tty else struct.pack(">BxxxI", STREAMS.get(stream, 1), len(data)) + data


def log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read()
    except FileNotFoundError:
        return b""


async def follow(path: Path, offset: int, done: asyncio.Event) -> AsyncIterator[dict[str, Any]]:
    """Records from byte `offset` on, as they are written, until `done` is set and the file is drained."""
    partial = b""
    while True:
        finished = done.is_set()
        data = await asyncio.to_thread(_read_from, path, offset)
        if data:
            offset += len(data)
            *lines, partial = (partial + data).split(b"\n")
            for line in lines:
                if line.strip():
                    yield json.loads(line)
            continue
        if finished:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), POLL)


def supervisor(request: Request) -> Supervisor:
    found = request.context.supervisor
    if found is None:
        raise ApiError(501, "this daemon runs no containers")
    return found


async def find(request: Request) -> Container:
    """The container the path names (name, id or unique id prefix); 404 in docker's words."""
    try:
        return await asyncio.to_thread(containers.find, request.context.store, request.params["id"])
    except ContainerNotFound:
        raise ApiError(404, f"No such container: {request.params['id']}") from None


def chosen_streams(request: Request) -> set[str]:
    return {name for name in STREAMS if request.query.flag(name)}


async def attach(request: Request) -> Reply:
    container = await find(request)
    sup = supervisor(request)
    tty = dockerconfig.flag(container, "Tty")
    streams = chosen_streams(request)
    watch = sup.next_exit(container)
    path = container.dir / LOG_FILE
    offset = 0 if request.query.flag("logs") else log_size(path)
    with_stdin = request.query.flag("stdin") and dockerconfig.flag(container, "OpenStdin")
    write_fd = sup.stdin_pipe(container.id)[1] if with_stdin else -1
    once = dockerconfig.flag(container, "StdinOnce")

    async def run(raw: RawStream) -> None:
        pump = asyncio.ensure_future(copy_stdin(raw, write_fd)) if write_fd >= 0 else None
        if pump is not None and once:
            pump.add_done_callback(lambda _: sup.close_stdin(container.id, 1))
        try:
            if request.query.flag("stream", True):
                async for record in follow(path, offset, watch.event):
                    if record.get("stream") in streams:
                        await raw.write(frame(record["stream"], record.get("log", "").encode(), tty))
        finally:
            if pump is not None:
                pump.cancel()

    return Hijack(run)


async def copy_stdin(raw: RawStream, fd: int) -> None:
    """The client's bytes to the container's stdin, until the client half-closes (or the container stops reading)."""
    while data := await raw.read():
        try:
            await asyncio.to_thread(_write_all, fd, data)
        except OSError as exc:
            if exc.errno in (errno.EPIPE, errno.EBADF):
                return
            raise


async def copy_stdin_to(raw: RawStream, writer: asyncio.StreamWriter) -> None:
    """The client's bytes to a process's stdin pipe; its half-close closes the pipe."""
    with contextlib.suppress(ConnectionError):
        while data := await raw.read():
            writer.write(data)
            await writer.drain()
    writer.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _tail(path: Path, tail: int | None, window: Window) -> tuple[list[dict[str, Any]], int]:
    data = _read_from(path, 0)
    end = data.rfind(b"\n") + 1
    records = (json.loads(line) for line in data[:end].split(b"\n") if line.strip())
    chosen = [r for r in records if window.holds(r)]
    return list(deque(chosen, maxlen=tail)) if tail is not None else chosen, end


@dataclass(frozen=True)
class Window:
    """``since`` and ``until`` (unix seconds, fractions allowed; 0 or absent: no bound) over records' times."""

    since: float = 0.0
    until: float = 0.0

    @classmethod
    def of(cls, request: Request) -> Window:
        bounds = []
        for name in ("since", "until"):
            value = request.query.get(name) or "0"
            try:
                bounds.append(float(value))
            except ValueError:
                raise ApiError(400, f"invalid value for {name}: {value!r}") from None
        return cls(*bounds)

    def holds(self, record: dict[str, Any]) -> bool:
        if not self.since and not self.until:
            return True
        moment = record_time(str(record.get("time", "")))
        return moment >= self.since and (not self.until or moment <= self.until)


def record_time(text: str) -> float:
    """``2026-01-01T00:00:01.000000001Z`` as unix seconds (nanoseconds do not fit datetime)."""
    whole, _, fraction = text.rstrip("Z").partition(".")
    try:
        seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return 0.0
    return seconds + float(f"0.{fraction or 0}")


def tail_of(request: Request) -> int | None:
    value = request.query.get("tail", "all")
    if value in ("all", "", None):
        return None
    tail = request.query.int("tail")
    return None if tail is None or tail < 0 else tail


async def logs(request: Request) -> Reply:
    container = await find(request)
    streams = chosen_streams(request)
    if not streams:
        raise ApiError(400, "Bad parameters: you must choose at least one stream")
    tty = dockerconfig.flag(container, "Tty")
    stamps = request.query.flag("timestamps")
    path = container.dir / LOG_FILE
    watch = supervisor(request).next_exit(container)
    window = Window.of(request)
    records, offset = await asyncio.to_thread(_tail, path, tail_of(request), window)
    following = request.query.flag("follow") and container.running()

    async def chunks() -> AsyncIterator[bytes]:
        for record in records:
            yield encode(record, streams, tty, stamps)
        if following:
            async for record in follow(path, offset, watch.event):
                if window.holds(record):
                    yield encode(record, streams, tty, stamps)

    return Streamed(chunks(), content_type="application/vnd.docker.multiplexed-stream")


def encode(record: dict[str, Any], streams: set[str], tty: bool, stamps: bool) -> bytes:
    stream = record.get("stream", "stdout")
    if stream not in streams:
        return b""
    text = record.get("log", "")
    if stamps:
        text = f"{record.get('time', '')} {text}"
    return frame(stream, text.encode(), tty)
