"""The database: an async SQLAlchemy engine (migrations, PostgreSQL), and the two kinds of session the queries use:
reads, and write transactions that take SQLite's write lock up front. On SQLite both run in the threads of
``registry.db.sqlite``."""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from registry.db.sessions import Reader, Writer
from registry.db.sqlite import ThreadedReader, WriteThread, sync_engine, take_over_transactions

_T = TypeVar("_T")


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
        self._reads = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writes = async_sessionmaker(self.engine.execution_options(sqlite_immediate=True), expire_on_commit=False)
        self._reader: ThreadedReader | None = None
        self._writer: WriteThread | None = None
        if self.is_sqlite:
            take_over_transactions(self.engine.sync_engine)  # migrations run on the async engine
            self._reader = ThreadedReader(sync_engine(parsed, writes=False), str(parsed.database))
            self._writer = WriteThread(sync_engine(parsed, writes=True))

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Reader]:
        if self._reader is not None:
            yield self._reader
            return
        async with self._reads() as session:
            yield session

    async def write(self, work: Callable[[Writer], Coroutine[Any, Any, _T]], *, durable: bool = True) -> _T:
        """Run ``work`` in one write transaction: committed when it returns, rolled back when it raises. ``work``
        awaits nothing but its statements. ``durable=False`` for a transaction whose loss after a power cut costs
        nothing acknowledged: its commit returns before it is flushed to disk, and the next durable commit flushes
        it too (SQLite: see ``WriteThread``; PostgreSQL: ``synchronous_commit``, the same promise)."""
        if self._writer is not None:
            return await self._writer.run(work, durable)
        async with self._writes() as session, session.begin():
            if not durable:
                await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            return await work(session)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)
        if self._reader is not None:
            await asyncio.to_thread(self._reader.close)
