"""``Database`` on SQLite: each write transaction runs whole in the writer thread, committed or rolled back;
``plain`` statements run as their SQL on the driver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from registry.db import migrate, queries
from registry.db.engine import Database
from registry.db.models import repositories, uploads
from registry.db.sessions import Writer, plain


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path}/registry.db"
    db = Database(url)
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
    """The writer thread drives the transaction without an event loop: it cannot wait for one."""

    async def sleeps(session: Writer) -> None:
        await queries.ensure_repository(session, "kept/out")
        await asyncio.sleep(0)

    with pytest.raises(RuntimeError, match="awaited something other than its own statements"):
        await database.write(sleeps)
    assert await _repository(database, "kept/out") is None


async def test_plain_writes_bind_values_as_sqlalchemy_does(database: Database) -> None:
    """On SQLite a ``plain`` statement runs as its SQL on the driver: datetimes still go through the dialect."""
    created = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    row = {"id": "u1", "repository_name": "a/b", "size": 3, "created_at": created, "updated_at": created}
    assert (await database.write(lambda s: s.execute(plain(insert(uploads)), row))).rowcount == 1
    async with database.read() as session:
        stored = (await session.execute(select(uploads.c.created_at, uploads.c.size).where(uploads.c.id == "u1"))).one()
    assert stored == (created.replace(tzinfo=None), 3)


async def test_a_plain_insert_leaving_out_a_defaulted_column_gets_its_default(database: Database) -> None:
    await database.write(lambda s: s.execute(plain(insert(repositories)), {"name": "no/date"}))
    async with database.read() as session:
        created = await session.scalar(select(repositories.c.created_at).where(repositories.c.name == "no/date"))
    assert created is not None
