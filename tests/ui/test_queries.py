"""``registry.db.ui_queries`` on SQLite and PostgreSQL: a page of repositories filtered by a search and by what the
viewer may pull (globs too), in byte order after ``last``, with tag counts and sizes; tag pages in either order."""

from __future__ import annotations

from pathlib import Path

from registry.db import migrate, queries, ui_queries
from registry.db.engine import Database
from registry.names import NameSet
from tests.api_helpers import push_blob, push_image
from tests.ui.helpers import push_index, ui_client

NAMES = ["a/app", "a/db", "b/app", "b/tool", "c", "c-app", "team_app"]


async def _page(url: str, search: str, last: str | None, limit: int, within: NameSet | None) -> list[str]:
    database = Database(url)
    try:
        await migrate.upgrade(database)
        async with database.read() as session:
            rows = await ui_queries.repository_page(session, search, last, limit, within)
    finally:
        await database.dispose()
    return [row.name for row in rows]


async def test_search_visibility_and_paging_are_sql(tmp_path: Path, database_url: str) -> None:
    async with ui_client(tmp_path, database_url) as client:
        for name in NAMES:
            await push_blob(client, name, name.encode())
    assert await _page(database_url, "", None, 100, None) == NAMES
    assert await _page(database_url, "app", None, 100, None) == ["a/app", "b/app", "c-app", "team_app"]
    assert await _page(database_url, "_", None, 100, None) == ["team_app"]  # not LIKE's any-character
    assert await _page(database_url, "app", "b/app", 100, None) == ["c-app", "team_app"]
    assert await _page(database_url, "", None, 2, None) == ["a/app", "a/db"]
    assert await _page(database_url, "", "a/db", 2, None) == ["b/app", "b/tool"]
    within = NameSet(frozenset({"c"}), ("b/*",))
    assert await _page(database_url, "", None, 100, within) == ["b/app", "b/tool", "c"]
    assert await _page(database_url, "app", None, 100, within) == ["b/app"]
    assert await _page(database_url, "", None, 100, NameSet()) == []
    assert await _page(database_url, "", None, 100, NameSet(globs=("*",))) == NAMES


async def test_counts_sizes_and_tag_orders(tmp_path: Path, database_url: str) -> None:
    async with ui_client(tmp_path, database_url) as client:
        first, _ = await push_image(client, "app", "v1", seed="1")
        await push_image(client, "app", "v2", seed="2")
        await push_image(client, "app", "v0", seed="2")  # the same manifest as v2
        index = await push_index(client, "multi", "latest", [("linux", "amd64"), ("linux", "arm64")])
    database = Database(database_url)
    try:
        async with database.read() as session:
            rows = {row.name: row for row in await ui_queries.repository_page(session, "", None, 10)}
            repo_id = await queries.repository_id(session, "app")
            assert repo_id is not None
            by_name = await ui_queries.tag_page(session, repo_id, "name", False, 0, 10)
            newest = await ui_queries.tag_page(session, repo_id, "pushed", True, 0, 2)
            second = await ui_queries.tag_page(session, repo_id, "pushed", True, 2, 2)
            multi = await queries.repository_id(session, "multi")
            assert multi is not None
            index_rows = await ui_queries.tag_page(session, multi, "name", False, 0, 10)
    finally:
        await database.dispose()
    assert rows["app"].tags == 3 and rows["multi"].tags == 1
    blobs = [b"config app 1", b"layer app 1", b"config app 2", b"layer app 2"]
    assert rows["app"].size == sum(len(blob) for blob in blobs)
    assert rows["app"].last_push is not None
    assert [row.name for row in by_name] == ["v0", "v1", "v2"]
    assert [row.name for row in newest + second] == ["v0", "v2", "v1"]
    v1 = next(row for row in by_name if row.name == "v1")
    assert v1.size == len(first) + len(b"config app 1") + len(b"layer app 1")
    assert v1.payload is None  # an image's payload is not read for its platforms
    assert index_rows[0].digest == index and index_rows[0].payload is not None
    assert index_rows[0].size > len(index_rows[0].payload)  # its children and their blobs count
