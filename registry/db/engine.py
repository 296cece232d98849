"""The database: an async SQLAlchemy engine (PostgreSQL and its migrations), and the two kinds of session the
queries use: reads, and write transactions that take SQLite's write lock up front. On SQLite both run through the
threaded sessions of ``registry.db.sqlite``, and so do migrations: the async engine (``sqlalchemy.ext.asyncio``,
aiosqlite and the ORM with it) is never built."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection

from registry.db.guarded import GuardedWriter, guarded
from registry.db.sessions import Reader, Writer
from registry.db.sqlite import ThreadedReader, WriteThread, sync_engine, take_over_transactions
from registry.db.urls import resolve, sqlite_file

_T = TypeVar("_T")
# what reaching PostgreSQL raises when it is down or unreachable: asyncpg's own connect gives plain OSErrors
_CONNECT_FAILURES = (OSError, TimeoutError)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession


def sqlite_path(url: str) -> str | None:
    """The SQLite database's file (or ``file:`` URI) that ``url`` names, its directory made; None for PostgreSQL."""
    return sqlite_file(resolve(url))


def _async_engine(url: URL, is_sqlite: bool) -> AsyncEngine:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url, pool_pre_ping=not is_sqlite)
    if is_sqlite:
        take_over_transactions(engine.sync_engine)  # BEGIN IMMEDIATE when asked, as on the threaded writer
    return engine


class DatabaseUnavailable(Exception):
    """The database could not be reached: a request that needs it is answered 503, not 500."""


class Database:
    def __init__(self, url: str | URL) -> None:
        parsed = self.url = resolve(url)  # what Alembic and every message take too: never rewritten again
        self.sqlite_path = sqlite_file(parsed)  # the SQLite database's file (or ``file:`` URI); None on PostgreSQL
        self.is_sqlite = self.sqlite_path is not None
        self._engine: AsyncEngine | None = None
        self._reader: ThreadedReader | None = None
        self._writer: WriteThread | None = None
        self.observer: Callable[[float], None] | None = None  # each write transaction's seconds (metrics)
        if self.sqlite_path is not None:
            self._reader = ThreadedReader(sync_engine(parsed, writes=False), self.sqlite_path)
            self._writer = WriteThread(sync_engine(parsed, writes=True))
        else:
            from sqlalchemy.ext.asyncio import async_sessionmaker

            self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def engine(self) -> AsyncEngine:
        """The async engine (built at first use): PostgreSQL's sessions and migrations."""
        if self._engine is None:
            self._engine = _async_engine(self.url, self.is_sqlite)
        return self._engine

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Reader]:
        if self._reader is not None:
            yield self._reader
            return
        async with self._sessions() as session:
            await _connected(session)
            yield session

    async def write(self, work: Callable[[Writer], Coroutine[Any, Any, _T]], *, durable: bool = True) -> _T:
        """Run ``work`` in one write transaction: committed when it returns, rolled back when it raises. ``work``
        awaits nothing but its statements, on either engine: awaiting anything else raises
        ``ForeignAwaitInTransaction`` and rolls back (``registry.db.guarded``). ``durable=False`` for a transaction
        whose loss after a power cut costs nothing acknowledged: its commit returns before it is flushed to disk,
        and the next durable commit flushes it too (SQLite: see ``WriteThread``; PostgreSQL: ``synchronous_commit``,
        the same promise)."""
        if self.observer is None:
            return await self._write(work, durable)
        started = time.perf_counter()
        try:
            return await self._write(work, durable)
        finally:
            self.observer(time.perf_counter() - started)

    async def _write(self, work: Callable[[Writer], Coroutine[Any, Any, _T]], durable: bool) -> _T:
        if self._writer is not None:
            return await self._writer.run(work, durable)
        async with self._sessions() as session, session.begin():
            await _connected(session)
            if not durable:
                await session.execute(text("SET LOCAL synchronous_commit TO OFF"))
            writer = GuardedWriter(session)
            return await guarded(work(writer), writer)

    async def in_write_transaction(self, function: Callable[[Connection], None]) -> None:
        """SQLite: ``function`` on a plain connection in one write transaction (BEGIN IMMEDIATE), in the writer's
        thread, committed when it returns."""
        assert self._writer is not None, "SQLite only"
        await self._writer.run_sync(function)

    async def dispose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)
        if self._reader is not None:
            await asyncio.to_thread(self._reader.close)


async def _connected(session: AsyncSession) -> None:
    """``session`` holding its connection: a server that cannot be reached is DatabaseUnavailable (asyncpg raises
    its socket's OSError unwrapped, which would otherwise be a 500)."""
    try:
        await session.connection()
    except _CONNECT_FAILURES as exc:
        raise DatabaseUnavailable(f"cannot reach the database: {exc}") from exc
