"""``Database`` on every engine: each write transaction is committed or rolled back whole (the contract:
``tests/db/test_write_contract.py``; SQLite's fast paths: ``tests/db/test_sqlite.py``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from registry.db import migrate, queries
from registry.db.engine import Database
from registry.db.sessions import ForeignAwaitInTransaction, Writer


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    try:
        await migrate.upgrade(db)
        yield db
    finally:
        await db.dispose()


async def _repository(database: Database, name: str) -> int | None:
    async with database.read() as session:
        return await queries.repository_id(session, name)


async def test_a_transaction_that_raises_leaves_nothing(database: Database) -> None:
    async def fails(session: Writer) -> None:
        await queries.ensure_repository(session, "kept/out")
        raise LookupError("refused")

    with pytest.raises(LookupError):
        await database.write(fails)
    assert await _repository(database, "kept/out") is None
    created = await database.write(lambda s: queries.ensure_repository(s, "let/in"))
    assert created == await _repository(database, "let/in")


async def test_a_transaction_awaiting_anything_but_its_statements_is_refused_and_rolled_back(
    database: Database,
) -> None:
    """SQLite's writer thread drives the transaction without an event loop, and PostgreSQL's guard refuses the
    same (``registry.db.guarded``)."""

    async def sleeps(session: Writer) -> None:
        await queries.ensure_repository(session, "kept/out")
        await asyncio.sleep(0)

    with pytest.raises(ForeignAwaitInTransaction, match="awaited something other than its own statements"):
        await database.write(sleeps)
    assert await _repository(database, "kept/out") is None
