"""A daemon served in-process on a private unix socket, with a private store."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from runtime.config import Settings
from runtime.daemon import containers as container_routes
from runtime.daemon.context import Context
from runtime.daemon.router import Route, Router
from runtime.daemon.server import serve_unix
from runtime.daemon.supervisor import Supervisor
from runtime.store import Store


@pytest.fixture
def short_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="rtd-", dir="/tmp"))  # a socket path must fit in 108 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Daemon:
    def __init__(self, directory: Path) -> None:
        self.socket = directory / "d.sock"
        self.context = Context(Store(directory / "store"), Settings(path=directory / "settings.json"))

    async def start(self, routes: Sequence[Route]) -> None:
        self.server = await serve_unix(str(self.socket), Router(routes, self.context).dispatch)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(self.socket)), base_url="http://docker")

    async def raw(self, data: bytes) -> bytes:
        """Send bytes, half-close, read everything the daemon answers until it closes."""
        reader, writer = await asyncio.open_unix_connection(str(self.socket))
        writer.write(data)
        writer.write_eof()
        answer = await reader.read()
        writer.close()
        return answer

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()


@pytest.fixture
async def daemon(short_dir: Path) -> AsyncIterator[Daemon]:
    d = Daemon(short_dir)
    yield d
    if hasattr(d, "server"):
        await d.stop()


@pytest.fixture
async def started(daemon: Daemon) -> Daemon:
    """The daemon serving the container routes, with its supervisor."""
    daemon.context.supervisor = Supervisor(daemon.context.store, daemon.context.settings)
    await daemon.start(container_routes.ROUTES)
    return daemon
