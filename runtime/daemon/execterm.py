"""``docker exec -t``: ``runc exec --detach --tty`` under ``execshim``, the container's terminal relayed to the client.

runc sends the terminal's master over a console socket in a private directory (a short path, 0700); the daemon
relays it to and from the hijacked connection and sets its size on ``resize``. The shim's exit code is the
process's; when runc cannot start it, the shim's stderr (runc's message) is what the client sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ..console import SOCKET_NAME, ConsoleSocket
from .http import RawStream

if TYPE_CHECKING:
    from .execs import Exec

RECEIVE_TIMEOUT = 10.0


def detached_options(directory: Path) -> list[str]:
    """runc exec does not resolve a relative console socket against its cwd: the private directory's path is short."""
    return ["--detach", "--console-socket", str(directory / SOCKET_NAME), "--pid-file", str(directory / "pid")]


async def run_on_terminal(raw: RawStream, argv: list[str], instance: Exec, directory: Path) -> int:
    """Run `argv` (runc exec with ``detached_options(directory)``) through the shim; its exit code."""
    console = ConsoleSocket(directory)
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "runtime.daemon.execshim", str(directory / "pid"), *argv,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            cwd=directory,
        )  # fmt: skip
        instance.pid = process.pid
        master = await receive(console, process)
    finally:
        console.close()
    if master is None:
        assert process.stderr is not None
        await raw.write(await process.stderr.read())
        return await process.wait()
    try:
        return await relay(raw, master, instance, process)
    finally:
        os.close(master)


async def receive(console: ConsoleSocket, process: asyncio.subprocess.Process) -> int | None:
    """The master runc sends, or None if the shim ends without runc having connected (runc failed)."""
    loop = asyncio.get_running_loop()
    console.sock.setblocking(False)
    accepting = asyncio.ensure_future(loop.sock_accept(console.sock))
    ending = asyncio.ensure_future(process.wait())
    await asyncio.wait([accepting, ending], return_when=asyncio.FIRST_COMPLETED)
    if accepting.done():
        conn, _ = accepting.result()
    else:
        accepting.cancel()
        try:
            conn, _ = console.sock.accept()  # runc connects before it exits: a connection is queued, or none came
        except BlockingIOError:
            return None
    with conn:
        conn.setblocking(True)
        conn.settimeout(RECEIVE_TIMEOUT)
        _, fds, _, _ = await asyncio.to_thread(socket.recv_fds, conn, 4096, 1)
    return fds[0] if fds else None


async def relay(raw: RawStream, master: int, instance: Exec, process: asyncio.subprocess.Process) -> int:
    from .execs import set_size

    instance.terminal = master
    if instance.size:
        set_size(master, instance.size)
    output = asyncio.ensure_future(copy_out(raw, master))
    feeding = asyncio.ensure_future(copy_in(raw, master)) if instance.stdin else None
    try:
        code = await process.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(output), 5.0)  # EIO once the process's terminal is closed
        return code
    finally:
        instance.terminal = -1
        output.cancel()
        if feeding is not None:
            feeding.cancel()


async def copy_out(raw: RawStream, master: int) -> None:
    os.set_blocking(master, False)
    while True:
        await ready(master, writing=False)
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            continue
        except OSError:  # EIO: the process's side is closed
            return
        if not data:
            return
        await raw.write(data)


async def copy_in(raw: RawStream, master: int) -> None:
    with contextlib.suppress(OSError):
        while data := await raw.read():
            view = memoryview(data)
            while view:
                await ready(master, writing=True)
                with contextlib.suppress(BlockingIOError):
                    view = view[os.write(master, view) :]


async def ready(fd: int, *, writing: bool) -> None:
    """Until `fd` can be read (or written) without blocking: on the event loop, no thread left behind."""
    loop = asyncio.get_running_loop()
    waiter = loop.create_future()

    def wake() -> None:
        if not waiter.done():
            waiter.set_result(None)

    (loop.add_writer if writing else loop.add_reader)(fd, wake)
    try:
        await waiter
    finally:
        (loop.remove_writer if writing else loop.remove_reader)(fd)


def private_directory() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="rtd-exec-", dir="/tmp")
