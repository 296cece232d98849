from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette

from registry.app import create_app
from registry.config import Config, load_config
from registry.db import migrate
from registry.db.engine import Database
from tests.s3server import MotoServer

BASE_URL = "http://registry.test"
# A PostgreSQL server URL (scripts/test.sh starts a private one): the metadata tests then also run on PostgreSQL.
POSTGRES_ADMIN_URL = os.environ.get("REGISTRY_TEST_POSTGRES")
CONFIGS = ["inmemory", "filesystem", "s3"] + (["postgres"] if POSTGRES_ADMIN_URL else [])
DATABASES = ["sqlite"] + (["postgres"] if POSTGRES_ADMIN_URL else [])
# The API modules that exercise storage also run on S3; the others (names, manifests, listing, hostile input) touch
# only metadata, and on S3 would add minutes of moto round trips and prove nothing more.
S3_API_MODULES = frozenset(
    {
        "test_conformance",
        "test_uploads",
        "test_blobs",
        "test_purge",
        "test_durability",
        "test_collector",
        "test_importing",
        "test_checking",
    }
)


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get("CI") == "true" and POSTGRES_ADMIN_URL is None:  # the metadata tests would skip PostgreSQL
        raise pytest.UsageError("CI=true needs REGISTRY_TEST_POSTGRES (scripts/test.sh starts a PostgreSQL for it)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        module = getattr(getattr(item, "module", None), "__name__", "").rsplit(".", 1)[-1]
        on_s3 = params.get("config") == "s3"
        (dropped if on_s3 and module not in S3_API_MODULES else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


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


def s3_config(tmp_path: Path, moto: MotoServer, **env: str) -> Config:
    """Storage in a fresh bucket on the session's moto server, configured through REGISTRY_STORAGE_S3_* like a user."""
    params = moto.driver_params(moto.create_bucket(), rootdirectory="/registry")
    s3_env = {f"REGISTRY_STORAGE_S3_{key.upper()}": _env_value(value) for key, value in params.items()}
    return make_config(tmp_path, "s3", **s3_env, **env)


def _env_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


PEER = ("127.0.0.1", 123)  # httpx.ASGITransport's client address unless a test names another


@asynccontextmanager
async def started_client(config: Config, peer: tuple[str, int] = PEER) -> AsyncIterator[httpx.AsyncClient]:
    """A client of a freshly started app, whose requests come from ``peer``."""
    database = Database(config.database_url)
    try:
        await migrate.upgrade(database)
        app: Starlette = create_app(config, database=database)
        transport = httpx.ASGITransport(app=app, client=peer)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client,
        ):
            yield client
    finally:
        await database.dispose()


async def migrated_by_alembic(path: Path, revision: str = "head") -> None:
    """The SQLite database at ``path`` migrated to ``revision`` by Alembic (a new one too, which would otherwise take
    the head schema directly)."""
    url = f"sqlite:///{path}"
    database = Database(url)
    try:
        await migrate.upgrade(database, revision, via_alembic=True)
    finally:
        await database.dispose()


async def _postgres_admin(statement: str) -> None:
    assert POSTGRES_ADMIN_URL is not None
    connection = await asyncpg.connect(POSTGRES_ADMIN_URL.replace("+asyncpg", ""))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database on the test server, dropped afterwards."""
    assert POSTGRES_ADMIN_URL is not None
    name = f"registry_test_{uuid.uuid4().hex[:16]}"
    await _postgres_admin(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        await _postgres_admin(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=CONFIGS)
async def config(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Config]:
    """Storage on every backend with SQLite metadata, and in-memory storage with PostgreSQL metadata when available."""
    if request.param == "s3":
        # blobs stream through the registry here, as on the other backends; redirects have their own tests
        yield s3_config(tmp_path, request.getfixturevalue("moto_s3"), REGISTRY_STORAGE_REDIRECT_DISABLE="true")
        return
    if request.param != "postgres":
        yield make_config(tmp_path, request.param)
        return
    async with postgres_database() as url:
        yield make_config(tmp_path, "inmemory", REGISTRY_DATABASE_URL=url)


@pytest.fixture(params=DATABASES)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A new database's URL: SQLite, and PostgreSQL when available (the tests that take this run on both)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/registry.db"
        return
    async with postgres_database() as url:
        yield url


@pytest.fixture
async def client(config: Config) -> AsyncIterator[httpx.AsyncClient]:
    async with started_client(config) as c:
        yield c


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """One moto S3 server for the session, started on first use; each test creates its own bucket."""
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """A test that runs a command in-process configures logging for the whole process (``logging.config.dictConfig``
    in ``registry.cli``): its handlers, levels and disabled loggers are undone after it, so the next test's stderr
    and log records are its own. pytest's own capture handlers on the root logger are left to pytest."""
    root = logging.getLogger()
    root_level, root_handlers = root.level, set(root.handlers)
    named = {
        name: (logger.level, logger.disabled, logger.propagate, list(logger.handlers))
        for name, logger in logging.Logger.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    yield
    root.setLevel(root_level)
    for handler in root.handlers[:]:
        if handler not in root_handlers and not type(handler).__module__.startswith("_pytest"):
            root.removeHandler(handler)
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            level, disabled, propagate, handlers = named.get(name, (logging.NOTSET, False, True, []))
            logger.setLevel(level)
            logger.disabled, logger.propagate, logger.handlers = disabled, propagate, handlers
