"""SQLite without aiosqlite on the hot paths: reads and writes each run in one thread hop per statement on plain
sqlite3 connections (aiosqlite takes several hops per statement, which made every lookup and every write
transaction cost milliseconds), plus the pragmas and BEGIN IMMEDIATE every connection needs."""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, create_engine, event
from sqlalchemy.engine import URL, Connection, CursorResult, FrozenResult
from sqlalchemy.sql import Executable

from registry.db.sessions import Params, PlainRows, Rows, Scalars

SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=30000",  # first: every later statement waits for other processes' locks
    "PRAGMA synchronous=FULL",  # an acknowledged push survives power loss, not only a crash
    "PRAGMA foreign_keys=ON",
)
WAL_ATTEMPTS = 100
_T = TypeVar("_T")


@dataclass(frozen=True)
class _PlainStatement:
    sql: str
    names: tuple[str, ...]  # bind parameter names in positional order
    defaults: dict[str, Any]
    row: type[tuple[Any, ...]]


class ThreadedReader:
    """SQLite reads in one thread hop per statement on a plain sqlite3 connection; aiosqlite needs about nine hops
    (cursor, execute, fetch, close, rollback...), which made every indexed lookup cost milliseconds. Statements
    marked ``plain`` run as their compiled SQL on one read-only sqlite3 connection per thread; those marked
    ``inline`` run on the event loop's own connection, which never waits for a lock (busy: they take a thread)."""

    def __init__(self, engine: Engine, path: str, threads: int = 4) -> None:
        self._engine = engine
        self._path = path
        # its own threads: metadata reads never queue behind blob writes in the default executor
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite-read")
        self._local = threading.local()
        self._plain: dict[int, tuple[Executable, _PlainStatement]] = {}
        self._inline: sqlite3.Connection | None = None

    def _run(self, statement: Executable, params: Params) -> FrozenResult[Any]:
        with self._engine.connect() as connection:
            return connection.execute(statement, params).freeze()

    def _run_plain(
        self, plain: _PlainStatement, params: Params, connection: sqlite3.Connection | None = None
    ) -> list[Any]:
        values = params or {}
        arguments = [values[name] if name in values else plain.defaults[name] for name in plain.names]
        rows = (connection or self._connection()).execute(plain.sql, arguments).fetchall()
        return [plain.row._make(row) for row in rows]  # type: ignore[attr-defined]

    def _run_inline(self, plain: _PlainStatement, params: Params) -> list[Any] | None:
        """On the event loop, where a thread hop would cost several times the lookup; None when SQLite is busy."""
        if self._inline is None:
            self._inline = self._open(busy_timeout_ms=0)
        try:
            return self._run_plain(plain, params, self._inline)
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return None
            raise

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._open(busy_timeout_ms=30_000)
        return connection

    def _open(self, busy_timeout_ms: int) -> sqlite3.Connection:
        uri = self._path.startswith("file:")
        connection = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None, uri=uri)
        connection.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        connection.execute("PRAGMA query_only=ON")
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
        options = statement.get_execution_options()
        if options.get("plain_rows"):
            plain = self._compiled(statement)
            rows = self._run_inline(plain, params) if options.get("inline") else None
            if rows is None:
                rows = await loop.run_in_executor(self._executor, self._run_plain, plain, params)
            return PlainRows(rows)
        frozen = await loop.run_in_executor(self._executor, self._run, statement, params)
        return frozen()

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._inline is not None:
            self._inline.close()
        self._engine.dispose()

    async def scalar(self, statement: Executable, params: Params = None, /) -> Any:
        return (await self.execute(statement, params)).scalar()

    async def scalars(self, statement: Executable, params: Params = None, /) -> Scalars:
        return (await self.execute(statement, params)).scalars()


class ThreadedWriter:
    """One write transaction on a connection taken in the writer's own thread, one hop per statement. Results come
    back whole (rows frozen, or the row count of a DML statement), never a cursor to read across threads."""

    def __init__(self, engine: Engine, executor: ThreadPoolExecutor) -> None:
        self._engine = engine
        self._executor = executor
        self._open: Connection | None = None

    async def _call(self, function: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _connection(self) -> Connection:
        if self._open is None:
            self._open = self._engine.connect()  # the transaction begins (IMMEDIATE) at the first statement
        return self._open

    def _execute(self, statement: Executable, params: Any) -> Any:
        result: Any = self._connection().execute(statement, params)
        if isinstance(result, CursorResult) and not result.returns_rows:
            return result  # DML: its rowcount, no cursor left open
        if isinstance(params, list):
            return None  # an executemany (bulk insert): nothing to read
        return result.freeze()()

    async def execute(self, statement: Executable, params: Any = None, /) -> Any:
        return await self._call(self._execute, statement, params)

    async def scalar(self, statement: Executable, params: Params = None, /) -> Any:
        return await self._call(lambda: self._connection().scalar(statement, params))

    async def scalars(self, statement: Executable, params: Params = None, /) -> Scalars:
        return PlainRows(list(await self._call(lambda: self._connection().scalars(statement, params).all())))

    def get_bind(self) -> Any:
        return self._engine

    async def finish(self, commit: bool) -> None:
        if self._open is not None:
            await self._call(self._finish, self._open, commit)

    def _finish(self, connection: Connection, commit: bool) -> None:
        try:
            if commit:
                connection.commit()
            else:
                connection.rollback()
        finally:
            connection.close()


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


def sync_engine(url: URL, *, writes: bool) -> Engine:
    """A pysqlite engine (the URL may name aiosqlite): for writes it begins every transaction itself."""
    engine = create_engine(url.set(drivername="sqlite+pysqlite"), connect_args={"check_same_thread": False})
    if writes:
        take_over_transactions(engine)
    else:
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def take_over_transactions(engine: Engine) -> None:
    """Take over SQLite's transactions so writers BEGIN IMMEDIATE: a deferred read-then-write transaction would fail
    with SQLITE_BUSY instead of waiting when another process or worker writes at the same time."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        _sqlite_pragmas(dbapi_connection, _record)

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
