"""distribution's debug server on ``http.debug.addr``: ``/debug/health`` (a JSON map of the failing checks: 200 and
``{}`` when healthy, 503 otherwise; any other method is a 404, as distribution), ``/debug/vars`` (expvar's JSON:
``registry.events.debug_vars``) and, with ``http.debug.prometheus.enabled``, the Prometheus metrics at
``http.debug.prometheus.path`` (``/metrics``).

It runs once per ``registry serve`` however many workers there are: in the serving process, in a thread with an
event loop of its own, started before the workers (``DebugServer``). That process makes a private directory per
start, removed at exit, and tells the workers where it is in the environment they inherit (``DIRECTORY_ENV``): each
worker publishes its failing checks there (``registry.events.health``), and, with several workers, its metric
values too (``PROMETHEUS_MULTIPROC_DIR``, prometheus-client's multiprocess mode); a single worker is this process,
whose own metrics are read directly. What the database holds is counted at each scrape.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from registry.config import Config, listen_host_port
from registry.db.engine import Database
from registry.db.models import blobs, manifests, repositories, uploads
from registry.events.debug_vars import variables
from registry.events.health import read_published
from registry.events.metrics import Stored, exposition

log = logging.getLogger("registry")
DIRECTORY_ENV = "PYREGISTRY_DEBUG_DIR"  # not REGISTRY_*: that prefix is the configuration's
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
HEALTH_PATH = "/debug/health"
VARS_PATH = "/debug/vars"
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus's text format, as every server version reads
STOP_SECONDS = 5.0
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]  # all but GET: 404, as distribution


def worker_directory() -> str | None:
    """The debug server's directory, for a worker to publish to; None without a debug server."""
    return os.environ.get(DIRECTORY_ENV) or None


class StoredCounts:
    """What the database holds, counted when scraped (one count at a time; a failed count leaves the gauges out)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.db: Database | None = None
        self.lock = asyncio.Lock()

    async def count(self) -> Stored | None:
        assert self.db is not None
        statement = select(
            select(func.count()).select_from(blobs).scalar_subquery(),
            select(func.coalesce(func.sum(blobs.c.size), 0)).scalar_subquery(),
            select(func.count()).select_from(manifests).scalar_subquery(),
            select(func.count()).select_from(repositories).scalar_subquery(),
            select(func.count()).select_from(uploads).scalar_subquery(),
        )
        try:
            async with self.lock, self.db.read() as session:
                row = (await session.execute(statement)).first()
        except Exception:
            log.exception("counting what the database holds for the metrics failed")
            return None
        return Stored(*(int(value) for value in row))


def debug_app(config: Config, directory: str, multiprocess: str | None, workers: int = 1) -> Starlette:
    stored = StoredCounts(config.database_url) if config.http.debug.metrics else None
    started = time.monotonic()

    async def health(request: Request) -> Response:
        if request.method != "GET":
            return PlainTextResponse("404 page not found\n", status_code=404)
        failing = await asyncio.to_thread(read_published, directory)
        return JSONResponse(failing, status_code=503 if failing else 200)

    async def expvars(request: Request) -> Response:
        return JSONResponse(await asyncio.to_thread(variables, started, workers))

    async def metrics(request: Request) -> Response:
        counts = await stored.count() if stored is not None else None
        return Response(exposition(multiprocess, counts), media_type=TEXT_FORMAT)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if stored is not None:
            stored.db = Database(stored.database_url)
        try:
            yield
        finally:
            if stored is not None and stored.db is not None:
                await stored.db.dispose()

    routes = [Route(HEALTH_PATH, health, methods=ANY_METHOD), Route(VARS_PATH, expvars, methods=["GET"])]
    if stored is not None:
        routes.append(Route(config.http.debug.path, metrics, methods=["GET"]))
    return Starlette(routes=routes, lifespan=lifespan)


class DebugServer:
    """Made before the workers start (they inherit the environment it sets), started, and stopped after them."""

    def __init__(self, config: Config, workers: int) -> None:
        assert config.http.debug.addr is not None
        self.addr = config.http.debug.addr
        self.directory = tempfile.mkdtemp(prefix="registry-debug-")
        atexit.register(shutil.rmtree, self.directory, ignore_errors=True)
        os.mkdir(os.path.join(self.directory, "health"))
        os.environ[DIRECTORY_ENV] = self.directory
        self.multiprocess: str | None = None
        if config.http.debug.metrics and workers > 1:
            self.multiprocess = os.path.join(self.directory, "metrics")
            os.mkdir(self.multiprocess)
            os.environ[MULTIPROCESS_ENV] = self.multiprocess
        app = debug_app(config, self.directory, self.multiprocess, workers)
        settings = uvicorn.Config(
            app, lifespan="on", log_config=None, access_log=False, loop="asyncio", ws="none", server_header=False
        )
        self.server = uvicorn.Server(settings)
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        host, port = listen_host_port(self.addr)
        try:
            listening = socket.create_server((host, port), family=_family(host))
        except OSError as exc:
            raise OSError(f"the debug server cannot listen on {self.addr}: {exc.strerror or exc}") from None
        self.thread = threading.Thread(target=self.server.run, args=([listening],), name="debug-server", daemon=True)
        self.thread.start()
        log.info("debug server on %s", self.addr)

    def stop(self) -> None:
        if self.thread is not None:
            self.server.should_exit = True
            self.thread.join(STOP_SECONDS)
        shutil.rmtree(self.directory, ignore_errors=True)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
