"""``registry.content.tags``: tag lists kept per process while ``repositories.tags_version`` says they are current."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.responses import JSONResponse

from registry.content.tags import TagLists, TagPage
from registry.db import queries
from registry.db.engine import Database
from registry.db.sqlite import ThreadedReader
from tests.api_helpers import app_of, assert_error, client_for, push_blob, push_image, put_manifest
from tests.test_listing import TAGS, tag_all


def database(client: httpx.AsyncClient) -> Database:
    db: Database = app_of(client).state.services.db
    return db


async def id_and_version(client: httpx.AsyncClient, name: str) -> tuple[int, int]:
    async with database(client).read() as session:
        found = await queries.tags_version(session, name)
    assert found is not None
    return found


async def tags_version(client: httpx.AsyncClient, name: str) -> int:
    return (await id_and_version(client, name))[1]


async def test_every_change_to_a_tag_bumps_the_version_and_nothing_else_does(client: httpx.AsyncClient) -> None:
    # the database bumps it (triggers, migration 0002): inserts, retags, deletes and a manifest delete's cascade
    first, first_digest = await push_image(client, "repo", "one", seed="1")
    second, second_digest = await push_image(client, "repo", "two", seed="2")
    changes = [
        put_manifest(client, "repo", "three", first),  # a new tag
        put_manifest(client, "repo", "two", first),  # a tag moved to another manifest
        client.delete("/v2/repo/manifests/three"),  # a tag deleted
        put_manifest(client, "repo", "three", second),
        client.delete(f"/v2/repo/manifests/{second_digest}"),  # its tag "three" goes with it
    ]
    for change in changes:
        before = await tags_version(client, "repo")
        assert (await change).status_code in (201, 202)
        assert await tags_version(client, "repo") > before
    before = await tags_version(client, "repo")
    await push_blob(client, "repo", b"another blob")
    assert (await put_manifest(client, "repo", second_digest, second)).status_code == 201  # by digest: no tag
    assert await tags_version(client, "repo") == before
    assert (await client.get("/v2/repo/tags/list")).json()["tags"] == ["one", "two"]
    assert (await client.get("/v2/repo/manifests/two")).headers["Docker-Content-Digest"] == first_digest


def count_tag_reads(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    reads: list[Any] = []
    list_tags = queries.list_tags

    async def counted(*args: Any) -> list[str]:
        reads.append(args)
        return await list_tags(*args)

    monkeypatch.setattr(queries, "list_tags", counted)
    return reads


async def test_a_kept_list_is_read_once_per_version(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> None:
    await tag_all(client, "list/me", TAGS)
    reads = count_tag_reads(monkeypatch)
    for query in ("", "?n=2", "?n=3&last=V1", "?last=zeta", ""):
        assert (await client.get(f"/v2/list/me/tags/list{query}")).status_code == 200
    assert len(reads) == 1
    await tag_all(client, "list/me", ["new"])
    assert "new" in (await client.get("/v2/list/me/tags/list")).json()["tags"]
    assert len(reads) == 2


async def test_least_recently_listed_is_dropped_beyond_the_limit(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # each repository weighs one plus its tags: "a" and "b" (3 each) do not fit in 5 together
    for name in ("a", "b"):
        await tag_all(client, name, ["x", "y"])
    a, b = [(await id_and_version(client, name))[0] for name in ("a", "b")]
    lists = TagLists(database(client), max_kept=5)
    reads = count_tag_reads(monkeypatch)
    for name in ("a", "b", "b", "a", "a"):
        assert (await lists.page(name, None, 10)).tags == ["x", "y"]
    assert [args[1:] for args in reads] == [(a, None, 5), (b, None, 5), (a, None, 5)]


async def test_a_repository_with_too_many_tags_is_paged_from_sql(client: httpx.AsyncClient) -> None:
    await tag_all(client, "list/me", TAGS)
    kept, paged = TagLists(database(client)), TagLists(database(client), max_kept=3)
    for last in (None, "", "V1", "a_b", "b", "zeta", "zz"):
        for n in (0, 1, 2, 8, 9, 100):
            expected = await kept.page("list/me", last, n)
            assert await paged.page("list/me", last, n) == expected
            assert expected.body == JSONResponse({"name": "list/me", "tags": expected.tags}).body


async def test_pages_of_a_kept_list(client: httpx.AsyncClient) -> None:
    await tag_all(client, "list/me", ["a", "b", "c"])
    lists = TagLists(database(client))
    assert await lists.page("list/me", None, 2) == TagPage(["a", "b"], True, b'{"name":"list/me","tags":["a","b"]}')
    assert await lists.page("list/me", "b", 2) == TagPage(["c"], False, b'{"name":"list/me","tags":["c"]}')
    assert await lists.page("list/me", "a", 0) == TagPage([], False, b'{"name":"list/me","tags":[]}')


class BusyConnection:
    """What the event loop's SQLite connection meets while another process holds a lock it must not wait for."""

    def __init__(self) -> None:
        self.tried = 0

    def execute(self, *args: Any) -> Any:
        self.tried += 1
        busy = sqlite3.OperationalError("database is locked")
        busy.sqlite_errorcode = sqlite3.SQLITE_BUSY
        raise busy

    def close(self) -> None:
        pass


async def test_the_version_lookup_takes_a_thread_when_sqlite_is_busy(tmp_path: Path) -> None:
    # it runs on the event loop, never waiting for a lock there: busy, it goes to a reader thread, which may wait
    async with client_for(tmp_path, "inmemory") as client:
        await tag_all(client, "list/me", ["a", "b"])
        assert (await client.get("/v2/list/me/tags/list")).status_code == 200  # its statements seen once
        reader = database(client)._reader
        assert isinstance(reader, ThreadedReader)
        busy = reader._inline = BusyConnection()  # type: ignore[assignment]
        assert (await client.get("/v2/list/me/tags/list")).json() == {"name": "list/me", "tags": ["a", "b"]}
        assert_error(await client.get("/v2/list/other/tags/list"), 404, "NAME_UNKNOWN")
        assert busy.tried == 2  # each lookup tried the event loop's connection first
