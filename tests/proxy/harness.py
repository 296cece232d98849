"""An upstream registry (ours, in process) behind a pull-through cache (ours, in process): the cache reaches the
upstream through ``Upstream``, an httpx transport that counts what it forwards, can be taken down, and can corrupt a
blob on its way."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from starlette.applications import Starlette

from registry.app import create_app
from registry.db import migrate
from registry.db.engine import Database
from tests.api_helpers import app_of
from tests.conftest import BASE_URL, PEER, make_config, started_client

UPSTREAM_URL = "http://upstream.test"


@dataclass
class Upstream(httpx.AsyncBaseTransport):
    app: Starlette
    seen: Counter[tuple[str, str]] = field(default_factory=Counter)
    down: bool = False
    corrupt: set[str] = field(default_factory=set)  # blob digests whose bytes arrive with one byte changed

    def __post_init__(self) -> None:
        self.inner = httpx.ASGITransport(app=self.app, client=PEER)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("upstream down", request=request)
        self.seen[(request.method, request.url.path)] += 1
        response = await self.inner.handle_async_request(request)
        digest = request.url.path.rsplit("/", 1)[-1]
        if request.method == "GET" and "/blobs/" in request.url.path and digest in self.corrupt:
            body = bytearray(await response.aread())
            body[0] ^= 0xFF
            return httpx.Response(response.status_code, headers=response.headers, content=bytes(body))
        return response

    def gets(self, path: str) -> int:
        return self.seen[("GET", path)]


@contextlib.asynccontextmanager
async def mirror(tmp_path: Path, **env: str) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, Upstream]]:
    """A client of the upstream, a client of the cache in front of it (configured by ``env``), and the link between."""
    for part in ("upstream", "cache"):
        (tmp_path / part).mkdir(exist_ok=True)
    async with started_client(make_config(tmp_path / "upstream", "inmemory")) as upstream_client:
        upstream = Upstream(app_of(upstream_client))
        config = make_config(tmp_path / "cache", "filesystem", **env)
        database = Database(config.database_url)
        try:
            await migrate.upgrade(database)
            app = create_app(config, database=database, upstream_transport=upstream)
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=PEER), base_url=BASE_URL) as client,
            ):
                yield upstream_client, client, upstream
        finally:
            await database.dispose()
