"""``runtime daemon``: the Engine API on a unix socket, over the store the CLI uses."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import signal
import socket
import stat
import time
from pathlib import Path

from ..config import Settings
from ..errors import ConflictError, UsageError
from ..store import Store
from . import containers, execs, images, system
from .context import Context
from .router import Route, Router
from .server import serve_unix
from .supervisor import Supervisor

DEFAULT_SOCKET = Path("/run/runtime.sock")
SOCKET_MODE = 0o660


def routes() -> list[Route]:
    return [*system.ROUTES, *containers.ROUTES, *execs.ROUTES, *images.ROUTES]


def prepare_socket(path: Path) -> None:
    """Remove a stale socket left by a daemon that died; refuse a live daemon's, and anything else."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(f"{path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX) as probe, contextlib.suppress(OSError):
        probe.connect(str(path))
        raise ConflictError(f"another daemon is listening on {path}")
    path.unlink()


def remove_socket(path: Path, ours: tuple[int, int]) -> None:
    """Our socket, not one a later daemon bound at the same path."""
    with contextlib.suppress(FileNotFoundError):
        if identity(path) == ours:
            os.unlink(path)


def group_id(group: str | None) -> int | None:
    """The socket's group: root's (None) or the one named, which must exist."""
    if not group:
        return None
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise UsageError(f"--group {group}: no such group") from None


def secure_socket(path: Path, gid: int | None) -> tuple[int, int]:
    """0660, owned by root's group or `gid`: the socket grants root on the host, as dockerd's does; its identity."""
    if os.geteuid() == 0:
        os.chown(path, 0, gid or 0)
    elif gid is not None:
        os.chown(path, -1, gid)
    os.chmod(path, SOCKET_MODE)
    return identity(path)


def identity(path: Path) -> tuple[int, int]:
    """Inode and change time: an inode number alone comes back for the next file made."""
    info = os.lstat(path)
    return info.st_ino, info.st_ctime_ns


async def serve(socket_path: Path, store: Store, settings: Settings, group: str | None = None) -> None:
    gid = group_id(group)
    prepare_socket(socket_path)
    supervisor = Supervisor(store, settings)
    context = Context(store, settings, started=time.time(), supervisor=supervisor)
    await supervisor.recover()
    router = Router(routes(), context)
    old_umask = os.umask(0o117)
    try:
        server = await serve_unix(str(socket_path), router.dispatch)
    finally:
        os.umask(old_umask)
    ours = secure_socket(socket_path, gid)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    logging.getLogger("runtime.daemon").info("listening on %s", socket_path)
    try:
        await stopping.wait()
    finally:
        server.close()
        await supervisor.close()
        remove_socket(socket_path, ours)


def run(socket_path: Path, store: Store, settings: Settings, group: str | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(serve(socket_path, store, settings, group))
    return 0
