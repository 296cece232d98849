"""SQLite without aiosqlite on the hot paths: reads run in one thread hop per statement on plain sqlite3
connections, write transactions in one hop each (aiosqlite takes several hops per statement, which made every
lookup and every write transaction cost milliseconds), plus the pragmas and BEGIN IMMEDIATE every connection
needs."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, FrozenResult
from sqlalchemy.sql import Executable

from registry.db.sessions import ForeignAwaitInTransaction, Params, PlainRows, Rows, ScalarsOfExecute, Writer
from registry.db.sqlite_plain import PlainStatement, PlainStatements

SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=30000",  # first: every later statement waits for other processes' locks
    "PRAGMA synchronous=FULL",  # an acknowledged push survives power loss, not only a crash
    "PRAGMA foreign_keys=ON",
)
WAL_ATTEMPTS = 100
_T = TypeVar("_T")


def connect(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    """A plain sqlite3 connection to the file (or ``file:`` URI) at ``path``, usable from any thread, in autocommit
    mode (its transactions are the ones it begins), waiting up to ``busy_timeout_ms`` for other connections' locks."""
    uri = path.startswith("file:")
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None, uri=uri)
    connection.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
    return connection


class ThreadedReader(ScalarsOfExecute):
    """SQLite reads in one thread hop per statement on a plain sqlite3 connection; aiosqlite needs about nine hops
    (cursor, execute, fetch, close, rollback...), which made every indexed lookup cost milliseconds. Statements
    with a plain form (``registry.db.sqlite_plain``) run as their compiled SQL on one read-only sqlite3 connection
    per thread; those finding one row by a unique key run on the event loop's own connection, which never waits
    for a lock (busy: they take a thread)."""

    def __init__(self, engine: Engine, path: str, threads: int = 4) -> None:
        self._engine = engine
        self._path = path
        # its own threads: metadata reads never queue behind blob writes in the default executor
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sqlite-read")
        self._local = threading.local()
        self._plain = PlainStatements(engine.dialect)
        self._inline: sqlite3.Connection | None = None

    def _run(self, statement: Executable, params: Params) -> FrozenResult[Any]:
        with self._engine.connect() as connection:
            return connection.execute(statement, params).freeze()

    def _run_plain(self, plain: PlainStatement, params: Params) -> PlainRows:
        return plain.run(self._connection(), params)

    def _run_inline(self, plain: PlainStatement, params: Params) -> PlainRows | None:
        """On the event loop, where a thread hop would cost several times the lookup; None when SQLite is busy."""
        if self._inline is None:
            self._inline = self._open(busy_timeout_ms=0)
        try:
            return plain.run(self._inline, params)
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
        connection = connect(self._path, busy_timeout_ms)
        connection.execute("PRAGMA query_only=ON")
        return connection

    async def execute(self, statement: Executable, params: Params = None, /) -> Rows:
        loop = asyncio.get_running_loop()
        plain = self._plain.get(statement, params)
        if plain is None:
            frozen = await loop.run_in_executor(self._executor, self._run, statement, params)
            return frozen()
        rows = self._run_inline(plain, params) if plain.one_row else None
        if rows is None:
            rows = await loop.run_in_executor(self._executor, self._run_plain, plain, params)
        return rows

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._inline is not None:
            self._inline.close()
        self._engine.dispose()


class WriteThread:
    """SQLite write transactions, each run whole in this one thread: BEGIN, the statements, COMMIT in a single hop.

    The transaction's work is a coroutine over an ``_InlineWriter``, whose statements run at once and never
    suspend, so it is driven to its end here without an event loop: no write transaction waits on the event
    loop between its statements (under load that wait, not SQLite, was most of a transaction's time). One thread:
    SQLite has one writer at a time, and this process's transactions queue on it in order; other processes
    (workers, replicas) still meet at SQLite's lock.

    A transaction run with ``durable=False`` commits with ``synchronous=NORMAL``: its WAL frames are written but
    not fsynced. Only transactions whose loss after a power cut costs nothing acknowledged may ask for it (an
    upload session's creation, its lease and size bookkeeping: the client restarts the upload). The next
    ``synchronous=FULL`` commit fsyncs the WAL file, and the WAL is only ever appended to between checkpoints
    (sqlite.org/wal.html), so that fsync makes every earlier frame durable too: a durable commit never depends on
    an earlier commit that could still be lost. A checkpoint syncs the WAL before copying it into the database
    (pragma.html#pragma_synchronous), so frames it moves are durable either way, and WAL mode stays consistent
    under NORMAL ("WAL mode is always consistent with synchronous=NORMAL", same page)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine.execution_options(sqlite_immediate=True)
        self._connection: Connection | None = None  # the writer thread's own, kept open
        self._plain = PlainStatements(engine.dialect)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-write")

    async def run(self, work: Callable[[Writer], Coroutine[Any, Any, _T]], durable: bool) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, work, durable)

    def _run(self, work: Callable[[Writer], Coroutine[Any, Any, _T]], durable: bool) -> _T:
        with self._transaction(durable) as connection:
            return _drive(work(_InlineWriter(connection, self._plain)))

    async def run_sync(self, function: Callable[[Connection], None]) -> None:
        """``function`` on the writer's connection in one durable transaction, in this thread (migrations)."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._run_sync, function)

    def _run_sync(self, function: Callable[[Connection], None]) -> None:
        with self._transaction(durable=True) as connection:
            function(connection)

    @contextmanager
    def _transaction(self, durable: bool) -> Iterator[Connection]:
        connection = self._connect()
        connection.execution_options(sqlite_synchronous="FULL" if durable else "NORMAL")
        with connection.begin():
            yield connection

    def _connect(self) -> Connection:
        if self._connection is None or self._connection.invalidated:
            if self._connection is not None:
                self._connection.close()
            self._connection = self._engine.connect()
        return self._connection

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        if self._connection is not None:
            self._connection.close()
        self._engine.engine.dispose()


def _drive(coroutine: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine that never suspends to its end, in this thread."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: _T = done.value
        return result
    coroutine.close()
    raise ForeignAwaitInTransaction()


class _InlineWriter(ScalarsOfExecute):
    """The ``Writer`` a ``WriteThread`` transaction gets: each statement runs at once on the transaction's
    connection, in the writer thread, and its result is read there too."""

    def __init__(self, connection: Connection, plain: PlainStatements) -> None:
        self._connection = connection
        self._plain = plain

    async def execute(self, statement: Executable, params: Any = None, /) -> Any:
        plain = self._plain.get(statement, params)
        if plain is not None:
            driver = self._connection.connection.driver_connection
            assert isinstance(driver, sqlite3.Connection)
            return plain.run(driver, params)
        return self._connection.execute(statement, params)

    def get_bind(self) -> Any:
        return self._connection


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
        options = conn.get_execution_options()
        synchronous = options.get("sqlite_synchronous", "FULL")  # a transaction's, set before it begins
        if conn.info.get("synchronous", "FULL") != synchronous:
            conn.exec_driver_sql(f"PRAGMA synchronous={synchronous}")
            conn.info["synchronous"] = synchronous
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get("sqlite_immediate", False) else "BEGIN")
