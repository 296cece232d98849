"""Upload sessions outlive the process that started them and the connection that fed them.

spec.md "Use Cases: Resumable Push": after connectivity returns, the client sends only the remaining data;
"Pushing a blob in chunks": a GET on the upload URL (end-13) gives the current offset to resume from.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.sql import Executable
from sqlalchemy.sql.dml import UpdateBase
from starlette.types import Message, Scope

from registry.db.engine import Database
from registry.db.sessions import Writer
from tests.api_helpers import (
    DOCKER_MANIFEST,
    DRIVERS,
    OCTET,
    api_config,
    app_of,
    assert_created,
    assert_error,
    blob_status,
    client_on,
    digest_of,
    finish_upload,
    image_manifest,
    patch_chunk,
    path_of,
    put_manifest,
    start_upload,
    upload_end,
)

DATA = bytes(range(256)) * 40  # 10 KiB
DIGEST = digest_of(DATA)


def uploads_left(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "data/docker/registry/v2/uploads").glob("*/*") if p.is_file()]


@pytest.mark.parametrize("split", [len(DATA) // 2, len(DATA)])
async def test_upload_session_survives_restart(tmp_path: Path, database_url: str, split: int) -> None:
    # same database and filesystem root, a new app: no in-memory hash state, so the data is re-hashed from storage
    config = api_config(tmp_path, "filesystem", REGISTRY_DATABASE_URL=database_url)
    async with client_on(config) as client:
        location = await start_upload(client, "durable/repo")
        assert (await patch_chunk(client, location, DATA[:split], 0)).status_code == 202

    async with client_on(config) as client:
        assert await upload_end(client, location) == f"0-{split - 1}"
        assert await blob_status(client, "durable/repo", DIGEST) == 404
        if split < len(DATA):
            assert (await patch_chunk(client, location, DATA[split:], split)).status_code == 202
        await assert_created(client, await finish_upload(client, location, DIGEST), "durable/repo", DATA)
    assert uploads_left(tmp_path) == []


async def test_wrong_digest_after_restart_is_refused(tmp_path: Path, database_url: str) -> None:
    config = api_config(tmp_path, "filesystem", REGISTRY_DATABASE_URL=database_url)
    async with client_on(config) as client:
        location = await start_upload(client, "durable/repo")
        assert (await patch_chunk(client, location, DATA, 0)).status_code == 202

    async with client_on(config) as client:
        response = await finish_upload(client, location, digest_of(DATA[:-1]))
        assert_error(response, 400, "DIGEST_INVALID")
        assert await blob_status(client, "durable/repo", DIGEST) == 404
        assert await blob_status(client, "durable/repo", digest_of(DATA[:-1])) == 404
    assert uploads_left(tmp_path) == []


def patch_scope(path: str) -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PATCH",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"registry.test"),
            (b"content-type", OCTET.encode()),
            (b"transfer-encoding", b"chunked"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("registry.test", 80),
    }


@pytest.mark.parametrize("driver", DRIVERS)
async def test_client_disconnect_mid_patch_leaves_session_resumable(
    tmp_path: Path, database_url: str, driver: str
) -> None:
    # the ASGI app is driven directly: one body chunk with more_body=True, then http.disconnect
    first = DATA[:3000]
    messages: list[Message] = [{"type": "http.request", "body": first, "more_body": True}, {"type": "http.disconnect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    async with client_on(api_config(tmp_path, driver, REGISTRY_DATABASE_URL=database_url)) as client:
        location = await start_upload(client, "durable/repo")
        await app_of(client)(patch_scope(location), receive, send)
        assert not messages, "the app stopped reading before the disconnect"
        assert all(m.get("status", 0) < 500 for m in sent if m["type"] == "http.response.start"), sent

        assert await upload_end(client, location) == f"0-{len(first) - 1}"
        assert await blob_status(client, "durable/repo", DIGEST) == 404
        assert await blob_status(client, "durable/repo", digest_of(first)) == 404

        assert (await patch_chunk(client, location, DATA[len(first) :], len(first))).status_code == 202
        await assert_created(client, await finish_upload(client, location, DIGEST), "durable/repo", DATA)


async def test_a_second_writer_on_a_busy_session_gets_416_and_cannot_touch_the_blob(
    tmp_path: Path, database_url: str
) -> None:
    """A PATCH still streaming holds the session's lease: a concurrent PUT is refused, so no request can write into
    bytes that were already verified and published."""
    data = b"x" * 1000
    async with client_on(api_config(tmp_path, "filesystem", REGISTRY_DATABASE_URL=database_url)) as client:
        location = path_of((await client.post("/v2/lease/test/blobs/uploads/")).headers["location"])
        reading, release = asyncio.Event(), asyncio.Event()

        async def slow_body() -> AsyncIterator[bytes]:
            reading.set()  # the app reads the body only once it holds the session's lease
            yield b"EVIL"
            await release.wait()
            yield b"EVIL"

        patch = asyncio.create_task(client.patch(location, content=slow_body()))
        await reading.wait()
        put = await client.put(f"{location}?digest={digest_of(data)}", content=data)
        assert put.status_code == 416, put.text
        release.set()
        assert (await patch).status_code == 202
        assert (await client.get(location)).headers["range"] == "0-7"
        assert (await client.head(f"/v2/lease/test/blobs/{digest_of(data)}")).status_code == 404


class _TableRecorder:
    """A write session that notes which tables its statements change."""

    def __init__(self, session: Writer) -> None:
        self._session = session
        self.tables: set[str] = set()

    def _note(self, statement: Executable) -> None:
        if isinstance(statement, UpdateBase):
            self.tables.add(statement.table.name)  # type: ignore[attr-defined]

    async def execute(self, statement: Executable, params: Any = None, /) -> Any:
        self._note(statement)
        return await self._session.execute(statement, params)

    async def scalar(self, statement: Executable, params: Any = None, /) -> Any:
        self._note(statement)
        return await self._session.scalar(statement, params)

    async def scalars(self, statement: Executable, params: Any = None, /) -> Any:
        self._note(statement)
        return await self._session.scalars(statement, params)

    def get_bind(self) -> Any:
        return self._session.get_bind()


async def test_what_a_201_acknowledges_commits_with_fsync_and_session_bookkeeping_without(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A docker-style push (POST, one PATCH, PUT ?digest=, manifest PUT): the transactions that publish a blob or
    store a manifest commit with ``synchronous=FULL`` (2), the upload session's own (create, claim, release) and the
    blob's lease taken before its bytes move with ``NORMAL`` (1), whose loss after a power cut costs nothing a 201
    acknowledged."""
    commits: list[tuple[frozenset[str], int]] = []
    write = Database.write

    async def recording_write(self: Database, work: Any, *, durable: bool = True) -> Any:
        async def recorded(session: Writer) -> Any:
            recorder = _TableRecorder(session)
            result = await work(recorder)
            commits.append((frozenset(recorder.tables), await session.scalar(text("PRAGMA synchronous"))))
            return result

        return await write(self, recorded, durable=durable)

    monkeypatch.setattr(Database, "write", recording_write)
    config, layer = b'{"rootfs": {}}', b"layer" * 1000
    no_purging = {"REGISTRY_STORAGE_MAINTENANCE_UPLOADPURGING_ENABLED": "false"}  # its schedule commits at start
    async with client_on(api_config(tmp_path, "filesystem", **no_purging)) as client:
        for blob in (layer, config):
            location = path_of((await client.post("/v2/durable/repo/blobs/uploads/")).headers["location"])
            assert (await client.patch(location, content=_chunked(blob))).status_code == 202
            assert (await finish_upload(client, location, digest_of(blob))).status_code == 201
        manifest = image_manifest(config, [layer], DOCKER_MANIFEST)
        assert (await put_manifest(client, "durable/repo", "latest", manifest, DOCKER_MANIFEST)).status_code == 201

    session = (frozenset({"uploads"}), 1)
    lease = (frozenset({"blobs"}), 1)
    publish = (frozenset({"repositories", "repository_blobs", "uploads", "gc_blob_reviews"}), 2)
    store = (frozenset({"repositories", "manifests", "manifest_blobs", "tags"}), 2)
    assert commits == [session, session, session, session, lease, publish] * 2 + [store]


async def _chunked(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 1024):
        yield data[start : start + 1024]
