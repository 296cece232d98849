from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from registry.app import create_app
from registry.config import Config, load_config
from registry.db import migrate
from registry.db.engine import Database

BASE_URL = "http://registry.test"


def make_config(tmp_path: Path, driver: str, **env: str) -> Config:
    environ = {
        "REGISTRY_STORAGE": driver,
        "REGISTRY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/registry.db",
        "REGISTRY_STORAGE_DELETE_ENABLED": "true",
        **env,
    }
    if driver == "filesystem":
        environ["REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY"] = str(tmp_path / "data")
    return load_config(None, environ)


async def started_client(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    database = Database(config.database_url)
    await migrate.upgrade(database, config.database_url)
    app: Starlette = create_app(config, database=database)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client,
    ):
        yield client
    await database.dispose()


@pytest.fixture(params=["inmemory", "filesystem"])
def config(request: pytest.FixtureRequest, tmp_path: Path) -> Config:
    return make_config(tmp_path, request.param)


@pytest.fixture
async def client(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    async for c in started_client(config):
        yield c
