"""The async engine and the two kinds of session: reads, and writes that take SQLite's write lock up front."""

from __future__ import annotations

import asyncio
import atexit
import collections
import shutil
import sqlite3
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

from sqlalchemy import Engine, Select, create_engine, event
from sqlalchemy.engine import URL, Connection, FrozenResult, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.sql import Executable

SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=30000",  # first: every later statement waits for other processes' locks
    "PRAGMA synchronous=FULL",  # an acknowledged push survives power loss, not only a crash
    "PRAGMA foreign_keys=ON",
)
WAL_ATTEMPTS = 100
_S = TypeVar("_S", bound=Select)  # type: ignore[type-arg]


Params = dict[str, Any] | None


class Scalars(Protocol):
    def all(self) -> Sequence[Any]: ...


class Rows(Protocol):
    """What callers use of a result: SQLAlchemy's Result is one, and so is ``PlainRows``."""

    def first(self) -> Any: ...

    def all(self) -> Sequence[Any]: ...

    def scalar(self) -> Any: ...

    def scalars(self) -> Scalars: ...


class Reader(Protocol):
    """What a read needs: an AsyncSession is one, and so is ``ThreadedReader``."""

    async def execute(self, statement: Executable, params: Params = None, /) -> Rows: ...

    async def scalar(self, statement: Executable, params: Params = None, /) -> Any: ...

    async def scalars(self, statement: Executable, params: Params = None, /) -> Scalars: ...


def plain(statement: _S) -> _S:
    """Mark a read whose columns need no type conversion (integers, text, bytes): on SQLite it then runs as plain
    SQL on the driver, skipping SQLAlchemy's execution machinery (several times faster for a point lookup)."""
    return statement.execution_options(plain_rows=True)


@dataclass(frozen=True)
class _PlainStatement:
    sql: str
    names: tuple[str, ...]  # bind parameter names in positional order
    defaults: dict[str, Any]
    row: type[tuple[Any, ...]]


class PlainRows:
    def __init__(self, rows: list[Any]) -> None:
        self._rows = rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def all(self) -> Sequence[Any]:
        return self._rows

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalars(self) -> Scalars:
        return PlainRows([row[0] for row in self._rows])


class ThreadedReader:
    """SQLite reads in one thread hop per statement on a plain sqlite3 connection; aiosqlite needs about nine hops
    (cursor, execute, fetch, close, rollback...), which made every indexed lookup cost milliseconds. Statements
    marked ``plain`` run as their compiled SQL on one read-only sqlite3 connection per thread."""

    def __init__(self, engine: Engine, path: str, threads: int = 4) -> None:
        self._engine = engine
        self._path = path
        # its own threads: metadata reads never queue behind blob writes in the default executor
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite-read")
        self._local = threading.local()
        self._plain: dict[int, tuple[Executable, _PlainStatement]] = {}

    def _run(self, statement: Executable, params: Params) -> FrozenResult[Any]:
        with self._engine.connect() as connection:
            return connection.execute(statement, params).freeze()

    def _run_plain(self, plain: _PlainStatement, params: Params) -> list[Any]:
        values = params or {}
        arguments = [values[name] if name in values else plain.defaults[name] for name in plain.names]
        rows = self._connection().execute(plain.sql, arguments).fetchall()
        return [plain.row._make(row) for row in rows]  # type: ignore[attr-defined]

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            uri = self._path.startswith("file:")
            connection = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None, uri=uri)
            connection.execute("PRAGMA busy_timeout=30000")
            connection.execute("PRAGMA query_only=ON")
            self._local.connection = connection
        return connection

    def _compiled(self, statement: Executable) -> _PlainStatement:
        found = self._plain.get(id(statement))
        if found is None:
            assert isinstance(statement, Select), "only SELECTs are marked plain"
            compiled = statement.compile(dialect=self._engine.dialect)
            names = tuple(compiled.positiontup or ())
            keys = tuple(statement.selected_columns.keys())
            row = collections.namedtuple("PlainRow", keys, rename=True)  # type: ignore[misc]
            plain = _PlainStatement(compiled.string, names, dict(compiled.construct_params(_check=False)), row)
            found = self._plain[id(statement)] = (statement, plain)  # the statement is kept alive with its id
        return found[1]

    async def execute(self, statement: Executable, params: Params = None, /) -> Rows:
        loop = asyncio.get_running_loop()
        if statement.get_execution_options().get("plain_rows"):
            rows = await loop.run_in_executor(self._executor, self._run_plain, self._compiled(statement), params)
            return PlainRows(rows)
        frozen = await loop.run_in_executor(self._executor, self._run, statement, params)
        return frozen()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._engine.dispose()

    async def scalar(self, statement: Executable, params: Params = None, /) -> Any:
        return (await self.execute(statement, params)).scalar()

    async def scalars(self, statement: Executable, params: Params = None, /) -> Scalars:
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
            self._threaded = ThreadedReader(_sync_sqlite_engine(parsed), str(parsed.database))
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
