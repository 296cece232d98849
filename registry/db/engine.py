"""The async engine and the two kinds of session: reads, and writes that take SQLite's write lock up front."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",  # an acknowledged push survives power loss, not only a crash
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)


def _prepare_sqlite(engine: AsyncEngine) -> None:
    """Take over SQLite's transactions so writers BEGIN IMMEDIATE: a deferred read-then-write transaction would fail
    with SQLITE_BUSY instead of waiting when another process or worker writes at the same time."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _ensure_sqlite_directory(url: URL) -> None:
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


@cache
def _process_database_file() -> str:
    """In-memory SQLite is per connection; the inmemory storage driver gets a throwaway file for this process."""
    directory = tempfile.mkdtemp(prefix="registry-db-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return f"{directory}/registry.db"


def _resolve(url: str) -> URL:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        return parsed.set(database=_process_database_file())
    return parsed


class Database:
    def __init__(self, url: str) -> None:
        parsed = _resolve(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite:
            _ensure_sqlite_directory(parsed)
        self.engine = create_async_engine(parsed, pool_pre_ping=not self.is_sqlite)
        if self.is_sqlite:
            _prepare_sqlite(self.engine)
        writer = self.engine.execution_options(sqlite_immediate=True)
        self._reads = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writes = async_sessionmaker(writer, expire_on_commit=False)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reads() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction committed when the block ends without an exception, rolled back otherwise."""
        async with self._writes() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
