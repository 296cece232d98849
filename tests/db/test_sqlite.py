"""The SQLite read paths: point lookups on the event loop, everything else in threads (a busy database:
``tests/test_tag_lists.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from registry.db import migrate, queries
from registry.db.engine import Database
from registry.db.sqlite import ThreadedReader


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path}/registry.db"
    database = Database(url)
    await migrate.upgrade(database)
    await database.write(lambda session: queries.ensure_repository(session, "library/app"))
    yield database
    await database.dispose()


class _NoThreads:
    def submit(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a point lookup went to a thread")


async def test_a_point_lookup_runs_on_the_event_loop(database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    async with database.read() as session:
        assert isinstance(session, ThreadedReader)
        monkeypatch.setattr(session, "_executor", _NoThreads())
        assert await queries.repository_id(session, "library/app") == 1
        assert await queries.repository_id(session, "library/none") is None
        with pytest.raises(AssertionError, match="went to a thread"):
            await queries.list_repositories(session, None, 10)  # a listing is no point lookup
