"""The async engine and the two kinds of session: reads, and writes that take SQLite's write lock up front."""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, FrozenResult, Result, ScalarResult, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.sql import Executable

SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=30000",  # first: every later statement waits for other processes' locks
    "PRAGMA synchronous=FULL",  # an acknowledged push survives power loss, not only a crash
    "PRAGMA foreign_keys=ON",
)
WAL_ATTEMPTS = 100


Params = dict[str, Any] | None


class Reader(Protocol):
    """What a read needs: an AsyncSession is one, and so is ``ThreadedReader``."""

    async def execute(self, statement: Executable, params: Params = None, /) -> Result[Any]: ...

    async def scalar(self, statement: Executable, params: Params = None, /) -> Any: ...

    async def scalars(self, statement: Executable, params: Params = None, /) -> ScalarResult[Any]: ...


class ThreadedReader:
    """SQLite reads in one thread hop per statement on a plain sqlite3 connection; aiosqlite needs about nine hops
    (cursor, execute, fetch, close, rollback...), which made every indexed lookup cost milliseconds."""

    def __init__(self, engine: Engine, threads: int = 4) -> None:
        self._engine = engine
        # its own threads: metadata reads never queue behind blob writes in the default executor
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite-read")

    def _run(self, statement: Executable, params: Params) -> FrozenResult[Any]:
        with self._engine.connect() as connection:
            return connection.execute(statement, params).freeze()

    async def execute(self, statement: Executable, params: Params = None, /) -> Result[Any]:
        frozen = await asyncio.get_running_loop().run_in_executor(self._executor, self._run, statement, params)
        return frozen()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._engine.dispose()

    async def scalar(self, statement: Executable, params: Params = None, /) -> Any:
        return (await self.execute(statement, params)).scalar()

    async def scalars(self, statement: Executable, params: Params = None, /) -> ScalarResult[Any]:
        return (await self.execute(statement, params)).scalars()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in SQLITE_PRAGMAS:
        cursor.execute(pragma)
    _enable_wal(cursor)
    cursor.close()


def _enable_wal(cursor: Any) -> None:
    """Switching a new database to WAL needs an exclusive lock, and SQLite answers "database is locked" at once,
    without waiting, when several processes first connect together (workers or replicas starting): retry briefly.
    WAL is persistent, so once one connection has switched the others find it done."""
    for attempt in range(WAL_ATTEMPTS):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:
            if "locked" not in str(exc) or attempt == WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.05)


def _sync_sqlite_engine(url: URL) -> Engine:
    engine = create_engine(url.set(drivername="sqlite+pysqlite"), connect_args={"check_same_thread": False})
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _prepare_sqlite(engine: AsyncEngine) -> None:
    """Take over SQLite's transactions so writers BEGIN IMMEDIATE: a deferred read-then-write transaction would fail
    with SQLITE_BUSY instead of waiting when another process or worker writes at the same time."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        _sqlite_pragmas(dbapi_connection, _record)

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
        self._threaded: ThreadedReader | None = None
        if self.is_sqlite:
            _prepare_sqlite(self.engine)
            self._threaded = ThreadedReader(_sync_sqlite_engine(parsed))
        writer = self.engine.execution_options(sqlite_immediate=True)
        self._reads = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writes = async_sessionmaker(writer, expire_on_commit=False)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Reader]:
        if self._threaded is not None:
            yield self._threaded
            return
        async with self._reads() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction committed when the block ends without an exception, rolled back otherwise."""
        async with self._writes() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._threaded is not None:
            await asyncio.to_thread(self._threaded.close)
