"""``Database.write``'s promise, the same on every engine: the work awaits only its own statements; awaiting
anything else is ``ForeignAwaitInTransaction`` and rolls the transaction back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from registry.db import migrate, queries
from registry.db.engine import Database
from registry.db.sessions import ForeignAwaitInTransaction, Writer


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await migrate.upgrade(database)
    yield database
    await database.dispose()


# made on the event loop before the transaction, awaited in it (SQLite runs the work where no event loop is); the
# future and the task are never done, so awaiting them suspends
FOREIGN_AWAITS: dict[str, Callable[[], Awaitable[object]]] = {
    "sleep(0)": lambda: asyncio.sleep(0),
    "a future": lambda: asyncio.get_running_loop().create_future(),
    "a task": lambda: asyncio.create_task(asyncio.Event().wait()),
}


async def _names(database: Database) -> list[str]:
    async with database.read() as session:
        return await queries.list_repositories(session, None, 10)


@pytest.mark.parametrize("foreign", FOREIGN_AWAITS)
async def test_a_foreign_await_fails_and_rolls_back(database: Database, foreign: str) -> None:
    awaited = FOREIGN_AWAITS[foreign]()

    async def work(session: Writer) -> None:
        await queries.ensure_repository(session, "library/before")
        await awaited
        await queries.ensure_repository(session, "library/after")

    with pytest.raises(ForeignAwaitInTransaction, match="awaited something other than its own statements"):
        await database.write(work)
    assert await _names(database) == []
    if isinstance(awaited, asyncio.Future):
        assert not awaited.done()  # its waiter was dropped, not cancelled
        awaited.cancel()


async def test_a_foreign_await_before_any_statement_fails_too(database: Database) -> None:
    awaited = asyncio.get_running_loop().create_future()

    async def work(session: Writer) -> None:
        await awaited
        await queries.ensure_repository(session, "library/app")

    with pytest.raises(ForeignAwaitInTransaction):
        await database.write(work, durable=False)
    assert await _names(database) == []


async def test_work_that_awaits_only_its_statements_commits(database: Database) -> None:
    async def work(session: Writer) -> int:
        first = await queries.ensure_repository(session, "library/a")
        await queries.ensure_repository(session, "library/b")
        return first

    assert await database.write(work) == await database.write(lambda s: queries.repository_id(s, "library/a"))
    assert await _names(database) == ["library/a", "library/b"]


async def test_work_that_raises_rolls_back_with_its_own_error(database: Database) -> None:
    async def work(session: Writer) -> None:
        await queries.ensure_repository(session, "library/app")
        raise LookupError("mine")

    with pytest.raises(LookupError, match="mine"):
        await database.write(work)
    assert await _names(database) == []
    await database.write(lambda s: queries.ensure_repository(s, "library/app"))  # the database is usable after it
    assert await _names(database) == ["library/app"]


async def test_a_cancelled_write_is_cancelled(database: Database) -> None:
    """Cancelled while its statements run: PostgreSQL's rolls back, SQLite's runs to its end in the writer thread
    (it cannot be stopped there); either way the caller gets CancelledError and the database stays usable."""
    started = asyncio.Event()

    async def work(session: Writer) -> None:
        await queries.ensure_repository(session, "library/app")
        started.set()
        for _ in range(10_000):  # statements until cancelled
            await queries.repository_id(session, "library/app")

    task = asyncio.create_task(database.write(work))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await database.write(lambda s: queries.ensure_repository(s, "library/next"))
    assert await _names(database) == (["library/next"] if not database.is_sqlite else ["library/app", "library/next"])
